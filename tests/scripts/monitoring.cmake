# monitoring: deploy/monitoring (alert rules, Grafana dashboard, ServiceMonitor)
# checked with promtool (rules parsed and unit-tested, every query parsed) and
# against the metrics consumer/metrics.c renders (tests/monitoring/check_monitoring.py).
# Skipped (exit 77) without promtool (Debian's prometheus package, installed by
# scripts/install-deps.sh).
add_test(NAME monitoring_check
  COMMAND ${CT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/monitoring/check_monitoring.py ${PROJECT_SOURCE_DIR})
set_tests_properties(monitoring_check PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 120)
