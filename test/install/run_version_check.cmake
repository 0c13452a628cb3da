# SPDX-License-Identifier: BSL-1.0
# Driver for "install: find_package(wq) follows the 0.x version policy", run with cmake -P:
#   -DWQ_SMOKE_SETTINGS=<settings.cmake written at configure time> -DWQ_SMOKE_CONFIG=<config>
# Installs the build into <build>/install-smoke/version/prefix and configures version_probe/
# against it. The policy (CHANGELOG.md, README "Versioning"): while the major version is 0, only
# the same MAJOR.MINOR is compatible (a minor release may break the API and ABI); from 1.0, the
# same MAJOR. The versions asked for are derived from the project's, so a release needs no edit.
cmake_minimum_required(VERSION 3.25)
include("${CMAKE_CURRENT_LIST_DIR}/smoke_common.cmake")

set(work "${WQ_SMOKE_WORK_DIR}/version")
set(prefix "${work}/prefix")
smoke_install("${prefix}")

string(REGEX MATCH "^([0-9]+)\\.([0-9]+)\\.([0-9]+)" _ "${WQ_SMOKE_PROJECT_VERSION}")
set(major ${CMAKE_MATCH_1})
set(minor ${CMAKE_MATCH_2})
set(patch ${CMAKE_MATCH_3})
math(EXPR next_minor "${minor} + 1")
math(EXPR next_major "${major} + 1")
math(EXPR next_patch "${patch} + 1")

# Always: this exact version and its MAJOR.MINOR are accepted; a newer patch, minor or major
# than the installed one is refused.
set(accept "${major}.${minor}" "${major}.${minor}.${patch}")
set(refuse "${major}.${minor}.${next_patch}" "${major}.${next_minor}" "${next_major}.0")
# The case that tells the policies apart: an older minor. SameMajorVersion would hand a 0.0
# consumer 0.1; in 0.x it must be refused, from 1.0 on accepted.
if(minor GREATER 0)
  math(EXPR prev_minor "${minor} - 1")
  if(major EQUAL 0)
    list(APPEND refuse "${major}.${prev_minor}")
  else()
    list(APPEND accept "${major}.${prev_minor}")
  endif()
endif()
if(major GREATER 0)
  math(EXPR prev_major "${major} - 1")
  list(APPEND refuse "${prev_major}.0")
endif()

# The probe runs with the parent's generator, compiler and search paths (Boost may be anywhere
# the parent found it), passed through an initial-cache file so lists arrive intact.
set(cache "")
foreach(var IN ITEMS CMAKE_MAKE_PROGRAM CMAKE_CXX_COMPILER CMAKE_PREFIX_PATH CMAKE_FIND_ROOT_PATH
                     CMAKE_TOOLCHAIN_FILE Boost_DIR)
  if(NOT WQ_SMOKE_${var} STREQUAL "")
    string(APPEND cache "set(${var} [==[${WQ_SMOKE_${var}}]==] CACHE STRING \"\")\n")
  endif()
endforeach()
string(APPEND cache "set(WQ_PROBE_PREFIX [==[${prefix}]==] CACHE PATH \"\")\n"
                    "set(WQ_PROBE_ACCEPT [==[${accept}]==] CACHE STRING \"\")\n"
                    "set(WQ_PROBE_REFUSE [==[${refuse}]==] CACHE STRING \"\")\n")
file(WRITE "${work}/probe-cache.cmake" "${cache}")
file(REMOVE_RECURSE "${work}/probe-build")
smoke_run("configure version probe (accept: ${accept}; refuse: ${refuse})"
          "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}/version_probe" -B "${work}/probe-build"
          -G "${WQ_SMOKE_CMAKE_GENERATOR}" -C "${work}/probe-cache.cmake")
message(STATUS "install test: version probe output:\n${smoke_output}")
if(NOT smoke_output MATCHES "version probe: passed")
  message(FATAL_ERROR "install test: the version probe did not report 'passed'")
endif()
