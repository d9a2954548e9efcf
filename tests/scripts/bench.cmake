# bench: the side-by-side harness of issue #7 (tests/bench/side_by_side.sh)
# in --smoke mode: changetrail, the Python peer and Kafka Connect + MongoDB
# sink on tiny topics, every figure must come out. It needs the local servers
# (used when running, else started and stopped on the bench ports), Maven for
# Kafka Connect and about 40 s of both cores with a 1 GB JVM, so it is not
# part of the default run (CI included): skipped (exit 77) unless
# CT_BENCH_SMOKE=1, e.g. `CT_BENCH_SMOKE=1 ctest -L bench --output-on-failure`.
add_test(NAME bench_side_by_side_smoke
  COMMAND bash -c "[ \"\${CT_BENCH_SMOKE:-0}\" = 1 ] || { echo 'set CT_BENCH_SMOKE=1 to run'; exit 77; }; exec \"$0\" --smoke"
    ${CMAKE_CURRENT_SOURCE_DIR}/bench/side_by_side.sh)
set_tests_properties(bench_side_by_side_smoke PROPERTIES LABELS bench SKIP_RETURN_CODE 77 TIMEOUT 300
  ENVIRONMENT "CT_BENCH_BUILD_DIR=${PROJECT_BINARY_DIR}")
