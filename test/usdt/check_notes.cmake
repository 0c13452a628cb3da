# SPDX-License-Identifier: BSL-1.0
# Fails unless `READELF -n LIB` (the built libwq, static or shared) lists the stapsdt notes of
# the four probes of src/trace.hpp, with provider wq, each with its number of arguments and no
# semaphore (the plain form), and no other probe of provider wq. READELF must be GNU binutils'
# readelf: it decodes stapsdt notes (llvm-readelf 14 prints them as hex).
execute_process(COMMAND ${READELF} -n ${LIB} OUTPUT_VARIABLE out ERROR_VARIABLE err
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${READELF} -n ${LIB} exited with ${rc}\n${err}")
endif()
if(out MATCHES "stapsdt +0x[0-9a-f]+\tUnknown note type")
  message(FATAL_ERROR "${READELF} does not decode stapsdt notes: use GNU binutils' readelf")
endif()

# name -> number of arguments
set(want_workqueue_queue_work 4)
set(want_workqueue_activate_work 1)
set(want_workqueue_execute_start 2)
set(want_workqueue_execute_end 2)

#     Provider: wq
#     Name: workqueue_queue_work
#     Location: 0x..., Base: 0x..., Semaphore: 0x0000000000000000
#     Arguments: 8@%rbx 8@%rax -4@%edx ...
string(REGEX MATCHALL
       "Provider: wq\n +Name: [^\n]+\n +Location: [^\n]+\n +Arguments:[^\n]*" notes "${out}")
set(seen "")
foreach(note IN LISTS notes)
  string(REGEX MATCH "Name: ([^\n]+)\n" m "${note}")
  set(name "${CMAKE_MATCH_1}")
  if(NOT DEFINED want_${name})
    message(FATAL_ERROR "unexpected probe wq:${name} in ${LIB}:\n${note}")
  endif()
  string(REGEX MATCH "Arguments:([^\n]*)" m "${note}")
  string(REGEX MATCHALL "[-0-9]+@" args "${CMAKE_MATCH_1}")
  list(LENGTH args argc)
  if(NOT argc EQUAL want_${name})
    message(FATAL_ERROR "wq:${name} has ${argc} arguments, want ${want_${name}}:\n${note}")
  endif()
  if(NOT note MATCHES "Semaphore: 0x0+\n")
    message(FATAL_ERROR "wq:${name} has a semaphore (want the plain form):\n${note}")
  endif()
  list(APPEND seen ${name})
endforeach()
list(LENGTH seen sites)
list(REMOVE_DUPLICATES seen)
foreach(name workqueue_queue_work workqueue_activate_work workqueue_execute_start
             workqueue_execute_end)
  list(FIND seen ${name} at)
  if(at EQUAL -1)
    message(FATAL_ERROR "no stapsdt note for wq:${name} in ${LIB}; readelf -n says:\n${out}")
  endif()
endforeach()
message(STATUS "${LIB}: ${sites} probe sites of provider wq: ${seen}")
