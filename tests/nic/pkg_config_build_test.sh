#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The example NIC drivers (virtio-net, e1000e) build outside Bazel: install
# pagefrag with scripts/install.sh to a temporary prefix, copy the drivers'
# folders (examples/{vfio_pci,virtio_net,e1000e}, nothing else of the tree),
# check they include only installed public pagefrag headers (no internal/,
# nothing from examples/mana), build both programs with plain g++ and
# `pkg-config pagefrag`, and run them far enough to see the flag handling
# and a clear setup error.
set -euo pipefail

root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -x "$root/scripts/install.sh" ]] || root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/support/outside_build.sh"
outside_build_setup nic

for dir in vfio_pci virtio_net e1000e; do
  mkdir -p "$work/src/examples/$dir"
  cp "$root"/examples/$dir/*.h "$work/src/examples/$dir/"
  cp "$root"/examples/$dir/*.cc "$work/src/examples/$dir/" 2>/dev/null || true
done
cd "$work/src"
# shellcheck disable=SC2046  # the file list
require_public_headers $(find examples -name '*.h' -o -name '*.cc')

flags=(-std=c++20 -O1 -Wall -Wextra -Wpedantic -Werror -I .)
for prog in virtio_net e1000e; do
  # shellcheck disable=SC2046  # pkg-config prints lists of flags
  g++ "${flags[@]}" $(pkg-config --cflags pagefrag) "examples/$prog/${prog}_main.cc" \
    -o "${prog}_echo" $(pkg-config --libs pagefrag) -pthread
  ./"${prog}_echo" --help | grep -q -- '--bdf=BDF' || fail "$prog --help prints no usage"
  rc=0
  out=$(./"${prog}_echo" --mtu=1 --bdf=0000:00:03.0 2>&1) || rc=$?
  ((rc == 2)) && [[ $out == "error: --mtu 1 is invalid"* ]] || fail "$prog exit $rc on --mtu=1: $out"
  rc=0
  out=$(./"${prog}_echo" --bdf=0000:ff:1f.7 --frames=1 2>&1) || rc=$?
  ((rc == 1)) && [[ $out == *"0000:ff:1f.7"* ]] || fail "$prog exit $rc on a missing device: $out"
done
echo "pkg_config_build_test: virtio_net_echo and e1000e_echo built with g++ and pkg-config" \
  "pagefrag ($(echo "$uses" | wc -l) public pagefrag headers), usage and setup errors reported"
