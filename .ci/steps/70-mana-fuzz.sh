#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: the MANA fuzzers (the device is untrusted), built with clang++
# -fsanitize=fuzzer,address. cqe_fuzzer writes its input over the RX
# completion queue; completion_fuzzer drives the whole completion path (RX
# and TX completions, all five XDP verdicts, reconfiguration, faults) from
# its input. Each first runs every input of its seed corpus (libFuzzer does
# so when it loads the corpus; a seed that crashes fails the step), then
# fuzzes for the rest of a bounded time: FUZZ_SECONDS (default 60) split 1/3 cqe_fuzzer,
# 2/3 completion_fuzzer. Any crash, sanitizer report or leak fails the step.
# Longer runs: scripts/fuzz_long.sh; coverage: scripts/fuzz_coverage.sh.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${FUZZ_SECONDS:-60}
log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT

if ! ./bazelw build --config=clang //tests/mana:cqe_fuzzer //tests/mana:completion_fuzzer \
    >"$log" 2>&1; then
  tail -n 30 "$log"
  echo "mana-fuzz: FAILED to build the fuzzers"
  exit 1
fi

# fuzz NAME SEEDS SECONDS: replay the seeds, then fuzz (a copy of them).
fuzz() {
  local name=$1 seeds=$2 secs=$3 bin=bazel-bin/tests/mana/$1 runs
  mkdir -p "$work/$name"
  cp "$seeds"/* "$work/$name/"
  if "$bin" -max_total_time="$secs" -rss_limit_mb=4096 -max_len=16384 -print_final_stats=1 \
      "$work/$name" >"$log" 2>&1; then
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
    echo "mana-fuzz: $name: $(ls "$seeds" | wc -l) seeds replayed, ${runs:-?} inputs in" \
      "${secs} s (seeds included), no crash, no leak"
  else
    grep -E 'ERROR|SUMMARY|_fuzzer:|==[0-9]+==' "$log" | head -n 20
    echo "mana-fuzz: FAILED: $name (crash or sanitizer report; reproducer in the log above)"
    return 1
  fi
}
fuzz cqe_fuzzer tests/mana/fuzz/corpus $((seconds / 3)) &&
  fuzz completion_fuzzer tests/mana/fuzz/completion_corpus $((seconds - seconds / 3))
