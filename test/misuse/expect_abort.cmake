# SPDX-License-Identifier: BSL-1.0
# Runs EXE and fails unless it exits abnormally (non-zero) with stderr matching EXPECT.
execute_process(COMMAND ${EXE} ${ARG} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(rc EQUAL 0)
  message(FATAL_ERROR "${EXE} exited normally; the misuse was not reported\n${out}\n${err}")
endif()
if(NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "${EXE} failed (${rc}) without the expected report '${EXPECT}':\n${err}")
endif()
message(STATUS "${EXE}: reported as expected (${rc})")
