#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The table in docs/rxbuf-policies.md (between its rxbuf_policy_table markers)
# must equal what scripts/rxbuf_policy_table.sh generates from the planner.
set -euo pipefail

plan=${1:?} script=${2:?} doc=${3:?}
want=$(bash "$script" "$plan")
got=$(sed -n '/<!-- rxbuf_policy_table begin -->/,/<!-- rxbuf_policy_table end -->/p' "$doc" |
  sed '1d;$d')
if [[ "$got" != "$want" ]]; then
  echo "FAIL: $doc's table is stale; regenerate it with scripts/rxbuf_policy_table.sh:"
  diff <(echo "$got") <(echo "$want") || true
  exit 1
fi
echo "policy_table_test: docs table matches the planner ($(wc -l <<<"$want") lines)"
