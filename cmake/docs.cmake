# SPDX-License-Identifier: BSL-1.0
# API reference: `cmake --build --preset dev --target docs` runs Doxygen on the public headers
# (docs/Doxyfile.in) and writes HTML to <build>/docs/html; any Doxygen warning fails the build.
# Defined only when Doxygen is found (Debian: apt-get install doxygen, or
# scripts/install-deps.sh doxygen).
find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
  message(STATUS "wq: doxygen not found: no 'docs' target (the API reference)")
  return()
endif()
set(WQ_DOCS_OUTPUT_DIR "${PROJECT_BINARY_DIR}/docs")
configure_file(docs/Doxyfile.in "${WQ_DOCS_OUTPUT_DIR}/Doxyfile" @ONLY)
add_custom_target(docs
  COMMAND Doxygen::doxygen "${WQ_DOCS_OUTPUT_DIR}/Doxyfile"
  WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
  COMMENT "Doxygen: API reference in ${WQ_DOCS_OUTPUT_DIR}/html/index.html"
  VERBATIM)
