#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# //examples:mana_driver as a user runs it, under the tools' convention
# (examples/cli/cli.h): --json prints exactly one JSON document on stdout
# (the report on stderr) that parses and balances; --help exits 0; every
# usage error exits 2 with exactly one `error:` line; every XDP verdict's
# frames are accounted for (aborted drops, TX frames discarded at a
# reconfiguration reported).
set -euo pipefail
bin=$1
fail() { echo "FAIL: $*"; exit 1; }
tmp=${TEST_TMPDIR:-$(mktemp -d)}

# jq-like field access with python3 (a JSON parser, not a regexp).
field() {  # json key [key...]
  python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2:]: v=v[k]
print(v)' "$@"
}

# One verified run: stdout must be one JSON document and nothing else.
"$bin" --packets=10000 --queues=2 --queue-size=256 --xdp=redirect --json >"$tmp/out" 2>"$tmp/err"
python3 -m json.tool "$tmp/out" >/dev/null || fail "stdout is not one JSON document: $(cat "$tmp/out")"
[[ $(wc -l <"$tmp/out") == 1 ]] || fail "stdout has more than the JSON line"
json=$(cat "$tmp/out")
python3 - "$json" <<'PY' || fail "--json lacks a documented key: $json"
import json, sys
keys = """packets_sent packets_received packets_dropped drops_by_reason corrupt leaked_pages
leaked_mappings inflight_pages frags_per_page truesize_per_packet queue_bytes reconfigurations
failed_reconfigurations mpps verified_sink verified_wire tx_discarded tx_errors result""".split()
missing = [k for k in keys if k not in json.loads(sys.argv[1])]
sys.exit(f"missing {missing}" if missing else 0)
PY
[[ $(field "$json" packets_sent) == 10000 ]] || fail "packets_sent: $json"
(( $(field "$json" packets_received) + $(field "$json" packets_dropped) == 10000 )) ||
  fail "unbalanced: $json"
[[ $(field "$json" corrupt) == 0 && $(field "$json" leaked_pages) == 0 &&
   $(field "$json" leaked_mappings) == 0 && $(field "$json" result) == PASS ]] ||
  fail "corrupt or leaked: $json"
grep -q "result *PASS" "$tmp/err" || fail "no PASS line in the report on stderr"

# Without --json the report is on stdout.
"$bin" --packets=2000 --queues=1 --queue-size=128 | grep -q "result *PASS" ||
  fail "no report on stdout without --json"

# Received frames reconcile with the checks: every one verified at the sink
# or on the wire, or an XDP TX frame discarded unsent when its queue was
# rebuilt (tx_discarded) or failed by the device (tx_errors).
reconciles() {  # json
  local j=$1
  (( $(field "$j" packets_received) == $(field "$j" verified_sink) + $(field "$j" verified_wire) +
     $(field "$j" corrupt) + $(field "$j" tx_discarded) + $(field "$j" tx_errors) ))
}
json=$("$bin" --packets=12000 --queues=2 --queue-size=256 --xdp=tx --reconfigure=8 --json 2>/dev/null)
reconciles "$json" || fail "tx + reconfigure does not reconcile: $json"
(( $(field "$json" verified_wire) > 0 )) || fail "no XDP_TX frame reached the wire: $json"

# --xdp=aborted: the odd sequence numbers are aborted (dropped, counted).
json=$("$bin" --packets=4000 --queues=1 --queue-size=128 --xdp=aborted --json 2>/dev/null)
[[ $(field "$json" drops_by_reason xdp_aborted) == 2000 && $(field "$json" verified_sink) == 2000 ]] ||
  fail "--xdp=aborted: $json"
reconciles "$json" || fail "--xdp=aborted does not reconcile: $json"

# --dma=coherent: the same checks pass; the driver's own time is reported and
# the counters object agrees with the totals.
json=$("$bin" --packets=5000 --queues=1 --queue-size=256 --dma=coherent --json 2>/dev/null)
[[ $(field "$json" result) == PASS && $(field "$json" dma) == coherent ]] || fail "coherent: $json"
[[ $(field "$json" counters rx_packets) == $(field "$json" packets_received) ]] ||
  fail "counters.rx_packets != packets_received: $json"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["driver_ns_per_packet"] > 0 and d["counters"]["rx_poll_ns"] > 0))' "$json" ||
  fail "no driver time: $json"

# --pollers: one poller thread serving four queues passes the same checks.
json=$("$bin" --packets=8000 --queues=4 --pollers=1 --queue-size=256 --dma=coherent --json 2>"$tmp/err")
[[ $(field "$json" result) == PASS && $(field "$json" packets_received) == 8000 ]] ||
  fail "--pollers=1: $json"
grep -q "4 queues x 256 RX slots (1 poller thread)" "$tmp/err" || fail "--pollers=1: $(head -1 "$tmp/err")"

# --help: usage on stdout, exit 0.
out=$("$bin" --help) || fail "--help exit $?"
grep -q -- '--queue-size=N' <<<"$out" && grep -q -- '--xdp=TEXT' <<<"$out" || fail "--help: $out"

# Usage errors: exit 2, nothing on stdout, exactly one line on stderr.
cases=0
for bad in "--bogus" "--packet-size=huge" "--xdp=maybe" "--policy=nope" "--dma=fast" "--queues=0" \
           "--queue-size=1000" "--queue-size=64" "--page-size=5000" "--inject=alloc:2" \
           "--inject=foo:0.1" "--inject=alloc:nan" "--inject=dma-map:inf" "--inject=bad-cqe:-0.1" \
           "--no-such-flag=1" "--mtu=9000 --xdp=pass" "--mtu=-1" "--mtu=abc" \
           "--packets=18446744073709551616" "--seed=99999999999999999999" "--json=maybe" \
           "--queue_size=256x" "stray" "--mtu" "--queues=2 --pollers=3" "--pollers=-1"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" $bad --packets=10 >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  [[ $rc == 2 ]] || fail "$bad: exit $rc, expected 2 ($(cat "$tmp/err"))"
  [[ ! -s "$tmp/out" ]] || fail "$bad: wrote to stdout"
  [[ $(wc -l <"$tmp/err") == 1 ]] && grep -q '^error: ' "$tmp/err" ||
    fail "$bad: not exactly one error: line ($(cat "$tmp/err"))"
  cases=$((cases + 1))
done
echo "mana_driver_cli_test: verified runs, one JSON document, reconciled XDP TX/aborted, --help," \
  "$cases usage errors"
