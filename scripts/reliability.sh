#!/usr/bin/env bash
# The reliability suite (GitHub issue #6, docs/reliability.md): the whole
# pipeline (libchangetrail -> Kafka -> changetrail-consumer -> MongoDB) under
# crashes, outages and poison, against real servers that this script starts
# on its own ports and restarts on purpose.
#
# Every scenario sends the same deterministic event stream (tests/reliability/
# ct_loadgen.c: several application threads, one producer, fixed seed) to its
# own topic and database, through 3 consumer workers in one group, then:
#   - exports history and state canonically (tests/reliability/ct_export.c,
#     `kafka` provenance and `last_offset` left out: they are Kafka coordinates,
#     not part of the hash) and compares it byte for byte with the golden run's;
#     lost = golden records missing, duplicated = records the golden run lacks;
#   - runs `changetrail verify` (every hash and chain);
#   - reads the dead-letter topic: empty, or exactly the bad poison messages.
# Scenarios: golden; kill -9 of random workers at random moments (some armed to
# die between the MongoDB write and the offset commit, CT_TEST_CRASH_AFTER_WRITE)
# plus graceful stops (rebalances with batches in flight); the broker stopped
# and restarted while the application keeps emitting (producer and consumers
# cut off); the MongoDB server stopped and restarted; a worker stalled (SIGSTOP)
# past the session timeout; poison mixed into the stream; and (issue 16) the
# topic deleted and re-created between the two halves of the stream while the
# workers run (offsets go back), event ids re-used with other content (to the
# DLQ with EREUSED), refused messages around the 1 MiB limits (whole or as
# stubs in a DLQ of the broker's defaults; no crash loop).
# Results: one JSON line per scenario in RESULTS/results.jsonl and a Markdown
# table in RESULTS/reliability.md; a full run also writes docs/reliability.md
# and docs/reliability.jsonl (the raw lines).
#
# usage: scripts/reliability.sh [--short] [--build-dir DIR] [--results DIR] [--no-doc]
#   --short      5k events, 3 kills, one broker and one MongoDB restart, 1k
#                poison, 48 re-used ids, 8 oversized (CI, ctest label
#                `reliability`); default: 30k events, 12 kills, 35 s broker
#                outage, 3k poison, 150 re-used ids, 24 oversized
#   --build-dir  where changetrail-consumer, changetrail, ct_loadgen and
#                ct_export are built (default: builds them into build/reliability)
#   CT_REL_KAFKA_PORT, CT_REL_KAFKA_CONTROLLER_PORT, CT_REL_MONGODB_PORT,
#   CT_REL_LOCAL_DIR   the servers' ports and data (39092, 39093, 39017,
#                      /tmp/ct-reliability-PID); CT_REL_SEED (default 1)
#   CT_REL_ONLY        comma-separated scenario names: only those (and golden,
#                      the reference); docs/ is not written then. A scenario
#                      in OPT_IN (below; none today) runs only when named here.
# Exit: 0 every scenario passed, 1 one failed, 77 servers cannot be installed
# here (skipped; a failure with CT_TEST_REQUIRE_SERVERS=1).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SHORT=0 BUILD= RESULTS= WRITE_DOC=1
while [ $# -gt 0 ]; do
  case "$1" in
    --short) SHORT=1 ;;
    --build-dir) BUILD=$2; shift ;;
    --results) RESULTS=$2; shift ;;
    --no-doc) WRITE_DOC=0 ;;
    *) echo "usage: $0 [--short] [--build-dir DIR] [--results DIR] [--no-doc]" >&2; exit 2 ;;
  esac
  shift
done

if [ "$SHORT" -eq 1 ]; then
  MODE=short EVENTS=5000 POISON=1000 KILLS=3 OUTAGE_S=10 MONGO_DOWN_S=5 STALL_S=10 RATE=500 QUEUE_MAX=1000 BASE_RATE=1000
  REUSE=48 BIG=8
  KILL_GAP=(1 3) DRAIN_LIMIT=240
  # consumer-kill emits slower in the short run: the workers keep up with
  # 1000 ev/s, and a worker armed at kill 1 must still find events when it
  # is back in the group (about 5 s later) to die after its write
  KILL_RATE=250 KILL_NOTE="; the app emits at 250 ev/s here so that events still flow when the armed worker is back"
else
  # 30k events, not 100k: the local MongoDB server (mongo-java-server 1.47,
  # H2) answers a find with every match in one reply, and 100k history
  # records make a 100 MB reply, over the 48 MB a wire message may have
  # (`changetrail verify` fails); its H2 store also loses long scans after
  # heavy writes ("Chunk N not found"). FerretDB served 100k.
  MODE=full EVENTS=30000 POISON=3000 KILLS=12 OUTAGE_S=35 MONGO_DOWN_S=15 STALL_S=15 RATE=1500 QUEUE_MAX=10000 BASE_RATE=2500
  REUSE=150 BIG=24
  KILL_GAP=(2 7) DRAIN_LIMIT=1200
  # the kills last about a minute: the app emits for that long
  KILL_RATE=500 KILL_NOTE="; the app emits at 500 ev/s here so that events flow during all the kills"
fi
THREADS=4 WORKERS=3 SEED=${CT_REL_SEED:-1}
# CT_REL_ONLY=name,name: only these scenarios (golden always runs: it is the reference); no docs then
ONLY=${CT_REL_ONLY:-}
# Scenarios that lose events on today's consumer (a known loss, reported with
# its issue): run only when CT_REL_ONLY names them, so that the suite stays a
# regression test meanwhile; each one fails until the consumer is fixed.
# topic-recreated-stalled was one until the consumer fenced itself on SIGCONT.
OPT_IN=","
[ -z "$ONLY" ] || WRITE_DOC=0
RESULTS=${RESULTS:-$ROOT/build/reliability-$MODE}
RESULTS=$(mkdir -p "$RESULTS" && cd "$RESULTS" && pwd)
T0=$(date +%s)
say() { printf '%s [%4ss] %s\n' "$(date -u +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*" >&2; }

need_servers() { # a machine without the servers' toolchains skips, unless servers are required
  if [ "${CT_TEST_REQUIRE_SERVERS:-0}" = 1 ]; then echo "reliability: $*" >&2; exit 1; fi
  echo "SKIP: reliability: $*" >&2; exit 77
}
command -v javac >/dev/null && command -v mvn >/dev/null || need_servers "a JDK and Maven are needed for the local servers"
command -v jq >/dev/null || need_servers "jq is needed"

# ---- binaries ----
if [ -z "$BUILD" ]; then
  BUILD=$ROOT/build/reliability
  cmake -S . -B "$BUILD" -G Ninja -DCT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCT_BUILD_BENCH=OFF >/dev/null
  ninja -C "$BUILD" -j2 changetrail-consumer changetrail-cli ct_loadgen ct_export >/dev/null
fi
CONSUMER=$BUILD/consumer/changetrail-consumer CLI=$BUILD/cli/changetrail
LOADGEN=$BUILD/tests/ct_loadgen EXPORT=$BUILD/tests/ct_export
for b in "$CONSUMER" "$CLI" "$LOADGEN" "$EXPORT"; do [ -x "$b" ] || { echo "reliability: $b not built" >&2; exit 1; }; done

# ---- servers: our own ports and data ----
export CT_KAFKA_PORT=${CT_REL_KAFKA_PORT:-39092}
export CT_KAFKA_CONTROLLER_PORT=${CT_REL_KAFKA_CONTROLLER_PORT:-39093}
export CT_MONGODB_PORT=${CT_REL_MONGODB_PORT:-${CT_REL_FERRETDB_PORT:-39017}}
export CT_LOCAL_DIR=${CT_REL_LOCAL_DIR:-/tmp/ct-reliability-$$}
# No SASL listener here: one inherited from scripts/test.sh would be its port, already taken.
unset CT_KAFKA_SASL_PORT
BOOT=127.0.0.1:$CT_KAFKA_PORT URI=mongodb://127.0.0.1:$CT_MONGODB_PORT/

SUPERVISORS=()
cleanup() {
  local rc=$?
  touch "$RESULTS/stop" 2>/dev/null || true
  for s in "${SUPERVISORS[@]}"; do kill "$s" 2>/dev/null || true; done
  for f in "$RESULTS"/run-*/worker*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done
  deploy/local/services.sh down >/dev/null 2>&1 || true
  if [ "$rc" -eq 0 ]; then rm -rf "$CT_LOCAL_DIR"; else echo "reliability: exit $rc; server logs kept under $CT_LOCAL_DIR, runs under $RESULTS" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "servers: kafka $BOOT, mongodb $URI (data $CT_LOCAL_DIR)"
deploy/local/services.sh up >"$RESULTS/services.log" 2>&1 || { tail -n 20 "$RESULTS/services.log" >&2; need_servers "the local servers did not start"; }
: >"$RESULTS/results.jsonl"

# ---- helpers ----
mongo_ok() { timeout 20 "$EXPORT" --uri "$URI" --db ct_rel_ping --out /dev/null >/dev/null 2>&1; }
OPERATOR=""   # operator actions taken in the current scenario (reported in the table)

# A MongoDB server that stops answering is restarted, as an operator would;
# the scenario's row says so.
ensure_mongo() {
  mongo_ok && return 0
  say "mongodb does not answer: restarting it (operator action)"
  OPERATOR="${OPERATOR:+$OPERATOR; }MongoDB server restarted after it stopped answering"
  deploy/local/mongodb.sh stop >>"$RESULTS/services.log" 2>&1 || true
  deploy/local/mongodb.sh start >>"$RESULTS/services.log" 2>&1
  mongo_ok
}

# MAX_EVENT_BYTES: the consumer's max_event_bytes (empty: its default, 1 MiB)
MAX_EVENT_BYTES=65536
write_config() { # run-dir topic db
  local maxev=
  [ -z "$MAX_EVENT_BYTES" ] || maxev="max_event_bytes = $MAX_EVENT_BYTES"
  cat >"$1/consumer.ini" <<INI
[kafka]
bootstrap.servers = $BOOT
session.timeout.ms = ${SESSION_MS:-6000}
topic.metadata.refresh.interval.ms = 2000
[mongodb]
uri = $URI
database = $3
[consumer]
topic = $2
dlq_topic = $2.dlq
group_id = g-$2
batch_size = 500
batch_ms = 100
$maxev
shutdown_timeout_ms = 15000
log_level = info
[http]
listen =
INI
}

# supervise RUN SLOT: runs worker SLOT until RUN/stop exists, restarting it
# whenever it dies. A file RUN/crash.SLOT arms the next start with the
# write-then-crash hook (its content: after how many batches).
supervise() {
  local run=$1 slot=$2 crash rc
  while [ ! -f "$run/stop" ]; do
    crash=
    if [ -f "$run/crash.$slot" ]; then crash=$(cat "$run/crash.$slot"); rm -f "$run/crash.$slot"; fi
    if [ -n "$crash" ]; then
      touch "$run/armed.$slot"
      CT_TEST_CRASH_AFTER_WRITE=$crash "$CONSUMER" --config "$run/consumer.ini" >>"$run/worker$slot.log" 2>&1 &
    else
      "$CONSUMER" --config "$run/consumer.ini" >>"$run/worker$slot.log" 2>&1 &
    fi
    echo $! >"$run/worker$slot.pid"
    rc=0; wait $! || rc=$?
    rm -f "$run/armed.$slot"
    echo "$(date +%s) slot=$slot rc=$rc crash_hook=${crash:-0}" >>"$run/exits"
    [ -f "$run/stop" ] || sleep 0.3
  done
}

start_workers() { # run
  local slot
  rm -f "$1/stop"
  for ((slot = 1; slot <= WORKERS; slot++)); do
    supervise "$1" "$slot" &
    SUPERVISORS+=($!)
  done
}

# Stops the supervised workers gracefully, then drains what is left with one
# worker that exits when idle; fails when that takes longer than DRAIN_LIMIT.
finish_workers() { # run
  local run=$1 slot s
  touch "$run/stop"
  echo "finish" >>"$run/exits"
  for ((slot = 1; slot <= WORKERS; slot++)); do kill -TERM "$(cat "$run/worker$slot.pid")" 2>/dev/null || true; done
  for s in "${SUPERVISORS[@]}"; do wait "$s" 2>/dev/null || true; done
  SUPERVISORS=()
  local rc=0
  CHANGETRAIL_CONSUMER_EXIT_ON_IDLE_MS=6000 timeout "$DRAIN_LIMIT" "$CONSUMER" --config "$run/consumer.ini" \
    >>"$run/drain.log" 2>&1 || rc=$?
  return $rc
}

progress() { # run: history records written so far, from the workers' logs
  cat "$1"/worker*.log 2>/dev/null | grep -o ' history=[0-9]*' | cut -d= -f2 | awk '{s+=$1} END {print s+0}'
}

worker_kill() { # run slot signal
  local pid
  pid=$(cat "$1/worker$2.pid" 2>/dev/null) || return 0
  kill "-$3" "$pid" 2>/dev/null || true
}

# export_retry NAME OUT_JSON EXPORT_ARGS...: ct_export, tried again twice
# (15 s apart) on a server error (exit 3): the local server's H2 store can
# lose a long scan right after heavy writes. Its stderr goes to export.log.
export_retry() {
  local name=$1 out=$2 try rc; shift 2
  for try in 1 2 3; do
    rc=0
    "$EXPORT" "$@" >"$out" 2>>"$(dirname "$out")/export.log" || rc=$?
    [ "$rc" -eq 3 ] || return "$rc"
    say "$name: export: server error (try $try), again in 15 s"; sleep 15
  done
  return "$rc"
}

GOLDEN=""        # export file of the golden run
GOLDEN_RECORDS=0
SCEN_N=0

# run_scenario NAME "WHAT" CHAOS_FUNCTION LOADGEN_ARGS...
run_scenario() {
  local name=$1 what=$2 chaos=$3; shift 3
  if [ -n "$ONLY" ] && [ "$name" != golden ] && [[ ",$ONLY," != *",$name,"* ]]; then return 0; fi
  if [[ "$OPT_IN" == *",$name,"* ]] && [[ ",$ONLY," != *",$name,"* ]]; then return 0; fi
  SCEN_N=$((SCEN_N + 1))
  local run="$RESULTS/run-$SCEN_N-$name" id
  id="rel-$name-$$-$(date +%s)"
  local topic=$id db=${id//-/_}
  rm -rf "$run"; mkdir -p "$run"
  OPERATOR=""
  ensure_mongo || { say "$name: the MongoDB server does not answer even after a restart"; return 1; }
  write_config "$run" "$topic" "$db"
  say "$name: topic $topic, database $db"
  local t_start; t_start=$(date +%s)
  local poison=0 reuse=0 side=
  for a in "$@"; do
    [ "$a" = --poison ] && poison=1 && side=poison_ok
    [ "$a" = --reuse ] && reuse=1 && side=reuse_ok
  done
  # the producer creates the topic; workers start once it exists
  # The application emits at BASE_RATE (faster than the workers consume, so
  # they lag and every fault hits a busy pipeline) with a spool, as
  # docs/producer.md advises: when librdkafka's queue is full, events wait in
  # the spool instead of failing. A scenario's own arguments come last and win.
  "$LOADGEN" produce --bootstrap "$BOOT" --topic "$topic" --events "$EVENTS" --threads "$THREADS" --seed "$SEED" \
    --rate "$BASE_RATE" --spool "$run/producer.spool" --sent-log "$run/sent.jsonl" --reuse-docs "$run/reuse_docs.jsonl" \
    "$@" >"$run/loadgen.json" 2>"$run/loadgen.log" &
  local lg=$!
  sleep 2
  start_workers "$run"
  $chaos "$run" "$lg"
  local lg_rc=0; wait "$lg" || lg_rc=$?
  if [ -f "$run/loadgen2.json" ]; then
    # a second part (topic-recreated): the figures of both
    local lg2_rc; lg2_rc=$(cat "$run/loadgen2.rc" 2>/dev/null || echo 1)
    [ "$lg2_rc" -eq 0 ] || lg_rc=$lg2_rc
    jq -cs '.[0] as $a | .[1] as $b | $a + (["events","records_expected","context_markers","emitted","delivered","failed","rejected","spooled","spool_replayed"]
           | map({key: ., value: (($a[.] // 0) + ($b[.] // 0))}) | from_entries) + {parts: [$a, $b]}' \
      "$run/loadgen.json" "$run/loadgen2.json" >"$run/loadgen.both.json" && mv "$run/loadgen.both.json" "$run/loadgen.json" || lg_rc=1
  fi
  say "$name: load generator done (exit $lg_rc): $(jq -c '{emitted,delivered,spooled,spool_replayed,emit_s,total_s}' "$run/loadgen.json" 2>/dev/null)"
  local drain_rc=0
  finish_workers "$run" || drain_rc=$?
  if [ "$drain_rc" -ne 0 ]; then
    say "$name: drain worker exit $drain_rc"
    if ! mongo_ok; then ensure_mongo; drain_rc=0; finish_workers "$run" || drain_rc=$?; fi
  fi
  local t_end; t_end=$(date +%s)
  # ---- checks ----
  local export_args=(--uri "$URI" --db "$db" --out "$run/export.txt")
  if [ "$poison" = 1 ]; then
    export_retry "$name" "$run/export-side.json" "${export_args[@]}" --only-collection poison_ok --out "$run/poison_ok.txt" \
      --expect-docs "$run/expect.jsonl" || true
  elif [ "$reuse" = 1 ]; then
    export_retry "$name" "$run/export-side.json" "${export_args[@]}" --only-collection reuse_ok --out "$run/reuse_ok.txt" \
      --expect-docs "$run/reuse_docs.jsonl" || true
  fi
  [ -z "$side" ] || export_args+=(--exclude-collection "$side")
  # a server error (exit 3) is tried again twice, 15 s apart: the local
  # server's H2 store can lose a long scan right after heavy writes
  local ex_rc=0 try
  export_retry "$name" "$run/export.json" "${export_args[@]}" || ex_rc=$?
  local verify_rc=0
  for try in 1 2 3; do
    verify_rc=0
    timeout 600 "$CLI" verify --uri "$URI" --db "$db" >"$run/verify.txt" 2>&1 || verify_rc=$?
    [ "$verify_rc" -eq 3 ] || break
    say "$name: verify: server error (try $try), again in 15 s"; sleep 15
  done
  local dlq_rc=0
  local dlq_args=()
  [ "$poison" = 0 ] || dlq_args+=(--poison "$POISON")
  [ ! -s "$run/sent.jsonl" ] || dlq_args+=(--expect "$run/sent.jsonl")
  "$LOADGEN" dlq --bootstrap "$BOOT" --topic "$topic.dlq" --seed "$SEED" "${dlq_args[@]}" \
    >"$run/dlq.json" 2>"$run/dlq.log" || dlq_rc=$?
  local records expected lost dup identical
  records=$(grep -c '^H ' "$run/export.txt" || true)
  expected=$(jq '.records_expected - (.poison_valid // 0) - (.reuse_valid // 0)' "$run/loadgen.json" 2>/dev/null || echo -1)
  if [ -z "$GOLDEN" ]; then
    lost=$((expected - records)); dup=0; [ "$lost" -lt 0 ] && { dup=$((-lost)); lost=0; }
    identical=true
  else
    lost=$(LC_ALL=C comm -23 <(grep '^H ' "$GOLDEN" | LC_ALL=C sort) <(grep '^H ' "$run/export.txt" | LC_ALL=C sort) | wc -l)
    dup=$(LC_ALL=C comm -13 <(grep '^H ' "$GOLDEN" | LC_ALL=C sort) <(grep '^H ' "$run/export.txt" | LC_ALL=C sort) | wc -l)
    if cmp -s "$GOLDEN" "$run/export.txt"; then identical=true; else identical=false; fi
  fi
  local kills crash_hook graceful
  kills=$(grep -c 'rc=137' "$run/exits" 2>/dev/null || true)
  crash_hook=$(cat "$run"/worker*.log | grep -c 'msg="test crash after write"' || true)
  graceful=$(awk '/^finish/ {exit} / rc=0 / {n++} END {print n+0}' "$run/exits" 2>/dev/null || echo 0)
  # workers that exited by themselves before the end (not killed by us: no rc 137/143)
  local self_exits went_back
  self_exits=$(awk '/^finish/ {exit} / rc=/ && !/ rc=137 / && !/ rc=143 / {n++} END {print n+0}' "$run/exits" 2>/dev/null || echo 0)
  went_back=$(cat "$run"/worker*.log "$run/drain.log" 2>/dev/null | grep -c 'msg="offsets went back"' || true)
  local dlq_msgs dlq_unexpected dlq_missing
  dlq_msgs=$(jq '.dlq_messages' "$run/dlq.json" 2>/dev/null || echo -1)
  dlq_unexpected=$(jq '.unexpected' "$run/dlq.json" 2>/dev/null || echo -1)
  dlq_missing=$(jq '.missing' "$run/dlq.json" 2>/dev/null || echo -1)
  local result=PASS why=()
  [ "$lg_rc" -eq 0 ] || why+=("load generator exit $lg_rc")
  [ "$drain_rc" -eq 0 ] || why+=("drain exit $drain_rc")
  [ "$ex_rc" -eq 0 ] || why+=("export exit $ex_rc")
  [ "$verify_rc" -eq 0 ] || why+=("verify exit $verify_rc")
  [ "$dlq_rc" -eq 0 ] || why+=("DLQ check failed")
  [ "$records" -eq "$expected" ] || why+=("records $records != expected $expected")
  [ "$name" != consumer-kill ] || [ "$crash_hook" -ge 1 ] || why+=("no worker died between its write and its commit")
  [ "$identical" = true ] || why+=("export differs from golden")
  [ "$lost" -eq 0 ] && [ "$dup" -eq 0 ] || why+=("lost $lost, duplicated $dup")
  if [ "$poison" = 1 ]; then
    [ "$(jq '.expected_docs_bad' "$run/export-side.json" 2>/dev/null || echo 1)" = 0 ] || why+=("valid tricky documents not persisted exactly")
  fi
  local side_valid=0 side_records=0
  if [ "$reuse" = 1 ]; then
    side_valid=$(jq '.reuse_valid // -1' "$run/loadgen.json" 2>/dev/null || echo -1)
    side_records=$(jq '.records // -2' "$run/export-side.json" 2>/dev/null || echo -2)
    [ "$(jq '.expected_docs_bad' "$run/export-side.json" 2>/dev/null || echo 1)" = 0 ] || why+=("reuse_ok documents not at their last content and version")
    [ "$side_records" = "$side_valid" ] || why+=("reuse_ok: $side_records records for $side_valid valid events")
    [ "$(jq '.reuse_by_category | add' "$run/loadgen.json")" = "$REUSE" ] || why+=("not every reuse message sent")
  fi
  case "$name" in
    topic-recreated|topic-recreated-stalled|id-reuse|oversized-dlq)
      # the workers keep going: none exits by itself (no crash loop)
      [ "$self_exits" -eq 0 ] || why+=("$self_exits worker exit(s) during the run") ;;
  esac
  [ ! -f "$run/recreate.fail" ] || why+=("$(cat "$run/recreate.fail")")
  if [ "$name" = topic-recreated ]; then
    [ "$went_back" -ge 1 ] || why+=("no worker saw its offsets go back")
  fi
  [ "$name" != oversized-dlq ] || [ "$(jq '.big_by_category | add' "$run/loadgen.json")" = "$BIG" ] || why+=("not every big message sent")
  [ "${#why[@]}" -eq 0 ] || result="FAIL: $(IFS=';'; echo "${why[*]}")"
  jq -cn --arg scenario "$name" --arg what "$what" --arg mode "$MODE" --arg result "$result" \
     --arg operator "$OPERATOR" --argjson events "$EVENTS" --argjson records "$records" \
     --argjson expected "$expected" --argjson lost "$lost" --argjson duplicated "$dup" \
     --argjson identical "$identical" --argjson verify_rc "$verify_rc" --argjson kills "$kills" \
     --argjson crash_after_write "$crash_hook" --argjson graceful_restarts "$graceful" \
     --argjson dlq "$dlq_msgs" --argjson dlq_unexpected "$dlq_unexpected" --argjson dlq_missing "$dlq_missing" \
     --argjson seconds "$((t_end - t_start))" --slurpfile loadgen "$run/loadgen.json" \
     --slurpfile dlqd "$run/dlq.json" --argjson self_exits "$self_exits" --argjson went_back "$went_back" \
     --argjson side_valid "$side_valid" --argjson side_records "$side_records" \
     '{scenario:$scenario, mode:$mode, what:$what, events:$events, records:$records, records_expected:$expected,
       lost:$lost, duplicated:$duplicated, export_identical_to_golden:$identical, verify_exit:$verify_rc,
       worker_kills:$kills, crash_after_write:$crash_after_write, graceful_restarts:$graceful_restarts,
       dlq_messages:$dlq, dlq_unexpected:$dlq_unexpected, dlq_missing:$dlq_missing,
       producer:($loadgen[0] // {} | {emitted, delivered, spooled, spool_replayed, rejected, failed}),
       poison:($loadgen[0].poison // 0), poison_valid:($loadgen[0].poison_valid // 0),
       dlq_by_category:($dlqd[0].by_category // {}), operator_actions:$operator, seconds:$seconds, result:$result,
       worker_exits:$self_exits, offsets_went_back_logged:$went_back,
       reuse:($loadgen[0].reuse // 0), reuse_valid:$side_valid, reuse_records:$side_records,
       big:($loadgen[0].big // 0), dlq_expected:($dlqd[0].expected_sent // 0), dlq_wrong_form:($dlqd[0].wrong_form // 0),
       dlq_duplicates:($dlqd[0].duplicates // 0)}' \
     >>"$RESULTS/results.jsonl"
  say "$name: $result (records $records, lost $lost, duplicated $dup, kills $kills, DLQ $dlq_msgs, $((t_end - t_start)) s)"
  if [ -z "$GOLDEN" ]; then GOLDEN="$run/export.txt"; GOLDEN_RECORDS=$records; fi
  # keep the data dir small: the databases are checked, drop them
  rm -f "$run/producer.spool"
  [ "${result%%:*}" = PASS ] && rm -f "$run/poison_ok.txt"
  [ "$result" = PASS ]
}

# ---- chaos actions: CHAOS RUN LOADGEN_PID ----
no_chaos() { :; }

kill_chaos() {
  local run=$1 k slot target i
  target=$(jq -n "$EVENTS * 0.85 | floor")
  for ((k = 1; k <= KILLS; k++)); do
    sleep "$(( KILL_GAP[0] + RANDOM % (KILL_GAP[1] - KILL_GAP[0] + 1) )).$((RANDOM % 10))"
    # a worker armed to crash by itself is left alone until it has
    slot=$(( 1 + RANDOM % WORKERS ))
    for ((i = 0; i < WORKERS; i++)); do
      [ -f "$run/armed.$slot" ] || [ -f "$run/crash.$slot" ] || break
      slot=$(( slot % WORKERS + 1 ))
    done
    if [ $((k % 3)) -eq 1 ]; then
      # the next life of this worker dies right after its first or second
      # acknowledged MongoDB write, before committing the offsets
      echo $(( 1 + RANDOM % 2 )) >"$run/crash.$slot"
    fi
    if [ $((k % 4)) -eq 2 ]; then
      local other=$(( slot % WORKERS + 1 ))
      # not a worker armed to crash by itself (a graceful stop would disarm it)
      { [ -f "$run/armed.$other" ] || [ -f "$run/crash.$other" ]; } && other=$(( other % WORKERS + 1 ))
      [ "$other" -ne "$slot" ] || other=$(( other % WORKERS + 1 ))
      say "chaos: SIGTERM worker $other (graceful leave and rejoin: rebalance with batches in flight) progress $(progress "$run")"
      worker_kill "$run" "$other" TERM
    fi
    say "chaos: kill -9 worker $slot (kill $k/$KILLS) progress $(progress "$run")/$target"
    worker_kill "$run" "$slot" KILL
    [ "$(progress "$run")" -lt "$target" ] || say "chaos: late kill (most events already written)"
  done
  # give a worker still armed the time to write and die
  for ((i = 0; i < 300; i++)); do
    compgen -G "$run/armed.*" >/dev/null || compgen -G "$run/crash.*" >/dev/null || break
    sleep 0.2
  done
}

broker_chaos() {
  local run=$1
  sleep 6
  say "chaos: kafka stopped for ${OUTAGE_S}s while the application keeps emitting (progress $(progress "$run"))"
  deploy/local/kafka.sh stop >>"$RESULTS/services.log" 2>&1
  sleep "$OUTAGE_S"
  deploy/local/kafka.sh start >>"$RESULTS/services.log" 2>&1
  say "chaos: kafka back (progress $(progress "$run"))"
}

mongo_chaos() {
  local run=$1 target i
  target=$(( EVENTS / 4 ))
  for ((i = 0; i < 600; i++)); do [ "$(progress "$run")" -ge "$target" ] && break; sleep 0.2; done
  say "chaos: mongodb stopped for ${MONGO_DOWN_S}s (progress $(progress "$run"))"
  deploy/local/mongodb.sh stop >>"$RESULTS/services.log" 2>&1
  sleep "$MONGO_DOWN_S"
  deploy/local/mongodb.sh start >>"$RESULTS/services.log" 2>&1
  say "chaos: mongodb back"
}

# A worker frozen (SIGSTOP, like a VM or GC pause) past the session timeout
# while the others take its partitions over, then resumed: it must write
# nothing of what it lost (issue 16, consumer fencing).
stall_chaos() {
  local run=$1 target i slot=1
  target=$(( EVENTS / 5 ))
  for ((i = 0; i < 600; i++)); do [ "$(progress "$run")" -ge "$target" ] && break; sleep 0.2; done
  say "chaos: worker $slot stopped (SIGSTOP) for ${STALL_S}s, past session.timeout.ms (progress $(progress "$run"))"
  worker_kill "$run" "$slot" STOP
  sleep "$STALL_S"
  worker_kill "$run" "$slot" CONT
  say "chaos: worker $slot resumed (SIGCONT) (progress $(progress "$run"))"
}

# Offsets that go back (issue 16): the first half of every application
# thread's stream (ct_loadgen --split 0.5 --part 1) is written and committed,
# the topic is deleted and re-created with as many partitions while the
# workers keep running, and the second half (--part 2: the same stream from
# where part 1 stopped, same ids and timestamps) goes to the new incarnation,
# whose offsets start again at 0, below the last_offset of every state.
# Together the two parts are the golden stream, so the export must be the
# golden one: nothing of the new incarnation taken for an event seen before.
recreate_chaos() {
  local run=$1 lg=$2 topic group lag= parts i
  topic=$(sed -n 's/^topic = //p' "$run/consumer.ini")
  group=$(sed -n 's/^group_id = //p' "$run/consumer.ini")
  while kill -0 "$lg" 2>/dev/null; do sleep 0.5; done
  for ((i = 0; i < DRAIN_LIMIT * 2; i++)); do
    lag=$("$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action lag --group "$group" 2>>"$run/admin.log" | jq '.lag' 2>/dev/null) || lag=
    [ "$lag" = 0 ] && break
    sleep 0.5
  done
  if [ "$lag" != 0 ]; then echo "part 1 not consumed before the delete (lag ${lag:-unknown})" >"$run/recreate.fail"; return 0; fi
  parts=$("$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action partitions 2>>"$run/admin.log")
  say "chaos: part 1 written and committed (progress $(progress "$run")); topic deleted and re-created with $parts partitions, workers running"
  if ! "$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action delete 2>>"$run/admin.log" ||
     ! "$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action create --partitions "$parts" 2>>"$run/admin.log"; then
    echo "topic delete or re-create failed" >"$run/recreate.fail"; return 0
  fi
  sleep 3 # the workers see the new incarnation before part 2 flows
  local rc=0
  "$LOADGEN" produce --bootstrap "$BOOT" --topic "$topic" --events "$EVENTS" --threads "$THREADS" --seed "$SEED" \
    --rate "$BASE_RATE" --spool "$run/producer2.spool" --split 0.5 --part 2 >"$run/loadgen2.json" 2>"$run/loadgen2.log" || rc=$?
  echo "$rc" >"$run/loadgen2.rc"
  rm -f "$run/producer2.spool"
  say "chaos: part 2 written to the new incarnation (exit $rc, progress $(progress "$run"))"
}

# The same with the workers frozen (SIGSTOP, like a VM or GC pause, shorter
# than session.timeout.ms: they keep their partitions and fetch positions)
# while the topic is deleted and re-created and the rest of the stream (70%)
# is written to the new incarnation at full speed, so that each partition
# of the new log is longer than the position its worker had; then resumed.
# librdkafka 2.0.2 (no topic ids) would fetch on from its old position and
# skip the new incarnation's first events silently (no "offsets went back":
# no state is ahead of them; verify clean): the consumer fences itself on
# SIGCONT and reads again from the committed offsets, gone with the topic.
recreate_stalled_chaos() {
  local run=$1 lg=$2 topic group lag= parts i slot rc=0
  topic=$(sed -n 's/^topic = //p' "$run/consumer.ini")
  group=$(sed -n 's/^group_id = //p' "$run/consumer.ini")
  while kill -0 "$lg" 2>/dev/null; do sleep 0.5; done
  for ((i = 0; i < DRAIN_LIMIT * 2; i++)); do
    lag=$("$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action lag --group "$group" 2>>"$run/admin.log" | jq '.lag' 2>/dev/null) || lag=
    [ "$lag" = 0 ] && break
    sleep 0.5
  done
  if [ "$lag" != 0 ]; then echo "part 1 not consumed before the delete (lag ${lag:-unknown})" >"$run/recreate.fail"; return 0; fi
  sleep 10 # every worker in the group, its position at the end of part 1
  parts=$("$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action partitions 2>>"$run/admin.log")
  for ((slot = 1; slot <= WORKERS; slot++)); do worker_kill "$run" "$slot" STOP; done
  say "chaos: workers frozen (SIGSTOP); part 1 committed; topic deleted and re-created, part 2 written at full speed"
  if ! "$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action delete 2>>"$run/admin.log" ||
     ! "$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action create --partitions "$parts" 2>>"$run/admin.log"; then
    echo "topic delete or re-create failed" >"$run/recreate.fail"
  fi
  "$LOADGEN" produce --bootstrap "$BOOT" --topic "$topic" --events "$EVENTS" --threads "$THREADS" --seed "$SEED" \
    --rate 0 --spool "$run/producer2.spool" --split 0.3 --part 2 >"$run/loadgen2.json" 2>"$run/loadgen2.log" || rc=$?
  echo "$rc" >"$run/loadgen2.rc"
  rm -f "$run/producer2.spool"
  for ((slot = 1; slot <= WORKERS; slot++)); do worker_kill "$run" "$slot" CONT; done
  # the resumed workers consume the new incarnation (the drain worker would start from the group's offsets)
  for ((i = 0; i < DRAIN_LIMIT * 2; i++)); do
    lag=$("$LOADGEN" admin --bootstrap "$BOOT" --topic "$topic" --action lag --group "$group" 2>>"$run/admin.log" | jq '.lag' 2>/dev/null) || lag=
    [ "$lag" = 0 ] && break
    sleep 0.5
  done
  say "chaos: workers resumed (part 2 exit $rc); the group's lag on the new incarnation: ${lag:-unknown} (progress $(progress "$run"))"
}

# ---- the scenarios ----
fails=0
say "mode $MODE: $EVENTS events from $THREADS threads, $WORKERS workers, seed $SEED"
run_scenario golden "no faults; the reference export" no_chaos || fails=$((fails + 1))
[ -n "$GOLDEN" ] && [ "$GOLDEN_RECORDS" -gt 0 ] || { say "no golden run: stopping"; exit 1; }
run_scenario consumer-kill "kill -9 of a random worker $KILLS times at random moments, the restart after kill 1, 4, 7, ... armed to die between its MongoDB write and its offset commit (CT_TEST_CRASH_AFTER_WRITE), a graceful stop of another worker beside kill 2, 6, 10, ... (rebalances with batches in flight)$KILL_NOTE" \
  kill_chaos --rate "$KILL_RATE" || fails=$((fails + 1))
run_scenario broker-outage "Kafka stopped for ${OUTAGE_S}s and restarted while the app emits at ${RATE} ev/s (producer queue ${QUEUE_MAX} messages, then its spool) and the workers consume" \
  broker_chaos --rate "$RATE" --queue-max "$QUEUE_MAX" --spool "$RESULTS/run-spool-$$.spool" || fails=$((fails + 1))
run_scenario mongodb-restart "MongoDB server stopped for ${MONGO_DOWN_S}s and restarted at 25% progress" \
  mongo_chaos || fails=$((fails + 1))
run_scenario stalled-worker "a worker frozen by SIGSTOP for ${STALL_S}s (past session.timeout.ms 6 s) at 20% progress while the others take over, then resumed with its unwritten batches and states" \
  stall_chaos || fails=$((fails + 1))
run_scenario poison "$POISON hand-made messages mixed into the stream (truncated JSON, wrong types, missing fields, oversized, 10k-deep nesting, invalid UTF-8, duplicate keys, huge numbers, valid events keyed other than <collection>/<document_id> or without a key, half of them for documents of the app stream, which they would change if stored: to the DLQ; '\$'/'.' keys and keys colliding under usual escaping: persisted)" \
  no_chaos --poison "$POISON" --expect-docs "$RESULTS/run-$((SCEN_N + 1))-poison/expect.jsonl" || fails=$((fails + 1))
run_scenario topic-recreated "offsets go back: the first half of every app thread's stream written and committed, the topic deleted and re-created (as many partitions) while the workers run, the second half sent to the new incarnation (offsets from 0, below every state's last_offset); both halves together are the golden stream" \
  recreate_chaos --split 0.5 --part 1 || fails=$((fails + 1))
SESSION_MS=30000 run_scenario topic-recreated-stalled "the workers frozen by SIGSTOP (shorter than session.timeout.ms, 30 s here: they keep their partitions and positions) while the topic is deleted and re-created and the last 70% of the stream is written to the new incarnation at full speed, then resumed" \
  recreate_stalled_chaos --split 0.3 --part 1 || fails=$((fails + 1))
run_scenario id-reuse "$REUSE hand-made messages re-using event ids with other content, each after its original in the same partition: the same document within its last 32 events, the same document after more than 32, another document (app ids and ids of a stream of its own: $((4 * 45)) valid events on 4 reuse_ok documents); each to the DLQ with EREUSED" \
  no_chaos --reuse "$REUSE" || fails=$((fails + 1))
MAX_EVENT_BYTES= run_scenario oversized-dlq "$BIG refused messages around the 1 MiB limits mixed into the stream (source topic max.message.bytes 4,000,000; consumer max_event_bytes and DLQ topic at their defaults: 1 MiB, 1,048,588): 1,000,500 B junk and 1,040,000 B wrong-schema events (whole in the DLQ), valid events of 1,100,000 B (refused by the broker) and 1,500,000 B (over the DLQ producer's limit) as stubs" \
  no_chaos --big "$BIG" --topic-max-bytes 4000000 || fails=$((fails + 1))
rm -f "$RESULTS/run-spool-$$.spool"

# ---- the table ----
{
  echo "<!-- generated by scripts/reliability.sh ($MODE run) from $(basename "$RESULTS")/results.jsonl; do not edit above the hand-written marker -->"
  echo "# Reliability"
  echo
  echo "Produced by \`scripts/reliability.sh\` ($MODE run, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores shared with other work)."
  echo "Every scenario sends the same deterministic stream of $EVENTS events (ct_loadgen: $THREADS application threads, seed $SEED, $BASE_RATE events/s unless said otherwise,"
  echo "inserts, updates, deletes and re-creates, manual events, relations, children, request contexts) to its own topic"
  echo "and database through $WORKERS \`changetrail-consumer\` workers in one group, against a real Kafka and a local MongoDB wire-protocol server (mongo-java-server, H2 store)."
  [ "$MODE" = short ] || echo "The full run has 30k events (100k when FerretDB served): at 100k the local server's H2 store lost a long scan right after heavy writes (\`Chunk N not found\`; exports and verify are tried again on a server error), and its one-reply answers to a find went over the 48 MB wire limit until the readers asked for batches of 1000."
  echo "**lost** = records of the golden export missing from the scenario's, **duplicated** = records the golden export"
  echo "does not have. Exports hold every history record and state in canonical form without the Kafka"
  echo "coordinates (\`kafka\`, \`last_offset\`), which are provenance and not hashed (consumer/record.c); everything else,"
  echo "event ids, timestamps and hashes included, must be byte-identical to the golden run's. Every scenario also needs"
  echo "\`changetrail verify\` clean and a dead-letter topic holding exactly the refused hand-made messages (none elsewhere),"
  echo "each with its reason (\`ct-dlq-reason\`, \`ct-dlq-code\`): the poison ones, recognised by key; the re-used ids and the oversized ones,"
  echo "recognised by the SHA-256 of what was sent (a stub, \`ct-dlq-stub: 1\`, by the SHA-256 and size it names)."
  echo "The scenarios with messages of their own (poison, id-reuse) compare the app stream's records without their collection"
  echo "(\`poison_ok\`, \`reuse_ok\`) with the golden export and check that collection on its own: every valid event recorded"
  echo "once (\`reuse_ok\`: its record count and each document at its last content and version). In topic-recreated,"
  echo "id-reuse and oversized-dlq no worker may exit during the run (no crash loop), and in topic-recreated at least one"
  echo "worker must have logged \`offsets went back\` (the path under test was taken). A dead letter written twice"
  echo "(a batch handed over before its commit: the DLQ is at least once) is counted, not failed."
  echo
  echo "| scenario | what was done | events | records | lost | duplicated | identical to golden | verify | DLQ | result |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  jq -r '"| \(.scenario) | \(.what)\(if .worker_kills > 0 then "; observed: \(.worker_kills) worker deaths by SIGKILL (\(.crash_after_write) of them by the hook, right after a MongoDB write, before the commit), \(.graceful_restarts) graceful stops" else "" end)\(if (.producer.spooled // 0) > 0 then "; the producer spooled \(.producer.spooled) events and replayed \(.producer.spool_replayed)" else "" end)\(if .operator_actions != "" then "; **operator:** \(.operator_actions)" else "" end)\(if (.offsets_went_back_logged // 0) > 0 then "; observed: \(.offsets_went_back_logged) \"offsets went back\" logged by the workers" else "" end) | \(.events)\(if .poison > 0 then " + \(.poison) poison" else "" end)\(if (.reuse // 0) > 0 then " + \(.reuse) re-used ids + \(.reuse_valid) reuse_ok" else "" end)\(if (.big // 0) > 0 then " + \(.big) oversized" else "" end) | \(.records)\(if (.reuse // 0) > 0 then " + \(.reuse_records) reuse_ok" else "" end) | \(.lost) | \(.duplicated) | \(if .export_identical_to_golden then "yes" else "**no**" end) | \(if .verify_exit == 0 then "clean" else "**exit \(.verify_exit)**" end) | \(.dlq_messages)\(if .poison > 0 then " (\(.dlq_missing) bad missing, \(.dlq_unexpected) unexpected; \(.poison_valid) valid tricky ones persisted)" elif (.dlq_expected // 0) > 0 then " (\(.dlq_expected) expected: \(.dlq_missing) missing, \(.dlq_unexpected) unexpected, \(.dlq_wrong_form) in the wrong form, \(.dlq_duplicates) written twice)" else "" end) | \(.result) (\(.seconds) s) |"' \
    "$RESULTS/results.jsonl"
  if grep -q '"poison":[1-9]' "$RESULTS/results.jsonl"; then
    echo
    echo "Poison by category (reason: the \`ct-dlq-reason\` header of the first one seen):"
    echo
    echo "| category | sent | in DLQ | code | reason |"
    echo "|---|---|---|---|---|"
    jq -r 'select(.poison > 0) | .dlq_by_category | to_entries[] | select(.value.form == null) | "| \(.key) | \(.value.sent) | \(.value.in_dlq) | \(.value.code)\(if .value.wrong_code > 0 then " (\(.value.wrong_code) wrong)" else "" end) | \(.value.reason | gsub("\\|"; "\\\\|")) |"' \
      "$RESULTS/results.jsonl"
  fi
  if grep -q '"dlq_expected":[1-9]' "$RESULTS/results.jsonl"; then
    echo
    echo "Re-used ids and oversized messages by category (whole: the dead letter is the message itself; stub: \`ct-dlq-stub: 1\`"
    echo "with the reason, key, size, SHA-256 and origin; reason: the \`ct-dlq-reason\` header of the first one seen):"
    echo
    echo "| scenario | category | sent | in DLQ | code | expected form | whole | stub | reason |"
    echo "|---|---|---|---|---|---|---|---|---|"
    jq -r 'select((.dlq_expected // 0) > 0) | .scenario as $s | .dlq_by_category | to_entries[] | select(.value.form != null) | "| \($s) | \(.key) | \(.value.sent) | \(.value.in_dlq) | \(.value.code)\(if .value.wrong_code > 0 then " (\(.value.wrong_code) wrong)" else "" end) | \(.value.form)\(if .value.wrong_form > 0 then " (\(.value.wrong_form) wrong)" else "" end) | \(.value.whole) | \(.value.stub) | \(.value.reason | gsub("\\|"; "\\\\|")) |"' \
      "$RESULTS/results.jsonl"
  fi
  echo
  echo "Reproduce: \`scripts/reliability.sh\` (full) or \`scripts/reliability.sh --short\` (CI: \`ctest -L reliability\`, run by"
  echo "\`scripts/test.sh\`). Raw figures: one JSON line per scenario in the results directory (\`results.jsonl\`)."
} >"$RESULTS/reliability.md"
if [ "$MODE" = full ] && [ "$WRITE_DOC" = 1 ]; then
  # the hand-written part (the threat model) is kept: everything from its marker line on
  kept=$(sed -n '/^<!-- hand-written below/,$p' "$ROOT/docs/reliability.md" 2>/dev/null || true)
  { cat "$RESULTS/reliability.md"; if [ -n "$kept" ]; then echo; printf '%s\n' "$kept"; fi; } >"$ROOT/docs/reliability.md"
  cp "$RESULTS/results.jsonl" "$ROOT/docs/reliability.jsonl"
fi
cat "$RESULTS/reliability.md"
say "done: $fails scenario(s) failed"
[ "$fails" -eq 0 ]
