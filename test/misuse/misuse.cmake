# SPDX-License-Identifier: BSL-1.0
# Misuse that ends the program by design (debug assertions): each program must abort with its
# report. Included from test/CMakeLists.txt.
add_executable(misuse_destroy_pending_work ${CMAKE_CURRENT_SOURCE_DIR}/misuse/destroy_pending_work.cpp)
target_link_libraries(misuse_destroy_pending_work PRIVATE wq::wq wq_warnings)
add_test(NAME "misuse: destroying a pending work item aborts with a report (misuse 5.10)"
         COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:misuse_destroy_pending_work>
                 "-DEXPECT=wq::work destroyed while pending"
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/misuse/expect_abort.cmake)
set_tests_properties("misuse: destroying a pending work item aborts with a report (misuse 5.10)"
                     PROPERTIES TIMEOUT 60)
