# SPDX-License-Identifier: BSL-1.0
# Install smoke test: installs this build tree into <build>/install-smoke/prefix, then configures,
# builds and runs the standalone consumer project in test/install (find_package(wq) + wq::wq)
# against that prefix with this build's compiler, build type and compiler/linker flags, so a
# sanitizer build also checks that the installed package works in a sanitizer build.
# Included from test/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR is test/.

set(wq_smoke_dir "${PROJECT_BINARY_DIR}/install-smoke")

# The parent build's settings, written to a file rather than passed as -D arguments so that
# lists (CMAKE_PREFIX_PATH) and flags with spaces or quotes reach the script unchanged.
get_property(wq_smoke_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
set(wq_smoke_settings "")
foreach(var IN ITEMS CMAKE_GENERATOR CMAKE_GENERATOR_PLATFORM CMAKE_GENERATOR_TOOLSET
                     CMAKE_MAKE_PROGRAM CMAKE_CXX_COMPILER CMAKE_CXX_COMPILER_LAUNCHER
                     CMAKE_CXX_FLAGS CMAKE_EXE_LINKER_FLAGS CMAKE_SHARED_LINKER_FLAGS
                     CMAKE_MODULE_LINKER_FLAGS CMAKE_PREFIX_PATH CMAKE_FIND_ROOT_PATH
                     CMAKE_TOOLCHAIN_FILE Boost_DIR)
  string(APPEND wq_smoke_settings "set(WQ_SMOKE_${var} [==[${${var}}]==])\n")
endforeach()
string(APPEND wq_smoke_settings
       "set(WQ_SMOKE_BUILD_DIR [==[${PROJECT_BINARY_DIR}]==])\n"
       "set(WQ_SMOKE_WORK_DIR [==[${wq_smoke_dir}]==])\n"
       "set(WQ_SMOKE_CONSUMER_SOURCE_DIR [==[${CMAKE_CURRENT_SOURCE_DIR}/install]==])\n"
       "set(WQ_SMOKE_SAMPLES_DIR [==[${PROJECT_SOURCE_DIR}/samples]==])\n"
       "set(WQ_SMOKE_IS_MULTI_CONFIG [==[${wq_smoke_multi_config}]==])\n"
       "set(WQ_SMOKE_PROJECT_VERSION [==[${PROJECT_VERSION}]==])\n"
       "set(WQ_SMOKE_INSTALL_LIBDIR [==[${CMAKE_INSTALL_LIBDIR}]==])\n")
file(WRITE "${wq_smoke_dir}/settings.cmake" "${wq_smoke_settings}")

add_test(NAME "install: find_package(wq) consumer builds and runs"
         COMMAND "${CMAKE_COMMAND}"
                 "-DWQ_SMOKE_SETTINGS=${wq_smoke_dir}/settings.cmake"
                 "-DWQ_SMOKE_CONFIG=$<CONFIG>"
                 -P "${CMAKE_CURRENT_SOURCE_DIR}/install/run_smoke.cmake")
# COST: the longest test of every suite (it builds a consumer and the samples: 130 s under
# ASan), so ctest starts it first, beside the others, instead of last, alone.
set_tests_properties("install: find_package(wq) consumer builds and runs" PROPERTIES
                     TIMEOUT 300 RESOURCE_LOCK install_smoke LABELS install COST 10000)

# The version policy, as find_package sees it: the installed wqConfigVersion.cmake accepts this
# MAJOR.MINOR and refuses an older or newer minor while the major version is 0
# (install/run_version_check.cmake). Configure-only, a few seconds.
add_test(NAME "install: find_package(wq) follows the 0.x version policy"
         COMMAND "${CMAKE_COMMAND}"
                 "-DWQ_SMOKE_SETTINGS=${wq_smoke_dir}/settings.cmake"
                 "-DWQ_SMOKE_CONFIG=$<CONFIG>"
                 -P "${CMAKE_CURRENT_SOURCE_DIR}/install/run_version_check.cmake")
set_tests_properties("install: find_package(wq) follows the 0.x version policy" PROPERTIES
                     TIMEOUT 120 LABELS install)

# The pkg-config file, used as a project without CMake would (install/run_pkgconfig.cmake).
# Needs pkg-config (Debian: pkg-config, in scripts/install-deps.sh); not registered without it.
find_program(WQ_PKG_CONFIG NAMES pkg-config pkgconf)
if(WQ_PKG_CONFIG)
  add_test(NAME "install: pkg-config consumer builds and runs"
           COMMAND "${CMAKE_COMMAND}"
                   "-DWQ_SMOKE_SETTINGS=${wq_smoke_dir}/settings.cmake"
                   "-DWQ_SMOKE_CONFIG=$<CONFIG>" "-DPKG_CONFIG=${WQ_PKG_CONFIG}"
                   -P "${CMAKE_CURRENT_SOURCE_DIR}/install/run_pkgconfig.cmake")
  set_tests_properties("install: pkg-config consumer builds and runs" PROPERTIES
                       TIMEOUT 300 LABELS install COST 1000)
else()
  message(STATUS "wq: pkg-config not found: test \"install: pkg-config consumer builds and runs\" "
                 "not registered")
endif()
