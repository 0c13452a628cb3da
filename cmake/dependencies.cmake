# SPDX-License-Identifier: BSL-1.0
# Boost.Asio and Boost.Intrusive are header-only: Boost::headers is all wq needs.
# Debian 12's libboost1.81-dev is the minimum we test; the default libboost-dev (1.74) also lacks
# nothing we use, but 1.81 is what CI installs.
find_package(Boost 1.81 CONFIG REQUIRED)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
# Optional: <sys/sdt.h> (Debian: systemtap-sdt-dev) for the USDT probes (option WQ_USDT). A
# header of macros only: nothing to link, and nothing a consumer of the installed package needs.
include(CheckIncludeFileCXX)
check_include_file_cxx(sys/sdt.h WQ_HAVE_SYS_SDT_H)
