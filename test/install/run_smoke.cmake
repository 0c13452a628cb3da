# SPDX-License-Identifier: BSL-1.0
# Driver for the install smoke test (see install_smoke.cmake), run with cmake -P:
#   -DWQ_SMOKE_SETTINGS=<settings.cmake written at configure time> -DWQ_SMOKE_CONFIG=<config>
# (a) cmake --install <build> --prefix <build>/install-smoke/prefix
# (b) configure test/install against that prefix with the parent's compiler, build type and flags
# (c) build it, (d) run wq_consumer: it must exit 0 and print "wq consumer ok".
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/smoke_common.cmake")  # settings, smoke_run

set(prefix "${WQ_SMOKE_WORK_DIR}/prefix")
set(consumer_build "${WQ_SMOKE_WORK_DIR}/consumer-build")

set(config_args "")
if(WQ_SMOKE_CONFIG)
  set(config_args --config "${WQ_SMOKE_CONFIG}")
endif()

# Start from scratch so stale files from an earlier run cannot hide a missing install rule.
file(REMOVE_RECURSE "${prefix}" "${consumer_build}")

# (a) install
smoke_run("install" "${CMAKE_COMMAND}" --install "${WQ_SMOKE_BUILD_DIR}" --prefix "${prefix}"
          ${config_args})

# (b) configure the consumer. The parent's settings go through an initial-cache file (-C), so
# lists and flags with spaces or quotes arrive intact.
set(initial_cache "")
function(smoke_cache var value)
  set(initial_cache "${initial_cache}set(${var} [==[${value}]==] CACHE STRING \"\")\n"
      PARENT_SCOPE)
endfunction()
if(NOT WQ_SMOKE_IS_MULTI_CONFIG)
  smoke_cache(CMAKE_BUILD_TYPE "${WQ_SMOKE_CONFIG}")
endif()
smoke_cache(WQ_SAMPLES_DIR "${WQ_SMOKE_SAMPLES_DIR}")
# The installed prefix first, then whatever the parent searched (e.g. for Boost).
set(prefix_path "${prefix}" ${WQ_SMOKE_CMAKE_PREFIX_PATH})
smoke_cache(CMAKE_PREFIX_PATH "${prefix_path}")
foreach(var IN ITEMS CMAKE_MAKE_PROGRAM CMAKE_CXX_COMPILER CMAKE_CXX_COMPILER_LAUNCHER
                     CMAKE_CXX_FLAGS CMAKE_EXE_LINKER_FLAGS CMAKE_SHARED_LINKER_FLAGS
                     CMAKE_MODULE_LINKER_FLAGS CMAKE_FIND_ROOT_PATH CMAKE_TOOLCHAIN_FILE
                     Boost_DIR)
  if(NOT WQ_SMOKE_${var} STREQUAL "")
    smoke_cache(${var} "${WQ_SMOKE_${var}}")
  endif()
endforeach()
file(WRITE "${WQ_SMOKE_WORK_DIR}/consumer-cache.cmake" "${initial_cache}")
message(STATUS "install smoke: consumer initial cache:\n${initial_cache}")

set(configure_args -S "${WQ_SMOKE_CONSUMER_SOURCE_DIR}" -B "${consumer_build}"
                   -G "${WQ_SMOKE_CMAKE_GENERATOR}" -C "${WQ_SMOKE_WORK_DIR}/consumer-cache.cmake")
if(NOT WQ_SMOKE_CMAKE_GENERATOR_PLATFORM STREQUAL "")
  list(APPEND configure_args -A "${WQ_SMOKE_CMAKE_GENERATOR_PLATFORM}")
endif()
if(NOT WQ_SMOKE_CMAKE_GENERATOR_TOOLSET STREQUAL "")
  list(APPEND configure_args -T "${WQ_SMOKE_CMAKE_GENERATOR_TOOLSET}")
endif()
smoke_run("configure consumer" "${CMAKE_COMMAND}" ${configure_args})

# The consumer must have found the package we just installed, not some other copy of wq.
file(STRINGS "${consumer_build}/CMakeCache.txt" wq_dir_line REGEX "^wq_DIR:")
string(REGEX REPLACE "^wq_DIR:[A-Z]+=" "" wq_dir "${wq_dir_line}")
file(REAL_PATH "${wq_dir}" wq_dir)
file(REAL_PATH "${prefix}" real_prefix)
string(FIND "${wq_dir}/" "${real_prefix}/" pos)
if(NOT pos EQUAL 0)
  message(FATAL_ERROR "install smoke: the consumer found wq in '${wq_dir}', "
                      "not in the install prefix '${real_prefix}'")
endif()

# (c) build
smoke_run("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}" ${config_args})

# (d) run
set(exe "")
foreach(candidate IN ITEMS "${consumer_build}/wq_consumer"
                           "${consumer_build}/${WQ_SMOKE_CONFIG}/wq_consumer")
  if(EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
    set(exe "${candidate}")
    break()
  endif()
endforeach()
if(exe STREQUAL "")
  message(FATAL_ERROR "install smoke: wq_consumer not found in ${consumer_build}")
endif()
smoke_run("run consumer" "${exe}")
message(STATUS "install smoke: consumer output:\n${smoke_output}")
if(NOT smoke_output MATCHES "wq consumer ok")
  message(FATAL_ERROR "install smoke: consumer output lacks 'wq consumer ok'")
endif()

# (e) the usage samples, sized down: a service with deadlines and retries, session churn, and
# the Catch2 test driving virtual time.
function(smoke_sample name expect)
  set(exe "")
  foreach(candidate IN ITEMS "${consumer_build}/${name}" "${consumer_build}/${WQ_SMOKE_CONFIG}/${name}")
    if(EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
      set(exe "${candidate}")
      break()
    endif()
  endforeach()
  if(exe STREQUAL "")
    message(FATAL_ERROR "install smoke: ${name} not found in ${consumer_build}")
  endif()
  smoke_run("run ${name}" "${exe}" ${ARGN})
  if(NOT smoke_output MATCHES "${expect}")
    message(FATAL_ERROR "install smoke: ${name} output lacks '${expect}':\n${smoke_output}")
  endif()
  message(STATUS "install smoke: ${name} ok")
endfunction()
smoke_sample(sample_06_asio_service "OK: every request answered" --clients 4 --requests 20)
smoke_sample(sample_07_session_churn "OK: 5000 sessions constructed and destroyed" --sessions 5000)
smoke_sample(sample_05_testing_delayed_work "All tests passed")
smoke_sample(wq_kernel_snippet "kernel snippet ok")
if(EXISTS "${consumer_build}/rcu_snippet_skipped.txt")
  message(STATUS "install smoke: liburcu not found, rcu snippet not built")
else()
  smoke_sample(wq_rcu_snippet "rcu snippet ok")
endif()
smoke_sample(hello/hello "connection 7: idle timeout fired\nio.run\\(\\) returned with nothing pending")
message(STATUS "install smoke: passed")
