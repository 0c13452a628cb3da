# SPDX-License-Identifier: BSL-1.0
# Misuse under the debug-build policy: with wq::abort_on_misuse installed, each case must end
# the program with its report (the debug assertion of issue 3, §5). Included from
# test/CMakeLists.txt.
include(${PROJECT_SOURCE_DIR}/cmake/wq_run_test.cmake)
add_executable(misuse_abort ${CMAKE_CURRENT_SOURCE_DIR}/misuse/misuse_abort.cpp)
target_link_libraries(misuse_abort PRIVATE wq::wq wq_warnings)
foreach(code destroyed_while_pending destroyed_while_running flush_self cancel_sync_self
             wait_on_own_queue wait_needs_this_worker disable_count_underflow no_work_function
             set_max_active_on_ordered)
  wq_add_run_test(NAME "misuse: ${code} aborts with its report under abort_on_misuse (§5)"
                  COMMAND $<TARGET_FILE:misuse_abort> ${code}
                  RC nonzero MATCH "wq: misuse ${code}: " MATCH_IN stderr)
endforeach()
add_test(NAME "misuse: a notice does not abort under abort_on_misuse"
         COMMAND misuse_abort notice)
set_tests_properties("misuse: a notice does not abort under abort_on_misuse"
                     PROPERTIES PASS_REGULAR_EXPRESSION "notice max_active_clamped.*max_active 2048"
                     TIMEOUT 60)
