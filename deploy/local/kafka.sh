#!/usr/bin/env bash
# Apache Kafka for local tests and the quickstart: a single-node KRaft broker
# (broker + controller in one JVM) on 127.0.0.1, run from the jars of
# org.apache.kafka:kafka_2.13 resolved from Maven Central with `java -cp`.
#
# usage: kafka.sh install|start|stop|status|bootstrap
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/env.sh"

KH="$CT_CACHE_DIR/kafka/$CT_KAFKA_VERSION"
RUN="$CT_LOCAL_DIR/kafka"
PIDFILE="$RUN/kafka.pid"
LOG="$RUN/logs/server.log"

install_jars() {
  if [ -f "$KH/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || ct_die "mvn not found: Maven is needed to resolve the Kafka jars"
  command -v java >/dev/null || ct_die "java not found: Kafka needs Java 17+"
  ct_log "kafka: resolving kafka_2.13 $CT_KAFKA_VERSION from Maven Central into $KH"
  rm -rf "$KH" && mkdir -p "$KH"
  sed "s|<kafka.version>[^<]*</kafka.version>|<kafka.version>$CT_KAFKA_VERSION</kafka.version>|" \
    "$HERE/kafka/pom.xml" >"$KH/pom.xml"
  (cd "$KH" && mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$KH/libs") >"$KH/mvn.log" 2>&1 \
    || { tail -n 30 "$KH/mvn.log" >&2; ct_die "kafka: Maven could not resolve the jars; log: $KH/mvn.log"; }
  java -cp "$KH/libs/*" kafka.tools.StorageTool random-uuid >/dev/null 2>&1 \
    || ct_die "kafka: kafka.tools.StorageTool missing from the resolved jars ($KH/libs)"
  touch "$KH/.complete"
}

write_config() {
  mkdir -p "$RUN/logs"
  cat >"$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CT_KAFKA_CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:${CT_KAFKA_PORT},CONTROLLER://127.0.0.1:${CT_KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${CT_KAFKA_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$RUN/data
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.cleaner.dedupe.buffer.size=16777216
PROPS
  cat >"$RUN/log4j2.properties" <<'PROPS'
status = error
name = changetrail-kafka
appender.out.type = Console
appender.out.name = STDOUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.req.name = kafka.request.logger
logger.req.level = WARN
logger.sc.name = state.change.logger
logger.sc.level = WARN
PROPS
}

jvm_opts() {
  JOPTS=(-Xms256m "-Xmx$CT_KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$RUN/log4j2.properties" "-Dkafka.logs.dir=$RUN/logs")
}

start() {
  if ct_pid_alive "$PIDFILE"; then ct_log "kafka: already running (pid $(cat "$PIDFILE"))"; return 0; fi
  ct_port_open "$CT_KAFKA_PORT" && ct_die "kafka: port $CT_KAFKA_PORT is taken by another process (set CT_KAFKA_PORT)"
  ct_port_open "$CT_KAFKA_CONTROLLER_PORT" && ct_die "kafka: port $CT_KAFKA_CONTROLLER_PORT is taken (set CT_KAFKA_CONTROLLER_PORT)"
  install_jars
  write_config
  jvm_opts
  if [ ! -f "$RUN/data/meta.properties" ]; then
    local cid
    cid=$(java "${JOPTS[@]}" -cp "$KH/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null \
      | grep -E '^[A-Za-z0-9_-]{22}$' | tail -n1)
    [ -n "$cid" ] || ct_die "kafka: could not generate a cluster id"
    java "${JOPTS[@]}" -cp "$KH/libs/*" kafka.tools.StorageTool format -t "$cid" \
      -c "$RUN/server.properties" >"$RUN/logs/format.log" 2>&1 \
      || { cat "$RUN/logs/format.log" >&2; ct_die "kafka: storage format failed; log: $RUN/logs/format.log"; }
  fi
  ct_log "kafka: starting $CT_KAFKA_VERSION on $CT_KAFKA_BOOTSTRAP (log: $LOG)"
  nohup java "${JOPTS[@]}" -cp "$KH/libs/*" kafka.Kafka "$RUN/server.properties" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  # In KRaft the client listener only accepts once the broker is unfenced, so
  # a TCP connect means ready.
  ct_wait_port kafka "$CT_KAFKA_PORT" "$PIDFILE" "$LOG" 120
  ct_log "kafka: ready"
}

case "${1:-}" in
  install) install_jars ;;
  start) start ;;
  stop) ct_stop_pid kafka "$PIDFILE" 60 ;;
  status)
    if ct_pid_alive "$PIDFILE" && ct_port_open "$CT_KAFKA_PORT"; then
      echo "kafka: running pid=$(cat "$PIDFILE") bootstrap=$CT_KAFKA_BOOTSTRAP version=$CT_KAFKA_VERSION"
    else echo "kafka: stopped"; exit 3; fi ;;
  bootstrap) echo "$CT_KAFKA_BOOTSTRAP" ;;
  *) echo "usage: $0 install|start|stop|status|bootstrap" >&2; exit 2 ;;
esac
