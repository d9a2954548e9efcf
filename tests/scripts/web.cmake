# web: `changetrail serve` (docs/web.md): the JSON API, HTTP safety and auth, the UI in headless
# Chromium (search -> document -> version -> context, hostile values as text) and the page time of
# a document with 10000 versions, against the local servers with history written by the real
# consumer (tests/web_test.py; selenium, pymongo and pytest from tests/requirements.txt, Debian's
# chromium + chromium-driver). Skipped (77) without them unless CT_TEST_REQUIRE_SERVERS=1.
add_test(NAME web_serve COMMAND ${CT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/web_test.py)
set_tests_properties(web_serve PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 900
  ENVIRONMENT "CT_SOURCE_DIR=${PROJECT_SOURCE_DIR};CT_BINARY_DIR=${PROJECT_BINARY_DIR};CT_CONSUMER_BIN=$<TARGET_FILE:changetrail-consumer>;CT_CLI_BIN=$<TARGET_FILE:changetrail-cli>;PYTHONDONTWRITEBYTECODE=1")
