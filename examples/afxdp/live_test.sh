#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# examples/afxdp/live_test.sh: the AF_XDP driver on live kernel traffic.
#
# Creates two network namespaces joined by a veth pair (addresses exist only
# inside them), binds afxdp_driver in copy mode to one end and runs
# afxdp_peer in the other namespace: --count UDP datagrams with a verifiable
# pattern, sizes from 16 bytes to the largest payload the MTU allows. Runs
# receive-only, then echo mode (the peer checks every echo). The driver checks
# each datagram, the guard bytes around every frame, and at exit that every
# fragment and page went back. First a self-check shows those checks can
# fail: frames larger than the layout (link MTU above it) are caught as
# overruns and guard hits. The namespaces are removed in every case.
#
#   live_test.sh [--count N] [--mtu M] [--modes "rx echo"]
#
# Binaries: $AFXDP_DRIVER and $AFXDP_PEER, else built with ./bazelw.
# Exit: 0 pass (last line: the summary), 1 a check failed, 2 cannot run here
# (not root, no AF_XDP, missing tools).
set -euo pipefail

count=100000
mtu=1500
modes="rx echo"
while (($#)); do
  case $1 in
    --count) count=$2; shift 2 ;;
    --mtu) mtu=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    *) echo "usage: $0 [--count N] [--mtu M] [--modes \"rx echo\"]" >&2; exit 2 ;;
  esac
done

cannot_run() { echo "live_test: CANNOT RUN: $*" >&2; exit 2; }
fail() { echo "live_test: FAIL: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || cannot_run "needs root (network namespaces, veth, AF_XDP sockets); run it as root"
for tool in ip ethtool od; do
  command -v "$tool" >/dev/null || cannot_run "missing '$tool' (Debian packages iproute2, ethtool, coreutils)"
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
driver=${AFXDP_DRIVER:-}
peer=${AFXDP_PEER:-}
if [[ -z "$driver" || -z "$peer" ]]; then
  build_log=$(mktemp)
  (cd "$repo" && ./bazelw build //examples/afxdp:afxdp_driver //examples/afxdp:afxdp_peer) \
    >"$build_log" 2>&1 || { tail -n 20 "$build_log" >&2; rm -f "$build_log"; fail "build failed"; }
  rm -f "$build_log"
  bin=$(cd "$repo" && ./bazelw info bazel-bin 2>/dev/null)
  driver=$bin/examples/afxdp/afxdp_driver
  peer=$bin/examples/afxdp/afxdp_peer
fi
"$driver" --probe || cannot_run "this kernel or process cannot open AF_XDP sockets (see above)"

tag=$$
ns_drv=pf-afxdp-drv-$tag
ns_peer=pf-afxdp-peer-$tag
veth_drv=pfxd$tag
veth_peer=pfxp$tag
ip_drv=198.18.0.1   # RFC 2544 benchmarking range, only inside the namespaces
ip_peer=198.18.0.2
tmp=$(mktemp -d /tmp/afxdp-live.XXXXXX)
driver_pid=

cleanup() {
  [[ -n "$driver_pid" ]] && kill "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null
  ip netns del "$ns_drv" 2>/dev/null || true
  ip netns del "$ns_peer" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

setup_namespaces() {
  ip netns add "$ns_drv"
  ip netns add "$ns_peer"
  ip link add "$veth_drv" netns "$ns_drv" mtu "$mtu" type veth \
    peer name "$veth_peer" netns "$ns_peer" mtu "$mtu"
  for ns in "$ns_drv" "$ns_peer"; do
    # No IPv6: nothing but the test's own frames on the wire.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  ip -n "$ns_drv" addr add "$ip_drv/24" dev "$veth_drv"
  ip -n "$ns_peer" addr add "$ip_peer/24" dev "$veth_peer"
  ip -n "$ns_drv" link set "$veth_drv" up
  ip -n "$ns_peer" link set "$veth_peer" up
  # veth offloads the UDP checksum: have the peer compute it, so the driver
  # can verify it and its echoes are correct as they are.
  ip netns exec "$ns_peer" ethtool -K "$veth_peer" tx off >/dev/null
  # The XDP program redirects every frame (ARP too) to the socket: no ARP.
  local mac
  mac=$(ip netns exec "$ns_drv" cat "/sys/class/net/$veth_drv/address")
  ip -n "$ns_peer" neigh replace "$ip_drv" lladdr "$mac" dev "$veth_peer" nud permanent
}

# Waits until the driver reports its socket bound; fails if it exits first.
wait_ready() {  # progress_file
  for _ in $(seq 1 1000); do
    kill -0 "$driver_pid" 2>/dev/null || return 1
    [[ -s "$1" && $(od -An -t u8 -N 8 "$1" | tr -d ' ') == 1 ]] && return 0
    sleep 0.01
  done
  return 1
}

summaries=()
run_mode() {  # rx | echo
  local mode=$1 echo_flag=false progress="$tmp/progress-$1" peer_rc=0 driver_rc=0
  [[ $mode == echo ]] && echo_flag=true
  echo "=== $mode: $count datagrams, MTU $mtu"
  ip netns exec "$ns_drv" "$driver" --ifname="$veth_drv" --mtu="$mtu" --count="$count" \
    --echo="$echo_flag" --progress-file="$progress" --timeout-s=120 >"$tmp/driver-$mode.log" 2>&1 &
  driver_pid=$!
  if ! wait_ready "$progress"; then
    wait "$driver_pid" || driver_rc=$?
    driver_pid=
    sed 's/^/  /' "$tmp/driver-$mode.log"
    ((driver_rc == 3)) && cannot_run "the driver could not bind an AF_XDP socket"
    fail "$mode: the driver did not start"
  fi
  ip netns exec "$ns_peer" "$peer" --target="$ip_drv" --count="$count" --mtu="$mtu" \
    --echo="$echo_flag" --progress-file="$progress" --timeout-s=20 >"$tmp/peer-$mode.log" 2>&1 ||
    peer_rc=$?
  ((peer_rc == 0)) || kill -INT "$driver_pid" 2>/dev/null || true
  wait "$driver_pid" || driver_rc=$?
  driver_pid=
  sed 's/^/  /' "$tmp/peer-$mode.log" "$tmp/driver-$mode.log"
  ((peer_rc == 0)) || fail "$mode: the peer failed (exit $peer_rc)"
  ((driver_rc == 0)) || fail "$mode: the driver failed (exit $driver_rc)"
  summaries+=("$(tail -n 1 "$tmp/driver-$mode.log")")
}

# The checks must be able to fail: on a link whose MTU exceeds the layout's,
# the driver refuses to start; forced to run anyway, real kernel writes
# overrun fragments and the driver must report overruns and guard hits.
# Always with the MTU 1500 layout: its 2048-byte chunk lets the kernel accept
# frames up to 1792 bytes, longer than the 1600 its 1856-byte stride holds.
# (At some MTUs the chunk itself is shorter than the stride, and the kernel
# drops oversized frames before they could overrun.)
self_check() {
  local layout=1500 big=1600 progress="$tmp/progress-check" rc=0 out
  echo "=== self-check: link MTU $big, buffers laid out for MTU $layout"
  ip -n "$ns_drv" link set "$veth_drv" mtu "$big"
  ip -n "$ns_peer" link set "$veth_peer" mtu "$big"
  out=$(ip netns exec "$ns_drv" "$driver" --ifname="$veth_drv" --mtu="$layout" --count=1 2>&1) || rc=$?
  echo "  refused as expected (exit $rc): $out"
  ((rc == 2)) && [[ $out == *"expected at most $layout"* ]] || fail "the driver did not refuse MTU $big"
  ip netns exec "$ns_drv" "$driver" --ifname="$veth_drv" --mtu="$layout" --count=400 \
    --allow-link-mtu-above-layout --progress-file="$progress" --timeout-s=30 \
    >"$tmp/driver-check.log" 2>&1 &
  driver_pid=$!
  wait_ready "$progress" || fail "self-check: the driver did not start"
  ip netns exec "$ns_peer" "$peer" --target="$ip_drv" --count=400 --mtu="$big" \
    --progress-file="$progress" --timeout-s=1 >/dev/null 2>&1 || true
  kill -INT "$driver_pid"
  rc=0
  wait "$driver_pid" || rc=$?
  driver_pid=
  grep -E '^driver:' "$tmp/driver-check.log" | grep -oE '(overruns|guard_violations)=[0-9]+' |
    tr '\n' ' ' | sed 's/^/  caught: /; s/$/\n/'
  ((rc == 1)) && grep -qE 'overruns=[1-9]' "$tmp/driver-check.log" &&
    grep -qE 'guard_violations=[1-9]' "$tmp/driver-check.log" ||
    { sed 's/^/  /' "$tmp/driver-check.log"; fail "overrunning frames went unnoticed"; }
  ip -n "$ns_drv" link set "$veth_drv" mtu "$mtu"
  ip -n "$ns_peer" link set "$veth_peer" mtu "$mtu"
}

setup_namespaces
self_check
for mode in $modes; do run_mode "$mode"; done
trap - EXIT
cleanup
if ip netns list | grep -qE "^($ns_drv|$ns_peer)( |$)"; then fail "namespaces left behind"; fi
summary=$(printf '%s | ' "${summaries[@]}")
echo "live_test PASS (MTU $mtu; self-check caught overruns; namespaces removed) | ${summary% | }"
