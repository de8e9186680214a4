#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Runs //examples:rxbuf_plan: its JSON must equal the kernel formula (written
# out again below in shell arithmetic, independent of the library) for every
# page size, MTU and XDP setting tried; the table must be aligned; bad input
# must exit 2 with nothing on stdout and one `error:` line naming the flag
# and the valid range.
set -uo pipefail

plan=${1:?usage: rxbuf_plan_test.sh PATH_TO_RXBUF_PLAN}
failures=0
checks=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# The kernel's mana_get_rxbuf_cfg (after 730ff06, truesize per f73896b) as one
# JSON line: page mtu xdp(0|1) queue_size queues.
kernel_json() {
  local page=$1 mtu=$2 xdp=$3 qs=$4 queues=$5
  local pad=334 kind alloc headroom=0 frags=1 order=0 truesize
  local datasize=$((mtu + 14))
  if ((xdp)); then
    kind=xdp alloc=$page headroom=256 truesize=$page
  elif ((mtu + pad > page / 2)); then
    kind=jumbo alloc=$(((mtu + pad + 63) / 64 * 64))
    while (((page << order) < alloc)); do order=$((order + 1)); done
    truesize=$((page << order))
  else
    kind=standard alloc=$(((mtu + pad + 63) / 64 * 64))
    frags=$((page / alloc)) truesize=$alloc
  fi
  local pool=$((qs / frags + 1))
  local queue_bytes=$((pool * (page << order)))
  local xdp_json=false
  ((xdp)) && xdp_json=true
  printf '{"page_size":%d,"mtu":%d,"xdp":%s,"policy":"kernel","kind":"%s","datasize":%d,' \
    "$page" "$mtu" "$xdp_json" "$kind" "$datasize"
  printf '"alloc_size":%d,"headroom":%d,"frag_count":%d,"order":%d,"truesize":%d,' \
    "$alloc" "$headroom" "$frags" "$order" "$truesize"
  printf '"pool_size":%d,"queue_bytes":%d,"port_bytes":%d}\n' \
    "$pool" "$queue_bytes" "$((queue_bytes * queues))"
}

# Compares the planner's JSON for one page size / XDP setting / queue shape
# and a list of MTUs with the formula, line by line.
check_json() {  # page xdp qs queues adapter_mtu mtu...
  local page=$1 xdp=$2 qs=$3 queues=$4 adapter=$5
  shift 5
  local mtus want got xdp_flag=()
  mtus=$(IFS=,; echo "$*")
  ((xdp)) && xdp_flag=(--xdp)
  want=$(for mtu in "$@"; do kernel_json "$page" "$mtu" "$xdp" "$qs" "$queues"; done)
  got=$("$plan" --format=json --page-size="$page" --mtu="$mtus" "${xdp_flag[@]}" \
        --queue-size="$qs" --queues="$queues" --adapter-mtu="$adapter")
  checks=$((checks + $#))
  [[ "$got" == "$want" ]] || fail "json page $page xdp $xdp qs $qs: got"$'\n'"$got"$'\n'"want"$'\n'"$want"
}

mtus=(68 576 1280 1500 1714 1715 2000 3506 4000 7858 7859 8000 9000 9202)
for page in 4096 8192 16384 65536; do
  check_json "$page" 0 1024 16 9216 "${mtus[@]}"
  xdp_mtus=()
  for mtu in "${mtus[@]}"; do ((mtu <= page - 590)) && xdp_mtus+=("$mtu"); done
  check_json "$page" 1 1024 16 9216 "${xdp_mtus[@]}"
done
check_json 4096 0 128 1 9216 1500 9000
check_json 65536 0 8192 64 65549 1500 9000 32434 32435 65535
check_json 1048576 0 4096 8 65549 68 1500 65535

# Exactly the listed keys, in order.
keys=$("$plan" --format=json --page-size=4096 --mtu=1500 | grep -o '"[a-z_]*":' | tr -d '":' | paste -sd' ')
want_keys="page_size mtu xdp policy kind datasize alloc_size headroom frag_count order truesize pool_size queue_bytes port_bytes"
checks=$((checks + 1))
[[ "$keys" == "$want_keys" ]] || fail "json keys: $keys"

# Min-waste: MTU 9000, 4 KiB pages, 1024 buffers saves >= 40 % (by hand: 9633792 vs 16793600).
queue_bytes() { sed -E 's/.*"queue_bytes":([0-9]+).*/\1/'; }
kernel=$("$plan" --format=json --page-size=4096 --mtu=9000 | queue_bytes)
min=$("$plan" --format=json --page-size=4096 --mtu=9000 --policy=min-waste | queue_bytes)
checks=$((checks + 1))
[[ "$kernel" == 16793600 && "$min" == 9633792 ]] && ((min * 100 <= kernel * 60)) ||
  fail "min-waste 9000/4K: kernel $kernel min-waste $min"
checks=$((checks + 1))
"$plan" --format=json --page-size=65536 --mtu=1500 --policy=full-page |
  grep -q '"policy":"full-page","kind":"full_page".*"truesize":65536,"pool_size":1025,' ||
  fail "full-page 1500/64K"

# The table: a header and one row per MTU, every line the same width
# (right-aligned last column), memory in KiB/MiB, density and waste in %.
table=$("$plan" --page-size=4096 --mtu=1500,1715,9000 --policy=min-waste)
checks=$((checks + 1))
widths=$(awk '{ print length($0) }' <<<"$table" | sort -u | wc -l)
[[ $(wc -l <<<"$table") == 4 && "$widths" == 1 ]] || fail "table not aligned:"$'\n'"$table"
checks=$((checks + 1))
head -1 <<<"$table" | grep -q 'density.*waste' && tail -n 3 <<<"$table" | grep -q 'MiB.*%' ||
  fail "table columns:"$'\n'"$table"

# Bad input: exit 2, empty stdout, one line "error: <flag> ... <range>".
check_error() {  # flag range args...
  local flag=$1 range=$2 out err rc
  shift 2
  out=$("$plan" "$@" 2>/tmp/rxbuf_plan_err.$$)
  rc=$?
  err=$(cat /tmp/rxbuf_plan_err.$$)
  rm -f /tmp/rxbuf_plan_err.$$
  checks=$((checks + 1))
  if ((rc != 2)) || [[ -n "$out" || $(wc -l <<<"$err") != 1 || "$err" != "error: "* ||
    "$err" != *"$flag"* || "$err" != *"$range"* ]]; then
    fail "args [$*]: rc $rc, stdout [$out], stderr [$err]; want 2, nothing, error naming $flag and $range"
  fi
}
check_error --mtu 68..9202 --mtu=40
check_error --mtu 68..9202 --mtu=1500,99999
check_error --mtu 68..1500 --mtu=9000 --adapter-mtu=1514
check_error --mtu 68..3506 --xdp --page-size=4096 --mtu=4000
check_error --page-size 4096..1048576 --page-size=12288
check_error --page-size 4096..1048576 --page-size=2048
check_error --queue-size 128..8192 --queue-size=100
check_error --queue-size 128..8192 --queue-size=9000
check_error --queue-size "power of two in 128..8192" --queue-size=1000
check_error --queue-size "power of two in 128..8192" --queue-size=3072
check_error --queue-size 0..4294967295 --queue-size=4294967296
check_error --queues 1..64 --queues=0
check_error --queues 1..64 --queues=65
check_error --adapter-mtu 82..65549 --adapter-mtu=50
check_error --max-order 0..10 --max-order=11
check_error --policy "kernel, full-page, min-waste" --policy=best
check_error --format "table, json" --format=xml
check_error --mtu 0..4294967295 --mtu=abc
check_error --mtu 0..4294967295 --mtu=-1
check_error --page-size 0.. --page-size=4k
check_error --xdp "true or false" --xdp=maybe
check_error --bogus --page-size --bogus=1
check_error --bogus --help --bogus
check_error --mtu --mtu= --mtu
check_error stray "--flag=value" stray
check_error --json "true or false" --json=2

# --help: usage on stdout, every flag listed, exit 0.
checks=$((checks + 1))
help=$("$plan" --help)
rc=$?
((rc == 0)) && grep -q -- '--max-order=N' <<<"$help" && grep -q -- '--queue-size=N' <<<"$help" ||
  fail "--help: rc $rc"$'\n'"$help"

# --json: exactly one JSON document (an array, one object per MTU), the
# same objects --format=json prints one per line.
checks=$((checks + 1))
doc=$("$plan" --json --page-size=4096 --mtu=1500,9000)
lines=$("$plan" --format=json --page-size=4096 --mtu=1500,9000)
python3 - "$doc" "$lines" <<'PY' || fail "--json is not the --format=json objects as one array: $doc"
import json, sys
doc = json.loads(sys.argv[1])
lines = [json.loads(l) for l in sys.argv[2].splitlines()]
assert isinstance(doc, list) and len(doc) == 2 and doc == lines, (doc, lines)
PY

if ((failures)); then
  echo "rxbuf_plan_test: $failures of $checks checks failed"
  exit 1
fi
echo "rxbuf_plan_test: $checks checks passed"
