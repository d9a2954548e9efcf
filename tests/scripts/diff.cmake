# diff: the committed dictdiffer vectors (tests/vectors/diff/vectors.json) must
# still be what scripts/gen-diff-vectors.py makes with the pinned dictdiffer.
# Skipped (exit 77) when ${CT_PYTHON} cannot import dictdiffer.
add_test(NAME diff_vectors_current
  COMMAND ${CT_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/gen-diff-vectors.py --check)
set_tests_properties(diff_vectors_current PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 120)
