#!/usr/bin/env bash
# The local MongoDB wire-protocol server for tests and the quick start:
# mongo-java-server (de.bwaldvogel, Maven Central) through our own small Java
# main (deploy/local/mongodb/LocalMongo.java), on 127.0.0.1. It holds MongoDB's
# data model (nested arrays, `$`/`.` keys, BSON dates, indexed _id); see
# docs/storage.md for where it differs from MongoDB 7 (wire version 8, no
# transactions or sessions, no TTL expiry). The jars and the compiled main are
# cached under $CT_CACHE_DIR keyed by the hash of the pom and the source.
#
#   CT_MONGODB_BACKEND  h2 (default: persistent, $CT_LOCAL_DIR/mongodb/data)
#                       or memory (lost at stop; throughput benchmarks)
#
# usage: mongodb.sh install|start|stop|status|uri
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/env.sh"

SRC="$HERE/mongodb"
KEY=$(cat "$SRC/pom.xml" "$SRC/LocalMongo.java" | sha256sum | cut -c1-16)
MH="$CT_CACHE_DIR/mongodb/$KEY"
RUN="$CT_LOCAL_DIR/mongodb"
PIDFILE="$RUN/mongodb.pid"
LOG="$RUN/mongodb.log"

install_jars() {
  [ -f "$MH/.complete" ] && return 0
  command -v mvn >/dev/null || ct_die "mvn not found: Maven is needed to resolve mongo-java-server"
  command -v javac >/dev/null || ct_die "javac not found: the local MongoDB server needs a JDK 17+"
  ct_log "mongodb: resolving mongo-java-server from Maven Central into $MH (first time only)"
  rm -rf "$MH" && mkdir -p "$MH/classes"
  cp "$SRC/pom.xml" "$MH/pom.xml"
  (cd "$MH" && mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$MH/libs") >"$MH/mvn.log" 2>&1 \
    || { tail -n 30 "$MH/mvn.log" >&2; ct_die "mongodb: Maven could not resolve the jars; log: $MH/mvn.log"; }
  javac -nowarn -d "$MH/classes" -cp "$MH/libs/*" "$SRC/LocalMongo.java" >"$MH/javac.log" 2>&1 \
    || { cat "$MH/javac.log" >&2; ct_die "mongodb: could not compile LocalMongo.java"; }
  touch "$MH/.complete"
}

start() {
  if ct_pid_alive "$PIDFILE"; then ct_log "mongodb: already running (pid $(cat "$PIDFILE"))"; return 0; fi
  ct_port_open "$CT_MONGODB_PORT" && ct_die "mongodb: port $CT_MONGODB_PORT is taken by another process (set CT_MONGODB_PORT)"
  install_jars
  mkdir -p "$RUN"
  local store=(--dir "$RUN/data")
  case "$CT_MONGODB_BACKEND" in
    h2) ;;
    memory) store=(--memory) ;;
    *) ct_die "mongodb: unknown backend '$CT_MONGODB_BACKEND' (h2 or memory)" ;;
  esac
  ct_log "mongodb: starting mongo-java-server ($CT_MONGODB_BACKEND) on $CT_MONGODB_URI (log: $LOG)"
  # -XX:+ExitOnOutOfMemoryError: a server out of heap must die visibly, not hang.
  nohup java -Xms128m "-Xmx$CT_MONGODB_HEAP" -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Djava.awt.headless=true \
    -cp "$MH/classes:$MH/libs/*" LocalMongo --port "$CT_MONGODB_PORT" "${store[@]}" \
    >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  ct_wait_port mongodb "$CT_MONGODB_PORT" "$PIDFILE" "$LOG" 60
  ct_log "mongodb: ready"
}

case "${1:-}" in
  install) install_jars ;;
  start) start ;;
  stop) ct_stop_pid mongodb "$PIDFILE" 30 ;;
  status)
    if ct_pid_alive "$PIDFILE" && ct_port_open "$CT_MONGODB_PORT"; then
      echo "mongodb: running pid=$(cat "$PIDFILE") uri=$CT_MONGODB_URI backend=$CT_MONGODB_BACKEND"
    else echo "mongodb: stopped"; exit 3; fi ;;
  uri) echo "$CT_MONGODB_URI" ;;
  *) echo "usage: $0 install|start|stop|status|uri" >&2; exit 2 ;;
esac
