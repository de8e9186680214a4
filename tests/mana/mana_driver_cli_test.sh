#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# //examples:mana_driver as a user runs it: a verified run whose --json last
# line carries every documented key and balances, and bad flags that exit 2
# with an error: line.
set -euo pipefail
bin=$1
fail() { echo "FAIL: $*"; exit 1; }

out=$("$bin" --packets=20000 --queues=2 --queue-size=256 --xdp=redirect --json)
json=$(tail -n 1 <<<"$out")
for key in packets_sent packets_received packets_dropped drops_by_reason corrupt leaked_pages \
           leaked_mappings inflight_pages frags_per_page truesize_per_packet queue_bytes \
           reconfigurations failed_reconfigurations mpps; do
  grep -q "\"$key\":" <<<"$json" || fail "--json lacks $key: $json"
done
num() { grep -oE "\"$1\":[0-9.]+" <<<"$json" | head -n 1 | cut -d: -f2; }
[[ $(num packets_sent) == 20000 ]] || fail "packets_sent $(num packets_sent)"
(( $(num packets_received) + $(num packets_dropped) == 20000 )) || fail "unbalanced: $json"
[[ $(num corrupt) == 0 && $(num leaked_pages) == 0 && $(num leaked_mappings) == 0 ]] ||
  fail "corrupt or leaked: $json"
grep -q "result *PASS" <<<"$out" || fail "no PASS line"

for bad in "--packet-size=huge" "--xdp=maybe" "--policy=nope" "--dma=fast" "--queues=0" \
           "--queue-size=1000" "--page-size=5000" "--inject=alloc:2" "--inject=foo:0.1" \
           "--no-such-flag=1" "--mtu=9000 --xdp=pass"; do
  set +e
  # shellcheck disable=SC2086
  err=$("$bin" $bad --packets=10 2>&1 >/dev/null)
  rc=$?
  set -e
  [[ $rc == 2 ]] || fail "$bad: exit $rc, expected 2"
  grep -q '^error: ' <<<"$err" || fail "$bad: no error: line ($err)"
done
echo "mana_driver_cli_test: verified run, json keys, 11 bad-flag cases"
