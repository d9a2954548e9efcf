# schema: every example under schemas/examples/ is checked against the JSON
# Schemas with jsonschema, and every event example also with the C validator
# (ct_validate_event), which must agree with jsonschema on each one.
# Skipped (exit 77) when ${CT_PYTHON} cannot import jsonschema.
add_executable(ct_validate_event ${CMAKE_CURRENT_SOURCE_DIR}/tools/ct_validate_event.c)
target_link_libraries(ct_validate_event PRIVATE ct_internal PkgConfig::JANSSON)
add_test(NAME schema_examples
  COMMAND ${CT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/schema_examples_test.py
    --schemas ${PROJECT_SOURCE_DIR}/schemas --validator $<TARGET_FILE:ct_validate_event>)
set_tests_properties(schema_examples PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 120)
