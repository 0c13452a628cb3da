# SPDX-License-Identifier: BSL-1.0
# Driver for "install: pkg-config consumer builds and runs", run with cmake -P:
#   -DWQ_SMOKE_SETTINGS=<settings.cmake> -DWQ_SMOKE_CONFIG=<config> -DPKG_CONFIG=<pkg-config>
# Installs the build into <build>/install-smoke/pkgconfig/prefix, then builds test/install/main.cpp
# the way a project without CMake would:  c++ -std=c++20 main.cpp $(pkg-config --cflags --libs wq)
# (with PKG_CONFIG_PATH at the install's pkgconfig directory), and runs it. The parent's compiler
# and its CMAKE_CXX_FLAGS / CMAKE_EXE_LINKER_FLAGS are used, so a sanitizer build links.
cmake_minimum_required(VERSION 3.25)
include("${CMAKE_CURRENT_LIST_DIR}/smoke_common.cmake")
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "run_pkgconfig.cmake: pass -DPKG_CONFIG=<pkg-config executable>")
endif()

set(work "${WQ_SMOKE_WORK_DIR}/pkgconfig")
set(prefix "${work}/prefix")
smoke_install("${prefix}")

set(pc_dir "${prefix}/${WQ_SMOKE_INSTALL_LIBDIR}/pkgconfig")
if(NOT EXISTS "${pc_dir}/wq.pc")
  message(FATAL_ERROR "install test: ${pc_dir}/wq.pc was not installed")
endif()
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")

# The file we installed answers, not another wq.pc on the machine, and it carries our version.
smoke_run("pkg-config finds wq" "${PKG_CONFIG}" --print-errors --variable=pcfiledir wq)
string(STRIP "${smoke_output}" found_dir)
file(REAL_PATH "${found_dir}" found_dir)
file(REAL_PATH "${pc_dir}" real_pc_dir)
if(NOT found_dir STREQUAL real_pc_dir)
  message(FATAL_ERROR "install test: pkg-config read wq.pc from '${found_dir}', not '${real_pc_dir}'")
endif()
smoke_run("pkg-config --modversion" "${PKG_CONFIG}" --modversion wq)
string(STRIP "${smoke_output}" version)
if(NOT version STREQUAL WQ_SMOKE_PROJECT_VERSION)
  message(FATAL_ERROR "install test: wq.pc says version '${version}', the project ${WQ_SMOKE_PROJECT_VERSION}")
endif()

smoke_run("pkg-config --cflags --libs" "${PKG_CONFIG}" --cflags --libs wq)
string(STRIP "${smoke_output}" pc_flags)
message(STATUS "install test: pkg-config --cflags --libs wq: ${pc_flags}")
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
separate_arguments(parent_flags UNIX_COMMAND
                   "${WQ_SMOKE_CMAKE_CXX_FLAGS} ${WQ_SMOKE_CMAKE_EXE_LINKER_FLAGS}")

set(exe "${work}/wq_pc_consumer")
file(REMOVE "${exe}")
smoke_run("compile and link" ${WQ_SMOKE_CMAKE_CXX_COMPILER_LAUNCHER} "${WQ_SMOKE_CMAKE_CXX_COMPILER}"
          -std=c++20 ${parent_flags} "${CMAKE_CURRENT_LIST_DIR}/main.cpp" -o "${exe}" ${pc_flags})
smoke_run("run consumer" "${exe}")
if(NOT smoke_output MATCHES "wq consumer ok")
  message(FATAL_ERROR "install test: the pkg-config consumer's output lacks 'wq consumer ok':\n"
                      "${smoke_output}")
endif()
message(STATUS "install test: pkg-config consumer passed")
