# man: changetrail(1) and changetrail-consumer(1) built from man/*.scd render
# cleanly and name every command and option of the programs (tests/man/check_man.sh).
add_test(NAME man_pages
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/man/check_man.sh ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
set_tests_properties(man_pages PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 60)
