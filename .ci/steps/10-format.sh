#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: every C++ file git tracks is formatted as .clang-format says
# (Debian's clang-format 14; fix with `clang-format-14 -i FILE`).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

cf=$(command -v clang-format-14 || command -v clang-format) || {
  echo "format: FAILED: clang-format not found (Debian package clang-format-14)"
  exit 1
}
mapfile -t files < <(git ls-files '*.h' '*.cc' '*.cpp')
if ! out=$("$cf" --dry-run -Werror "${files[@]}" 2>&1); then
  echo "$out" | head -n 40
  echo "format: FAILED: run $cf -i on the files named above"
  exit 1
fi
echo "format: ${#files[@]} C++ files as .clang-format says"
