#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# install.sh: installs pagefrag for builds outside Bazel (make, meson, CMake).
#
#   scripts/install.sh --prefix DIR [--pkgconfigdir DIR]
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
#     cxx_std_20, Abseil's absl::status and absl::statusor, fmt::fmt).
# pagefrag is header-only, but its headers call Abseil (Status/StatusOr) and
# fmt: the .pc Requires Debian's absl_status, absl_statusor and fmt, and the
# CMake package finds Debian's absl and fmt CMake packages, which supply the
# link flags.
set -euo pipefail

# The tools' convention (examples/cli/cli.h): --help on stdout, exit 0; a
# usage error is one `error:` line on stderr, exit 2.
usage() {
  echo "usage: $0 --prefix DIR [--pkgconfigdir DIR]"
  echo "Installs pagefrag's headers, pagefrag.pc and the CMake package under DIR."
}
usage_error() {
  echo "error: $*" >&2
  exit 2
}

prefix=""
pcdir=""
while (($#)); do
  case $1 in
    --prefix) (($# >= 2)) || usage_error "--prefix needs a value: --prefix DIR"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --pkgconfigdir) (($# >= 2)) || usage_error "--pkgconfigdir needs a value"; pcdir=$2; shift 2 ;;
    --pkgconfigdir=*) pcdir=${1#--pkgconfigdir=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1': expected --prefix DIR [--pkgconfigdir DIR] (see --help)" ;;
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
#   target_link_libraries(app PRIVATE pagefrag::pagefrag)
# pagefrag is header-only; its headers use Abseil's Status/StatusOr and fmt.
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
echo "install.sh: pagefrag $version: $count headers in $prefix/include, pagefrag.pc in $pcdir," \
  "CMake package in $cmakedir"
