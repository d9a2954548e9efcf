# python: the ctypes binding of the producer (producer/python) with pytest,
# against the real broker (CT_KAFKA_BOOTSTRAP; its tests skip without it unless
# CT_TEST_REQUIRE_SERVERS=1) and the built libchangetrail.so.
# Not registered in sanitizer builds: an ASan-instrumented library cannot be
# loaded into an uninstrumented Python.
if(NOT CT_SANITIZE)
  add_test(NAME python_binding
    COMMAND ${CT_PYTHON} ${PROJECT_SOURCE_DIR}/producer/python/tests/run_tests.py)
  set_tests_properties(python_binding PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 180
    ENVIRONMENT "CHANGETRAIL_LIB=$<TARGET_FILE:changetrail>;PYTHONPATH=${PROJECT_SOURCE_DIR}/producer/python;PYTHONDONTWRITEBYTECODE=1")
endif()
