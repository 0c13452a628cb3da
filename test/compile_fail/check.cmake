# SPDX-License-Identifier: BSL-1.0
# Driver for one compile-fail test (see compile_fail.cmake), run with cmake -P:
#   -DWQ_CF_SETTINGS=<settings.cmake> -DWQ_CF_SOURCE=<file.cpp> -DWQ_CF_MODE=fail|control
#   fail:    compiling must fail and the output must match the file's `// expect-error:` regex
#   control: compiling with -DWQ_COMPILE_FAIL_CONTROL must succeed
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS WQ_CF_SETTINGS WQ_CF_SOURCE WQ_CF_MODE)
  if("${${var}}" STREQUAL "")
    message(FATAL_ERROR "check.cmake: pass -D${var}=...")
  endif()
endforeach()
if(NOT WQ_CF_MODE MATCHES "^(fail|control)$")
  message(FATAL_ERROR "check.cmake: WQ_CF_MODE must be 'fail' or 'control', not '${WQ_CF_MODE}'")
endif()
include("${WQ_CF_SETTINGS}")

# The expected-error regex: the first `// expect-error:` line of the leading // comment block.
file(STRINGS "${WQ_CF_SOURCE}" lines LIMIT_COUNT 50)
set(regex "")
foreach(line IN LISTS lines)
  if(line MATCHES "^[ \t]*//[ \t]*expect-error:[ \t]*(.*[^ \t\r])[ \t\r]*$")
    set(regex "${CMAKE_MATCH_1}")
    break()
  elseif(NOT line MATCHES "^[ \t]*//")
    break()
  endif()
endforeach()
if(regex STREQUAL "")
  message(FATAL_ERROR "${WQ_CF_SOURCE}: the first line must be `// expect-error: <regex>`")
endif()

# The command line.
separate_arguments(cxx_flags UNIX_COMMAND "${WQ_CF_CXX_FLAGS}")
# The C locale keeps diagnostics in English with ASCII quotes ('x', not GCC's UTF-8 quotes).
set(command "${CMAKE_COMMAND}" -E env LC_ALL=C LANG=C LANGUAGE= ${WQ_CF_CXX_LAUNCHER} "${WQ_CF_CXX}" ${cxx_flags} -std=c++20 -fsyntax-only
            -fdiagnostics-color=never)
list(REMOVE_DUPLICATES WQ_CF_INCLUDES)
foreach(dir IN LISTS WQ_CF_INCLUDES)
  # Like CMake, leave the compiler's own directories alone: -I/usr/include breaks #include_next.
  if(NOT dir STREQUAL "" AND NOT dir IN_LIST WQ_CF_IMPLICIT_INCLUDES)
    list(APPEND command "-I${dir}")
  endif()
endforeach()
foreach(def IN LISTS WQ_CF_DEFINES)
  if(NOT def STREQUAL "")
    list(APPEND command "-D${def}")
  endif()
endforeach()
if(WQ_CF_MODE STREQUAL "control")
  list(APPEND command -DWQ_COMPILE_FAIL_CONTROL)
endif()
list(APPEND command "${WQ_CF_SOURCE}")

list(JOIN command " " printable)
message(STATUS "${printable}")
execute_process(COMMAND ${command} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)

if(WQ_CF_MODE STREQUAL "control")
  if(NOT rc EQUAL 0)
    set(hint "")
    file(READ "${WQ_CF_SOURCE}" text)
    if(NOT text MATCHES "WQ_COMPILE_FAIL_CONTROL")
      set(hint "\nThe file has no `#ifdef WQ_COMPILE_FAIL_CONTROL` branch with the correct code.")
    endif()
    message(FATAL_ERROR "control build of ${WQ_CF_SOURCE} failed (${rc}); "
                        "the correct variant must compile:\n${out}${hint}")
  endif()
  message(STATUS "control build compiled as required")
  return()
endif()

if(rc EQUAL 0)
  message(FATAL_ERROR "${WQ_CF_SOURCE} compiled, but it must not:\n${out}")
endif()
if(NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "could not run the compiler (${rc}):\n${out}")
endif()
if(NOT out MATCHES "${regex}")
  message(FATAL_ERROR "${WQ_CF_SOURCE} failed to compile (${rc}) as required, but no "
                      "diagnostic matches the expected regex\n  ${regex}\nCompiler output:\n${out}")
endif()
message(STATUS "failed to compile as required; diagnostic matches: ${CMAKE_MATCH_0}")
