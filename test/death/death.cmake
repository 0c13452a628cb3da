# SPDX-License-Identifier: BSL-1.0
# Death tests (issue 6, item 2): an exception escaping a work function ends in std::terminate,
# however the function was queued, as does arming a delayed item with no memory left for its
# timer wait. Each case must exit abnormally with the marker the program's terminate handler
# prints. Included from test/CMakeLists.txt.
include(${PROJECT_SOURCE_DIR}/cmake/wq_run_test.cmake)
add_executable(escape_terminate ${CMAKE_CURRENT_SOURCE_DIR}/death/escape_terminate.cpp)
target_link_libraries(escape_terminate PRIVATE wq::wq wq_warnings)
target_include_directories(escape_terminate PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
foreach(pair "member|a typed member work function"
             "c_style|a C-style work function"
             "spawn|a try_spawn closure"
             "executor|a function posted to get_executor\\(\\)"
             "delayed|a delayed work function")
  string(REPLACE "|" ";" parts "${pair}")
  list(GET parts 0 case)
  list(GET parts 1 what)
  wq_add_run_test(
    NAME "exceptions: an exception escaping a work function (${case}) ends in std::terminate"
    COMMAND $<TARGET_FILE:escape_terminate> ${case}
    RC nonzero MATCH "wq-test: std::terminate called: escaped from ${what}" MATCH_IN stderr)
endforeach()
add_test(NAME "exceptions: a work function that catches its own exception finishes normally"
         COMMAND escape_terminate caught)
set_tests_properties("exceptions: a work function that catches its own exception finishes normally"
                     PROPERTIES PASS_REGULAR_EXPRESSION "caught inside the work function: thrown inside"
                     FAIL_REGULAR_EXPRESSION "std::terminate called" TIMEOUT 60)
wq_add_run_test(
  NAME "fault: arming a delayed item with no memory for its timer wait ends in std::terminate"
  COMMAND $<TARGET_FILE:escape_terminate> arm_oom
  RC nonzero MATCH "wq-test: std::terminate called: std::bad_alloc" MATCH_IN stderr)
