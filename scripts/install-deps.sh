#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Installs the Debian 12 packages needed to build and test wq. Idempotent: packages that are
# already installed are skipped, and when nothing is missing it neither runs `apt-get update`
# nor needs root.
#
# Usage: scripts/install-deps.sh [EXTRA_PACKAGE...]     e.g. `scripts/install-deps.sh clang` (CI)
set -euo pipefail

# systemtap-sdt-dev: <sys/sdt.h> for the USDT probes (CMake option WQ_USDT, on when found).
# python3: the test that drives wq_server from a separate process, and the rulebook check.
# pkg-config: the install test that builds a consumer from wq.pc.
# liburcu-dev: the optional rcu_work (wq/rcu_work.hpp), its tests and its install snippet.
packages=(cmake g++ make libboost1.81-dev catch2 systemtap-sdt-dev python3 pkg-config
          liburcu-dev ca-certificates "$@")

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: dpkg-query not found; this script supports Debian 12 only." >&2
  echo "install-deps: install the equivalents of: ${packages[*]}" >&2
  exit 1
fi

for pkg in "${packages[@]}"; do
  if [[ ! "$pkg" =~ ^[a-z0-9][a-z0-9.+-]+$ ]]; then
    echo "install-deps: '$pkg' is not a valid Debian package name" >&2
    exit 2
  fi
done

missing=()
declare -A seen=()
for pkg in "${packages[@]}"; do
  if [[ -n "${seen[$pkg]:-}" ]]; then continue; fi  # e.g. `install-deps.sh cmake`
  seen[$pkg]=1
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" == "install ok installed" ]]; then
    echo "install-deps: $pkg: already installed"
  else
    echo "install-deps: $pkg: missing"
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: nothing to install"
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: installing them needs root; run:" >&2
  echo "  sudo bash scripts/install-deps.sh${*:+ $*}    (or as root)" >&2
  exit 1
fi

echo "install-deps: running apt-get update"
apt-get update
echo "install-deps: installing: ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done"
