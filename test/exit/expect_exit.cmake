# SPDX-License-Identifier: BSL-1.0
# Runs EXE and fails unless it exits with code RC and its stdout+stderr match EXPECT, with no
# sanitizer report, misuse report or match of REJECT (optional). Used by test/exit/exit.cmake.
execute_process(COMMAND ${EXE} ${ARG} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
set(all "${out}${err}")
if(NOT rc STREQUAL "${RC}")
  message(FATAL_ERROR "${EXE} exited with '${rc}', expected ${RC}:\n${all}")
endif()
if(NOT all MATCHES "${EXPECT}")
  message(FATAL_ERROR "${EXE}: output does not match '${EXPECT}':\n${all}")
endif()
if(DEFINED REJECT AND all MATCHES "${REJECT}")
  message(FATAL_ERROR "${EXE}: output matches '${REJECT}', which must not happen:\n${all}")
endif()
if(all MATCHES "(Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:|misuse ")
  message(FATAL_ERROR "${EXE}: sanitizer report or misuse at exit:\n${all}")
endif()
message(STATUS "${EXE}: exited ${rc} as promised")
