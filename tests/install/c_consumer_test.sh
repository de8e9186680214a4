#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The C API's consumers from ONE install (scripts/install.sh, which also
# builds libpagefrag_c through scripts/install_c.sh): the C example
# (examples/c/rx_queue.c, copied alone) builds and runs
#   1. with gcc -std=c11 -Wall -Wextra -Wpedantic -Werror rx_queue.c \
#        $(pkg-config --cflags --libs pagefrag-c)
#      (PKG_CONFIG_PATH = the prefix's share/pkgconfig, where pagefrag.pc is);
#   2. with CMake: a C-only project using find_package(pagefrag CONFIG
#      REQUIRED) and target_link_libraries(... pagefrag::c), nothing else.
# Also: install.sh --no-c installs no C library and declares no pagefrag::c.
set -euo pipefail

root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -x "$root/scripts/install.sh" ]] || root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pagefrag-c-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

prefix=$work/prefix
bash "$root/scripts/install.sh" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  fail "install.sh: $(tail -5 "$work/install.log")"
for f in lib/libpagefrag_c.so.0 lib/libpagefrag_c.a include/pagefrag/c/pagefrag.h \
  share/pkgconfig/pagefrag-c.pc share/pkgconfig/pagefrag.pc lib/cmake/pagefrag/pagefragConfig.cmake; do
  [[ -e "$prefix/$f" ]] || fail "one install.sh run did not install $f"
done
check_run() {  # binary, label
  readelf -d "$1" | grep -q 'NEEDED.*libpagefrag_c.so.0' || fail "$2: not linked to libpagefrag_c.so.0"
  LD_LIBRARY_PATH=$prefix/lib "$1" >"$1.out" 2>&1 || fail "$2: exited non-zero: $(tail -3 "$1.out")"
  grep -q ' 0 corrupt, 0 pools alive' "$1.out" || fail "$2: $(tail -1 "$1.out")"
}

# 1. gcc + pkg-config.
mkdir "$work/pc"
cp "$root/examples/c/rx_queue.c" "$work/pc/app.c"
# shellcheck disable=SC2046  # pkg-config prints lists of flags
(cd "$work/pc" && PKG_CONFIG_PATH=$prefix/share/pkgconfig \
  gcc -std=c11 -Wall -Wextra -Wpedantic -Werror app.c -o app \
  $(PKG_CONFIG_PATH=$prefix/share/pkgconfig pkg-config --cflags --libs pagefrag-c) -lpthread) ||
  fail "gcc with pkg-config pagefrag-c failed"
check_run "$work/pc/app" "pkg-config build"

# 2. CMake, C only.
mkdir "$work/cm"
cp "$root/examples/c/rx_queue.c" "$work/cm/app.c"
cat >"$work/cm/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(pagefrag_c_consumer C)
find_package(pagefrag CONFIG REQUIRED)
find_package(Threads REQUIRED)
add_executable(app app.c)
set_target_properties(app PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
target_compile_options(app PRIVATE -Wall -Wextra -Wpedantic -Werror)
target_link_libraries(app PRIVATE pagefrag::c Threads::Threads)
CMAKE
cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cm.log" 2>&1 ||
  { cat "$work/cm.log"; fail "cmake configure with find_package(pagefrag) failed"; }
cmake --build "$work/cm/build" >"$work/cm.log" 2>&1 || { cat "$work/cm.log"; fail "cmake build failed"; }
grep -q -- '-std=c11' "$work/cm/build/CMakeFiles/app.dir/flags.make" ||
  fail "the CMake build did not compile as C11: $(cat "$work/cm/build/CMakeFiles/app.dir/flags.make")"
check_run "$work/cm/build/app" "CMake pagefrag::c build"

# --no-c: the header-only install alone.
bash "$root/scripts/install.sh" --prefix "$work/noc" --no-c >/dev/null
[[ ! -e "$work/noc/lib/libpagefrag_c.so.0" && ! -e "$work/noc/share/pkgconfig/pagefrag-c.pc" ]] ||
  fail "install.sh --no-c installed the C library"
mkdir "$work/noc-src"
cat >"$work/noc-src/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(pagefrag_no_c CXX)
find_package(pagefrag CONFIG REQUIRED)
if(TARGET pagefrag::c)
  message(FATAL_ERROR "pagefrag::c declared without the C library")
endif()
CMAKE
cmake -S "$work/noc-src" -B "$work/noc-build" -DCMAKE_PREFIX_PATH="$work/noc" >"$work/noc.log" 2>&1 ||
  { cat "$work/noc.log"; fail "--no-c install: find_package(pagefrag) failed or declared pagefrag::c"; }
echo "c_consumer_test: one install.sh run; rx_queue.c built with gcc -std=c11 + pkg-config" \
  "pagefrag-c and with CMake pagefrag::c, both ran: $(tail -1 "$work/cm/build/app.out")"
