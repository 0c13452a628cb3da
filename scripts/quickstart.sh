#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# One-command quick start (see README):
#   bash scripts/quickstart.sh demo [ARGS...]  install deps, build the `release` preset's
#                                              wq_server (the flagship demo: a TCP server on
#                                              127.0.0.1 driven by a built-in client for ~10 s)
#                                              and run it with ARGS, e.g. --connections 50
#                                              --seconds 5 (see wq_server --help)
#   bash scripts/quickstart.sh test            install deps, build the whole `release` preset, run
#                                              its tests
# Works from any directory and can be re-run: CMake reconfigures and rebuilds incrementally.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root=$(pwd -P)
preset=release
build_dir="build/$preset"

usage() {
  echo "usage: bash scripts/quickstart.sh demo [ARGS...] | test" >&2
  exit 2
}

step() { printf '\n==> %s\n' "$*"; }

configure() {
  # A build tree copied or moved from another checkout makes CMake refuse to configure; such a
  # tree holds nothing worth keeping, so start it afresh.
  local cache="$build_dir/CMakeCache.txt" home
  if [[ -f "$cache" ]]; then
    home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
    if [[ -n "$home" && "$(cd "$home" 2>/dev/null && pwd -P)" != "$repo_root" ]]; then
      echo "quickstart: $build_dir was configured for $home; removing it"
      rm -rf -- "$build_dir"
    fi
  fi
  step "Configuring CMake preset '$preset' ($build_dir)"
  cmake --preset "$preset"
}

mode=${1:-}
[[ $# -gt 0 ]] && shift

case "$mode" in
  demo)
    step "Checking dependencies"
    bash scripts/install-deps.sh
    configure
    step "Building wq_server"
    cmake --build --preset "$preset" --target wq_server -j 2
    step "Running $build_dir/samples/wq_server${*:+ $*}"
    exec "$build_dir/samples/wq_server" "$@"
    ;;
  test)
    [[ $# -eq 0 ]] || usage
    step "Checking dependencies"
    bash scripts/install-deps.sh
    configure
    step "Building preset '$preset'"
    cmake --build --preset "$preset" -j 2
    step "Running tests (ctest --preset $preset)"
    ctest --preset "$preset"
    step "All tests passed"
    ;;
  *)
    usage
    ;;
esac
