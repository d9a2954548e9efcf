# deploy: the files under deploy/ (Docker, Compose, Kubernetes, systemd) checked
# with real validators (docker-compose config, hadolint, Kubernetes schemas,
# systemd-analyze) and every consumer config in them run through the built
# `changetrail-consumer --check-config` (tests/deploy_check.py).
# Skipped (exit 77) when ${CT_PYTHON} lacks tests/requirements.txt.
add_test(NAME deploy_check
  COMMAND ${CT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/deploy_check.py
    --consumer $<TARGET_FILE:changetrail-consumer> --source ${PROJECT_SOURCE_DIR})
set_tests_properties(deploy_check PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 120)
