# Shared settings of the local servers, sourced by kafka.sh, mongodb.sh and
# services.sh. Every value can be overridden from the environment.
#
#   CT_CACHE_DIR     downloads and builds kept between runs (outside the repo)
#   CT_LOCAL_DIR     data and logs of the running servers
#   CT_KAFKA_VERSION Apache Kafka version (>= 4.1; 4.0.0 breaks librdkafka 2.0 groups)
#   CT_KAFKA_PORT    client listener; CT_KAFKA_CONTROLLER_PORT the KRaft controller
#   CT_KAFKA_SASL_PORT  when set: a second listener, SASL_SSL (SCRAM-SHA-512
#                    over TLS), for user CT_KAFKA_SASL_USER (default changetrail)
#                    with password CT_KAFKA_SASL_PASSWORD (default: random,
#                    kept in $CT_LOCAL_DIR/kafka/tls/sasl.password)
#   CT_MONGODB_PORT  the local MongoDB server (mongo-java-server); the older
#                    name CT_FERRETDB_PORT is still read when it is not set
#   CT_MONGODB_BACKEND h2 (default, persistent) or memory
#   CT_MONGODB_HEAP  its Java heap (default 1g)

CT_CACHE_DIR=${CT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/changetrail}
CT_LOCAL_DIR=${CT_LOCAL_DIR:-/tmp/changetrail-local}
CT_KAFKA_VERSION=${CT_KAFKA_VERSION:-4.1.1}
CT_KAFKA_PORT=${CT_KAFKA_PORT:-19092}
CT_KAFKA_CONTROLLER_PORT=${CT_KAFKA_CONTROLLER_PORT:-19093}
CT_KAFKA_SASL_PORT=${CT_KAFKA_SASL_PORT:-}
CT_KAFKA_SASL_USER=${CT_KAFKA_SASL_USER:-changetrail}
CT_KAFKA_HEAP=${CT_KAFKA_HEAP:-512m}
CT_MONGODB_PORT=${CT_MONGODB_PORT:-${CT_FERRETDB_PORT:-37017}}
CT_FERRETDB_PORT=$CT_MONGODB_PORT
CT_MONGODB_BACKEND=${CT_MONGODB_BACKEND:-h2}
CT_MONGODB_HEAP=${CT_MONGODB_HEAP:-1g}

CT_KAFKA_BOOTSTRAP="127.0.0.1:${CT_KAFKA_PORT}"
CT_MONGODB_URI="mongodb://127.0.0.1:${CT_MONGODB_PORT}/"
export CT_CACHE_DIR CT_LOCAL_DIR CT_KAFKA_BOOTSTRAP CT_MONGODB_URI

ct_log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
ct_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ct_port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
ct_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ct_pid_alive PIDFILE: true when the pid in PIDFILE is a running process.
ct_pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ct_stop_pid NAME PIDFILE [SECONDS]: SIGTERM, wait, then SIGKILL.
ct_stop_pid() {
  local name=$1 pidfile=$2 secs=${3:-30} pid i
  if ! ct_pid_alive "$pidfile"; then
    rm -f "$pidfile"; ct_log "$name: not running"; return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    ct_log "$name: pid $pid still alive after ${secs}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  ct_log "$name: stopped"
}

# ct_wait_port NAME PORT PIDFILE LOG SECONDS: wait until PORT accepts, or fail
# with the tail of LOG when the process died or the time ran out.
ct_wait_port() {
  local name=$1 port=$2 pidfile=$3 log=$4 secs=$5 i
  for ((i = 0; i < secs * 4; i++)); do
    ct_port_open "$port" && return 0
    if ! ct_pid_alive "$pidfile"; then
      tail -n 40 "$log" >&2 || true
      ct_die "$name exited during start-up; full log: $log"
    fi
    sleep 0.25
  done
  tail -n 40 "$log" >&2 || true
  ct_die "$name did not accept connections on 127.0.0.1:$port within ${secs}s; log: $log"
}
