#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""bench/report.py: generates docs/performance.md and its plots from a real run.

  bench/report.py                       # full run of //bench:compare, then the report
  bench/report.py --results=FILE.json   # reuse a run saved by compare --out

Steps: (1) builds //bench:compare and //examples:rxbuf_plan with -c opt; (2)
runs the full comparison (medians of >= 5 interleaved rounds) unless given
--results, keeping its printed table and JSON line verbatim; (3) asks
pagefrag's own RX buffer planner for buffers per page, truesize and memory per
queue across MTUs and page sizes; (4) draws the plots with matplotlib into
docs/performance/ and writes docs/performance.md.

matplotlib comes from Debian (python3-matplotlib, in
third_party/debian-packages.txt, so ./bazelw installs it): this script re-runs
itself under Debian's /usr/bin/python3 when the current interpreter cannot see
it, and exits 1 with a message naming the package when it is missing; it never
installs anything itself.
CI never runs this script; it only runs `//bench:compare --quick`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEBIAN_PYTHON = "/usr/bin/python3"


# matplotlib and pyplot, imported by load_matplotlib() once the arguments are
# parsed (so --help and usage errors need neither).
matplotlib = None
plt = None


def load_matplotlib() -> None:
    """Imports matplotlib, re-executing under Debian's Python when this
    interpreter (e.g. a pyenv one) cannot see Debian's python3-matplotlib.
    Installs nothing: a missing package is a clear error (exit 1)."""
    global matplotlib, plt
    try:
        import matplotlib as mpl
    except ImportError:
        debian_has_it = (
            os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON)
            and os.path.exists(DEBIAN_PYTHON)
            and subprocess.run([DEBIAN_PYTHON, "-c", "import matplotlib"],
                               capture_output=True, check=False).returncode == 0)
        if debian_has_it:
            os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, __file__, *sys.argv[1:]])
        sys.exit("report: error: matplotlib is missing; install Debian's python3-matplotlib "
                 "(listed in third_party/debian-packages.txt: run ./bazelw once as root, or "
                 "apt-get install python3-matplotlib)")
    mpl.use("Agg")
    import matplotlib.pyplot as pyplot
    import matplotlib.ticker  # noqa: F401  (used as matplotlib.ticker)
    matplotlib, plt = mpl, pyplot
    # Deterministic SVGs: the same run regenerates the same files.
    plt.rcParams["svg.hashsalt"] = "pagefrag"
    plt.rcParams["figure.dpi"] = 100


SVG_META = {"Date": None, "Creator": "pagefrag bench/report.py"}

sys.path.insert(0, str(REPO / "bench"))
import report_text  # noqa: E402

PAGE_SIZES = [4096, 16384, 65536]
MTUS = [256, 512, 1000, 1500, 1714, 2000, 3000, 4000, 6000, 9000]
POLICIES = ["kernel", "full-page", "min-waste"]


# --------------------------------------------------------------------------
# Data: the comparison run and the planner
# --------------------------------------------------------------------------


def bazel(*args: str, capture: bool = False) -> str:
    proc = subprocess.run(["./bazelw", *args], cwd=REPO, check=True, text=True,
                          stdout=subprocess.PIPE if capture else None)
    return proc.stdout if capture else ""


def run_compare(out: Path) -> str:
    """Full run of //bench:compare; returns what it printed on stdout."""
    printed = bazel("run", "-c", "opt", "//bench:compare", "--", f"--out={out}",
                    capture=True)
    sys.stdout.write(printed)
    return printed


def plan(page_size: int, policy: str) -> list[dict]:
    """The planner's JSON rows for MTUS on one page size and policy."""
    binary = REPO / "bazel-bin" / "examples" / "rxbuf_plan"
    cmd = [str(binary), f"--page-size={page_size}", f"--mtu={','.join(map(str, MTUS))}",
           f"--policy={policy}", "--queue-size=1024", "--queues=16", "--format=json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def load_plans() -> dict[tuple[int, str], list[dict]]:
    return {(p, pol): plan(p, pol) for p in PAGE_SIZES for pol in POLICIES}


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def save(fig, out_dir: Path, name: str) -> str:
    path = out_dir / f"{name}.svg"
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata=SVG_META)
    plt.close(fig)
    return f"performance/{name}.svg"


def plot_buffers_per_page(plans, out_dir: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 4))
    for page in PAGE_SIZES:
        rows = plans[(page, "kernel")]
        ax.plot([r["mtu"] for r in rows], [r["frag_count"] for r in rows], marker="o",
                label=f"{page // 1024} KiB pages")
    ax.set_xlabel("MTU (bytes)")
    ax.set_ylabel("RX buffers per page (kernel policy)")
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.axvline(1500, color="grey", linestyle=":", linewidth=1)
    ax.set_title("Buffers carved from one page (frag_count), from rxbuf_plan")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save(fig, out_dir, "buffers_per_page")


def plot_queue_memory(plans, out_dir: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = {"kernel": "-", "full-page": "--", "min-waste": ":"}
    for page in PAGE_SIZES:
        color = None
        for policy in POLICIES:
            rows = plans[(page, policy)]
            (line,) = ax.plot([r["mtu"] for r in rows],
                              [r["queue_bytes"] / 2**20 for r in rows],
                              linestyle=styles[policy], marker=".", color=color,
                              label=f"{page // 1024} KiB, {policy}")
            color = line.get_color()
    ax.set_xlabel("MTU (bytes)")
    ax.set_ylabel("pool memory per 1024-entry RX queue (MiB)")
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_title("Memory per RX queue, from rxbuf_plan")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    return save(fig, out_dir, "queue_memory")


def plot_allocator(results: dict, out_dir: Path) -> str:
    """Horizontal bars: median ns per object of every allocator benchmark,
    pagefrag and DPDK, with the min..max of the rounds as error bars."""
    keys = sorted(k for k in results["samples"]
                  if k.split(":", 1)[0] in ("pagefrag", "dpdk"))
    medians = [statistics.median(results["samples"][k]) for k in keys]
    lo = [m - min(results["samples"][k]) for m, k in zip(medians, keys)]
    hi = [max(results["samples"][k]) - m for m, k in zip(medians, keys)]
    colors = ["tab:blue" if k.startswith("pagefrag:") else "tab:red" for k in keys]
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * len(keys) + 1)))
    ax.barh(range(len(keys)), medians, xerr=[lo, hi], color=colors, capsize=2)
    ax.set_yticks(range(len(keys)), [k.replace("BM_", "") for k in keys], fontsize=6)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ns per object (median of rounds; bars: min..max); blue pagefrag, red DPDK")
    ax.set_title("Allocator cost: pagefrag vs DPDK 22.11 (same run)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return save(fig, out_dir, "allocator_vs_dpdk")


def rx_points(results: dict) -> list[dict]:
    """RX samples "rx:<metric>/<mode>/page:P/size:S/queues:Q/qsize:N" as dicts
    with the fields parsed, the median and the spread."""
    out = []
    for key, values in results["samples"].items():
        if not key.startswith("rx:"):
            continue
        metric, mode, *fields = key[3:].split("/")
        point = {"metric": metric, "mode": mode, "median": statistics.median(values),
                 "min": min(values), "max": max(values), "key": key}
        point.update({k: v for k, v in (f.split(":", 1) for f in fields)})
        out.append(point)
    return out


def select(rx: list[dict], **fields) -> list[dict]:
    return [p for p in rx if all(p.get(k) == v for k, v in fields.items())]


def plot_rx_throughput(rx: list[dict], out_dir: Path) -> str | None:
    """Grouped bars of packets/s, fragments vs full pages, per page size and
    packet size, one 1024-entry queue."""
    points = select(rx, metric="pps", queues="1", qsize="1024")
    if not points:
        return None
    groups = sorted({(int(p["page"]), p["size"]) for p in points},
                    key=lambda g: (g[0], g[1] == "imix", int(g[1]) if g[1].isdigit() else 0))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.4
    for i, mode in enumerate(["frag", "fullpage"]):
        xs, ys, err = [], [], [[], []]
        for gi, (page, size) in enumerate(groups):
            found = select(points, mode=mode, page=str(page), size=size)
            if not found:
                continue
            p = found[0]
            xs.append(gi + (i - 0.5) * width)
            ys.append(p["median"] / 1e6)
            err[0].append((p["median"] - p["min"]) / 1e6)
            err[1].append((p["max"] - p["median"]) / 1e6)
        ax.bar(xs, ys, width, yerr=err, capsize=2,
               label="fragments (kernel policy)" if mode == "frag" else "full page")
    ax.set_xticks(range(len(groups)), [f"{p // 1024}K\n{s}" for p, s in groups], fontsize=7)
    ax.set_xlabel("page size / packet size (bytes or IMIX)")
    ax.set_ylabel("Mpps, one queue (median; bars min..max)")
    ax.set_title("Simulated RX throughput: fragments vs full pages (MTU 1500, MockDma strict)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    return save(fig, out_dir, "rx_throughput")


def plot_rx_scaling(rx: list[dict], out_dir: Path) -> str | None:
    """Packets/s against queues (one thread each) and against queue size, 64
    KiB pages, 1500-byte packets."""
    base = select(rx, metric="pps", page="65536", size="1500")
    if not base:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, field, fixed, label in ((left, "queues", {"qsize": "1024"}, "RX queues"),
                                      (right, "qsize", {"queues": "1"}, "RX queue entries")):
        for mode in ("frag", "fullpage"):
            pts = sorted(select(base, mode=mode, **fixed), key=lambda p: int(p[field]))
            if not pts:
                continue
            axis.errorbar([int(p[field]) for p in pts], [p["median"] / 1e6 for p in pts],
                          yerr=[[(p["median"] - p["min"]) / 1e6 for p in pts],
                                [(p["max"] - p["median"]) / 1e6 for p in pts]],
                          marker="o", capsize=2, label=mode)
        axis.set_xscale("log", base=2)
        axis.set_xlabel(label)
        axis.set_ylabel("Mpps, all queues (median)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    left.set_title("Queues (one thread each; 2 CPUs)")
    right.set_title("Queue size, one queue")
    return save(fig, out_dir, "rx_scaling")


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="Generate docs/performance.md from a real run.")
    p.add_argument("--results", type=Path, help="results JSON written by compare --out "
                   "(default: run the full comparison now)")
    p.add_argument("--printed", type=Path, help="compare's saved stdout for --results")
    args = p.parse_args(argv)
    load_matplotlib()

    docs = REPO / "docs"
    out_dir = docs / "performance"
    out_dir.mkdir(parents=True, exist_ok=True)
    bazel("build", "-c", "opt", "//bench:compare", "//examples:rxbuf_plan")
    raw_dir = out_dir / "raw"
    raw_dir.mkdir(exist_ok=True)
    if args.results is None:
        args.results = raw_dir / "results.json"
        printed = run_compare(args.results.resolve())
        (raw_dir / "compare-stdout.txt").write_text(printed)
    else:
        printed = args.printed.read_text() if args.printed else "(not saved)\n"
    results = json.loads(args.results.read_text())
    plans = load_plans()
    (raw_dir / "rxbuf_plan.json").write_text(json.dumps(
        {f"{p}/{pol}": rows for (p, pol), rows in plans.items()}, indent=1) + "\n")
    rx = rx_points(results)
    plots = {
        "buffers_per_page": plot_buffers_per_page(plans, out_dir),
        "queue_memory": plot_queue_memory(plans, out_dir),
        "allocator": plot_allocator(results, out_dir),
        "rx_throughput": plot_rx_throughput(rx, out_dir),
        "rx_scaling": plot_rx_scaling(rx, out_dir),
    }
    text = report_text.render(results, printed, plans, rx, plots)
    (docs / "performance.md").write_text(text)
    print(f"report: wrote {docs / 'performance.md'} and {len(plots)} plots", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
