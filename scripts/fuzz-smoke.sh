#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Fuzz smoke run: builds fuzz/wq_fuzz with clang++ (libFuzzer + ASan + UBSan, the library
# instrumented too) in build/fuzz and fuzzes for a bounded time, starting from fuzz/corpus.
# New inputs go to a scratch directory, so the checked-in corpus is left alone. Exits non-zero
# on a crash, a sanitizer report, a leak, a timeout or a model mismatch; the failing input is
# written to build/fuzz/ (replay: build/fuzz/fuzz/wq_fuzz <file>).
#
# Environment: WQ_FUZZ_SECONDS (default 60), WQ_FUZZ_BUILD_DIR (default <repo>/build/fuzz),
# WQ_FUZZ_RSS_MB (default 2048).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${WQ_FUZZ_BUILD_DIR:-$root/build/fuzz}
seconds=${WQ_FUZZ_SECONDS:-60}
rss=${WQ_FUZZ_RSS_MB:-2048}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DWQ_BUILD_FUZZ=ON -DWQ_BUILD_TESTS=OFF -DWQ_BUILD_SAMPLES=OFF -DWQ_WERROR=OFF \
  "-DCMAKE_CXX_FLAGS=$flags" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
cmake --build "$build" -j2 --target wq_fuzz

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$root"/fuzz/corpus/* "$scratch"/

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -timeout: one input (at most 512 ops) takes milliseconds; 30 s means a hang.
"$build/fuzz/wq_fuzz" "$scratch" -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout=30 \
  -max_len=1024 -print_final_stats=1 -artifact_prefix="$build/"
