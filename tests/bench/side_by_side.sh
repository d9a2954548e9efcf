#!/usr/bin/env bash
# One command for the side-by-side benchmark of issue #7 (changetrail, the
# Python peer, Kafka Connect + MongoDB sink; tests/bench/side_by_side.py):
# starts the local Kafka and MongoDB (mongo-java-server) on 127.0.0.1 (its own ports and data
# directory unless told otherwise; stopped again at the end if it started
# them), makes the tests' Python venv (tests/requirements.txt), builds the
# consumer and the CLI, resolves Kafka Connect, then runs the driver with the
# arguments given (--smoke: tiny sizes, < 2 minutes; --help: all options).
#
# usage: tests/bench/side_by_side.sh [--smoke] [side_by_side.py options...]
#   CT_BENCH_BUILD_DIR (default build/bench) where changetrail is built
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export CT_KAFKA_PORT=${CT_KAFKA_PORT:-31092} CT_KAFKA_CONTROLLER_PORT=${CT_KAFKA_CONTROLLER_PORT:-31093}
# CT_FERRETDB_PORT: the old name of CT_MONGODB_PORT, still honoured as deploy/local/env.sh does
export CT_MONGODB_PORT=${CT_MONGODB_PORT:-${CT_FERRETDB_PORT:-31017}} CT_LOCAL_DIR=${CT_LOCAL_DIR:-/tmp/ct-bench-local}
. deploy/local/env.sh
BUILD=${CT_BENCH_BUILD_DIR:-$ROOT/build/bench}

REQ_KEY=$(sha256sum tests/requirements.txt | cut -c1-12)
VENV="$CT_CACHE_DIR/venv-$REQ_KEY"     # the same venv scripts/test.sh makes
if [ ! -f "$VENV/.complete" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/requirements.txt
  touch "$VENV/.complete"
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCT_BUILD_BENCH=OFF >/dev/null
fi
ninja -C "$BUILD" changetrail-consumer changetrail-cli >/dev/null

CT_CONNECT_LIBS=$(tests/bench/connect.sh install)
export CT_CONNECT_LIBS

started=0
if ! deploy/local/services.sh status >/dev/null 2>&1; then
  deploy/local/services.sh up
  started=1
fi
cleanup() {
  local rc=$?
  [ "$started" -eq 1 ] && deploy/local/services.sh down >/dev/null 2>&1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
eval "$(deploy/local/services.sh env)"
"$VENV/bin/python" tests/bench/side_by_side.py --build-dir "$BUILD" "$@"
