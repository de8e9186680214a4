#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The CMake package: installs pagefrag to a temporary prefix with
# scripts/install.sh, then configures, builds and runs a CMake project that
# uses only `find_package(pagefrag <version> CONFIG REQUIRED)` and
# `pagefrag::pagefrag` (no include path, -std flag or library of its own) to
# build the porting guide's example program. Also checks the version file:
# the installed version is found, a newer minor or another major is refused.
set -euo pipefail

root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -x "$root/scripts/install.sh" ]] || root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/support/outside_build.sh"
outside_build_setup cmake
version=$(sed -nE 's/^#define PAGEFRAG_VERSION_STRING "([^"]+)"/\1/p' \
  "$root/include/pagefrag/version.h")
IFS=. read -r major minor _ <<<"$version"
[[ -f "$work/prefix/lib/cmake/pagefrag/pagefragConfig.cmake" &&
  -f "$work/prefix/lib/cmake/pagefrag/pagefragConfigVersion.cmake" ]] ||
  fail "install.sh did not write lib/cmake/pagefrag/pagefrag{Config,ConfigVersion}.cmake"

# One project, asking for the version in ${WANT}.
mkdir "$work/src"
cp "$root/examples/porting/porting_example.cc" "$work/src/"
cat >"$work/src/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(pagefrag_consumer CXX)
find_package(pagefrag ${WANT} CONFIG REQUIRED)
add_executable(porting_example porting_example.cc)
target_compile_options(porting_example PRIVATE -Wall -Wextra -Wpedantic -Werror)
target_link_libraries(porting_example PRIVATE pagefrag::pagefrag)
CMAKE

configure() {  # build dir, wanted version
  cmake -S "$work/src" -B "$1" -DCMAKE_PREFIX_PATH="$work/prefix" -DWANT="$2" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$1.log" 2>&1
}

configure "$work/build" "$version" || { cat "$work/build.log"; fail "cmake configure failed"; }
cmake --build "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "cmake build failed"; }
grep -q -- '-std=\(c\|gnu\)++20' "$work/build/CMakeFiles/porting_example.dir/flags.make" ||
  fail "pagefrag::pagefrag did not bring C++20: $(cat "$work/build/CMakeFiles/porting_example.dir/flags.make")"
got=$("$work/build/porting_example") || fail "porting_example exited non-zero: $got"
[[ "$got" == "porting_example: "*" packets verified, "*"leaks: 0 pages, 0 blocks, 0 mappings" ]] ||
  fail "porting_example printed [$got]"

# The version file refuses what it cannot give.
for bad in "$major.$((minor + 1))" "$((major + 1)).0"; do
  if configure "$work/build-$bad" "$bad"; then
    fail "find_package(pagefrag $bad) accepted the installed $version"
  fi
  grep -q "compatible with requested version" "$work/build-$bad.log" ||
    fail "find_package(pagefrag $bad) failed, but not for the version: $(cat "$work/build-$bad.log")"
done
echo "cmake_test: find_package(pagefrag $version CONFIG) built and ran the porting example;" \
  "$major.$((minor + 1)) and $((major + 1)).0 refused: $got"
