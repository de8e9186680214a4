#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The AF_XDP example driver builds outside Bazel: install pagefrag with
# scripts/install.sh to a temporary prefix, copy the driver's sources and the
# tools' flag helper (examples/cli/, compiled along) and nothing else of the
# tree next to it, check that they include only public
# pagefrag headers (nothing under pagefrag/mana/ or any internal/), build the
# driver and its peer with plain g++ and pkg-config, and run both far enough
# to see them parse flags and report a bad setup with a clear message.
set -euo pipefail

root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -x "$root/scripts/install.sh" ]] || root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/support/outside_build.sh"
outside_build_setup afxdp

mkdir -p "$work/src/examples/cli"
cp "$root"/examples/afxdp/*.h "$root"/examples/afxdp/*.cc "$work/src/"
cp "$root"/examples/cli/cli.h "$root"/examples/cli/cli.cc "$work/src/examples/cli/"
cd "$work/src"
require_public_headers ./*.h ./*.cc examples/cli/*

flags=(-std=c++20 -O1 -Wall -Wextra -Wpedantic -Werror -I.)
cli_libs="absl_flags absl_flags_reflection absl_strings"
# shellcheck disable=SC2046  # pkg-config prints lists of flags
g++ "${flags[@]}" $(pkg-config --cflags pagefrag libxdp) \
  afxdp_driver_main.cc afxdp_driver.cc xsk_port.cc examples/cli/cli.cc -o afxdp_driver \
  $(pkg-config --libs pagefrag libxdp libbpf $cli_libs)
# shellcheck disable=SC2046
g++ "${flags[@]}" $(pkg-config --cflags pagefrag) afxdp_peer.cc examples/cli/cli.cc -o afxdp_peer \
  $(pkg-config --libs pagefrag $cli_libs)

# The tools' convention holds in this build too: --help exits 0, an unknown
# flag exits 2 with one error: line.
for tool in ./afxdp_driver ./afxdp_peer; do
  "$tool" --help | grep -q -- '--timeout-s=NUMBER' || fail "$tool --help"
  rc=0
  err=$("$tool" --bogus 2>&1 >/dev/null) || rc=$?
  ((rc == 2)) && [[ $err == "error: unknown flag --bogus"* && $(wc -l <<<"$err") == 1 ]] ||
    fail "$tool --bogus: exit $rc: $err"
done

# A bad setup is reported, not crashed on: exit 2 (bad interface) or 3 (this
# process may not open AF_XDP sockets), each with its reason.
rc=0
out=$(./afxdp_driver --ifname=pf-no-such-if0 --count=1 2>&1) || rc=$?
case $rc in
  2) [[ $out == *"interface 'pf-no-such-if0'"* ]] || fail "driver exit 2 without the reason: $out" ;;
  3) [[ $out == *"AF_XDP"* || $out == *"root"* ]] || fail "driver exit 3 without the reason: $out" ;;
  *) fail "driver exit $rc on a missing interface: $out" ;;
esac
rc=0
out=$(./afxdp_peer --mtu=1 2>&1) || rc=$?
((rc == 2)) && [[ $out == *"--mtu=1 "* ]] || fail "peer exit $rc on --mtu=1: $out"
echo "pkg_config_build_test: driver and peer built with g++ and pkg-config pagefrag" \
  "($(echo "$uses" | wc -l) public pagefrag headers), setup errors reported"
