#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: reserve 2 MiB hugepages, run the HugepageProvider tests (tagged
# manual, so `bazel test //...` never runs them without hugepages) in the
# default and ASan configurations, then restore the hugepage setting.
# Needs root (CI runs as root). Prints a one-line summary last.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

knob=/proc/sys/vm/nr_hugepages
want=16  # the suite holds at most 8 at once; leave headroom for others
summary() { echo "hugepages: $*"; }

if [[ $(id -u) -ne 0 ]]; then
  summary "FAILED: needs root to write $knob"
  exit 1
fi
before=$(cat "$knob")
restore() { echo "$before" >"$knob"; }
trap restore EXIT
echo $((before + want)) >"$knob"
free=$(awk '/^HugePages_Free:/{print $2}' /proc/meminfo)
if ((free < want)); then
  summary "FAILED: asked for $want more 2 MiB hugepages, only $free free (memory fragmented?)"
  exit 1
fi

failed=0
for config in "" "--config=asan"; do
  if ! ./bazelw test $config //tests/memory:hugepage_provider_test //tests/memory:hugepage_args_test \
      --test_output=errors --test_summary=terse >/tmp/hugepages-ci.log 2>&1; then
    tail -n 40 /tmp/hugepages-ci.log
    failed=$((failed + 1))
  fi
done
restore
trap - EXIT
if ((failed)); then
  summary "FAILED in $failed of 2 configs (nr_hugepages restored to $before)"
  exit 1
fi
summary "2 tests x 2 configs passed with $want reserved 2 MiB hugepages (nr_hugepages restored to $before)"
