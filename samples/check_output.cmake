# SPDX-License-Identifier: BSL-1.0
# Runs EXE with ARGS (a ;-list) and fails unless it exits 0 and its stdout matches EXPECT.
execute_process(COMMAND ${EXE} ${ARGS} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} exited with ${rc}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "${EXE}: output does not match\n  ${EXPECT}\nstdout:\n${out}\nstderr:\n${err}")
endif()
message(STATUS "${EXE}: output as expected:\n${out}")
