# helm: the chart deploy/helm/changetrail-consumer through the real helm
# (`helm lint --strict`, `helm template` with the defaults and with KEDA, the
# HPA, the ServiceMonitor and an existing Secret), every rendered object
# through the Kubernetes schemas of kubernetes-validate (strict, as
# deploy_check), compared with deploy/k8s, and the rendered consumer.ini
# through `changetrail-consumer --check-config` (tests/helm_check.py).
# helm comes from ~/.cache/changetrail/bin (scripts/install-deps.sh builds it
# there with `go install` when Go is present), $HELM or PATH. Skipped (exit 77)
# without helm or without tests/requirements.txt in ${CT_PYTHON}.
add_test(NAME helm_check
  COMMAND ${CT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/helm_check.py
    --consumer $<TARGET_FILE:changetrail-consumer> --source ${PROJECT_SOURCE_DIR})
set_tests_properties(helm_check PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 300)
