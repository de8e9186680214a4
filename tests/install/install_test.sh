#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs pagefrag to a temporary prefix with scripts/install.sh, then builds
# and runs, with plain g++ and clang++ and only
# `pkg-config --cflags --libs pagefrag` (no -std flag of our own: the .pc
# must supply -std=c++20), a small program and the porting guide's example
# program (examples/porting/porting_example.cc): the way a make/meson driver
# consumes the library.
set -euo pipefail

root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -x "$root/scripts/install.sh" ]] || root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/support/outside_build.sh"
outside_build_setup install

want_version=$(sed -nE 's/^#define PAGEFRAG_VERSION_STRING "([^"]+)"/\1/p' \
  "$root/include/pagefrag/version.h")
got_version=$(pkg-config --modversion pagefrag)
[[ "$got_version" == "$want_version" ]] || {
  echo "FAIL: pkg-config version $got_version, version.h $want_version"
  exit 1
}
IFS=. read -r major minor patch <<<"$want_version"
for part in "MAJOR $major" "MINOR $minor" "PATCH $patch"; do
  set -- $part
  grep -qE "^#define PAGEFRAG_VERSION_$1 $2\$" "$root/include/pagefrag/version.h" || {
    echo "FAIL: version.h: PAGEFRAG_VERSION_$1 does not match PAGEFRAG_VERSION_STRING $want_version"
    exit 1
  }
done
[[ "$(pkg-config --cflags pagefrag)" == *-std=c++20* ]] || {
  echo "FAIL: pkg-config --cflags pagefrag lacks -std=c++20: $(pkg-config --cflags pagefrag)"
  exit 1
}
want_headers=$(cd "$root" && find -L include/pagefrag -name '*.h' | wc -l)
got_headers=$(cd "$work/prefix" && find include/pagefrag -name '*.h' | wc -l)
((got_headers == want_headers)) || {
  echo "FAIL: installed $got_headers headers, the tree has $want_headers"
  exit 1
}

cat >"$work/app.cc" <<'CC'
#include <pagefrag/pagefrag.h>

int main() {
  static_assert(PAGEFRAG_VERSION >= 200, "version macro");
  const auto cfg = pagefrag::KernelRxBufPolicy<>::configure({.page_size = 65536, .mtu = 1500});
  const auto bad = pagefrag::KernelRxBufPolicy<>::configure({.page_size = 4096, .mtu = 1});
  if (!cfg.ok() || bad.ok()) return 1;
  fmt::print("{} {} {} {}\n", cfg->frag_count, cfg->alloc_size, cfg->pool_size(1024),
             bad.status().ToString());
  return 0;
}
CC

want='35 1856 30 INVALID_ARGUMENT: mtu 1 is out of range: expected 68..9202 (adapter_mtu 9216 - ETH_HLEN 14)'
for cxx in g++ clang++; do
  # shellcheck disable=SC2046  # pkg-config output is a list of flags
  "$cxx" -Wall -Wextra -Wpedantic -Werror "$work/app.cc" -o "$work/app-$cxx" \
    $(pkg-config --cflags --libs pagefrag)
  got=$("$work/app-$cxx")
  [[ "$got" == "$want" ]] || {
    echo "FAIL: $cxx app printed [$got], want [$want]"
    exit 1
  }
done

# The porting guide's example program: builds and runs, ending with its
# summary line (it exits 1 on any unverified packet or leak). g++ only: the
# app above covers clang++, and the example is the slow compile.
example=$root/examples/porting/porting_example.cc
for cxx in g++; do
  # shellcheck disable=SC2046
  "$cxx" -O1 -Wall -Wextra -Wpedantic -Werror "$example" -o "$work/porting-$cxx" \
    $(pkg-config --cflags --libs pagefrag)
  got=$("$work/porting-$cxx") || { echo "FAIL: $cxx porting_example exited non-zero: $got"; exit 1; }
  [[ "$got" == "porting_example: "*" packets verified, "*"leaks: 0 pages, 0 blocks, 0 mappings" ]] || {
    echo "FAIL: $cxx porting_example printed [$got]"
    exit 1
  }
done
echo "install_test: pagefrag $got_version, $got_headers headers; g++ and clang++ built the app," \
  "g++ the porting example, with pkg-config alone, and ran them: $got"
