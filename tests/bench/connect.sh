#!/usr/bin/env bash
# Kafka Connect for the side-by-side benchmark (tests/bench/side_by_side.py):
# resolves connect-runtime (the broker's Kafka version) and the MongoDB sink
# connector (org.mongodb.kafka:mongo-kafka-connect) from Maven Central with
# the pom beside this script, into $CT_CACHE_DIR/connect/, and prints the
# directory of the jars (for `java -cp "DIR/*"`). The worker itself is
# started by side_by_side.py (ConnectStandalone, 127.0.0.1 only).
#
# usage: connect.sh install
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../../deploy/local/env.sh"

POM="$HERE/connect/pom.xml"
CONNECTOR=$(sed -n 's|.*<mongo.connector.version>\(.*\)</mongo.connector.version>.*|\1|p' "$POM")
CH="$CT_CACHE_DIR/connect/$CT_KAFKA_VERSION-$CONNECTOR"

case "${1:-}" in
  install)
    if [ ! -f "$CH/.complete" ]; then
      command -v mvn >/dev/null || ct_die "mvn not found: Maven is needed to resolve Kafka Connect"
      ct_log "connect: resolving connect-runtime $CT_KAFKA_VERSION + mongo-kafka-connect $CONNECTOR into $CH"
      rm -rf "$CH" && mkdir -p "$CH"
      sed "s|<kafka.version>[^<]*</kafka.version>|<kafka.version>$CT_KAFKA_VERSION</kafka.version>|" "$POM" >"$CH/pom.xml"
      (cd "$CH" && mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="$CH/libs") >"$CH/mvn.log" 2>&1 \
        || { tail -n 30 "$CH/mvn.log" >&2; ct_die "connect: Maven could not resolve the jars; log: $CH/mvn.log"; }
      ls "$CH/libs"/connect-runtime-*.jar "$CH/libs"/mongo-kafka-connect-*.jar >/dev/null \
        || ct_die "connect: connect-runtime or mongo-kafka-connect missing from $CH/libs"
      touch "$CH/.complete"
    fi
    echo "$CH/libs" ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
