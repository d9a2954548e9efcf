#!/usr/bin/env bash
# The main job on a fresh machine: installs dependencies, builds changetrail,
# starts a local Kafka and MongoDB server on 127.0.0.1, runs changetrail-consumer and
# the example inventory app, and prints what the CLI reads back. Re-runs add
# to the same topic and database (the listings are limited to this run with
# --since). The servers keep running afterwards; stop them with
#   deploy/local/services.sh down
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCT_BUILD_TESTS=OFF >/dev/null
ninja -C build/release
deploy/local/services.sh up
eval "$(deploy/local/services.sh env)"
BIN=build/release

echo
echo "== changetrail $("$BIN/cli/changetrail" --version | awk '{print $2}') on Kafka $CT_KAFKA_BOOTSTRAP and MongoDB $CT_MONGODB_URI"
deploy/local/services.sh status

# A structural diff of two versions of a demo document (the consumer computes
# the same diff for every change event it receives).
if "$BIN/cli/changetrail" diff --help >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  printf '%s\n' '{"sku":"A-1","name":"Widget","qty":10,"tags":["new"],"price":{"amount":9.5,"currency":"EUR"}}' >"$tmp/v1.json"
  printf '%s\n' '{"sku":"A-1","name":"Widget","qty":7,"tags":["new","sale"],"price":{"amount":8.0,"currency":"EUR"}}' >"$tmp/v2.json"
  echo
  echo "== changetrail diff v1.json v2.json"
  "$BIN/cli/changetrail" diff "$tmp/v1.json" "$tmp/v2.json"
  echo "== changetrail diff --format jsonpatch v1.json v2.json"
  "$BIN/cli/changetrail" diff --format jsonpatch "$tmp/v1.json" "$tmp/v2.json"
  rm -rf "$tmp"
fi

# The pipeline: the consumer in the background, the producer example, then the CLI.
CFG=build/quickstart-consumer.ini
DB=changetrail_quickstart
(umask 077 # the config holds the MongoDB URI
cat >"$CFG" <<EOF
[kafka]
bootstrap.servers = $CT_KAFKA_BOOTSTRAP
[mongodb]
uri = $CT_MONGODB_URI
database = $DB
[consumer]
topic = changetrail.events
group_id = changetrail-quickstart
batch_ms = 50
# contexts and states are written every state_flush_ms (default 2000): short for the demo
state_flush_ms = 200
log_level = warn
[http]
listen =
EOF
)
CLI="$BIN/cli/changetrail --config $CFG"
echo
echo "== changetrail-consumer in the background (config $CFG, database $DB)"
"$BIN/consumer/changetrail-consumer" --config "$CFG" &
CONSUMER=$!
trap 'kill -TERM $CONSUMER 2>/dev/null || true; wait $CONSUMER 2>/dev/null || true' EXIT

echo "== producer/examples/inventory: requests by alice, bob and admin emit changes to Kafka"
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"$BIN/producer/examples/inventory" "$CT_KAFKA_BOOTSTRAP" changetrail.events

# Wait until the consumer has persisted this run: the example's last change
# (sku-2 deleted by alice) is in the history.
for _ in $(seq 1 150); do
  if $CLI log products sku-2 --since "$since" --json 2>/dev/null | grep -q '"op":"delete"'; then break; fi
  sleep 0.2
done

echo
echo "== changetrail log products sku-1 --since $since"
$CLI log products sku-1 --since "$since"
echo
echo "== changetrail show products sku-1 --version 1"
$CLI show products sku-1 --version 1
ctx=$($CLI actor bob --since "$since" --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[-1]["context_id"] if r else "")')
echo
echo "== changetrail context $ctx   (bob's PATCH /products/sku-1)"
[ -z "$ctx" ] || $CLI context "$ctx"
echo
echo "== changetrail actor alice --since $since"
$CLI actor alice --since "$since"

kill -TERM "$CONSUMER"
wait "$CONSUMER" || true
trap - EXIT
echo
echo "Consumer stopped. Servers are still running: deploy/local/services.sh status | down"
echo "More: $CLI verify  |  $CLI blame products sku-1  |  $CLI serve (http://127.0.0.1:8080/)  |  $CLI --help"
