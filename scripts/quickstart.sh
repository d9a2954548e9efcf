#!/usr/bin/env bash
# The main job on a fresh machine: installs dependencies, builds changetrail,
# starts a local Kafka and FerretDB on 127.0.0.1, and runs the pipeline as far
# as it exists today. The servers keep running afterwards; stop them with
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
echo "== changetrail $("$BIN/cli/changetrail" --version | awk '{print $2}') on Kafka $CT_KAFKA_BOOTSTRAP and FerretDB $CT_MONGODB_URI"
deploy/local/services.sh status

# Today: a structural diff of two versions of a demo document (the consumer
# computes the same diff for every change event it receives).
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

# The producer example: an inventory app whose requests emit change events.
echo
echo "== producer/examples/inventory: requests by alice, bob and admin emit changes to Kafka"
"$BIN/producer/examples/inventory" "$CT_KAFKA_BOOTSTRAP" changetrail.events
echo "== the last events on topic changetrail.events (key, then body)"
kcat -b "$CT_KAFKA_BOOTSTRAP" -t changetrail.events -C -e -o -3 -q -f '%k %s\n' 2>/dev/null | cut -c1-240 || true

echo
echo "Servers are still running: deploy/local/services.sh status | down"
