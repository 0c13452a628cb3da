#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Fails if a C++ file of the repository is not formatted as .clang-format says (clang-format 14,
# Debian package clang-format). `scripts/check-format.sh --fix` formats them in place instead.
# test/compile_fail/ is left out: each file's first line is the pattern its expected compiler
# error must match, and must stay one line however long.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v clang-format >/dev/null || {
  echo "check-format: clang-format not found (Debian: apt-get install clang-format)" >&2
  exit 2
}
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' | grep -v '^test/compile_fail/')
if [[ "${1:-}" == --fix ]]; then
  clang-format -i "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "check-format: the files above are not formatted; run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted as .clang-format says ($(clang-format --version))"
