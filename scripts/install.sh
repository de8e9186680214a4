#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# install.sh: installs pagefrag for builds outside Bazel (make, meson, CMake).
#
#   scripts/install.sh --prefix DIR [--pkgconfigdir DIR]
#
# Copies the headers to DIR/include/pagefrag and writes pagefrag.pc (version
# from include/pagefrag/version.h) to DIR/share/pkgconfig, the place for a
# header-only library's .pc (or to --pkgconfigdir). A consumer then builds with
#   PKG_CONFIG_PATH=DIR/share/pkgconfig \
#     g++ -std=c++20 app.cc $(pkg-config --cflags --libs pagefrag)
# pagefrag is header-only, but its headers call Abseil (Status/StatusOr) and
# fmt, so the .pc Requires Debian's absl_status, absl_statusor and fmt, whose
# own .pc files supply the link flags.
set -euo pipefail

# The tools' convention (examples/cli/cli.h): --help on stdout, exit 0; a
# usage error is one `error:` line on stderr, exit 2.
usage() {
  echo "usage: $0 --prefix DIR [--pkgconfigdir DIR]"
  echo "Installs pagefrag's headers and pagefrag.pc under DIR."
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
Cflags: -I\${includedir}
PC
echo "install.sh: pagefrag $version: $count headers in $prefix/include, pagefrag.pc in $pcdir"
