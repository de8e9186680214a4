#!/usr/bin/env bash
# CI step: the AF_XDP example driver on live kernel traffic (veth in two
# network namespaces), receive-only and echo, 100,000 datagrams each. Needs
# root; CI runs as root. Prints live_test.sh's own summary line last.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! examples/afxdp/live_test.sh --count 100000 >"$log" 2>&1; then
  tail -n 40 "$log"
  echo "50-afxdp-live: FAILED"
  exit 1
fi
tail -n 1 "$log"
