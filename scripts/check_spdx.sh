#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Lists every tracked source file (C, C++, Python, shell, Bazel, build
# scripts) whose first three lines lack an SPDX-License-Identifier line.
# Exits 1 when any does, 0 when all do; --help prints this and exits 0.
set -euo pipefail
case "${1:-}" in
  --help) sed -n '3,5s/^# \{0,1\}//p' "$0"; exit 0 ;;
  "") ;;
  *) echo "error: unknown argument '$1' (takes none, or --help)" >&2; exit 2 ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."
missing=0
while IFS= read -r f; do
  [[ -f "$f" ]] || continue
  if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: BSD-3-Clause'; then
    echo "missing SPDX line: $f"
    missing=1
  fi
done < <(git ls-files | grep -E '(\.(h|hpp|c|cc|cpp|py|sh|bzl|bazelrc|cmake|in)$|(^|/)(BUILD|WORKSPACE|bazelw|CMakeLists\.txt)$|^\.ci/run$)' \
           | grep -v '^tests/.*/corpus/')
exit $missing
