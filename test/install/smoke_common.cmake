# SPDX-License-Identifier: BSL-1.0
# Shared by the install tests' cmake -P drivers (run_smoke.cmake, run_version_check.cmake,
# run_pkgconfig.cmake): read the parent build's settings, run a command and fail with its
# output, install the build tree into a fresh prefix.

if(NOT WQ_SMOKE_SETTINGS OR NOT EXISTS "${WQ_SMOKE_SETTINGS}")
  message(FATAL_ERROR "${CMAKE_CURRENT_LIST_FILE}: pass -DWQ_SMOKE_SETTINGS=<settings file>")
endif()
include("${WQ_SMOKE_SETTINGS}")

# Runs a command, echoing it first; fails the test with the command's output on error. The
# output is left in smoke_output.
function(smoke_run what)
  list(JOIN ARGN " " printable)
  message(STATUS "install test: ${what}: ${printable}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (${rc}):\n${out}")
  endif()
  set(smoke_output "${out}" PARENT_SCOPE)
endfunction()

# Installs the parent build into <prefix>, removed first so that stale files from an earlier run
# cannot hide a missing install rule.
function(smoke_install prefix)
  file(REMOVE_RECURSE "${prefix}")
  set(config_args "")
  if(WQ_SMOKE_CONFIG)
    set(config_args --config "${WQ_SMOKE_CONFIG}")
  endif()
  smoke_run("install" "${CMAKE_COMMAND}" --install "${WQ_SMOKE_BUILD_DIR}" --prefix "${prefix}"
            ${config_args})
endfunction()
