# recipes: every mongosh / pymongo recipe of docs/storage.md ("## Recipes"),
# run as written against the real local MongoDB server after raw events went
# through the consumer (tests/storage_recipes_test.py; pymongo 4.8 and pytest
# from tests/requirements.txt). Skipped (77) without the servers unless
# CT_TEST_REQUIRE_SERVERS=1.
add_test(NAME storage_recipes COMMAND ${CT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/storage_recipes_test.py)
set_tests_properties(storage_recipes PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 300
  ENVIRONMENT "CT_SOURCE_DIR=${PROJECT_SOURCE_DIR};CT_BINARY_DIR=${PROJECT_BINARY_DIR};CT_CONSUMER_BIN=$<TARGET_FILE:changetrail-consumer>;PYTHONDONTWRITEBYTECODE=1")
