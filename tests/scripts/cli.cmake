# The changetrail CLI driven as a user drives it.
add_test(NAME cli_diff COMMAND ${CT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli_diff_test.py
  $<TARGET_FILE:changetrail-cli>)
set_tests_properties(cli_diff PROPERTIES LABELS unit TIMEOUT 120)
