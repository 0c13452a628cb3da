# SPDX-License-Identifier: BSL-1.0
# Project-only warning flags, linked PRIVATE so consumers never inherit them.
add_library(wq_warnings INTERFACE)
target_compile_options(wq_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                       -Wno-sign-conversion $<$<BOOL:${WQ_WERROR}>:-Werror>)
option(WQ_WERROR "Treat warnings as errors in wq's own targets" OFF)
