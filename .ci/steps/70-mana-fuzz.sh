#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: the MANA completion-queue fuzzer (the device is untrusted), built
# with clang++ -fsanitize=fuzzer,address and run for a bounded time from the
# seed corpus of valid completions. Any crash, sanitizer report or leak
# fails the step. FUZZ_SECONDS overrides the 60 s budget.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${FUZZ_SECONDS:-60}
log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT

if ! ./bazelw build --config=clang //tests/mana:cqe_fuzzer >"$log" 2>&1; then
  tail -n 30 "$log"
  echo "mana-fuzz: FAILED to build the fuzzer"
  exit 1
fi
cp tests/mana/fuzz/corpus/* "$work/"
bin=bazel-bin/tests/mana/cqe_fuzzer
if "$bin" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=16384 -print_final_stats=1 \
    "$work" >"$log" 2>&1; then
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
  echo "mana-fuzz: ${runs:-?} inputs in ${seconds} s, no crash, no leak"
else
  grep -E 'ERROR|SUMMARY|cqe_fuzzer:|==[0-9]+==' "$log" | head -n 20
  echo "mana-fuzz: FAILED (crash or sanitizer report; reproducer in the log above)"
  exit 1
fi
