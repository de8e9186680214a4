#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# scripts/mutants.sh: --help exits 0 with usage on stdout; a usage error
# exits 2 with exactly one `error:` line on stderr and nothing on stdout;
# --check finds every mutant of tests/mutants/mutants.txt applying exactly
# once to the current tree; every survivor listed in SURVIVORS.md is a
# declared mutant.
set -uo pipefail
root=$(cd "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../.." && pwd)
script="$root/scripts/mutants.sh"
tmp=${TEST_TMPDIR:-$(mktemp -d)}
fail() { echo "FAIL: $*"; exit 1; }
[[ -f $script ]] || fail "no $script"

bash "$script" --help >"$tmp/out" 2>"$tmp/err" || fail "--help: exit $?"
grep -q -- '--only' "$tmp/out" || fail "--help does not list --only"
usage_error() {
  local rc
  bash "$script" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  ((rc == 2)) || fail "$* : exit $rc, expected 2 ($(cat "$tmp/err"))"
  [[ ! -s "$tmp/out" ]] || fail "$* : wrote to stdout"
  [[ $(wc -l <"$tmp/err") == 1 ]] && grep -q '^error: ' "$tmp/err" ||
    fail "$* : not one error: line: $(cat "$tmp/err")"
}
usage_error --bogus
usage_error --only
usage_error --only no-such-mutant
usage_error --configs=msan
usage_error --timeout=0

bash "$script" --check || fail "a mutant of tests/mutants/mutants.txt no longer applies exactly once"
n=$(bash "$script" --list | wc -l)
((n >= 20)) || fail "only $n mutants declared; expected at least 20"
while read -r id; do
  bash "$script" --list | cut -f1 | grep -qxF "$id" || fail "SURVIVORS.md lists $id, which is not declared"
done < <(sed -nE 's/^## `([^`]+)`.*/\1/p' "$root/tests/mutants/SURVIVORS.md")
echo "mutants_list_test: $n mutants apply; usage checked"
