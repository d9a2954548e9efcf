# install: the installed tree used as users do, an out-of-tree CMake project
# (find_package) and a pkg-config build, both run (tests/install/check_install.sh).
# Not in sanitizer or fuzz builds: their library needs the sanitizer runtime,
# which a user's program built without the flags does not bring.
if(NOT CT_SANITIZE AND NOT CT_FUZZ)
  add_test(NAME install_tree
    COMMAND ${PROJECT_SOURCE_DIR}/tests/install/check_install.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(install_tree PROPERTIES LABELS unit TIMEOUT 300)
endif()
