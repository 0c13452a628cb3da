# SPDX-License-Identifier: BSL-1.0
# Exit and destruction order (issue 6, item 5; docs/bad-input.md, "Exit and destruction
# order"): one program per case, each run as a ctest that checks its exit code, the lines it
# prints (in order) and that no sanitizer or misuse report appears. Included from
# test/CMakeLists.txt.
include(${PROJECT_SOURCE_DIR}/cmake/wq_run_test.cmake)
function(wq_exit_test stem rc expect reject)
  add_executable(${stem} ${CMAKE_CURRENT_SOURCE_DIR}/exit/${stem}.cpp)
  target_link_libraries(${stem} PRIVATE wq::wq wq_warnings)
  wq_add_run_test(NAME "exit: ${stem}" COMMAND $<TARGET_FILE:${stem}> RC ${rc}
                  MATCH "${expect}" REJECT "${reject}" NO_REPORTS)
endfunction()

wq_exit_test(exit_static_destruction 0
  "main: calling exit\\(0\\) while an item runs.*late user: its item ran during static destruction.*early user: after the shutdown, queueing returns rejected; the long item finished: 1"
  "must not happen")
wq_exit_test(exit_delayed_items 0
  "main: exiting with two armed items.*diagnostic 101: queue 'events': 1 armed item.*static item: pending at its destruction: 0"
  "must not happen|\\(misuse\\)")
wq_exit_test(exit_queue_destroyed_first 0
  "plain item ran on first.*destroyed 'first': 1 armed item cancelled, delayed item pending: 0.*queueing on the destroyed queue: rejected.*item destroyed after both queues"
  "must not happen")
wq_exit_test(exit_from_work 7 "work function: calling exit\\(7\\)" "must not happen")
