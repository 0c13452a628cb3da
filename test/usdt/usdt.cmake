# SPDX-License-Identifier: BSL-1.0
# USDT probes (src/trace.hpp), registered only when the library is built with them (WQ_USDT):
#   - "usdt: probe notes": the built library holds a stapsdt note per probe, provider wq, with
#     its argument count and no semaphore (test/usdt/check_notes.cmake, readelf -n);
#   - "usdt: probes fire": gdb, which reads those notes as perf and bpftrace do, sees every
#     probe fire for each item of test/usdt/usdt_probes.cpp with the right arguments and from
#     the right sites (test/usdt/check_probes_fire.cmake). gdb needs no kernel tracing
#     support, so this runs without perf's privileges. Not registered without gdb.
# Included from test/CMakeLists.txt.
if(NOT WQ_USDT)
  return()
endif()

# GNU binutils' readelf, which decodes stapsdt notes; CMAKE_READELF may be llvm-readelf (with
# clang), which prints them as hex only.
find_program(WQ_READELF readelf)
if(WQ_READELF)
  add_test(NAME "usdt: probe notes"
           COMMAND ${CMAKE_COMMAND} -DREADELF=${WQ_READELF} -DLIB=$<TARGET_FILE:wq>
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/usdt/check_notes.cmake)
  set_tests_properties("usdt: probe notes" PROPERTIES TIMEOUT 60)
else()
  message(STATUS "wq: readelf not found: test \"usdt: probe notes\" not registered")
endif()

add_executable(usdt_probes ${CMAKE_CURRENT_SOURCE_DIR}/usdt/usdt_probes.cpp)
target_link_libraries(usdt_probes PRIVATE wq::wq wq_warnings)
find_program(WQ_GDB gdb)
if(WQ_GDB)
  add_test(NAME "usdt: probes fire"
           COMMAND ${CMAKE_COMMAND} -DGDB=${WQ_GDB} -DEXE=$<TARGET_FILE:usdt_probes>
                   -DSCRIPT=${CMAKE_CURRENT_SOURCE_DIR}/usdt/probes.py
                   -DITEMS=${CMAKE_CURRENT_BINARY_DIR}/usdt_probes_items.txt
                   -DSITES=$<IF:$<CONFIG:Debug,RelWithDebInfo>,ON,OFF>
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/usdt/check_probes_fire.cmake)
  set_tests_properties("usdt: probes fire" PROPERTIES TIMEOUT 300
                       SKIP_REGULAR_EXPRESSION "usdt: skipped: ")
else()
  message(STATUS "wq: gdb not found: test \"usdt: probes fire\" not registered")
endif()
