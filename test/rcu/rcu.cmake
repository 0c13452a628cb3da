# SPDX-License-Identifier: BSL-1.0
# rcu_work (wq/rcu_work.hpp) is header-only on the caller's liburcu flavour; its tests are built
# when Debian's liburcu-dev is installed (scripts/install-deps.sh installs it), and skipped with
# a message otherwise, as the component itself is optional.
find_path(WQ_URCU_INCLUDE_DIR urcu/urcu-memb.h)
find_library(WQ_URCU_MEMB_LIBRARY urcu-memb)
find_library(WQ_URCU_COMMON_LIBRARY urcu-common)
if(WQ_URCU_INCLUDE_DIR AND WQ_URCU_MEMB_LIBRARY AND WQ_URCU_COMMON_LIBRARY)
  add_executable(rcu_work_test ${CMAKE_CURRENT_LIST_DIR}/rcu_work_test.cpp
                               $<TARGET_OBJECTS:wq_catch_main>)
  target_include_directories(rcu_work_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                                                   ${WQ_URCU_INCLUDE_DIR})
  target_link_libraries(rcu_work_test PRIVATE wq::wq Catch2::Catch2 wq_warnings
                                              ${WQ_URCU_MEMB_LIBRARY} ${WQ_URCU_COMMON_LIBRARY})
  catch_discover_tests(rcu_work_test TEST_PREFIX "rcu_work_test: " EXTRA_ARGS --warn NoTests
                       PROPERTIES TIMEOUT 60)
else()
  message(STATUS "wq: liburcu not found (apt-get install liburcu-dev): rcu_work tests not built")
endif()
