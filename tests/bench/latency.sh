#!/usr/bin/env bash
# Emit-to-readable latency (issue #18): N events of a given size at a fixed
# rate through libchangetrail's producer, the local Kafka, changetrail-consumer
# and the local MongoDB server, with the broker's own produce-to-consume time
# measured in the same run (tests/bench/bench_latency.c says how).
#
# usage: tests/bench/latency.sh [events] [doc_bytes] [rate_per_s] [warmup]
#        (defaults 5000 1024 1000 200)
# Uses the local servers when they run (deploy/local/services.sh status with
# the CT_* variables of deploy/local/env.sh), else starts them in their own
# directory and ports and stops them at the end.
#   CT_BENCH_BUILD_DIR  where changetrail is built (default build/bench)
#   CT_LATENCY_CONSUMER_BINARY_DIR  another build's consumer to measure (e.g.
#                       main's, for a before/after); default the build above
#   CT_LATENCY_CONSUMER_EXTRA, CT_LATENCY_KAFKA_EXTRA, CT_LATENCY_POLL_US,
#   CT_LATENCY_PRODUCER_KAFKA, CT_LATENCY_KEEP_LOG, CT_LATENCY_KEEP_DB: see bench_latency.c
# Last line: latency p50_ms=.. p99_ms=.. floor_p99_ms=..
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
if ! { [ -n "${CT_KAFKA_PORT:-}" ] || [ -n "${CT_LOCAL_DIR:-}" ]; }; then
  # nothing said: ports of our own, clear of the tests' and the other benches'
  export CT_KAFKA_PORT=32092 CT_KAFKA_CONTROLLER_PORT=32093 CT_MONGODB_PORT=32017
  export CT_LOCAL_DIR=/tmp/ct-bench-latency
fi
. deploy/local/env.sh
BUILD=${CT_BENCH_BUILD_DIR:-$ROOT/build/bench}

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
ninja -C "$BUILD" changetrail-consumer bench_latency >/dev/null

started=0
if ! deploy/local/services.sh status >/dev/null 2>&1; then
  deploy/local/services.sh up
  started=1
fi
cleanup() {
  local rc=$?
  if [ "$started" -eq 1 ]; then deploy/local/services.sh down >/dev/null 2>&1 || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
eval "$(deploy/local/services.sh env)"
CT_BINARY_DIR=${CT_LATENCY_CONSUMER_BINARY_DIR:-$BUILD} "$BUILD/tests/bench_latency" "$@"
