# SPDX-License-Identifier: BSL-1.0
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(WQ_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/wq"
    CACHE STRING "Where wqConfig.cmake is installed")
install(TARGETS wq EXPORT wqTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
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
