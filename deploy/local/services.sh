#!/usr/bin/env bash
# Starts, stops and reports both local servers (Kafka and MongoDB) at once.
#
# usage: services.sh up|down|status|env|clean
#   env    prints `export` lines for CT_KAFKA_BOOTSTRAP and CT_MONGODB_URI (and,
#          with CT_KAFKA_SASL_PORT, CT_KAFKA_SASL_BOOTSTRAP/_USER/_PASSWORD, CT_KAFKA_CA)
#   clean  stops both and deletes their data (caches are kept)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/env.sh"

case "${1:-}" in
  up)
    # Build/resolve both first so a slow first install does not leave one server idling.
    "$HERE/kafka.sh" install
    "$HERE/mongodb.sh" install
    "$HERE/kafka.sh" start
    "$HERE/mongodb.sh" start ;;
  down)
    rc=0
    "$HERE/mongodb.sh" stop || rc=1
    "$HERE/kafka.sh" stop || rc=1
    exit $rc ;;
  status)
    rc=0
    "$HERE/kafka.sh" status || rc=3
    "$HERE/mongodb.sh" status || rc=3
    exit $rc ;;
  env)
    echo "export CT_KAFKA_BOOTSTRAP=$CT_KAFKA_BOOTSTRAP"
    echo "export CT_MONGODB_URI=$CT_MONGODB_URI"
    "$HERE/kafka.sh" sasl-env ;;
  clean)
    "$0" down
    rm -rf "${CT_LOCAL_DIR:?}/kafka" "${CT_LOCAL_DIR:?}/mongodb"
    ct_log "services: data under $CT_LOCAL_DIR removed" ;;
  *) echo "usage: $0 up|down|status|env|clean" >&2; exit 2 ;;
esac
