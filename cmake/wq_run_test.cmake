# SPDX-License-Identifier: BSL-1.0
# wq_add_run_test(NAME <test name> COMMAND <exe> [<arg>...] RC <n|nonzero> MATCH <regex>
#                 [MATCH_IN stdout|stderr|all] [REJECT <regex>] [NO_REPORTS] [TIMEOUT <s>])
# Adds a ctest that runs the command through cmake/run_and_match.cmake (see there); TIMEOUT
# defaults to 60 s.
function(wq_add_run_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "NO_REPORTS" "NAME;RC;MATCH;MATCH_IN;REJECT;TIMEOUT"
                        "COMMAND")
  if(NOT arg_NAME OR NOT arg_COMMAND OR NOT DEFINED arg_RC OR NOT DEFINED arg_MATCH)
    message(FATAL_ERROR "wq_add_run_test: NAME, COMMAND, RC and MATCH are required")
  endif()
  list(POP_FRONT arg_COMMAND exe)
  if(NOT arg_MATCH_IN)
    set(arg_MATCH_IN all)
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 60)
  endif()
  set(no_reports OFF)
  if(arg_NO_REPORTS)
    set(no_reports ON)
  endif()
  add_test(NAME "${arg_NAME}"
           COMMAND ${CMAKE_COMMAND} "-DEXE=${exe}" "-DARGS=${arg_COMMAND}" "-DRC=${arg_RC}"
                   "-DMATCH=${arg_MATCH}" "-DMATCH_IN=${arg_MATCH_IN}" "-DREJECT=${arg_REJECT}"
                   "-DNO_REPORTS=${no_reports}"
                   -P ${PROJECT_SOURCE_DIR}/cmake/run_and_match.cmake)
  set_tests_properties("${arg_NAME}" PROPERTIES TIMEOUT ${arg_TIMEOUT})
endfunction()
