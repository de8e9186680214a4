#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The scripts and Python tools follow the tools' convention
# (examples/cli/cli.h): --help exits 0 with usage on stdout; a usage error
# exits 2 with exactly one `error:` line on stderr and nothing on stdout.
set -uo pipefail
root=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[[ -f "$root/scripts/install.sh" ]] || root=$(cd "$(dirname "$0")/.." && pwd)
tmp=${TEST_TMPDIR:-$(mktemp -d)}
fail() { echo "FAIL: $*"; exit 1; }
cases=0

help_ok() {  # cmd...
  "$@" >"$tmp/out" 2>"$tmp/err" || fail "$* : exit $?"
  [[ -s "$tmp/out" ]] || fail "$* : no usage on stdout"
  cases=$((cases + 1))
}
usage_error() {  # cmd...
  local rc
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  ((rc == 2)) || fail "$* : exit $rc, expected 2 ($(cat "$tmp/err"))"
  [[ ! -s "$tmp/out" ]] || fail "$* : wrote to stdout"
  [[ $(wc -l <"$tmp/err") == 1 ]] && grep -q '^error: ' "$tmp/err" ||
    fail "$* : not one error: line: $(cat "$tmp/err")"
  cases=$((cases + 1))
}

help_ok bash "$root/scripts/install.sh" --help
usage_error bash "$root/scripts/install.sh" --bogus
usage_error bash "$root/scripts/install.sh"
usage_error bash "$root/scripts/install.sh" --prefix
help_ok bash "$root/scripts/rxbuf_policy_table.sh" --help
usage_error bash "$root/scripts/rxbuf_policy_table.sh" --bogus
usage_error bash "$root/scripts/rxbuf_policy_table.sh"
usage_error bash "$root/scripts/rxbuf_policy_table.sh" /no/such/rxbuf_plan
help_ok bash "$root/scripts/check_spdx.sh" --help
usage_error bash "$root/scripts/check_spdx.sh" --bogus
help_ok python3 "$root/bench/compare.py" --help
usage_error python3 "$root/bench/compare.py" --bogus
usage_error python3 "$root/bench/compare.py" --rounds=x
usage_error python3 "$root/bench/compare.py" --rounds=2
python3 "$root/bench/compare.py" --help | grep -q -- '--no-callgrind' || fail "compare --help"
echo "scripts_cli_test: $cases checks of --help and usage errors"
