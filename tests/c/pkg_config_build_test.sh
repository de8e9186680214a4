#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The C API from an install prefix: scripts/install_c.sh builds libpagefrag_c
# with g++ into a temporary prefix; the C example (examples/c/rx_queue.c,
# copied alone) and the C tests (tests/c/c_api_test.c) build with
#   gcc -std=c11 -Wall -Wextra -Wpedantic -Werror ... $(pkg-config --cflags --libs pagefrag-c)
# against the shared library (checked: soname libpagefrag_c.so.0, only
# pagefrag_* symbols exported) and against the static one, and run.
set -euo pipefail

root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -x "$root/scripts/install_c.sh" ]] || root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pagefrag-c.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

bash "$root/scripts/install_c.sh" --prefix "$work/prefix" >/dev/null
export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
lib=$work/prefix/lib

soname=$(readelf -d "$lib/libpagefrag_c.so" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')
[[ $soname == libpagefrag_c.so.0 ]] || fail "soname '$soname'; expected libpagefrag_c.so.0"
exported=$(nm -D --defined-only "$lib/libpagefrag_c.so" | awk '$2 ~ /^[TDBRWVu]$/ {print $3}' |
  grep -vE '^(_init|_fini|_edata|_end|__bss_start|PAGEFRAG_C_0)$' | sed 's/@.*//' | sort)
others=$(grep -v '^pagefrag_' <<<"$exported" || true)
[[ -z $others ]] || fail "libpagefrag_c.so exports more than pagefrag_*: $(head -5 <<<"$others")"
# Exactly the functions the header declares.
declared=$(tr '\n' ' ' <"$root/include/pagefrag/c/pagefrag.h" | grep -oE 'PAGEFRAG_C_API [^;(]*\(' |
  grep -oE 'pagefrag_[a-z0-9_]+\($' | tr -d '(' | sort)
[[ $exported == "$declared" ]] || fail "exported != declared: $(diff <(echo "$declared") <(echo "$exported"))"
count=$(wc -l <<<"$exported")

mkdir "$work/src"
cp "$root/examples/c/rx_queue.c" "$root/tests/c/c_api_test.c" "$work/src/"
cd "$work/src"
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O1)
# shellcheck disable=SC2046  # pkg-config prints lists of flags
gcc "${flags[@]}" rx_queue.c -o rx_queue $(pkg-config --cflags --libs pagefrag-c) -lpthread
# shellcheck disable=SC2046
gcc "${flags[@]}" c_api_test.c -o c_api_test $(pkg-config --cflags --libs pagefrag-c) -lpthread
readelf -d rx_queue | grep -q 'NEEDED.*libpagefrag_c.so.0' || fail "rx_queue is not linked to libpagefrag_c.so.0"
LD_LIBRARY_PATH=$lib ./rx_queue >rx_queue.out || fail "rx_queue failed: $(tail -3 rx_queue.out)"
grep -q ' 0 corrupt, 0 pools alive' rx_queue.out || fail "rx_queue: $(tail -1 rx_queue.out)"
LD_LIBRARY_PATH=$lib ./c_api_test >c_api_test.out 2>&1 || fail "c_api_test (shared): $(cat c_api_test.out)"

# Static: libpagefrag_c.a and its private requirements.
# shellcheck disable=SC2046
gcc "${flags[@]}" c_api_test.c -o c_api_test_static $(pkg-config --cflags pagefrag-c) \
  -L"$lib" -Wl,-Bstatic -lpagefrag_c -Wl,-Bdynamic \
  $(pkg-config --static --libs pagefrag-c | sed 's/-lpagefrag_c//') -lpthread
if readelf -d c_api_test_static | grep -q 'libpagefrag_c'; then
  fail "c_api_test_static still needs libpagefrag_c.so"
fi
./c_api_test_static >static.out 2>&1 || fail "c_api_test (static): $(cat static.out)"
echo "pkg_config_build_test: libpagefrag_c ($count symbols, soname $soname); rx_queue and" \
  "c_api_test built with gcc -std=c11 and pkg-config pagefrag-c, shared and static:" \
  "$(tail -1 rx_queue.out); $(tail -1 static.out)"
