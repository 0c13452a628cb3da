# SPDX-License-Identifier: BSL-1.0
# Compile-fail tests: every test/compile_fail/<stem>.cpp must NOT compile, with a diagnostic
# matching the regex on its `// expect-error: <regex>` line (the first line, or any line of the
# leading // comment block; CMake regex syntax, searched anywhere in the compiler's combined
# output, which is uncoloured and in the C locale, so quotes are ASCII '). Write each file as
#     #ifdef WQ_COMPILE_FAIL_CONTROL
#     <the nearest correct code>
#     #else
#     <the misuse that must be rejected>
#     #endif
# Two tests per file:
#   compile-fail: <stem>          without WQ_COMPILE_FAIL_CONTROL: compilation fails + regex matches
#   compile-fail control: <stem>  with -DWQ_COMPILE_FAIL_CONTROL: compilation succeeds, so a
#                                 compile-fail test cannot pass because of an unrelated error.
# Files are checked with `<CMAKE_CXX_COMPILER> <CMAKE_CXX_FLAGS> -std=c++20 -fsyntax-only` and the
# include directories and definitions wq::wq gives its users. Messages differ between GCC and
# Clang (CI runs both): match the text both print, e.g. the static_assert message.
# Included from test/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR is test/.

file(GLOB wq_compile_fail_sources CONFIGURE_DEPENDS
     "${CMAKE_CURRENT_SOURCE_DIR}/compile_fail/*.cpp")

if(wq_compile_fail_sources)
  # What the driver needs from this build. The generator expressions collect wq's usage
  # requirements transitively (Boost::headers included); file(GENERATE) evaluates them.
  set(wq_cf_settings "${CMAKE_CURRENT_BINARY_DIR}/compile_fail/settings.cmake")
  string(CONCAT wq_cf_content
    "set(WQ_CF_CXX [==[${CMAKE_CXX_COMPILER}]==])\n"
    "set(WQ_CF_CXX_LAUNCHER [==[${CMAKE_CXX_COMPILER_LAUNCHER}]==])\n"
    "set(WQ_CF_CXX_FLAGS [==[${CMAKE_CXX_FLAGS}]==])\n"
    "set(WQ_CF_INCLUDES [==[$<TARGET_PROPERTY:wq,INTERFACE_INCLUDE_DIRECTORIES>]==])\n"
    "set(WQ_CF_DEFINES [==[$<TARGET_PROPERTY:wq,INTERFACE_COMPILE_DEFINITIONS>]==])\n"
    "set(WQ_CF_IMPLICIT_INCLUDES [==[${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES}]==])\n")
  file(GENERATE OUTPUT "${wq_cf_settings}" CONTENT "${wq_cf_content}")

  foreach(src IN LISTS wq_compile_fail_sources)
    get_filename_component(stem "${src}" NAME_WE)
    foreach(mode IN ITEMS fail control)
      if(mode STREQUAL "fail")
        set(test_name "compile-fail: ${stem}")
      else()
        set(test_name "compile-fail control: ${stem}")
      endif()
      add_test(NAME "${test_name}"
               COMMAND "${CMAKE_COMMAND}" "-DWQ_CF_SETTINGS=${wq_cf_settings}"
                       "-DWQ_CF_SOURCE=${src}" "-DWQ_CF_MODE=${mode}"
                       -P "${CMAKE_CURRENT_SOURCE_DIR}/compile_fail/check.cmake")
      set_tests_properties("${test_name}" PROPERTIES TIMEOUT 120 LABELS compile_fail)
    endforeach()
  endforeach()
endif()
