#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The Bazel-built //:libpagefrag_c.so.0 exports exactly the C API: every
# dynamic symbol it defines is a pagefrag_* function the header declares
# (version PAGEFRAG_C_0), and every declared function is exported; its soname
# is libpagefrag_c.so.0. (install_c.sh's build is checked the same way by
# pkg_config_build_test.)
set -euo pipefail
lib=$1
header=$2
fail() { echo "FAIL: $*"; exit 1; }

soname=$(readelf -d "$lib" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')
[[ $soname == libpagefrag_c.so.0 ]] || fail "soname '$soname'; expected libpagefrag_c.so.0"
exported=$(nm -D --defined-only "$lib" | awk 'NF == 3 {print $3}' |
  grep -vE '^(_init|_fini|_edata|_end|__bss_start|PAGEFRAG_C_0)$' | sed 's/@.*//' | sort -u)
others=$(grep -v '^pagefrag_' <<<"$exported" || true)
[[ -z $others ]] || fail "$lib exports more than pagefrag_*: $(head -5 <<<"$others" | tr '\n' ' ')"
nm -D --defined-only "$lib" | grep -q 'pagefrag_pool_create@@PAGEFRAG_C_0' ||
  fail "pagefrag_pool_create is not versioned PAGEFRAG_C_0"
declared=$(tr '\n' ' ' <"$header" | grep -oE 'PAGEFRAG_C_API [^;(]*\(' |
  grep -oE 'pagefrag_[a-z0-9_]+\($' | tr -d '(' | sort -u)
[[ -n $declared ]] || fail "no PAGEFRAG_C_API declarations found in $header"
[[ $exported == "$declared" ]] ||
  fail "exported != declared: $(diff <(echo "$declared") <(echo "$exported") | tr '\n' ' ')"
echo "shared_symbols_test: $(wc -l <<<"$exported") symbols, all pagefrag_* and declared; soname $soname"
