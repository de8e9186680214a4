#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# afxdp_driver and afxdp_peer follow the tools' convention
# (examples/cli/cli.h) without root: --help exits 0 and lists the dashed
# flags; each usage error (unknown flag, overflow, a count the driver would
# allocate a table for, NaN/inf/negative timeouts) exits 2 with exactly one
# `error:` line and nothing on stdout, before any socket is opened.
set -uo pipefail
driver=$1
peer=$2
tmp=${TEST_TMPDIR:-$(mktemp -d)}
fail() { echo "FAIL: $*"; exit 1; }
cases=0

usage_error() {  # tool args...
  local tool=$1 rc
  shift
  "$tool" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  ((rc == 2)) || fail "$(basename "$tool") $*: exit $rc, expected 2 ($(cat "$tmp/err"))"
  [[ ! -s "$tmp/out" ]] || fail "$(basename "$tool") $*: wrote to stdout"
  [[ $(wc -l <"$tmp/err") == 1 ]] && grep -q '^error: ' "$tmp/err" ||
    fail "$(basename "$tool") $*: not one error: line: $(cat "$tmp/err")"
  cases=$((cases + 1))
}

for tool in "$driver" "$peer"; do
  base=()
  [[ $tool == "$driver" ]] && base=(--ifname=lo)
  out=$("$tool" --help) || fail "$tool --help: exit $?"
  grep -q -- '--timeout-s=NUMBER' <<<"$out" && grep -q -- '--progress-file=TEXT' <<<"$out" ||
    fail "$tool --help lacks dashed flags: $out"
  ! grep -q -- '--timeout_s' <<<"$out" || fail "$tool --help shows underscores"
  for t in inf nan -1 0 -inf 1e400 abc; do usage_error "$tool" "${base[@]}" --timeout-s="$t"; done
  usage_error "$tool" --bogus
  usage_error "$tool" "${base[@]}" --count=18446744073709551616
  usage_error "$tool" "${base[@]}" --port=65536
  usage_error "$tool" stray
done
# A count the driver would keep a 2^63-entry table for: refused, not aborted.
usage_error "$driver" --ifname=lo --count=9223372036854775808
usage_error "$driver" --ifname=lo --count=134217729
usage_error "$driver" --count=1
usage_error "$peer" --count=4294967295
# The error names the problem, not some other flag.
message() { "$@" 2>&1 >/dev/null; }
[[ $(message "$driver" --ifname=lo --timeout-s=nan) == *"--timeout-s=nan"* ]] || fail "timeout message"
[[ $(message "$peer" --timeout-s=inf) == *"--timeout-s=inf"* ]] || fail "peer timeout message"
[[ $(message "$driver" --ifname=lo --count=9223372036854775808) == \
   *"--count=9223372036854775808 is out of range"* ]] || fail "count message"
usage_error "$peer" --mtu=1
usage_error "$peer" --window=0
echo "afxdp_cli_test: --help and $cases usage errors of afxdp_driver and afxdp_peer"
