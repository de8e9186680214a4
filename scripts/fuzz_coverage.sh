#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# fuzz_coverage.sh: clang source-based coverage of a replay of the MANA
# fuzzers' corpora, and a check that the completion path is reached.
#
#   scripts/fuzz_coverage.sh [--out DIR] [--corpus DIR]...
#
# Builds tests/mana/fuzz/completion_fuzzer.cc and cqe_fuzzer.cc with clang++-14
# -fprofile-instr-generate -fcoverage-mapping (outside Bazel: one translation
# unit each), replays the seed corpora (tests/mana/fuzz/completion_corpus and
# corpus; --corpus adds directories, e.g. a long run's), merges the profiles
# with llvm-profdata-14 and writes with llvm-cov-14:
#   DIR/summary.txt    per-file region/line/branch coverage of examples/mana/
#   DIR/queue.txt, DIR/port.txt   annotated sources (execution count per line)
#   DIR/reached.txt    the lines that must run: TX completion handling, each
#                      XDP verdict branch, the reconfiguration paths
# Exit status: 0 every required line ran, 1 one did not (listed), 2 usage.
set -euo pipefail
usage() { sed -n '3,17s/^# \{0,1\}//p' "$0"; }
out=""
extra=()
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --out) (($# >= 2)) || { echo "error: --out needs a directory" >&2; exit 2; }; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --corpus) (($# >= 2)) || { echo "error: --corpus needs a directory" >&2; exit 2; }; extra+=("$2"); shift 2 ;;
    --corpus=*) extra+=("${1#--corpus=}"); shift ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for tool in clang++-14 llvm-profdata-14 llvm-cov-14 pkg-config python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (Debian: llvm-14, clang)" >&2; exit 1; }
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${out:-$(mktemp -d /tmp/pagefrag-fuzz-coverage.XXXXXX)}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"

cov=(-fprofile-instr-generate -fcoverage-mapping)
# shellcheck disable=SC2046  # pkg-config prints lists of flags
libs=$(pkg-config --libs absl_status absl_statusor absl_strings fmt)
for f in completion_fuzzer cqe_fuzzer; do
  # shellcheck disable=SC2086
  clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer "${cov[@]}" -I. -Iinclude \
    "tests/mana/fuzz/$f.cc" -o "$work/$f" $libs
done

replay() {  # fuzzer corpus...
  local f=$1
  shift
  LLVM_PROFILE_FILE="$work/$f-%p.profraw" "$work/$f" -runs=0 -rss_limit_mb=4096 "$@" \
    >"$work/$f.log" 2>&1 || { tail -n 20 "$work/$f.log"; echo "fuzz_coverage: $f failed on its corpus"; exit 1; }
  grep -oE 'Done [0-9]+ runs' "$work/$f.log" | sed "s/^/  $f: /"
}
echo "fuzz_coverage: replaying the corpora"
replay completion_fuzzer tests/mana/fuzz/completion_corpus "${extra[@]}"
replay cqe_fuzzer tests/mana/fuzz/corpus
llvm-profdata-14 merge -sparse "$work"/*.profraw -o "$work/all.profdata"
# Both fuzzers instantiate the same templates: llvm-cov warns that their
# hashes differ and counts each binary's own (harmless; filtered).
objs=("$work/completion_fuzzer" -object "$work/cqe_fuzzer")
sources=(examples/mana/queue.h examples/mana/port.h examples/mana/gdma.h examples/mana/xdp.h)
llvm-cov-14 report "${objs[@]}" -instr-profile="$work/all.profdata" "${sources[@]}" \
  >"$out/summary.txt" 2> >(grep -v 'mismatched data' >&2)
for f in queue port; do
  llvm-cov-14 show "$work/completion_fuzzer" -instr-profile="$work/all.profdata" \
    -show-branches=count "examples/mana/$f.h" >"$out/$f.txt"
done

# Lines that must have run (source text, matched in the annotated files).
python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
required = [
    ("queue", "TX completion consumed", "stats_->tx_completed.add()"),
    ("queue", "TX completions read from the CQ", "while (tx_cq_->read(&cqe) == CqeState::kReady)"),
    ("queue", "TX frame discarded at teardown", "stats_->tx_discarded.add()"),
    ("queue", "XDP program run", "XdpAction act = (*env_.xdp)(x);"),
    ("queue", "XDP verdict PASS", "stats_->xdp_pass.add();"),
    ("queue", "XDP verdict TX", "return xdp_send(this, buf, x, flen, DropReason::kXdpTxFull"),
    ("queue", "XDP verdict REDIRECT", "ManaQueue* target = lookup_ ? lookup_(x.redirect_queue)"),
    ("queue", "XDP REDIRECT to no queue", "if (target == nullptr) return xdp_drop(buf, DropReason::kRedirectFailed)", True),
    ("queue", "XDP verdict DROP", "return xdp_drop(buf, DropReason::kXdpDrop);"),
    ("queue", "XDP verdict ABORTED", "return xdp_drop(buf, DropReason::kXdpAborted);"),
    ("queue", "XDP TX/REDIRECT ring full", "if (!target->xmit(this, buf.page, iova, flen)) return xdp_drop(buf, full);", True),
    ("queue", "XDP invalid data move aborted", "if (!sane) act = XdpAction::kAborted;", True),
    ("queue", "TX buffer returned to another queue", "stats_->tx_remote_returned"),
    ("port", "set_mtu", "next.mtu = mtu;"),
    ("port", "set_xdp", "next.xdp = prog ?"),
    ("port", "set_full_page", "next.full_page = on;"),
    ("port", "detach", "teardown(queues_);"),
    ("port", "attach", "install(*std::move(fresh));"),
]
line_re = re.compile(r"^\s*(\d+)\|\s*([0-9.]+[kMG]?|)\|(.*)$")
branch_re = re.compile(r"Branch \((\d+):\d+\): \[True: ([0-9.]+[kMG]?), False: ([0-9.]+[kMG]?)\]")
def scale(c):
    if not c: return None
    m = {"k": 1e3, "M": 1e6, "G": 1e9}
    return float(c[:-1]) * m[c[-1]] if c[-1] in m else float(c)
files = {}
for name in ("queue", "port"):
    rows, taken = [], {}
    for l in open(f"{out}/{name}.txt", encoding="utf-8", errors="replace"):
        b = branch_re.search(l)
        if b:
            n = int(b.group(1))
            taken[n] = taken.get(n, 0) + int(scale(b.group(2)))
            continue
        m = line_re.match(l)
        if m: rows.append((int(m.group(1)), scale(m.group(2)), m.group(3)))
    files[name] = (rows, taken)
missing, lines = [], []
for f, what, text, *branch in required:
    rows, taken = files[f]
    hits = [(n, c) for n, c, src in rows if text in src]
    if not hits:
        lines.append(f"  ?        {f}.h  {what}: source line not found (moved?)")
        missing.append(what)
        continue
    n, c = hits[0]
    # For a condition, the times it was true (its branch taken), not the
    # times the line ran.
    count = taken.get(n, 0) if branch else (0 if c is None else int(c))
    lines.append(f"  {count:>8}  {f}.h:{n}  {what}{' (condition true)' if branch else ''}")
    if count == 0:
        missing.append(what)
report = "executions  line  required path\n" + "\n".join(lines) + "\n"
open(f"{out}/reached.txt", "w").write(report)
print(report, end="")
if missing:
    print("fuzz_coverage: NOT reached: " + ", ".join(missing))
    sys.exit(1)
PY
echo "fuzz_coverage: summary of examples/mana/ (regions, functions, lines, branches):"
grep -E '^(Filename|.*queue.h|.*port.h|TOTAL)' "$out/summary.txt" | sed 's/^/  /'
echo "fuzz_coverage: every required path reached; reports in $out"
