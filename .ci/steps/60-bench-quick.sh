#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: `//bench:compare --quick`, a smoke run of the benchmark harness (its
# numbers are never quoted). Passes when the harness runs every present suite
# and its last stdout line is a JSON object with every ratio key of issues 6,
# 13 and 15 (presence only: values are never checked).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! ./bazelw run -c opt //bench:compare -- --quick >"$log" 2>&1; then
  tail -n 40 "$log"
  echo "bench-quick: FAILED (//bench:compare --quick exited non-zero)"
  exit 1
fi
if ! tail -n 1 "$log" | python3 -c '
import json, sys
line = json.loads(sys.stdin.read())
keys = ["frag_owner_vs_dpdk_get_put", "page_fast_vs_lifo",
        "cross_thread_vs_dpdk_bulk_handoff", "rx_speedup_frag_vs_fullpage_64k",
        "rx_speedup_frag_vs_fullpage_4k", "queue_bytes_frag_64k",
        # issue 13 (values may be null in --quick: callgrind and pending items)
        "rx_driver_vs_dpdk_null_ns", "rx_driver_vs_dpdk_null_ir",
        "rx_driver_instructions_per_packet", "frag_bulk_vs_dpdk_bulk",
        "rx_speedup_frag_vs_fullpage_64k_coherent", "rx_speedup_frag_vs_fullpage_4k_coherent",
        "queue_scaling_2_vs_1", "cross_thread_worst_round", "demo_e2e_vs_driver_1500",
        "demo_e2e_vs_driver_64", "page_pool_fast_cycles", "page_pool_ring_cycles",
        "page_frag_cross_thread_ns", "demo_queue_scaling_4_vs_1",
        "demo_queue_scaling_4_vs_1_same_buffers", "demo_queue_scaling_4_vs_1_quarter_rings",
        # full runs only (null in --quick): the DPDK mempool_perf_autotest
        "dpdk_mempool_autotest_bulk32_ns",
        # issue 15 (the DPDK mbuf bridge)
        "dpdk_extbuf_vs_mprq_idiom", "dpdk_extbuf_vs_pktmbuf", "dpdk_queue_bytes_pagefrag",
        "dpdk_queue_bytes_pktmbuf"]
missing = [k for k in keys if k not in line]
sys.exit(f"missing keys: {missing}" if missing else 0)
'; then
  tail -n 40 "$log"
  echo "bench-quick: FAILED (last line is not the ratios JSON)"
  exit 1
fi
echo "bench-quick: passed: $(tail -n 1 "$log")"
