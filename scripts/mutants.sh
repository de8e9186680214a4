#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# mutants.sh: do the tests catch injected bugs? (a long run, outside CI)
#
#   scripts/mutants.sh [--only ID,...] [--sanitizers | --configs LIST] [--all-configs]
#                      [--timeout SECONDS] [--work DIR] [--no-baseline] [--json]
#   scripts/mutants.sh --check | --list
#
# Applies each single-line mutant of tests/mutants/mutants.txt, one at a time,
# to a scratch copy of the tree (--work DIR, default
# ${TMPDIR:-/tmp}/pagefrag-mutants-$UID; the working tree is never changed),
# checks it applied exactly once, runs its test targets with ./bazelw test
# (script:PATH targets with bash) in each configuration (default; --sanitizers: default, asan, tsan; --configs:
# any of them, comma-separated) and records the mutant as killed (a test
# failed or timed out: by which configuration) or survived. The first
# configuration that kills a mutant ends its run unless --all-configs.
# Before the mutants, every target runs unmutated once per configuration
# (the baseline; --no-baseline skips it): a mutant only counts as killed
# against tests that pass without it.
#   --only ID,...      run these mutants only
#   --timeout SECONDS  per test (bazel --test_timeout), default 300
#   --check            only check that every mutant applies exactly once
#   --list             print id, file and targets of every mutant
#   --json             write only a JSON summary to stdout
# Prints a table (id, file, result, configuration, seconds) and the counts.
# Exit status: 0 when every mutant was killed or survived and is listed in
# tests/mutants/SURVIVORS.md as equivalent; 1 otherwise (an unlisted
# survivor, a mutant that did not apply or build, a failing baseline); 2 usage.
set -uo pipefail
usage() { sed -n '3,30s/^# \{0,1\}//p' "$0"; }
die_usage() { echo "error: $*" >&2; exit 2; }

only=""
configs="default"
all_configs=0
timeout=300
work="${TMPDIR:-/tmp}/pagefrag-mutants-$(id -u)"
baseline=1
json=0
mode=run
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --only=*) only=${1#--only=}; shift ;;
    --only) (($# >= 2)) || die_usage "--only needs a list of mutant ids"; only=$2; shift 2 ;;
    --sanitizers) configs="default,asan,tsan"; shift ;;
    --configs=*) configs=${1#--configs=}; shift ;;
    --configs) (($# >= 2)) || die_usage "--configs needs a list"; configs=$2; shift 2 ;;
    --all-configs) all_configs=1; shift ;;
    --timeout=*) timeout=${1#--timeout=}; shift ;;
    --timeout) (($# >= 2)) || die_usage "--timeout needs seconds"; timeout=$2; shift 2 ;;
    --work=*) work=${1#--work=}; shift ;;
    --work) (($# >= 2)) || die_usage "--work needs a directory"; work=$2; shift 2 ;;
    --no-baseline) baseline=0; shift ;;
    --json) json=1; shift ;;
    --check) mode=check; shift ;;
    --list) mode=list; shift ;;
    *) die_usage "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $timeout =~ ^[0-9]+$ ]] && ((timeout > 0)) ||
  die_usage "--timeout=$timeout is invalid: expected a positive number of seconds"
IFS=, read -r -a config_list <<<"$configs"
((${#config_list[@]})) || die_usage "--configs is empty: expected default, asan and/or tsan"
for c in "${config_list[@]}"; do
  case $c in default | asan | tsan) ;; *) die_usage "--configs: '$c' is invalid: expected default, asan or tsan" ;; esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
list_file="$root/tests/mutants/mutants.txt"
survivors_file="$root/tests/mutants/SURVIVORS.md"
[[ -f $list_file ]] || { echo "error: $list_file is missing" >&2; exit 1; }

# ---- the list: blocks of "key: value" lines, blank-line separated --------
ids=() files=() afters=() finds=() replaces=() targets=() breaks=()
parse_list() {
  local line key value n=-1 lineno=0
  while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    [[ $line == *": "* || $line == *":" ]] || {
      echo "error: $list_file:$lineno: expected 'key: value'" >&2
      exit 1
    }
    key=${line%%:*}
    value=${line#*:}
    value=${value# }
    case $key in
      id)
        n=$((n + 1))
        ids[n]=$value files[n]="" afters[n]="" finds[n]="" replaces[n]="" targets[n]="" breaks[n]=""
        ;;
      file) files[n]=$value ;;
      after) afters[n]=$value ;;
      find) finds[n]=$value ;;
      replace) replaces[n]=$value ;;
      targets) targets[n]=$value ;;
      breaks) breaks[n]=$value ;;
      *) echo "error: $list_file:$lineno: unknown key '$key'" >&2; exit 1 ;;
    esac
    ((n >= 0)) || { echo "error: $list_file:$lineno: '$key' before the first id" >&2; exit 1; }
  done <"$list_file"
  local i
  for i in "${!ids[@]}"; do
    [[ -n ${files[i]} && -n ${finds[i]} && -n ${targets[i]} && -n ${breaks[i]} ]] || {
      echo "error: mutant ${ids[i]}: file, find, targets and breaks are required" >&2
      exit 1
    }
  done
}
parse_list

selected=()
if [[ -n $only ]]; then
  IFS=, read -r -a want <<<"$only"
  for w in "${want[@]}"; do
    found=""
    for i in "${!ids[@]}"; do [[ ${ids[i]} == "$w" ]] && found=$i; done
    [[ -n $found ]] || die_usage "--only: no mutant '$w' in tests/mutants/mutants.txt"
    selected+=("$found")
  done
else
  selected=("${!ids[@]}")
fi

# The mutator, for one or many mutants: arguments in groups of five (label,
# file, after, find, replace); each file is rewritten in place unless
# PAGEFRAG_MUTANTS_DRY=1. A mutant's `find` must occur on exactly one line
# (or, with `after`, the first line containing it after the one line that
# contains `after`) and exactly once on it. Prints "label: why" for each
# mutant that does not apply, or that changes nothing; fails if any.
# /usr/bin/python3 when present: a version manager's shim costs a second a call.
python=python3
[[ -x /usr/bin/python3 ]] && python=/usr/bin/python3
mutate() {
  "$python" - "$@" <<'EOF'
import os, sys
args, bad = sys.argv[1:], 0
dry = os.environ.get("PAGEFRAG_MUTANTS_DRY") == "1"
for k in range(0, len(args), 5):
    label, path, after, find, replace = args[k:k + 5]
    def fail(why):
        global bad
        bad += 1
        print(f"{label}: {why}")
    try:
        lines = open(path, encoding="utf-8").read().split("\n")
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
        continue
    if after:
        anchors = [i for i, l in enumerate(lines) if after in l]
        if len(anchors) != 1:
            fail(f"'after' text occurs on {len(anchors)} lines, expected 1")
            continue
        hits = [i for i in range(anchors[0] + 1, len(lines)) if find in lines[i]][:1]
        if not hits:
            fail("'find' text does not occur after the 'after' line")
            continue
    else:
        hits = [i for i, l in enumerate(lines) if find in l]
        if len(hits) != 1:
            fail(f"'find' text occurs on {len(hits)} lines, expected 1")
            continue
    i = hits[0]
    if lines[i].count(find) != 1:
        fail(f"'find' text occurs {lines[i].count(find)} times on its line, expected 1")
        continue
    mutated = lines[i].replace(find, replace)
    if mutated == lines[i]:
        fail("the replacement changes nothing")
        continue
    lines[i] = mutated
    if not dry:
        open(path, "w", encoding="utf-8").write("\n".join(lines))
sys.exit(1 if bad else 0)
EOF
}

if [[ $mode == list ]]; then
  for i in "${selected[@]}"; do printf '%s\t%s\t%s\n' "${ids[i]}" "${files[i]}" "${targets[i]}"; done
  exit 0
fi

if [[ $mode == check ]]; then
  jobs=()
  for i in "${selected[@]}"; do
    jobs+=("${ids[i]}" "$root/${files[i]}" "${afters[i]}" "${finds[i]}" "${replaces[i]}")
  done
  problems=$(PAGEFRAG_MUTANTS_DRY=1 mutate "${jobs[@]}")
  [[ -n $problems ]] && echo "$problems"
  bad=$(grep -c . <<<"$problems")
  dups=$(printf '%s\n' "${ids[@]}" | sort | uniq -d | tr '\n' ' ')
  [[ -z $dups ]] || { echo "duplicate mutant ids: $dups"; bad=$((bad + 1)); }
  echo "mutants.sh --check: ${#selected[@]} mutants, $bad problems"
  ((bad == 0)) && exit 0 || exit 1
fi

# ---- the run -------------------------------------------------------------
log() { if ((json)); then echo "$*" >&2; else echo "$*"; fi; }
mkdir -p "$work" || { echo "error: cannot create $work" >&2; exit 1; }
tree="$work/tree"
logs="$work/logs"
mutated=""  # the scratch file currently mutated, restored from $work/pristine
restore() {
  if [[ -n $mutated ]]; then
    cp "$work/pristine" "$tree/$mutated"
    mutated=""
  fi
}
trap 'restore; echo "mutants.sh: interrupted; the scratch copy is restored" >&2; exit 130' INT TERM
trap 'restore' EXIT

# The scratch copy: every tracked and untracked (not ignored) file of the
# working tree. Its Bazel output base and disk cache persist in $work, so an
# unmutated action is built once for every run.
rm -rf "$tree" "$logs"
mkdir -p "$tree" "$logs"
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | (cd "$tree" && tar -xf -) ||
  { echo "error: copying the tree to $tree failed" >&2; exit 1; }

bazel_flags() {  # config
  local f=(--test_timeout="$timeout" --disk_cache="$work/disk-cache" --test_output=errors
    --test_summary=terse --noshow_progress)
  case $1 in
    asan) f+=(--config=asan) ;;
    tsan) f+=(--config=tsan --test_tag_filters=-no_tsan) ;;
  esac
  printf '%s\n' "${f[@]}"
}

# run_tests CONFIG LOG TARGET...: 0 passed, 3 a test failed, other: no verdict.
# Bazel targets run with ./bazelw test; a target script:PATH runs PATH (a
# test script of the tree, e.g. a QEMU guest test) with bash, the same in
# every configuration: its nonzero exit is a failed test, unless it says it
# could not build what it tests ("building ... failed": stillborn).
run_tests() {
  local config=$1 out=$2
  shift 2
  local flags bazel=() scripts=() t rc
  for t in "$@"; do
    if [[ $t == script:* ]]; then scripts+=("${t#script:}"); else bazel+=("$t"); fi
  done
  : >"$out"
  if ((${#bazel[@]})); then
    mapfile -t flags < <(bazel_flags "$config")
    (cd "$tree" && ./bazelw test "${flags[@]}" "${bazel[@]}") >>"$out" 2>&1 || return $?
  fi
  for t in "${scripts[@]}"; do
    (cd "$tree" && timeout "$timeout" bash "$t") >>"$out" 2>&1
    rc=$?
    ((rc == 0)) && continue
    grep -qE 'building .* failed' "$out" && { echo "error: $t could not build" >>"$out"; return 1; }
    return 3
  done
}

is_listed_survivor() {  # id
  [[ -f $survivors_file ]] && grep -qE "^## \`?$1\`?( |$)" "$survivors_file"
}

started=$SECONDS
if ((baseline)); then
  # Every target of the selected mutants, unmutated, in every configuration.
  mapfile -t all_targets < <(for i in "${selected[@]}"; do tr ' ' '\n' <<<"${targets[i]}"; done | sed '/^$/d' | sort -u)
  for c in "${config_list[@]}"; do
    log "baseline [$c]: ${#all_targets[@]} targets"
    if ! run_tests "$c" "$logs/baseline-$c.log" "${all_targets[@]}"; then
      tail -n 30 "$logs/baseline-$c.log" >&2
      echo "error: the unmutated tests fail in configuration $c (log: $logs/baseline-$c.log)" >&2
      exit 1
    fi
  done
fi

results=() result_config=() result_secs=()
for i in "${selected[@]}"; do
  id=${ids[i]}
  t0=$SECONDS
  if [[ ! -f "$tree/${files[i]}" ]]; then
    results[i]=invalid result_config[i]="-" result_secs[i]=0
    log "$id: ${files[i]} does not exist"
    continue
  fi
  cp "$tree/${files[i]}" "$work/pristine"
  mutated=${files[i]}
  if ! why=$(mutate "$id" "$tree/${files[i]}" "${afters[i]}" "${finds[i]}" "${replaces[i]}" 2>&1); then
    restore
    results[i]=invalid result_config[i]="-" result_secs[i]=0
    log "$id: does not apply: $why"
    continue
  fi
  read -r -a tgts <<<"${targets[i]}"
  verdict=survived where="-"
  for c in "${config_list[@]}"; do
    run_tests "$c" "$logs/$id-$c.log" "${tgts[@]}"
    rc=$?
    if ((rc == 3)); then
      if [[ $verdict == killed ]]; then where+="+$c"; else verdict=killed where=$c; fi
      ((all_configs)) || break
    elif ((rc == 1)) && grep -qE 'FAILED TO BUILD|Build did NOT complete|error:' "$logs/$id-$c.log"; then
      [[ $verdict == killed ]] || { verdict=stillborn where=$c; }
      break
    elif ((rc != 0)); then
      [[ $verdict == killed ]] || { verdict=error where=$c; }
      break
    fi
  done
  restore
  results[i]=$verdict result_config[i]=$where result_secs[i]=$((SECONDS - t0))
  log "$id: $verdict${where:+ ($where)} in $((SECONDS - t0)) s"
done

# ---- summary -------------------------------------------------------------
killed=0 survived=0 equivalent=0 other=0 rc=0
declare -A by_config=()
for i in "${selected[@]}"; do
  case ${results[i]} in
    killed) killed=$((killed + 1)); by_config[${result_config[i]}]=$((${by_config[${result_config[i]}]:-0} + 1)) ;;
    survived)
      survived=$((survived + 1))
      if is_listed_survivor "${ids[i]}"; then equivalent=$((equivalent + 1)); else rc=1; fi
      ;;
    *) other=$((other + 1)); rc=1 ;;
  esac
done
elapsed=$((SECONDS - started))

if ((json)); then
  {
    printf '{"configs":"%s","total":%d,"killed":%d,"survived":%d,"survived_listed_equivalent":%d,"other":%d,"seconds":%d,"killed_by":{' \
      "$configs" "${#selected[@]}" "$killed" "$survived" "$equivalent" "$other" "$elapsed"
    sep=""
    for c in "${!by_config[@]}"; do printf '%s"%s":%d' "$sep" "$c" "${by_config[$c]}"; sep=","; done
    printf '},"mutants":['
    sep=""
    for i in "${selected[@]}"; do
      printf '%s{"id":"%s","file":"%s","result":"%s","config":"%s","seconds":%d}' "$sep" "${ids[i]}" \
        "${files[i]}" "${results[i]}" "${result_config[i]}" "${result_secs[i]}"
      sep=","
    done
    printf ']}\n'
  }
else
  printf '\n%-28s %-36s %-10s %-18s %s\n' id file result config seconds
  for i in "${selected[@]}"; do
    r=${results[i]}
    [[ $r == survived ]] && is_listed_survivor "${ids[i]}" && r="survived*"
    printf '%-28s %-36s %-10s %-18s %s\n' "${ids[i]}" "${files[i]#include/pagefrag/}" "$r" \
      "${result_config[i]}" "${result_secs[i]}"
  done
  echo
  by=""
  for c in "${!by_config[@]}"; do by+=" $c ${by_config[$c]},"; done
  echo "mutants: ${#selected[@]} run in ${elapsed} s [configs $configs]: $killed killed (by${by%,})," \
    "$survived survived ($equivalent listed as equivalent in tests/mutants/SURVIVORS.md)," \
    "$other invalid/stillborn/error"
  ((survived == 0)) || echo "(* = listed as equivalent)"
fi
exit $rc
