#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""bench/compare.py: pagefrag against its baselines, in one run.

Runs every benchmark suite (pagefrag's allocator benchmarks, the DPDK 22.11
baselines, the RX path of the MANA reference driver) as child processes, in
rounds: each round runs every suite once, back to back, so slow drift of this
shared machine's load hits both sides of a ratio alike. After N rounds (N >= 5
unless --quick) it prints a table of per-object medians with their spread,
the target ratios, and as the LAST stdout line one JSON object with the
ratios (null where a side could not be measured; the table says why).

Why child processes and not one binary: DPDK's EAL pins the thread that
initialises it (and every thread created after it) to CPU 0 and must run once
per process; pagefrag's cross-thread benchmarks need their own threads free to
run on both CPUs. Separate processes keep each side's setup out of the other's
measurement while the round-robin keeps the ratios from one run.

Ratios: "ours / baseline" of per-object time (lower is better) or, for
*speedup* keys, ours / baseline of packet rate (higher is better). Each ratio
is the median of its per-round ratios (both sides of a round ran within
seconds of each other); the table also shows each side's median.

Usage (from the repository):
  ./bazelw run -c opt //bench:compare                 # full run, ~minutes
  ./bazelw run -c opt //bench:compare -- --quick      # CI smoke, < 1 minute
  ./bazelw run -c opt //bench:compare -- --out=/tmp/results.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

# --------------------------------------------------------------------------
# Suites: which binaries run, and how their output becomes samples
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Invocation:
    """One run of a suite's binary: its flags, and the label appended to the
    names of the metrics it yields ("" for none)."""

    args: list[str]
    label: str = ""


@dataclasses.dataclass
class Suite:
    """One benchmark binary. `binary` is its path inside the runfiles tree;
    a suite whose binary is absent (not built yet) is reported as missing.
    Each round runs every invocation of every suite once."""

    name: str
    binary: str
    full: list[Invocation]
    quick: list[Invocation]
    # Flags naming the file the binary writes its results to ("{}" = path),
    # or [] when the results are the last line of stdout.
    out_flags: list[str]
    # Parses one run's output file (and stdout) into {metric name: value}.
    parse: Callable[[Path, str], dict[str, float]]
    missing_reason: str = "binary not built"


def parse_gbench(out_file: Path, _stdout: str) -> dict[str, float]:
    """Google Benchmark JSON -> {benchmark name: nanoseconds per object}.

    Per object: 1e9 / items_per_second when the benchmark counts items (a bulk
    iteration of 32 then compares with 32 single ones); otherwise time per
    iteration. Google Benchmark computes the rate from the time the benchmark
    chose (CPU time, or real time for UseRealTime benchmarks: the
    multi-thread ones), and so does this."""
    data = json.loads(out_file.read_text())
    samples: dict[str, float] = {}
    for bench in data.get("benchmarks", []):
        if bench.get("run_type") != "iteration" or bench.get("error_occurred"):
            continue
        rate = bench.get("items_per_second")
        if rate:
            samples[bench["name"]] = 1e9 / rate
        else:
            scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[bench["time_unit"]]
            chosen = "real_time" if bench["name"].endswith("/real_time") else "cpu_time"
            samples[bench["name"]] = bench[chosen] * scale
    return samples


def gbench_suite(name: str, binary: str, quick_filter: str, min_time: float,
                 quick_min_time: float = 0.1, missing_reason: str = "binary not built") -> Suite:
    common = ["--benchmark_format=console", "--benchmark_out_format=json"]
    return Suite(
        name=name,
        binary=binary,
        full=[Invocation(common + [f"--benchmark_min_time={min_time}"])],
        quick=[Invocation(common + [f"--benchmark_min_time={quick_min_time}",
                                    f"--benchmark_filter={quick_filter}"])],
        out_flags=["--benchmark_out={}"],
        parse=parse_gbench,
        missing_reason=missing_reason,
    )


def parse_rx(_out_file: Path, stdout: str) -> dict[str, float]:
    """The MANA example's --json line -> packets/s and the measured
    high-water bytes of one queue's pool."""
    line = json.loads(stdout.strip().splitlines()[-1])
    return {"pps": float(line["mpps"]) * 1e6, "queue_bytes": float(line["queue_bytes"])}


def parse_last_json(_out_file: Path, stdout: str) -> dict[str, float]:
    """A binary whose last stdout line is a JSON object of numbers."""
    return {k: float(v) for k, v in json.loads(stdout.strip().splitlines()[-1]).items()}


# RX runs: page size x packet size at one queue, both modes; then queues and
# queue size on 64 KiB pages with 1500-byte packets. MTU 1500 throughout.
RX_PAGES = [4096, 16384, 65536]
RX_SIZES = ["64", "512", "1500", "imix"]
RX_MODES = {"frag": "kernel", "fullpage": "full-page"}


def rx_invocation(mode: str, page: int, size: str, queues: int, qsize: int,
                  packets: int) -> Invocation:
    return Invocation(
        [f"--page-size={page}", "--mtu=1500", f"--packet-size={size}", f"--queues={queues}",
         f"--queue-size={qsize}", f"--policy={RX_MODES[mode]}", "--dma=strict",
         f"--packets={packets}", "--seed=1", "--json"],
        label=f"{mode}/page:{page}/size:{size}/queues:{queues}/qsize:{qsize}")


def rx_suite(packets: int, quick_packets: int) -> Suite:
    full, quick = [], []
    for mode in RX_MODES:
        for page in RX_PAGES:
            for size in RX_SIZES:
                full.append(rx_invocation(mode, page, size, 1, 1024, packets))
        for queues in (2, 4):
            full.append(rx_invocation(mode, 65536, "1500", queues, 1024, packets))
        for qsize in (256, 4096):
            full.append(rx_invocation(mode, 65536, "1500", 1, qsize, packets))
        for page in (4096, 65536):
            quick.append(rx_invocation(mode, page, "1500", 1, 1024, quick_packets))
    return Suite(name="rx", binary="examples/mana/mana_driver", full=full, quick=quick,
                 out_flags=[], parse=parse_rx,
                 missing_reason="the MANA reference driver (//examples:mana_driver) is not "
                                "on main")


# The demo against its own driver (issue 13 item 8): mana_driver over
# CoherentDma, every payload byte verified, reporting end-to-end ns per packet
# (wall time / packets), the driver's own ns per packet (time inside its busy
# polls, device and sink excluded) and the process's CPU ns per packet.
DEMO_SIZES = ("1500", "64")
DEMO_QUEUES = (1, 4)


def demo_invocation(size: str, queues: int, packets: int, qsize: int = 1024) -> Invocation:
    return Invocation(
        ["--page-size=4096", "--mtu=1500", f"--packet-size={size}", f"--queues={queues}",
         f"--queue-size={qsize}", "--policy=kernel", "--dma=coherent", f"--packets={packets}",
         "--seed=1", "--json"],
        label=f"size:{size}/queues:{queues}" + ("" if qsize == 1024 else f"/qsize:{qsize}"))


def parse_demo(_out_file: Path, stdout: str) -> dict[str, float]:
    line = json.loads(stdout.strip().splitlines()[-1])
    if line.get("result") != "PASS":
        raise RuntimeError(f"demo: mana_driver did not pass: {line}")
    return {"e2e_ns": float(line["e2e_ns_per_packet"]),
            "driver_ns": float(line["driver_ns_per_packet"]),
            "cpu_ns": float(line["cpu_ns_per_packet"]),
            "pps": float(line["mpps"]) * 1e6}


def demo_suite(packets: int, quick_packets: int) -> Suite:
    # (size, queues, entries per queue); 1 x 4096 holds the buffers of 4 x
    # 1024, and 4 x 256 those of 1 x 1024.
    cases = [(size, 1, 1024) for size in DEMO_SIZES] + [
        ("1500", 4, 1024), ("1500", 1, 4096), ("1500", 4, 256)]
    return Suite(name="demo", binary="examples/mana/mana_driver",
                 full=[demo_invocation(size, q, packets, n) for size, q, n in cases],
                 quick=[demo_invocation(size, q, quick_packets, n) for size, q, n in cases],
                 out_flags=[], parse=parse_demo)


def demo_ratios(samples: dict[str, list[float]], missing: dict[str, str]) -> dict[str, dict]:
    """demo_e2e_vs_driver_{1500,64}: end-to-end ns per packet / the driver's
    own ns per packet of the same run (one queue); demo_queue_scaling_4_vs_1:
    packets/s of 4 queues / 1 queue at 1500 bytes. Medians of the rounds."""
    out: dict[str, dict] = {}

    def ratio(key, ours, base, target, what):
        out[key] = compute_ratio(Ratio(key, "demo:" + ours, "demo:" + base, target, what,
                                       speedup="scaling_4_vs_1" in key),
                                 samples, missing)
        cpu = "demo:" + ours.replace("e2e_ns", "cpu_ns")
        if cpu != "demo:" + ours and cpu in samples:
            out[key]["cpu_ns_median"] = statistics.median(samples[cpu])
    for size, target in (("1500", "<= 10"), ("64", "<= 5")):
        ratio(f"demo_e2e_vs_driver_{size}", f"e2e_ns/size:{size}/queues:1",
              f"driver_ns/size:{size}/queues:1", target,
              f"mana_driver end-to-end ns/packet (wall) / the driver's own ns/packet (inside "
              f"poll, device and sink excluded); CoherentDma, one queue, {size}-byte packets, "
              f"every payload byte verified")
        # The same with the process's CPU time instead of wall time: what the
        # generator, device, driver and verifier cost together, which the
        # load of a shared machine inflates much less than wall time.
        ratio(f"demo_cpu_vs_driver_{size}", f"cpu_ns/size:{size}/queues:1",
              f"driver_ns/size:{size}/queues:1", "reported",
              f"mana_driver CPU ns/packet of the whole process / the driver's own ns/packet; "
              f"the same runs as demo_e2e_vs_driver_{size}")
    ratio("demo_queue_scaling_4_vs_1", "pps/size:1500/queues:4", "pps/size:1500/queues:1",
          ">= 0.9", "mana_driver packets/s with 4 queues vs 1 on this 2-CPU machine "
          "(CoherentDma, 1500-byte packets, 1024 entries a queue; generator, device and "
          "verifier in the same process)")
    # The same with as many buffers on each side: four queues of 1024 against
    # one of 4096, so the ratio shows what serving four queues costs apart
    # from four times the buffers in flight (the working set).
    ratio("demo_queue_scaling_4_vs_1_same_buffers", "pps/size:1500/queues:4",
          "pps/size:1500/queues:1/qsize:4096", "reported",
          "mana_driver packets/s with 4 queues of 1024 vs 1 queue of 4096 entries (the same "
          "buffers in flight)")
    # And the other way round: four queues of 256 against one of 1024.
    ratio("demo_queue_scaling_4_vs_1_quarter_rings", "pps/size:1500/queues:4/qsize:256",
          "pps/size:1500/queues:1", "reported",
          "mana_driver packets/s with 4 queues of 256 vs 1 queue of 1024 entries (the buffers "
          "in flight of one default queue)")
    return out


# The benchmarks each ratio needs; --quick runs only these.
DPDK_GET_PUT = "BM_DpdkMempoolGetPut/stride:1856/live:1024"
DPDK_HANDOFF = "BM_DpdkRingHandoff32/stride:1856/real_time"
DPDK_BULK = "BM_DpdkMempoolBulk32/stride:1856/live:1024"
# The driver-only RX benchmark (bench/rx_driver_bench.cc): mode 0 fragments
# (the kernel policy), 1 full pages; CPU time inside the driver's polls.
RX_DRIVER = "BM_RxDriver/mode:{mode}/size:{size}/page:{page}/manual_time"
RX_DRIVER_CASES = [(size, page) for size in (64, 1500) for page in (4096, 65536)]
DPDK_NULL = "BM_DpdkNullRxBurst/size:{size}"
RX_SCALING = "BM_RxDriverScaling/queues:{queues}/manual_time"
RX_HEADLINE = "page:{page}/size:1500/queues:1/qsize:1024"

SUITES: list[Suite] = [
    gbench_suite("pagefrag", "bench/allocator_bench",
                 quick_filter="BM_LifoFloor$|BM_PageAllocRecycleDirect$|"
                              "BM_FragOwner/stride:1856/live:1024|"
                              "BM_FragBulk32/stride:1856/live:1024|BM_FragCrossThread32/stride:1856",
                 min_time=0.2,
                 missing_reason="pagefrag's allocator benchmarks (//bench:allocator_bench) "
                                "are not on main"),
    gbench_suite("dpdk", "bench/dpdk_baseline",
                 quick_filter="BM_DpdkMempoolGetPut/stride:1856/live:1024|"
                              "BM_DpdkMempoolBulk32/stride:1856/live:1024|"
                              "BM_DpdkRingHandoff32/stride:1856|BM_DpdkNullRxBurst",
                 min_time=0.2),
    gbench_suite("rxdrv", "bench/rx_driver_bench",
                 quick_filter="BM_RxDriver",
                 min_time=0.2),
    rx_suite(packets=50_000, quick_packets=20_000),
    demo_suite(packets=500_000, quick_packets=100_000),
    Suite(name="kernel", binary="bench/kernel_anchors",
          full=[Invocation(["--loops=10000000"])], quick=[Invocation(["--loops=1000000"])],
          out_flags=[], parse=parse_last_json),
]

# --------------------------------------------------------------------------
# Ratios: the targets of issue 6
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Ratio:
    """ours / baseline for one pair of metrics ("suite:metric")."""

    key: str
    ours: Optional[str]
    baseline: Optional[str]
    target: str  # e.g. "<= 0.5"
    what: str
    speedup: bool = False  # metrics are rates: ours/baseline, higher is better
    missing_reason: str = ""


RATIOS: list[Ratio] = [
    Ratio("frag_owner_vs_dpdk_get_put", "pagefrag:BM_FragOwner/stride:1856/live:1024",
          f"dpdk:{DPDK_GET_PUT}", "<= 0.5",
          "per object: fragment alloc+free on the owner thread (1856 B, 64 KiB pages, 1024 "
          "live) vs rte_mempool_get+put (cache 256, 1024 live)",
          missing_reason="pagefrag's allocator benchmarks (//bench:allocator_bench) are not on main"),
    Ratio("frag_bulk_vs_dpdk_bulk", "pagefrag:BM_FragBulk32/stride:1856/live:1024",
          f"dpdk:{DPDK_BULK}", "<= 1.0",
          "bulk: alloc_frags(size, 32, visitor) + free_frags(32) on the owner thread (1856 B, "
          "64 KiB pages, 1024 live in a FIFO window; each fragment's page kept and first line "
          "written) vs rte_mempool_get_bulk(32) + put_bulk(32) (cache 256, 1024 live, the same)",
          missing_reason="pagefrag's allocator benchmarks (//bench:allocator_bench) are not on main"),
    Ratio("page_fast_vs_lifo", "pagefrag:BM_PageAllocRecycleDirect", "pagefrag:BM_LifoFloor",
          "<= 2.0",
          "page alloc + recycle_direct vs the bare LIFO floor",
          missing_reason="pagefrag's allocator benchmarks (//bench:allocator_bench) are not on main"),
    Ratio("cross_thread_vs_dpdk_bulk_handoff",
          "pagefrag:BM_FragCrossThread32/stride:1856/real_time", f"dpdk:{DPDK_HANDOFF}",
          "<= 1.0",
          "32 alloc_frag on one thread, a hand-off ring of 31 batches, free_frags_remote "
          "on another vs rte_mempool_get_bulk(32) -> rte_ring (1023) -> put_bulk on two lcores",
          missing_reason="pagefrag's allocator benchmarks (//bench:allocator_bench) are not on main"),
    Ratio("rx_speedup_frag_vs_fullpage_64k",
          "rx:pps/frag/" + RX_HEADLINE.format(page=65536),
          "rx:pps/fullpage/" + RX_HEADLINE.format(page=65536), ">= 2.0",
          "RX packets/s of the MANA reference driver, fragments vs full pages, 64 KiB "
          "pages, MTU 1500, 1500-byte packets, one 1024-entry queue", speedup=True),
    Ratio("rx_speedup_frag_vs_fullpage_4k",
          "rx:pps/frag/" + RX_HEADLINE.format(page=4096),
          "rx:pps/fullpage/" + RX_HEADLINE.format(page=4096), ">= 1.0",
          "the same on 4 KiB pages", speedup=True),
]

RATIOS += [
    Ratio("rx_speedup_frag_vs_fullpage_64k_coherent",
          "rxdrv:" + RX_DRIVER.format(mode=1, size=1500, page=65536),
          "rxdrv:" + RX_DRIVER.format(mode=0, size=1500, page=65536), "reported",
          "driver-only RX packets/s (CPU time inside poll), fragments vs full pages, CoherentDma, "
          "64 KiB pages, 1500-byte packets, 1024-entry ring, budget 64", speedup=True),
    Ratio("rx_speedup_frag_vs_fullpage_4k_coherent",
          "rxdrv:" + RX_DRIVER.format(mode=1, size=1500, page=4096),
          "rxdrv:" + RX_DRIVER.format(mode=0, size=1500, page=4096), "reported",
          "the same on 4 KiB pages", speedup=True),
    Ratio("queue_scaling_2_vs_1",
          "rxdrv:" + RX_SCALING.format(queues=1), "rxdrv:" + RX_SCALING.format(queues=2),
          ">= 1.8",
          "driver-only RX packets/s of 2 queues on 2 pinned threads vs 1 queue (each thread "
          "its own provider, DMA, device and queue; slowest thread's CPU time in poll)",
          speedup=True),
]

# Ratios that are the worst (largest) of several cases: key -> (pairs of
# "suite:metric" ours/baseline, target, what).
WORST_RATIOS: dict[str, tuple[list[tuple[str, str]], str, str]] = {
    "rx_driver_vs_dpdk_null_ns": (
        [("rxdrv:" + RX_DRIVER.format(mode=0, size=size, page=page),
          "dpdk:" + DPDK_NULL.format(size=size)) for size, page in RX_DRIVER_CASES],
        "<= 1.0",
        "driver-only RX ns/packet (ManaQueue poll(64), CoherentDma, 1024-entry ring, fragments; "
        "completions, refill, batch to the sink, first-line read, buffer return) vs DPDK 22.11 "
        "rte_eth_rx_burst(32) on net_null (copy=0, pktmbuf cache 256) + first-line read + "
        "rte_pktmbuf_free_bulk; worst of {64, 1500} B x {4, 64} KiB pages"),
}

# Measured values (not ratios) in the JSON line: key -> ("suite:metric", target).
VALUES: dict[str, tuple[Optional[str], str, str]] = {
    "page_pool_fast_cycles": (
        "kernel:page_pool_fast_cycles", "reported",
        "TSC cycles per alloc + recycle_direct (bench_page_pool_simple's fast path; the kernel "
        "reports 16-18)"),
    "page_pool_ring_cycles": (
        "kernel:page_pool_ring_cycles", "reported",
        "TSC cycles per alloc + recycle through the ring (its ptr_ring path)"),
    "page_frag_cross_thread_ns": (
        "kernel:page_frag_cross_thread_ns", "reported",
        "ns per 2048-byte fragment, allocated on CPU 0 and freed on CPU 1 through a 512-entry "
        "ring (page_frag_test)"),
    "queue_bytes_frag_64k": (
        "rx:queue_bytes/frag/" + RX_HEADLINE.format(page=65536), "<= 2097152",
        "measured high-water bytes of one 1024-entry queue's pool, 64 KiB pages, MTU 1500"),
}

# The DPDK mbuf bridge (issue 15; bench/dpdk_bridge): pagefrag fragment +
# attach + free per packet through pagefrag::dpdk::MbufBridge against DPDK's
# external-buffer idiom (mlx5's multi-packet RQ) and plain pktmbufs, and the
# memory of one 1024-entry RX queue at MTU 1500. Its time ratios are single-
# thread Google Benchmarks, so a full run counts their instructions too.
BRIDGE = "bridge:BM_{name}/len:1500"
BRIDGE_QUEUE_BYTES = "bridge:BM_QueueBytes/dpdk:{dpdk}/iterations:1/queue_bytes"


def parse_bridge(out_file: Path, stdout: str) -> dict[str, float]:
    """parse_gbench, plus each benchmark's queue_bytes counter as
    "<name>/queue_bytes"."""
    samples = parse_gbench(out_file, stdout)
    for bench in json.loads(out_file.read_text()).get("benchmarks", []):
        if bench.get("run_type") == "iteration" and "queue_bytes" in bench:
            samples[bench["name"] + "/queue_bytes"] = float(bench["queue_bytes"])
    return samples


def add_dpdk_bridge() -> None:
    suite = gbench_suite("bridge", "bench/dpdk_bridge/dpdk_bridge_bench",
                         quick_filter="BM_BridgeExtbuf|BM_MprqIdiom|BM_PktmbufBulk|BM_QueueBytes",
                         min_time=0.2)
    SUITES.append(dataclasses.replace(suite, parse=parse_bridge))
    RATIOS.extend([
        Ratio("dpdk_extbuf_vs_mprq_idiom", BRIDGE.format(name="BridgeExtbuf"),
              BRIDGE.format(name="MprqIdiom"), "<= 1.0",
              "ns/packet: pagefrag fragment + MbufBridge attach (extbuf, shared info in the "
              "fragment's tailroom) + rte_pktmbuf_free_bulk vs DPDK's extbuf idiom as mlx5's MPRQ "
              "uses it (strides of 64 KiB buffers, per-stride shared info, buffer refcount); "
              "burst 32, header mempool cache 256, 1024 live, first-line read"),
        Ratio("dpdk_extbuf_vs_pktmbuf", BRIDGE.format(name="BridgeExtbuf"),
              BRIDGE.format(name="PktmbufBulk"), "reported",
              "the same bridge loop vs rte_pktmbuf_alloc_bulk + rte_pktmbuf_free_bulk of 2 KiB-data "
              "mbufs (cache 256, burst 32, 1024 live, first-line read)"),
    ])
    VALUES.update({
        "dpdk_queue_bytes_pagefrag": (
            BRIDGE_QUEUE_BYTES.format(dpdk=0), "reported",
            "bytes of one 1024-entry RX queue at MTU 1500 on pagefrag: pool pages (4 KiB, "
            "DpdkRxBufPolicy, measured high water) + a 1024-header mempool"),
        "dpdk_queue_bytes_pktmbuf": (
            BRIDGE_QUEUE_BYTES.format(dpdk=1), "reported",
            "bytes of a DPDK pktmbuf pool of 1024 2 KiB-data mbufs (its memory chunks)"),
    })


add_dpdk_bridge()

# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def runfiles_root() -> Path:
    """The directory the suites' binaries are found under: the runfiles tree
    when run by Bazel, else the bazel-bin folder next to this file."""
    here = Path(os.path.abspath(__file__)).parent.parent
    if (here / "bench" / "dpdk_baseline").exists():
        return here
    return here / "bazel-bin"


def run_invocation(suite: Suite, inv: Invocation, root: Path) -> dict[str, float]:
    binary = root / suite.binary
    with tempfile.TemporaryDirectory(prefix="pagefrag-compare-") as tmp:
        out_file = Path(tmp) / "out.json"
        cmd = [str(binary), *inv.args, *(f.format(out_file) for f in suite.out_flags)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=1800, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{suite.name}: {' '.join(cmd)} exited {proc.returncode}:\n"
                               f"{proc.stderr[-2000:]}")
        metrics = suite.parse(out_file, proc.stdout)
        return {f"{m}/{inv.label}" if inv.label else m: v for m, v in metrics.items()}


def collect(suites: list[Suite], root: Path, rounds: int, quick: bool,
            log) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Runs `rounds` rounds of every present suite. Returns the samples per
    "suite:metric" (one per round) and the suites that were missing."""
    samples: dict[str, list[float]] = {}
    missing: dict[str, str] = {}
    present = []
    for suite in suites:
        if (root / suite.binary).exists():
            present.append(suite)
        else:
            missing[suite.name] = suite.missing_reason
    for r in range(rounds):
        # Alternate the order so neither side always runs first (warm caches,
        # turbo state, a neighbour's build starting).
        for suite in (present if r % 2 == 0 else reversed(present)):
            start = time.monotonic()
            for inv in (suite.quick if quick else suite.full):
                for metric, value in run_invocation(suite, inv, root).items():
                    samples.setdefault(f"{suite.name}:{metric}", []).append(value)
            log(f"round {r + 1}/{rounds}: {suite.name} took {time.monotonic() - start:.1f} s")
    return samples, missing


# --------------------------------------------------------------------------
# Instruction counts (callgrind): a noise-free second view
# --------------------------------------------------------------------------

# Callgrind zeroes its counters when the timed loop starts and dumps them when
# it ends, so each dump is exactly one run of one benchmark's loop; the last
# dump is the run Google Benchmark reports.
CALLGRIND = ["valgrind", "--tool=callgrind", "--zero-before=benchmark::State::StartKeepRunning()",
             "--dump-before=benchmark::State::FinishKeepRunning()"]


def count_instructions(binary: Path, bench: str) -> Optional[float]:
    """Instructions per object of one single-thread Google Benchmark, or None
    when valgrind is absent or the benchmark did not run."""
    with tempfile.TemporaryDirectory(prefix="pagefrag-callgrind-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [*CALLGRIND, f"--callgrind-out-file={tmp}/cg.%p", str(binary),
               f"--benchmark_filter=^{re.escape(bench)}$", "--benchmark_min_time=0.01",
               f"--benchmark_out={out}", "--benchmark_out_format=json"]
        try:
            subprocess.run(cmd, capture_output=True, timeout=600, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        dumps = sorted(Path(tmp).glob("cg.*.*"), key=lambda p: int(p.suffix[1:]))
        runs = [b for b in json.loads(out.read_text()).get("benchmarks", [])
                if b.get("run_type") == "iteration" and not b.get("error_occurred")]
        if not dumps or len(runs) != 1:
            return None
        summary = next(line for line in dumps[-1].read_text().splitlines()
                       if line.startswith("summary:"))
        ir_per_iteration = int(summary.split()[1]) / runs[0]["iterations"]
        return ir_per_iteration / items_per_iteration(runs[0])


def items_per_iteration(bench: dict) -> float:
    """Objects one iteration handles: items_per_second times the time per
    iteration it was computed from (1 when the benchmark counts no items)."""
    rate = bench.get("items_per_second")
    if not rate:
        return 1.0
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[bench["time_unit"]]
    chosen = "real_time" if bench["name"].endswith("/real_time") else "cpu_time"
    return round(rate * bench[chosen] * scale)


def instruction_counts(root: Path, samples: dict[str, list[float]], log) -> dict[str, float]:
    """Instructions per object of both sides of every single-thread time ratio."""
    counts: dict[str, float] = {}
    suites = {s.name: s for s in SUITES}
    for spec in RATIOS:
        if spec.speedup or spec.ours is None or spec.baseline is None:
            continue
        for side in (spec.ours, spec.baseline):
            suite, bench = side.split(":", 1)
            if side in counts or side not in samples or bench.endswith("/real_time"):
                continue
            ir = count_instructions(root / suites[suite].binary, bench)
            if ir is not None:
                counts[side] = ir
                log(f"callgrind: {side}: {ir:.1f} instructions per object")
    return counts


# The driver-only RX benchmark and DPDK's net_null loop count only their timed
# function (callgrind --toggle-collect) and print how many packets went
# through it, so instructions per packet need no Google Benchmark bookkeeping.
TOGGLED = {
    "rxdrv": ("pagefrag_rx_timed_chunk", "rx_driver_bench: timed_packets"),
    "dpdk": ("pagefrag_dpdk_null_timed_bursts", "dpdk_baseline: timed_packets"),
}


def count_toggled(binary: Path, bench: str, function: str, marker: str) -> Optional[float]:
    """Instructions per packet inside `function` for one benchmark, or None."""
    with tempfile.TemporaryDirectory(prefix="pagefrag-callgrind-") as tmp:
        cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no",
               f"--toggle-collect={function}", f"--callgrind-out-file={tmp}/cg.out",
               str(binary), f"--benchmark_filter=^{re.escape(bench)}$",
               "--benchmark_min_time=0.01"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        packets = [int(line.split()[-1]) for line in proc.stderr.splitlines()
                   if line.startswith(marker)]
        summary = [line for line in Path(f"{tmp}/cg.out").read_text().splitlines()
                   if line.startswith(("summary:", "totals:"))]
        if not packets or not packets[0] or not summary:
            return None
        return int(summary[0].split()[1]) / packets[0]


def toggled_counts(root: Path, samples: dict[str, list[float]], log) -> dict[str, float]:
    """Instructions per packet of both sides of every worst-case ratio."""
    counts: dict[str, float] = {}
    suites = {s.name: s for s in SUITES}
    for pairs, _, _ in WORST_RATIOS.values():
        for pair in pairs:
            for side in pair:
                suite, bench = side.split(":", 1)
                if side in counts or side not in samples:
                    continue
                function, marker = TOGGLED[suite]
                # The whole name, /manual_time included, is what the filter matches.
                ir = count_toggled(root / suites[suite].binary, bench, function, marker)
                if ir is not None:
                    counts[side] = ir
                    log(f"callgrind: {side}: {ir:.1f} instructions per packet")
    return counts


def compute_worst(key: str, samples: dict[str, list[float]], missing: dict[str, str],
                  counts: dict[str, float]) -> dict:
    """The largest per-case median ratio (ns), with the instruction view."""
    pairs, target, what = WORST_RATIOS[key]
    result = {"what": what, "target": target, "value": None, "cases": []}
    for ours, base in pairs:
        for side in (ours, base):
            if side not in samples:
                result["why_null"] = why_missing(side, missing)
                return result
        per_round = [o / b for o, b in zip(samples[ours], samples[base])]
        case = {"ours": ours, "baseline": base, "value": statistics.median(per_round),
                "per_round": per_round, "ours_median": statistics.median(samples[ours]),
                "baseline_median": statistics.median(samples[base])}
        if ours in counts and base in counts:
            case.update(ours_ir=counts[ours], baseline_ir=counts[base],
                        ir_ratio=counts[ours] / counts[base])
        result["cases"].append(case)
    worst = max(result["cases"], key=lambda c: c["value"])
    result.update(value=worst["value"], per_round=worst["per_round"], worst_case=worst["ours"],
                  met=meets(worst["value"], target))
    return result


def instruction_keys(worst: dict) -> dict[str, dict]:
    """rx_driver_vs_dpdk_null_ir and rx_driver_instructions_per_packet from the
    counted cases (null when callgrind did not count every case)."""
    r = worst.get("rx_driver_vs_dpdk_null_ns", {})
    cases = r.get("cases", [])
    counted = [c for c in cases if "ir_ratio" in c]
    why = ("callgrind did not run (--quick, --no_callgrind, or valgrind missing)"
           if len(counted) != len(cases) or not cases else "")
    ir = {"target": "<= 1.0", "value": None,
          "what": "instructions per packet, the same cases as rx_driver_vs_dpdk_null_ns; worst"}
    ipp = {"target": "<= 100", "value": None,
           "what": "driver-only RX instructions per packet (callgrind), worst of the four cases"}
    if why:
        ir["why_null"] = ipp["why_null"] = why
    else:
        ir.update(value=max(c["ir_ratio"] for c in counted),
                  cases=[{k: c[k] for k in ("ours", "ours_ir", "baseline_ir", "ir_ratio")}
                         for c in counted])
        ipp["value"] = max(c["ours_ir"] for c in counted)
        ir["met"] = meets(ir["value"], ir["target"])
        ipp["met"] = meets(ipp["value"], ipp["target"])
    return {"rx_driver_vs_dpdk_null_ir": ir, "rx_driver_instructions_per_packet": ipp}


def cross_thread_worst_round(ratios: dict) -> dict:
    r = ratios.get("cross_thread_vs_dpdk_bulk_handoff", {})
    out = {"target": "<= 1.3", "what": "the worst round of cross_thread_vs_dpdk_bulk_handoff",
           "value": None}
    if r.get("per_round"):
        out.update(value=max(r["per_round"]), per_round=r["per_round"])
        out["met"] = meets(out["value"], out["target"])
    else:
        out["why_null"] = r.get("why_null", "not measured")
    return out


# --------------------------------------------------------------------------
# DPDK's own mempool_perf_autotest (dpdk-test, package dpdk-dev): a reference
# nobody here wrote, full runs only
# --------------------------------------------------------------------------

DPDK_TEST = Path("/usr/bin/dpdk-test")
AUTOTEST_SHIM = "bench/libpagefrag_dpdk_autotest_shim.so"
# Each autotest line runs 5 s / AUTOTEST_SCALE (see bench/dpdk_autotest_shim.cc).
AUTOTEST_SCALE = 50
AUTOTEST_LINE = re.compile(
    r"mempool_autotest cache=(?P<cache>\d+) cores=(?P<cores>\d+) n_get_bulk=(?P<get>\d+) "
    r"n_put_bulk=(?P<put>\d+) n_keep=(?P<keep>\d+) constant_n=(?P<const>\d+) "
    r"rate_persec=(?P<rate>\d+)")
AUTOTEST_KEEPS = (32, 128, 512)


def dpdk_autotest(root: Path, samples: dict[str, list[float]], log) -> dict:
    """The documented subset of DPDK 22.11's mempool_perf_autotest: one core,
    the per-lcore mempool cache (the autotest's cache is
    RTE_MEMPOOL_CACHE_MAX_SIZE = 512 objects: it has no 256 line), get and put
    bulks of 32, n_keep 32, 128 and 512, with and without compile-time
    constant bulk sizes. Runs dpdk-test on lcore 0 with the shim, reads lines
    until the subset's six have printed (they follow the cache-less sections),
    then stops it. Value: ns per object (get + put) for n_keep=512,
    non-constant bulk sizes, beside our own reimplementation of the same
    get_bulk/put_bulk loop (dpdk:BM_DpdkMempoolBulk32)."""
    what = ("DPDK 22.11 dpdk-test mempool_perf_autotest, 1 core, mempool cache (512), bulk "
            "get/put 32, n_keep 512: ns per object (1e9 / rate_persec)")
    result = {"target": "reported", "value": None, "what": what}
    shim = root / AUTOTEST_SHIM
    if not DPDK_TEST.exists():
        result["why_null"] = "dpdk-test is not installed (Debian package dpdk-dev)"
        return result
    if not shim.exists():
        result["why_null"] = f"{AUTOTEST_SHIM} is not built"
        return result
    env = {**os.environ, "LD_PRELOAD": str(shim), "PAGEFRAG_DPDK_HZ_SCALE": str(AUTOTEST_SCALE),
           "DPDK_TEST": "mempool_perf_autotest"}
    cmd = [str(DPDK_TEST), "-l", "0", "--no-huge", "--no-pci", "--no-telemetry", "-m", "512",
           "--no-shconf", "--log-level=error"]
    lines: dict[tuple[int, int], float] = {}  # (n_keep, constant_n) -> ns per object
    started = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, text=True, env=env)
    except OSError as e:
        result["why_null"] = f"dpdk-test could not start: {e}"
        return result
    try:
        for raw in proc.stdout:  # type: ignore[union-attr]
            m = AUTOTEST_LINE.search(raw)
            if m is None or int(m["cache"]) == 0 or int(m["cores"]) != 1:
                continue
            if int(m["get"]) != 32 or int(m["put"]) != 32:
                continue
            rate = int(m["rate"]) * AUTOTEST_SCALE
            lines.setdefault((int(m["keep"]), int(m["const"])), 1e9 / rate if rate else 0.0)
            if len(lines) == 2 * len(AUTOTEST_KEEPS) or time.monotonic() - started > 1800:
                break
    finally:
        proc.kill()
        proc.wait()
    log(f"dpdk-test mempool_perf_autotest subset: {len(lines)} lines in "
        f"{time.monotonic() - started:.0f} s")
    if (512, 0) not in lines:
        result["why_null"] = ("dpdk-test printed no line of the subset (one core, cache, bulk 32, "
                              "n_keep 512): it failed to start or was stopped")
        return result
    result.update(value=lines[(512, 0)], met=True,
                  lines={f"n_keep:{k}/constant_n:{c}": v for (k, c), v in sorted(lines.items())},
                  scale=AUTOTEST_SCALE)
    ours = "dpdk:BM_DpdkMempoolBulk32/stride:2048/live:64"
    frag = "pagefrag:BM_FragOwner/stride:2048/live:64"
    result["beside"] = {m: statistics.median(samples[m]) for m in (ours, frag) if m in samples}
    return result


def print_autotest(values: dict) -> None:
    """The autotest's subset lines and what they sit beside (full runs)."""
    r = values.get("dpdk_mempool_autotest_bulk32_ns", {})
    for name, ns in r.get("lines", {}).items():
        print(f"    dpdk-test mempool_perf_autotest {name}: {ns:.3f} ns/object")
    for name, ns in r.get("beside", {}).items():
        print(f"    beside {name}: {ns:.3f} ns/object")


# --------------------------------------------------------------------------
# Statistics and the report
# --------------------------------------------------------------------------


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def meets(value: float, target: str) -> bool:
    if target == "reported":
        return True
    op, bound = target.split()
    return value <= float(bound) if op == "<=" else value >= float(bound)


def why_missing(metric: str, missing: dict[str, str]) -> str:
    suite = metric.split(":", 1)[0]
    return missing.get(suite, f"{metric} was not measured in this run")


def compute_ratio(spec: Ratio, samples: dict[str, list[float]],
                  missing: dict[str, str]) -> dict:
    result = {"what": spec.what, "target": spec.target, "ours": spec.ours,
              "baseline": spec.baseline, "value": None}
    if spec.ours is None or spec.baseline is None:
        result["why_null"] = spec.missing_reason
        return result
    for side in (spec.ours, spec.baseline):
        if side not in samples:
            result["why_null"] = why_missing(side, missing)
            return result
    ours, base = samples[spec.ours], samples[spec.baseline]
    # Per-object times: ours/base. Rates: ours/base too (a speedup).
    per_round = [o / b for o, b in zip(ours, base)]
    result.update(value=statistics.median(per_round), per_round=per_round,
                  ours_median=statistics.median(ours), baseline_median=statistics.median(base))
    result["met"] = meets(result["value"], spec.target)
    return result


def attach_instructions(ratios: dict, counts: dict[str, float]) -> None:
    """Adds both sides' instructions per object, and their ratio, to each
    time ratio whose two sides were counted."""
    for r in ratios.values():
        if r.get("ours") in counts and r.get("baseline") in counts:
            r["ours_ir"] = counts[r["ours"]]
            r["baseline_ir"] = counts[r["baseline"]]
            r["ir_ratio"] = r["ours_ir"] / r["baseline_ir"]


def compute_value(key: str, samples: dict[str, list[float]], missing: dict[str, str]) -> dict:
    metric, target, what = VALUES[key]
    if metric is None or metric not in samples:
        return {"target": target, "value": None, "what": what, "metric": metric,
                "why_null": why_missing(metric or "?", missing)}
    vals = samples[metric]
    median = statistics.median(vals)
    return {"target": target, "value": median, "per_round": vals, "metric": metric,
            "what": what, "met": meets(median, target)}


def machine_info() -> dict:
    info = {"cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    return info


def format_ns(v: float) -> str:
    return f"{v:10.2f}"


def print_table(samples: dict[str, list[float]], ratios: dict, values: dict,
                missing: dict[str, str]) -> None:
    width = max([len(k) for k in samples] + [20])
    print(f"{'benchmark (ns per object; RX: see unit)':<{width}} {'median':>10} "
          f"{'min':>10} {'max':>10}  n")
    for key in sorted(samples):
        s = summarize(samples[key])
        print(f"{key:<{width}} {format_ns(s['median'])} {format_ns(s['min'])} "
              f"{format_ns(s['max'])}  {s['n']}")
    for name, reason in missing.items():
        print(f"suite {name}: not run ({reason})")
    print()
    print(f"{'ratio':<36} {'value':>8} {'target':>9}  {'met':<4} spread (per round) / why null")
    for key, r in {**ratios, **values}.items():
        if r["value"] is None:
            print(f"{key:<36} {'null':>8} {r['target']:>9}  {'-':<4} {r['why_null']}")
            continue
        spread = (f"{min(r['per_round']):.3g}..{max(r['per_round']):.3g}"
                  if r.get("per_round") else "")
        met = "yes" if r["met"] else "NO"
        ir = (f"  (instructions/object {r['ours_ir']:.1f} vs {r['baseline_ir']:.1f}: "
              f"{r['ir_ratio']:.3g})" if "ir_ratio" in r else "")
        print(f"{key:<36} {r['value']:>8.4g} {r['target']:>9}  {met:<4} {spread}{ir}")
        for c in r.get("cases", []):
            line = f"    {c['ours']}: "
            if "value" in c:
                line += (f"{c['ours_median']:.2f} vs {c['baseline_median']:.2f} ns = "
                         f"{c['value']:.3g}")
            if "ir_ratio" in c:
                line += (f"  instructions {c['ours_ir']:.1f} vs {c['baseline_ir']:.1f} = "
                         f"{c['ir_ratio']:.3g}")
            print(line)


class ToolArgumentParser(argparse.ArgumentParser):
    """argparse under the tools' convention (examples/cli/cli.h): a usage
    error is one `error:` line on stderr and exit 2 (argparse prints the
    usage block first); --help prints usage on stdout and exits 0."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = ToolArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="CI smoke: 2 short rounds of the ratio benchmarks only (< 1 minute); "
                        "its numbers are not to be quoted")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds (repetitions) per benchmark; default 5, --quick 2; "
                        "a full run needs >= 5")
    p.add_argument("--no-callgrind", action="store_true",
                   help="skip counting instructions per object under callgrind (a full run "
                        "counts both sides of each single-thread ratio; --quick never does)")
    p.add_argument("--json", action="store_true",
                   help="stdout carries only the one-line JSON summary; the table goes to "
                        "stderr")
    p.add_argument("--out", type=Path, default=None,
                   help="write every sample, the machine and the method here as JSON "
                        "(what bench/report.py reads)")
    args = p.parse_args(argv)
    if args.out is not None and not args.out.is_absolute():
        # `bazel run` starts us in the runfiles tree; paths are the caller's.
        args.out = Path(os.environ.get("BUILD_WORKING_DIRECTORY", ".")) / args.out
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.rounds < 1 or (not args.quick and args.rounds < 5):
        p.error(f"--rounds={args.rounds}: a full run needs at least 5 rounds "
                "(medians of >= 5); use --quick for a smoke run")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    log = lambda msg: print(f"compare: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    root = runfiles_root()
    started = time.time()
    samples, missing = collect(SUITES, root, args.rounds, args.quick, log)
    ratios = {spec.key: compute_ratio(spec, samples, missing) for spec in RATIOS}
    values = {key: compute_value(key, samples, missing) for key in VALUES}
    counts = {} if args.quick or args.no_callgrind else instruction_counts(root, samples, log)
    attach_instructions(ratios, counts)
    toggled = {} if args.quick or args.no_callgrind else toggled_counts(root, samples, log)
    counts.update(toggled)
    worst = {key: compute_worst(key, samples, missing, toggled) for key in WORST_RATIOS}
    ratios.update(worst)
    ratios.update(instruction_keys(worst))
    ratios["cross_thread_worst_round"] = cross_thread_worst_round(ratios)
    ratios.update(demo_ratios(samples, missing))
    values["dpdk_mempool_autotest_bulk32_ns"] = (
        {"target": "reported", "value": None, "why_null": "full runs only (not --quick)"}
        if args.quick else dpdk_autotest(root, samples, log))
    if args.json:
        with contextlib.redirect_stdout(sys.stderr):
            print_table(samples, ratios, values, missing)
            print_autotest(values)
    else:
        print_table(samples, ratios, values, missing)
        print_autotest(values)
    if args.out:
        doc = {"machine": machine_info(),
               "method": {"rounds": args.rounds, "quick": args.quick,
                          "seconds": round(time.time() - started, 1),
                          "suites": {s.name: [i.args for i in (s.quick if args.quick
                                                                else s.full)]
                                     for s in SUITES},
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))},
               "samples": samples, "missing": missing, "ratios": ratios, "values": values,
               "instructions": counts}
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {args.out}")
    line = {key: r["value"] for key, r in {**ratios, **values}.items()}
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
