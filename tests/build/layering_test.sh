#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The layering of include/pagefrag/ is enforced by the build: the root BUILD
# gives each layer its own cc_library whose deps follow the arrows, and a
# `<layer>_layering_check` library that compiles every header of the layer
# alone against only those deps. This test depends on all of them, so it
# fails to build when a header includes a layer its target may not use
# (e.g. memory/ including pool/). Here it checks that every header is covered:
# each one under include/pagefrag/<layer>/ has its generated check source.
set -euo pipefail

root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -d "$root/include/pagefrag" ]] || root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

missing=0
count=0
while IFS= read -r header; do
  rel=${header#include/}
  count=$((count + 1))
  if [[ ! -f "layering_check/${rel%.h}.cc" ]]; then
    echo "FAIL: $header has no layering check (is its folder a layer in BUILD's LAYERS?)"
    missing=1
  fi
done < <(find include/pagefrag -mindepth 2 -name '*.h' | sort)
((missing == 0)) || exit 1
echo "layering_test: $count headers, each compiled alone against only its layer's deps"
