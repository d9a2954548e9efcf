# check_release.cmake: what a user adopting changetrail looks for first, run by
# ctest (tests/scripts/release.cmake) as `cmake -P` with
#   -DSRC=<source dir> -DVERSION=<project version> -DPC=<generated changetrail.pc>
#   -DVERSION_H=<generated changetrail/version.h> -DCLI=<changetrail> -DCONSUMER=<changetrail-consumer>
# A licence, a changelog with an Unreleased section, and one version everywhere
# (the Python package's pyproject.toml and the Helm chart's Chart.yaml, which cannot read
# CMake's, checked to agree).
cmake_minimum_required(VERSION 3.25)

set(failures "")
macro(fail msg)
  string(APPEND failures "  ${msg}\n")
endmacro()

# LICENSE: the Apache License 2.0, whole (its last section is the appendix).
if(NOT EXISTS "${SRC}/LICENSE")
  fail("no LICENSE file")
else()
  file(READ "${SRC}/LICENSE" lic)
  foreach(s "Apache License" "Version 2.0, January 2004" "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"
            "END OF TERMS AND CONDITIONS" "APPENDIX: How to apply the Apache License to your work.")
    string(FIND "${lic}" "${s}" at)
    if(at EQUAL -1)
      fail("LICENSE lacks '${s}'")
    endif()
  endforeach()
endif()

# CHANGELOG.md: Keep a Changelog, an Unreleased section with content.
if(NOT EXISTS "${SRC}/CHANGELOG.md")
  fail("no CHANGELOG.md")
else()
  file(READ "${SRC}/CHANGELOG.md" log)
  foreach(s "keepachangelog.com" "## [Unreleased]" "### Added")
    string(FIND "${log}" "${s}" at)
    if(at EQUAL -1)
      fail("CHANGELOG.md lacks '${s}'")
    endif()
  endforeach()
endif()

# One version: version.h, the .pc file, both programs' --version.
if(NOT EXISTS "${VERSION_H}")
  fail("no generated ${VERSION_H}")
else()
  file(READ "${VERSION_H}" vh)
  string(FIND "${vh}" "#define CT_VERSION_STRING \"${VERSION}\"" at)
  if(at EQUAL -1)
    fail("version.h does not define CT_VERSION_STRING \"${VERSION}\"")
  endif()
endif()
file(STRINGS "${PC}" pcv REGEX "^Version: ")
if(NOT pcv STREQUAL "Version: ${VERSION}")
  fail("changetrail.pc says '${pcv}', not 'Version: ${VERSION}'")
endif()
# the Python package states it too (producer/python/pyproject.toml): it must follow
if(EXISTS "${SRC}/producer/python/pyproject.toml")
  file(STRINGS "${SRC}/producer/python/pyproject.toml" pyv REGEX "^version *= *\"")
  # or it reads this project's version itself (scikit-build-core's regex provider)
  file(STRINGS "${SRC}/producer/python/pyproject.toml" pyinput REGEX "^metadata\\.version\\.input *= *\"../../CMakeLists.txt\"")
  if(pyv STREQUAL "" AND NOT pyinput STREQUAL "")
    set(pyv "version = \"${VERSION}\"")
  endif()
  if(NOT pyv MATCHES "^version *= *\"${VERSION}\"")
    fail("producer/python/pyproject.toml says '${pyv}', not version = \"${VERSION}\"")
  endif()
endif()
# the Helm chart (deploy/helm/changetrail-consumer/Chart.yaml): version and appVersion (the
# default image tag) follow too; ctest helm_check checks the same with helm, when helm is there
set(chart "${SRC}/deploy/helm/changetrail-consumer/Chart.yaml")
if(EXISTS "${chart}")
  file(STRINGS "${chart}" chv REGEX "^version: ")
  file(STRINGS "${chart}" cha REGEX "^appVersion: ")
  if(NOT chv MATCHES "^version: \"?${VERSION}\"?$" OR NOT cha MATCHES "^appVersion: \"?${VERSION}\"?$")
    fail("deploy/helm/changetrail-consumer/Chart.yaml says '${chv}', '${cha}', not ${VERSION}")
  endif()
endif()
foreach(prog "${CLI}" "${CONSUMER}")
  get_filename_component(name "${prog}" NAME)
  execute_process(COMMAND "${prog}" --version OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT out STREQUAL "${name} ${VERSION}\n")
    fail("'${name} --version' exits ${rc} and prints '${out}', not '${name} ${VERSION}'")
  endif()
endforeach()

if(failures)
  message(FATAL_ERROR "release conventions:\n${failures}")
endif()
message(STATUS "release conventions: LICENSE, CHANGELOG.md, version ${VERSION} everywhere")
