#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# install.sh: installs pagefrag for builds outside Bazel (make, meson, CMake).
#
#   scripts/install.sh --prefix DIR [--pkgconfigdir DIR] [--no-c]
#
# Copies the headers to DIR/include/pagefrag and writes (version from
# include/pagefrag/version.h):
#   - pagefrag.pc to DIR/share/pkgconfig, the place for a header-only
#     library's .pc (or to --pkgconfigdir). A consumer then builds with
#       PKG_CONFIG_PATH=DIR/share/pkgconfig \
#         g++ app.cc $(pkg-config --cflags --libs pagefrag)
#     (Cflags carry -std=c++20: the headers need C++20).
#   - the CMake package, DIR/lib/cmake/pagefrag/pagefragConfig.cmake and
#     pagefragConfigVersion.cmake: find_package(pagefrag CONFIG REQUIRED)
#     gives the INTERFACE target pagefrag::pagefrag (include directory,
#     cxx_std_20, Abseil's absl::status and absl::statusor, fmt::fmt) and,
#     when the C API was installed, the IMPORTED target pagefrag::c
#     (DIR/lib/libpagefrag_c.so.0 and the include directory; C11 is enough).
#   - the C API, through scripts/install_c.sh (unless --no-c): libpagefrag_c
#     (static and shared) in DIR/lib and pagefrag-c.pc beside pagefrag.pc:
#       gcc -std=c11 app.c $(pkg-config --cflags --libs pagefrag-c)
#     It needs g++ and Debian's Abseil and fmt development packages; --no-c
#     installs the header-only C++ library alone.
# pagefrag is header-only, but its headers call Abseil (Status/StatusOr) and
# fmt: the .pc Requires Debian's absl_status, absl_statusor and fmt, and the
# CMake package finds Debian's absl and fmt CMake packages, which supply the
# link flags.
set -euo pipefail

# The tools' convention (examples/cli/cli.h): --help on stdout, exit 0; a
# usage error is one `error:` line on stderr, exit 2.
usage() {
  echo "usage: $0 --prefix DIR [--pkgconfigdir DIR] [--no-c]"
  echo "Installs pagefrag's headers, pagefrag.pc, the CMake package and (unless --no-c) the C"
  echo "API's libpagefrag_c and pagefrag-c.pc under DIR."
}
usage_error() {
  echo "error: $*" >&2
  exit 2
}

prefix=""
pcdir=""
with_c=1
while (($#)); do
  case $1 in
    --prefix) (($# >= 2)) || usage_error "--prefix needs a value: --prefix DIR"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --pkgconfigdir) (($# >= 2)) || usage_error "--pkgconfigdir needs a value"; pcdir=$2; shift 2 ;;
    --pkgconfigdir=*) pcdir=${1#--pkgconfigdir=}; shift ;;
    --no-c) with_c=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1': expected --prefix DIR [--pkgconfigdir DIR] [--no-c] (see --help)" ;;
  esac
done
[[ -n "$prefix" ]] || usage_error "--prefix DIR is required (see --help)"
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
pcdir=${pcdir:-$prefix/share/pkgconfig}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -nE 's/^#define PAGEFRAG_VERSION_STRING "([^"]+)"/\1/p' \
  "$root/include/pagefrag/version.h")
[[ -n "$version" ]] || { echo "install.sh: no PAGEFRAG_VERSION_STRING in version.h" >&2; exit 1; }
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}

count=0
while IFS= read -r header; do
  install -D -m 644 "$root/$header" "$prefix/$header"
  count=$((count + 1))
done < <(cd "$root" && find -L include/pagefrag -name '*.h' | sort)

# The C API first: the CMake package below declares pagefrag::c when its
# library is there.
if ((with_c)) && [[ ! -f "$root/scripts/install_c.sh" ]]; then
  echo "error: $root/scripts/install_c.sh not found; install it beside install.sh, or pass" \
    "--no-c for the header-only library alone" >&2
  exit 1
fi
if ((with_c)); then
  bash "$root/scripts/install_c.sh" --prefix "$prefix" --libdir "$prefix/lib" \
    --pkgconfigdir "$pcdir" >/dev/null || { echo "install.sh: install_c.sh failed" >&2; exit 1; }
fi

mkdir -p "$pcdir"
cat >"$pcdir/pagefrag.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include

Name: pagefrag
Description: Header-only C++20 page_pool and MANA RX fragments for user-space NIC drivers (needs -std=c++20)
Version: $version
Requires: absl_status >= 20220623, absl_statusor >= 20220623, fmt >= 9
Cflags: -std=c++20 -I\${includedir}
PC

cmakedir=$prefix/lib/cmake/pagefrag
mkdir -p "$cmakedir"
cat >"$cmakedir/pagefragConfig.cmake" <<'CMAKE'
# pagefrag CMake package, written by scripts/install.sh.
#   find_package(pagefrag CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE pagefrag::pagefrag)   # C++20, header-only
#   target_link_libraries(app PRIVATE pagefrag::c)          # the C API (C11)
# pagefrag is header-only; its headers use Abseil's Status/StatusOr and fmt.
# pagefrag::c is libpagefrag_c.so.0, which carries its own dependencies.
include(CMakeFindDependencyMacro)
find_dependency(absl CONFIG)
find_dependency(fmt CONFIG)
# This file is PREFIX/lib/cmake/pagefrag/pagefragConfig.cmake.
get_filename_component(_pagefrag_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET pagefrag::pagefrag)
  add_library(pagefrag::pagefrag INTERFACE IMPORTED)
  set_target_properties(pagefrag::pagefrag PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_pagefrag_prefix}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_20
    INTERFACE_LINK_LIBRARIES "absl::status;absl::statusor;fmt::fmt")
endif()
if(NOT TARGET pagefrag::c AND EXISTS "${_pagefrag_prefix}/lib/libpagefrag_c.so.0")
  add_library(pagefrag::c SHARED IMPORTED)
  set_target_properties(pagefrag::c PROPERTIES
    IMPORTED_LOCATION "${_pagefrag_prefix}/lib/libpagefrag_c.so.0"
    IMPORTED_SONAME "libpagefrag_c.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_pagefrag_prefix}/include")
endif()
unset(_pagefrag_prefix)
CMAKE
# Compatible: the same major version and at least the one asked for; while the
# major version is 0, the same minor version too (0.x may break at each minor).
cat >"$cmakedir/pagefragConfigVersion.cmake" <<CMAKE
# pagefrag $version, written by scripts/install.sh.
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("$major" STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$minor")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
CMAKE
c_note=""
((with_c)) && c_note=", libpagefrag_c in $prefix/lib and pagefrag-c.pc"
echo "install.sh: pagefrag $version: $count headers in $prefix/include, pagefrag.pc in $pcdir," \
  "CMake package in $cmakedir$c_note"
