# release: LICENSE, CHANGELOG.md and the one version (project() -> version.h,
# changetrail.pc, --version of both programs, Chart.yaml), tests/tools/check_release.cmake.
add_test(NAME release_conventions
  COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -DVERSION=${PROJECT_VERSION}
    -DPC=${PROJECT_BINARY_DIR}/changetrail.pc
    -DVERSION_H=${PROJECT_BINARY_DIR}/include/changetrail/version.h
    -DCLI=$<TARGET_FILE:changetrail-cli> -DCONSUMER=$<TARGET_FILE:changetrail-consumer>
    -P ${PROJECT_SOURCE_DIR}/tests/tools/check_release.cmake)
set_tests_properties(release_conventions PROPERTIES LABELS unit TIMEOUT 60)
