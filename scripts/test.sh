#!/usr/bin/env bash
# Runs every test of changetrail on a fresh Debian machine, from nothing:
#   1. installs the build/test dependencies (scripts/install-deps.sh)
#   2. makes a Python venv with tests/requirements.txt (cached)
#   3. builds with -Werror and runs unit, mock-cluster and integration tests
#      against a real Kafka and MongoDB server (mongo-java-server) that it starts
#      on 127.0.0.1 and stops,
#      and the reliability suite's short run (scripts/reliability.sh --short,
#      its own servers on other ports; docs/reliability.md)
#   4. rebuilds with ASan+UBSan and runs the same tests again
#   5. runs the unit tests under valgrind
#   6. runs every libFuzzer target for a short fixed time
# Exit status is non-zero when anything fails. Server logs of a failed run
# are kept and their path printed.
#
# usage: scripts/test.sh [--quick]     --quick: step 3 only
#   CT_TEST_KAFKA_PORT, CT_TEST_KAFKA_CONTROLLER_PORT, CT_TEST_MONGODB_PORT,
#   CT_TEST_LOCAL_DIR  the test servers; CT_TEST_REL_KAFKA_PORT,
#   CT_TEST_REL_KAFKA_CONTROLLER_PORT, CT_TEST_REL_MONGODB_PORT the
#   reliability suite's (39092, 39093, 39017)
#   CT_FUZZ_SECONDS (default 20) time per fuzz target
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
FUZZ_SECONDS=${CT_FUZZ_SECONDS:-20}
T0=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

step "dependencies"
bash scripts/install-deps.sh

step "python venv (tests/requirements.txt)"
CT_CACHE_DIR=${CT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/changetrail}
REQ_KEY=$(sha256sum tests/requirements.txt | cut -c1-12)
VENV="$CT_CACHE_DIR/venv-$REQ_KEY"
# Built in place (console scripts embed the venv's path in their shebang, so
# it cannot be moved); .complete marks a venv whose install finished.
if [ ! -f "$VENV/.complete" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/requirements.txt
  touch "$VENV/.complete"
fi
export CT_PYTHON="$VENV/bin/python"
"$CT_PYTHON" -c 'import sys; print("python", sys.version.split()[0])'

# Our own ports and data directory, so a quickstart running beside us is untouched.
export CT_KAFKA_PORT=${CT_TEST_KAFKA_PORT:-29092}
export CT_KAFKA_CONTROLLER_PORT=${CT_TEST_KAFKA_CONTROLLER_PORT:-29093}
# The SASL_SSL listener (TLS + SCRAM/PLAIN) that tests/integration/test_kafka_sasl.c uses.
export CT_KAFKA_SASL_PORT=${CT_TEST_KAFKA_SASL_PORT:-29094}
export CT_MONGODB_PORT=${CT_TEST_MONGODB_PORT:-47017}
export CT_LOCAL_DIR=${CT_TEST_LOCAL_DIR:-/tmp/changetrail-test-$$}
export CT_TEST_REQUIRE_SERVERS=1
# The reliability suite's short run (ctest label `reliability`) starts and
# restarts servers of its own, on these ports.
export CT_REL_KAFKA_PORT=${CT_TEST_REL_KAFKA_PORT:-39092}
export CT_REL_KAFKA_CONTROLLER_PORT=${CT_TEST_REL_KAFKA_CONTROLLER_PORT:-39093}
export CT_REL_MONGODB_PORT=${CT_TEST_REL_MONGODB_PORT:-39017}
export CT_REL_LOCAL_DIR=${CT_LOCAL_DIR}-reliability

# A second broker, Kafka 3.9.1, for SCRAM-SHA-512 over TLS: Debian's librdkafka
# 2.0.2 sends a SCRAM nonce that Kafka 4.x refuses (librdkafka#4895, fixed in
# 2.6.1) and 3.9 accepts. Only its SASL_SSL listener is used.
SCRAM_ENV=(CT_KAFKA_VERSION=3.9.1 CT_KAFKA_PORT="${CT_TEST_SCRAM_KAFKA_PORT:-29192}"
  CT_KAFKA_CONTROLLER_PORT="${CT_TEST_SCRAM_KAFKA_CONTROLLER_PORT:-29193}"
  CT_KAFKA_SASL_PORT="${CT_TEST_SCRAM_KAFKA_SASL_PORT:-29194}" CT_LOCAL_DIR="$CT_LOCAL_DIR/scram")

cleanup() {
  local rc=$?
  env "${SCRAM_ENV[@]}" deploy/local/kafka.sh stop >/dev/null 2>&1 || true
  deploy/local/services.sh down >/dev/null 2>&1 || true
  if [ "$rc" -eq 0 ]; then
    rm -rf "$CT_LOCAL_DIR"
  else
    echo "test.sh: FAILED (exit $rc); server logs kept under $CT_LOCAL_DIR" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "local servers (Kafka, MongoDB)"
deploy/local/services.sh up
eval "$(deploy/local/services.sh env)"

run_ctest() { # build-dir [ctest args...]
  local dir=$1; shift
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j2 "$@")
}

step "build (-Werror)"
cmake -S . -B build/ci -G Ninja -DCT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCT_PYTHON="$CT_PYTHON" >/dev/null
ninja -C build/ci

step "tests"
run_ctest build/ci

step "SCRAM-SHA-512 over TLS (Kafka 3.9.1 beside, test_kafka_sasl again)"
env "${SCRAM_ENV[@]}" deploy/local/kafka.sh start
(eval "$(env "${SCRAM_ENV[@]}" deploy/local/kafka.sh sasl-env)" &&
  cd build/ci && CT_KAFKA_BOOTSTRAP="127.0.0.1:${CT_TEST_SCRAM_KAFKA_PORT:-29192}" \
    CT_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 CT_BINARY_DIR="$PWD" CT_SOURCE_DIR="$ROOT" ./tests/test_kafka_sasl)
env "${SCRAM_ENV[@]}" deploy/local/kafka.sh stop

if [ "$QUICK" -eq 1 ]; then
  step "done (quick)"
  exit 0
fi

step "build (ASan+UBSan)"
cmake -S . -B build/asan -G Ninja -DCT_WERROR=ON -DCT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCT_BUILD_BENCH=OFF -DCT_PYTHON="$CT_PYTHON" >/dev/null
ninja -C build/asan

step "tests under ASan+UBSan"
# The reliability suite ran once above (it measures the pipeline; under the
# sanitizers it would only be slower).
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest build/asan -LE reliability

step "unit tests under valgrind"
fails=0
# Listed once: `ctest | grep -q` under pipefail fails at random (SIGPIPE).
unit_tests=$(cd build/ci && ctest -N -L unit | sed -n 's/^ *Test *#[0-9]*: //p')
for t in build/ci/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  grep -qx "$name" <<<"$unit_tests" || continue
  # The same environment ctest gives the test (tests/CMakeLists.txt).
  if CT_SOURCE_DIR="$ROOT" CT_BINARY_DIR="$ROOT/build/ci" valgrind -q --error-exitcode=99 --leak-check=full \
       --errors-for-leak-kinds=definite "$t" >"build/ci/valgrind-$name.log" 2>&1; then
    echo "valgrind: $name clean"
  else
    echo "valgrind: $name FAILED (build/ci/valgrind-$name.log)"; tail -n 30 "build/ci/valgrind-$name.log"; fails=1
  fi
done
[ "$fails" -eq 0 ] || exit 1

step "fuzz targets (${FUZZ_SECONDS}s each)"
CC=clang cmake -S . -B build/fuzz -G Ninja -DCT_FUZZ=ON -DCT_BUILD_TESTS=ON -DCT_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS='-fsanitize=fuzzer-no-link,address,undefined' >/dev/null
ninja -C build/fuzz $(cd build/fuzz && ninja -t targets all | grep -oE '^fuzz_[a-z_]+' | sort -u) >build/fuzz/build.log 2>&1 ||
  { grep -E -A5 'error|FAILED' build/fuzz/build.log | head -n 40; echo "fuzz: build failed (build/fuzz/build.log)"; exit 1; }
nfuzz=0
for f in build/fuzz/tests/fuzz_*; do
  [ -x "$f" ] || continue
  name=${f##*/fuzz_}
  work="build/fuzz/corpus-$name"; rm -rf "$work"; mkdir -p "$work"
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
  if "$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="build/fuzz/$name-" "$work" >"build/fuzz/$name.log" 2>&1; then
    echo "fuzz: $name ok ($(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "build/fuzz/$name.log" | grep -oE '[0-9]+$') runs)"
    nfuzz=$((nfuzz + 1))
  else
    echo "fuzz: $name FOUND A CRASH"; tail -n 40 "build/fuzz/$name.log"; exit 1
  fi
done
echo "fuzz: $nfuzz targets ran clean"

step "all tests passed"
