#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# install_c.sh: builds and installs libpagefrag_c, the C API, for C builds
# outside Bazel (make, meson, CMake).
#
#   scripts/install_c.sh --prefix DIR [--libdir DIR] [--pkgconfigdir DIR] [--cxx COMPILER]
#
# Compiles the C API's implementation (include/pagefrag/c/pagefrag_impl.h)
# from a one-line generated translation unit with g++ (-std=c++20 -O2 -fPIC,
# only the pagefrag_* symbols exported) into
#   DIR/lib/libpagefrag_c.a
#   DIR/lib/libpagefrag_c.so.<version> (soname libpagefrag_c.so.0) with the
#     libpagefrag_c.so.0 and libpagefrag_c.so links,
# installs the C header DIR/include/pagefrag/c/pagefrag.h and writes
# pagefrag-c.pc to DIR/lib/pkgconfig (or --pkgconfigdir). A C program then
# builds with
#   PKG_CONFIG_PATH=DIR/lib/pkgconfig \
#     gcc -std=c11 app.c $(pkg-config --cflags --libs pagefrag-c)
# (add `--static` to pkg-config to link libpagefrag_c.a; the shared library
# needs DIR/lib on the loader's path, e.g. LD_LIBRARY_PATH or -Wl,-rpath).
set -euo pipefail

usage() {
  echo "usage: $0 --prefix DIR [--libdir DIR] [--pkgconfigdir DIR] [--cxx COMPILER]" >&2
  exit 2
}

prefix=""
libdir=""
pcdir=""
cxx=${CXX:-g++}
while (($#)); do
  case $1 in
    --prefix) (($# >= 2)) || usage; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --libdir) (($# >= 2)) || usage; libdir=$2; shift 2 ;;
    --libdir=*) libdir=${1#--libdir=}; shift ;;
    --pkgconfigdir) (($# >= 2)) || usage; pcdir=$2; shift 2 ;;
    --pkgconfigdir=*) pcdir=${1#--pkgconfigdir=}; shift ;;
    --cxx) (($# >= 2)) || usage; cxx=$2; shift 2 ;;
    --cxx=*) cxx=${1#--cxx=}; shift ;;
    -h | --help)
      sed -n '3,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) echo "error: install_c.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ -n "$prefix" ]] || usage
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
libdir=${libdir:-$prefix/lib}
pcdir=${pcdir:-$libdir/pkgconfig}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -nE 's/^#define PAGEFRAG_VERSION_STRING "([^"]+)"/\1/p' \
  "$root/include/pagefrag/version.h")
[[ -n "$version" ]] || { echo "error: install_c.sh: no PAGEFRAG_VERSION_STRING in version.h" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pagefrag-c.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo '#include "pagefrag/c/pagefrag_impl.h"' >"$work/pagefrag_c.cc"
# shellcheck disable=SC2046  # pkg-config prints lists of flags
"$cxx" -std=c++20 -O2 -DNDEBUG -fPIC -fvisibility=hidden -Wall -Wextra -Werror \
  -I "$root/include" $(pkg-config --cflags absl_status absl_statusor fmt) \
  -c "$work/pagefrag_c.cc" -o "$work/pagefrag_c.o"

mkdir -p "$libdir" "$pcdir"
rm -f "$libdir/libpagefrag_c.a"
ar rcs "$libdir/libpagefrag_c.a" "$work/pagefrag_c.o"
deplibs=$(pkg-config --libs absl_status absl_statusor fmt)
# Only the C API's pagefrag_* functions are exported (versioned PAGEFRAG_C_0).
echo 'PAGEFRAG_C_0 { global: pagefrag_*; local: *; };' >"$work/pagefrag_c.map"
# shellcheck disable=SC2086
"$cxx" -shared -Wl,-soname,libpagefrag_c.so.0 -Wl,--version-script="$work/pagefrag_c.map" -o "$libdir/libpagefrag_c.so.$version" \
  "$work/pagefrag_c.o" $deplibs -lpthread
ln -sf "libpagefrag_c.so.$version" "$libdir/libpagefrag_c.so.0"
ln -sf "libpagefrag_c.so.0" "$libdir/libpagefrag_c.so"
install -D -m 644 "$root/include/pagefrag/c/pagefrag.h" "$prefix/include/pagefrag/c/pagefrag.h"

cat >"$pcdir/pagefrag-c.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include
libdir=$libdir

Name: pagefrag-c
Description: C API of pagefrag: page_pool and RX page fragments for user-space NIC drivers
Version: $version
Requires.private: absl_status >= 20220623, absl_statusor >= 20220623, fmt >= 9
Cflags: -I\${includedir}
Libs: -L\${libdir} -lpagefrag_c
Libs.private: -lstdc++ -lpthread
PC
echo "install_c.sh: pagefrag-c $version: libpagefrag_c.{a,so.0} in $libdir, pagefrag-c.pc in $pcdir"
