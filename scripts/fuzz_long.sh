#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# fuzz_long.sh: a long run of the MANA completion-path fuzzer (outside CI).
#
#   FUZZ_SECONDS=600 scripts/fuzz_long.sh [--fuzzer completion_fuzzer|cqe_fuzzer] [--keep DIR]
#
# Builds the fuzzer with Bazel (--config=clang, -fsanitize=fuzzer,address),
# fuzzes a copy of its seed corpus for FUZZ_SECONDS (default 600) and prints
# one line: inputs executed, coverage (libFuzzer's edge counter "cov" and
# features "ft"), corpus size and crashes. --keep DIR keeps the grown corpus
# (feed it to scripts/fuzz_coverage.sh --corpus DIR). Exit status: 0 no
# crash, 1 a crash, sanitizer report or leak (reproducer in the log), 2 usage.
set -uo pipefail
usage() { sed -n '3,13s/^# \{0,1\}//p' "$0"; }
fuzzer=completion_fuzzer
keep=""
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --fuzzer=*) fuzzer=${1#--fuzzer=}; shift ;;
    --fuzzer) (($# >= 2)) || { echo "error: --fuzzer needs a name" >&2; exit 2; }; fuzzer=$2; shift 2 ;;
    --keep=*) keep=${1#--keep=}; shift ;;
    --keep) (($# >= 2)) || { echo "error: --keep needs a directory" >&2; exit 2; }; keep=$2; shift 2 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $fuzzer in
  completion_fuzzer) seeds=tests/mana/fuzz/completion_corpus ;;
  cqe_fuzzer) seeds=tests/mana/fuzz/corpus ;;
  *) echo "error: --fuzzer=$fuzzer is invalid: expected completion_fuzzer or cqe_fuzzer" >&2; exit 2 ;;
esac
seconds=${FUZZ_SECONDS:-600}
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds > 0)) ||
  { echo "error: FUZZ_SECONDS=$seconds is invalid: expected a positive integer" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! ./bazelw build --config=clang "//tests/mana:$fuzzer" >"$work/build.log" 2>&1; then
  tail -n 30 "$work/build.log"
  echo "error: building //tests/mana:$fuzzer failed" >&2
  exit 1
fi
corpus=${keep:-$work/corpus}
mkdir -p "$corpus"
cp "$seeds"/* "$corpus/"
mkdir -p "$work/artifacts"
"bazel-bin/tests/mana/$fuzzer" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$corpus" >"$work/fuzz.log" 2>&1
rc=$?
runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/fuzz.log" | grep -oE '[0-9]+$')
last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1)
cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
# slow-unit-* files are inputs that took over 10 s (reported, not failures).
crashes=$(find "$work/artifacts" -type f ! -name 'slow-unit-*' | wc -l)
slow=$(find "$work/artifacts" -type f -name 'slow-unit-*' | wc -l)
echo "fuzz_long: $fuzzer ${seconds} s: ${runs:-?} inputs, cov ${cov:-?} edges, ft ${ft:-?}," \
  "corpus ${corp:-?} inputs ($(ls "$seeds" | wc -l) seeds), crashes $crashes, slow inputs $slow"
if ((rc != 0 || crashes != 0)); then
  grep -E 'ERROR|SUMMARY|_fuzzer:|==[0-9]+==' "$work/fuzz.log" | head -n 20
  cp -r "$work/artifacts" "/tmp/$fuzzer-artifacts.$$" && echo "reproducers: /tmp/$fuzzer-artifacts.$$"
  exit 1
fi
