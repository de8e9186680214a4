#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every public header compiles on its own, warning-free, with nothing but
# -I include (plus Abseil and fmt from the system): pagefrag.h with g++ and
# clang++, each other header alone with g++ (self-containment).
set -euo pipefail

root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -d "$root/include/pagefrag" ]] || root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

compile() {  # compiler header
  local err extra=()
  # The DPDK bridge also needs DPDK's headers (as system headers) and its -march.
  [[ $2 == pagefrag/dpdk/* ]] && extra=(-isystem /usr/include/dpdk
    -isystem /usr/include/x86_64-linux-gnu/dpdk -march=corei7)
  if ! err=$(echo "#include \"$2\"" | "$1" -std=c++20 -Wall -Wextra -Wpedantic -Werror \
               -fsyntax-only -I include "${extra[@]}" -x c++ - 2>&1); then
    printf 'FAIL: %s %s\n%s\n' "$1" "$2" "$err"
    return 1
  fi
}
export -f compile

jobs=(
  "g++ pagefrag/pagefrag.h"
  "clang++ pagefrag/pagefrag.h"
)
while IFS= read -r header; do
  jobs+=("g++ ${header#include/}")
done < <(find include/pagefrag -name '*.h' | sort)

# The umbrella is portable: it must not pull in <linux/vfio.h> (VfioDma is
# included on its own).
if echo '#include "pagefrag/pagefrag.h"' | g++ -std=c++20 -I include -E -x c++ - |
    grep -q 'linux/vfio.h'; then
  echo "FAIL: pagefrag/pagefrag.h includes <linux/vfio.h>"
  exit 1
fi

printf '%s\n' "${jobs[@]}" | xargs -P "$(nproc)" -L 1 bash -c 'compile "$0" "$1"'
echo "headers_test: pagefrag.h with g++ and clang++, $((${#jobs[@]} - 2)) headers self-contained"
