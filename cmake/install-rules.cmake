# SPDX-License-Identifier: BSL-1.0
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(WQ_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/wq"
    CACHE STRING "Where wqConfig.cmake is installed")
install(TARGETS wq EXPORT wqTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILE_SET impl_headers DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT wqTargets NAMESPACE wq:: DESTINATION ${WQ_INSTALL_CMAKEDIR})
configure_package_config_file(cmake/wqConfig.cmake.in
  ${PROJECT_BINARY_DIR}/wqConfig.cmake INSTALL_DESTINATION ${WQ_INSTALL_CMAKEDIR})
# The version policy of CMakeLists.txt: in 0.x a minor release may break compatibility, so
# find_package(wq 0.1) must accept 0.1.z only; SameMajorVersion would also hand it to a consumer
# asking for 0.0.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(wq_version_compatibility SameMinorVersion)
else()
  set(wq_version_compatibility SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/wqConfigVersion.cmake
  COMPATIBILITY ${wq_version_compatibility})
install(FILES ${PROJECT_BINARY_DIR}/wqConfig.cmake ${PROJECT_BINARY_DIR}/wqConfigVersion.cmake
        DESTINATION ${WQ_INSTALL_CMAKEDIR})
# BSL-1.0 asks that the licence text travel with every copy of the source, and the headers are
# source: install it where Debian and GNUInstallDirs put a package's documentation.
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/wq)

# pkg-config file, for builds that do not use CMake: `c++ -std=c++20 app.cpp $(pkg-config
# --cflags --libs wq)`. Paths are relative to the .pc file's own directory (${pcfiledir}), so
# `cmake --install --prefix` elsewhere than the configured prefix still yields a correct file.
file(RELATIVE_PATH wq_pc_prefix_from_pcfiledir "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig"
     "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" wq_pc_prefix_from_pcfiledir "${wq_pc_prefix_from_pcfiledir}")
foreach(dir IN ITEMS LIBDIR INCLUDEDIR)
  string(TOLOWER ${dir} key)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(wq_pc_${key} "${CMAKE_INSTALL_${dir}}")
  else()
    set(wq_pc_${key} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
# What wq::wq's interface adds beyond its own include directory and the threads flag: the tick
# rate when it is overridden (an ABI setting: consumers must see the same value), and Boost's
# include directory when the compiler would not search it anyway.
set(wq_pc_extra_cflags "")
if(NOT WQ_HZ STREQUAL "")
  string(APPEND wq_pc_extra_cflags " -DWQ_HZ=${WQ_HZ}")
endif()
get_target_property(wq_pc_boost_includes Boost::headers INTERFACE_INCLUDE_DIRECTORIES)
foreach(dir IN LISTS wq_pc_boost_includes)
  if(dir AND NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
    string(APPEND wq_pc_extra_cflags " -I${dir}")
  endif()
endforeach()
configure_file(cmake/wq.pc.in ${PROJECT_BINARY_DIR}/wq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/wq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
