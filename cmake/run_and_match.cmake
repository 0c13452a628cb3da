# SPDX-License-Identifier: BSL-1.0
# The one run-and-match driver of the test suite (cmake -P). Runs EXE with ARGS (a ;-list) and
# fails, saying why and showing the output, unless
#   - its exit status is RC (a number) or, with RC "nonzero", anything but 0;
#   - MATCH_IN (stdout, stderr or all = stdout followed by stderr; default all) matches MATCH;
#   - nothing it printed matches REJECT (optional);
#   - with NO_REPORTS ON, it printed no sanitizer report and no wq misuse report.
# Registered through wq_add_run_test (cmake/wq_run_test.cmake).
foreach(var EXE RC MATCH)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_and_match.cmake: ${var} is not set")
  endif()
endforeach()
if(NOT DEFINED MATCH_IN)
  set(MATCH_IN all)
endif()
execute_process(COMMAND ${EXE} ${ARGS} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
set(all "${out}${err}")
set(shown "exit status ${rc}\nstdout:\n${out}\nstderr:\n${err}")
if(RC STREQUAL "nonzero")
  if(rc STREQUAL "0")
    message(FATAL_ERROR "${EXE} exited with 0, expected a failure\n${shown}")
  endif()
elseif(NOT rc STREQUAL "${RC}")
  message(FATAL_ERROR "${EXE} exited with '${rc}', expected ${RC}\n${shown}")
endif()
if(MATCH_IN STREQUAL "stdout")
  set(text "${out}")
elseif(MATCH_IN STREQUAL "stderr")
  set(text "${err}")
else()
  set(text "${all}")
endif()
if(NOT text MATCHES "${MATCH}")
  message(FATAL_ERROR "${EXE}: ${MATCH_IN} does not match\n  ${MATCH}\n${shown}")
endif()
if(DEFINED REJECT AND NOT REJECT STREQUAL "" AND all MATCHES "${REJECT}")
  message(FATAL_ERROR "${EXE}: output matches '${REJECT}', which must not happen\n${shown}")
endif()
if(NO_REPORTS AND all MATCHES "(Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:|misuse ")
  message(FATAL_ERROR "${EXE}: a sanitizer or misuse report\n${shown}")
endif()
message(STATUS "${EXE}: exit status ${rc} and output as expected:\n${all}")
