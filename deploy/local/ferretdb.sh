#!/usr/bin/env bash
# FerretDB v1.24 for local tests and the quickstart: a MongoDB wire-protocol
# server on 127.0.0.1 with the SQLite backend (or PostgreSQL), built from our
# own tiny Go main in deploy/local/ferretdb/ that embeds FerretDB's package.
# The binary is cached under $CT_CACHE_DIR keyed by the hash of that source.
#
# usage: ferretdb.sh install|start|stop|status|uri
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/env.sh"

SRC="$HERE/ferretdb"
KEY=$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-16)
FB="$CT_CACHE_DIR/ferretdb/$CT_FERRETDB_VERSION-$KEY"
BIN="$FB/ferretdb-embedded"
RUN="$CT_LOCAL_DIR/ferretdb"
PIDFILE="$RUN/ferretdb.pid"
LOG="$RUN/ferretdb.log"
PGD="$CT_LOCAL_DIR/postgresql"

install_bin() {
  [ -x "$BIN" ] && return 0
  command -v go >/dev/null || ct_die "go not found: FerretDB is built with the Go toolchain"
  mkdir -p "$FB"
  ct_log "ferretdb: building $CT_FERRETDB_VERSION (embedded, first time only) into $FB"
  # GOTOOLCHAIN=local: never download a toolchain; -mod=readonly: go.sum is committed.
  (cd "$SRC" && GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=readonly \
    go build -trimpath -o "$BIN.tmp" .) >"$FB/build.log" 2>&1 \
    || { tail -n 30 "$FB/build.log" >&2; ct_die "ferretdb: build failed; log: $FB/build.log"; }
  mv "$BIN.tmp" "$BIN"
}

pg_start() {
  local pgbin
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -n "$pgbin" ] || ct_die "ferretdb: backend postgresql needs the postgresql package (apt-get install postgresql)"
  if [ ! -f "$PGD/data/PG_VERSION" ]; then
    install -d -o postgres -g postgres "$PGD"
    runuser -u postgres -- "$pgbin/initdb" -D "$PGD/data" -E UTF8 --locale=C.UTF-8 -A trust -U postgres >/dev/null
  fi
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$PGD/data" -l "$PGD/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $CT_PG_PORT -k $PGD" start >/dev/null \
    || ct_die "ferretdb: PostgreSQL did not start; log: $PGD/pg.log"
  runuser -u postgres -- "$pgbin/createdb" -h 127.0.0.1 -p "$CT_PG_PORT" -U postgres -T template0 \
    -E UTF8 ferretdb 2>/dev/null || true
}

pg_stop() {
  local pgbin
  [ -f "$PGD/data/postmaster.pid" ] || return 0
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$PGD/data" -m fast stop >/dev/null || true
}

start() {
  if ct_pid_alive "$PIDFILE"; then ct_log "ferretdb: already running (pid $(cat "$PIDFILE"))"; return 0; fi
  ct_port_open "$CT_FERRETDB_PORT" && ct_die "ferretdb: port $CT_FERRETDB_PORT is taken by another process (set CT_FERRETDB_PORT)"
  install_bin
  mkdir -p "$RUN/sqlite"
  local args=(-listen-addr "127.0.0.1:$CT_FERRETDB_PORT" -log-level warn)
  case "$CT_FERRETDB_BACKEND" in
    sqlite) args+=(-handler sqlite -sqlite-url "file:$RUN/sqlite/") ;;
    postgresql)
      pg_start
      args+=(-handler postgresql -postgresql-url "postgres://postgres@127.0.0.1:$CT_PG_PORT/ferretdb") ;;
    *) ct_die "ferretdb: unknown backend '$CT_FERRETDB_BACKEND' (sqlite or postgresql)" ;;
  esac
  ct_log "ferretdb: starting ($CT_FERRETDB_BACKEND) on $CT_MONGODB_URI (log: $LOG)"
  DO_NOT_TRACK=1 nohup "$BIN" "${args[@]}" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  ct_wait_port ferretdb "$CT_FERRETDB_PORT" "$PIDFILE" "$LOG" 60
  ct_log "ferretdb: ready"
}

case "${1:-}" in
  install) install_bin ;;
  start) start ;;
  stop) ct_stop_pid ferretdb "$PIDFILE" 20; pg_stop ;;
  status)
    if ct_pid_alive "$PIDFILE" && ct_port_open "$CT_FERRETDB_PORT"; then
      echo "ferretdb: running pid=$(cat "$PIDFILE") uri=$CT_MONGODB_URI backend=$CT_FERRETDB_BACKEND"
    else echo "ferretdb: stopped"; exit 3; fi ;;
  uri) echo "$CT_MONGODB_URI" ;;
  *) echo "usage: $0 install|start|stop|status|uri" >&2; exit 2 ;;
esac
