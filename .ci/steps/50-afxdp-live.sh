#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: the AF_XDP example driver on live kernel traffic (veth in two
# network namespaces), receive-only and echo: 20,000 datagrams each at MTU
# 3000 (a chunk size that is not a power of two), then 100,000 each at MTU
# 1500. Needs root; CI runs as root. Prints live_test.sh's summary of the
# MTU 1500 run last.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for args in "--mtu 3000 --count 20000" "--mtu 1500 --count 100000"; do
  # shellcheck disable=SC2086  # $args is a list of options
  if ! examples/afxdp/live_test.sh $args >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "50-afxdp-live: FAILED (live_test.sh $args)"
    exit 1
  fi
  tail -n 1 "$log"
done
