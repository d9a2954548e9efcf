# python: the ctypes binding of the producer (producer/python) with pytest,
# against the real broker (CT_KAFKA_BOOTSTRAP), the consumer daemon and the
# local MongoDB server (CT_MONGODB_URI) — its tests skip without them unless
# CT_TEST_REQUIRE_SERVERS=1 — and the built libchangetrail.so: the binding,
# changetrail.history, Django (signals, transactions, bulk paths, admin),
# contexts (asyncio, Celery-style hand-off), mongoengine, docs/python.md.
# With chromium and chromedriver on the machine, the admin History page is
# also rendered in headless Chromium (a screenshot into the build directory).
# Not registered in sanitizer builds: an ASan-instrumented library cannot be
# loaded into an uninstrumented Python.
if(NOT CT_SANITIZE)
  find_program(CT_CHROMIUM NAMES chromium chromium-browser)
  find_program(CT_CHROMEDRIVER NAMES chromedriver)
  set(_ct_shot "")
  if(CT_CHROMIUM AND CT_CHROMEDRIVER)
    set(_ct_shot ";CT_SCREENSHOT=1;CT_SCREENSHOT_PATH=${PROJECT_BINARY_DIR}/django-admin-history.png")
  endif()
  add_test(NAME python_binding
    COMMAND ${CT_PYTHON} ${PROJECT_SOURCE_DIR}/producer/python/tests/run_tests.py)
  set_tests_properties(python_binding PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 600
    ENVIRONMENT "CHANGETRAIL_LIB=$<TARGET_FILE:changetrail>;CT_CONSUMER_BIN=$<TARGET_FILE:changetrail-consumer>;CT_CLI_BIN=$<TARGET_FILE:changetrail-cli>;PYTHONPATH=${PROJECT_SOURCE_DIR}/producer/python;PYTHONDONTWRITEBYTECODE=1${_ct_shot}")
endif()
# python_wheel: `pip wheel producer/python` with its build backend
# (scikit-build-core from tests/requirements.txt, no build isolation: no
# network), the wheel carries libchangetrail and imports in a fresh venv with
# no environment variable; repaired by auditwheel (tools/manylinux-wheel.sh) it
# carries librdkafka and jansson too and delivers to the real broker
# (producer/python/tests/test_packaging.py).
if(NOT CT_SANITIZE)
  add_test(NAME python_wheel
    COMMAND ${CT_PYTHON} -m pytest -q -p no:cacheprovider -rs
      ${PROJECT_SOURCE_DIR}/producer/python/tests/test_packaging.py)
  set_tests_properties(python_wheel PROPERTIES LABELS integration TIMEOUT 1200
    ENVIRONMENT "CT_TEST_WHEEL=1;CHANGETRAIL_LIB=$<TARGET_FILE:changetrail>;PYTHONPATH=${PROJECT_SOURCE_DIR}/producer/python;PYTHONDONTWRITEBYTECODE=1")
endif()
