#!/usr/bin/env bash
# Apache Kafka for local tests and the quickstart: a single-node KRaft broker
# (broker + controller in one JVM) on 127.0.0.1, run from the jars of
# org.apache.kafka:kafka_2.13 resolved from Maven Central with `java -cp`.
#
# With CT_KAFKA_SASL_PORT set, a second client listener SASL_SSL on
# 127.0.0.1:$CT_KAFKA_SASL_PORT (SCRAM-SHA-512 or PLAIN, over TLS) is added:
# one user, the same password for both mechanisms. PLAIN is there because
# librdkafka before 2.6.1 (Debian's 2.0.2) cannot do SCRAM with Kafka 4.x
# brokers (a nonce bug, librdkafka#4895; docs/operations.md). A throwaway
# CA and broker certificate are made with openssl under $CT_LOCAL_DIR/kafka/tls
# and the SCRAM user is created when the storage is formatted. Inter-broker
# and controller traffic stay PLAINTEXT. `kafka.sh sasl-env` prints what a
# client needs (bootstrap, user, password, CA file).
#
# usage: kafka.sh install|start|stop|status|bootstrap|sasl-env
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

# make_tls: a CA and a broker certificate for 127.0.0.1/localhost (PEM), and
# the SCRAM user's password, kept with the data (never in the repository).
make_tls() {
  local d="$RUN/tls"
  mkdir -p "$d" && chmod 700 "$d"
  if [ ! -f "$d/broker-keystore.pem" ]; then
    command -v openssl >/dev/null || ct_die "openssl not found: needed for the SASL_SSL listener"
    ct_log "kafka: making a throwaway CA and broker certificate in $d"
    (
      cd "$d"
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=changetrail local test CA" \
        -keyout ca.key -out ca.pem
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >broker.ext
      openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile broker.ext -out broker.pem
      # Kafka's PEM keystore: an unencrypted PKCS#8 key followed by the chain.
      openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pk8
      cat broker.pk8 broker.pem ca.pem >broker-keystore.pem.tmp
      mv broker-keystore.pem.tmp broker-keystore.pem
    ) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; ct_die "kafka: could not make the TLS files"; }
  fi
  if [ ! -f "$d/sasl.password" ]; then
    printf '%s' "${CT_KAFKA_SASL_PASSWORD:-$(openssl rand -hex 16)}" >"$d/sasl.password"
  fi
}

write_config() {
  mkdir -p "$RUN/logs"
  local listeners="PLAINTEXT://127.0.0.1:${CT_KAFKA_PORT}" protomap="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ -n "$CT_KAFKA_SASL_PORT" ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:${CT_KAFKA_SASL_PORT}"
    protomap="$protomap,SASL_SSL:SASL_SSL"
  fi
  cat >"$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CT_KAFKA_CONTROLLER_PORT}
controller.listener.names=CONTROLLER
listeners=${listeners},CONTROLLER://127.0.0.1:${CT_KAFKA_CONTROLLER_PORT}
advertised.listeners=${listeners}
listener.security.protocol.map=${protomap}
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
  if [ -n "$CT_KAFKA_SASL_PORT" ]; then
    cat >>"$RUN/server.properties" <<PROPS
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${CT_KAFKA_SASL_USER}="$(cat "$RUN/tls/sasl.password")";
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$RUN/tls/broker-keystore.pem
listener.name.sasl_ssl.ssl.client.auth=none
PROPS
    chmod 600 "$RUN/server.properties"
  fi
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
  if [ -n "$CT_KAFKA_SASL_PORT" ]; then
    ct_port_open "$CT_KAFKA_SASL_PORT" && ct_die "kafka: port $CT_KAFKA_SASL_PORT is taken (set CT_KAFKA_SASL_PORT)"
    # The SCRAM user is written into the metadata log when it is formatted.
    [ ! -f "$RUN/data/meta.properties" ] || [ -f "$RUN/data/.scram-user" ] \
      || ct_die "kafka: $RUN/data was formatted without the SASL user; run \`services.sh clean\` once"
    make_tls
  fi
  install_jars
  write_config
  jvm_opts
  if [ ! -f "$RUN/data/meta.properties" ]; then
    local scram=()
    [ -z "$CT_KAFKA_SASL_PORT" ] \
      || scram=(--add-scram "SCRAM-SHA-512=[name=${CT_KAFKA_SASL_USER},password=$(cat "$RUN/tls/sasl.password")]")
    local cid
    cid=$(java "${JOPTS[@]}" -cp "$KH/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null \
      | grep -E '^[A-Za-z0-9_-]{22}$' | tail -n1)
    [ -n "$cid" ] || ct_die "kafka: could not generate a cluster id"
    java "${JOPTS[@]}" -cp "$KH/libs/*" kafka.tools.StorageTool format -t "$cid" \
      -c "$RUN/server.properties" "${scram[@]}" >"$RUN/logs/format.log" 2>&1 \
      || { cat "$RUN/logs/format.log" >&2; ct_die "kafka: storage format failed; log: $RUN/logs/format.log"; }
    [ -z "$CT_KAFKA_SASL_PORT" ] || echo "$CT_KAFKA_SASL_USER" >"$RUN/data/.scram-user"
  fi
  ct_log "kafka: starting $CT_KAFKA_VERSION on $CT_KAFKA_BOOTSTRAP (log: $LOG)"
  nohup java "${JOPTS[@]}" -cp "$KH/libs/*" kafka.Kafka "$RUN/server.properties" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  # In KRaft the client listener only accepts once the broker is unfenced, so
  # a TCP connect means ready.
  ct_wait_port kafka "$CT_KAFKA_PORT" "$PIDFILE" "$LOG" 120
  [ -z "$CT_KAFKA_SASL_PORT" ] || ct_wait_port kafka "$CT_KAFKA_SASL_PORT" "$PIDFILE" "$LOG" 30
  ct_log "kafka: ready${CT_KAFKA_SASL_PORT:+ (SASL_SSL on 127.0.0.1:$CT_KAFKA_SASL_PORT)}"
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
  sasl-env)
    if [ -n "$CT_KAFKA_SASL_PORT" ] && [ -f "$RUN/tls/sasl.password" ]; then
      echo "export CT_KAFKA_SASL_BOOTSTRAP=127.0.0.1:$CT_KAFKA_SASL_PORT"
      echo "export CT_KAFKA_SASL_USER=$CT_KAFKA_SASL_USER"
      echo "export CT_KAFKA_SASL_PASSWORD=$(cat "$RUN/tls/sasl.password")"
      echo "export CT_KAFKA_CA=$RUN/tls/ca.pem"
    fi ;;
  *) echo "usage: $0 install|start|stop|status|bootstrap|sasl-env" >&2; exit 2 ;;
esac
