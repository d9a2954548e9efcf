# completion: bash completion of changetrail and changetrail-consumer driven as
# bash does (every command, every option each --help names, values), zsh's parsed
# (tests/completion/check_completion.sh).
add_test(NAME completion_check
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/completion/check_completion.sh ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
set_tests_properties(completion_check PROPERTIES LABELS unit TIMEOUT 120)
