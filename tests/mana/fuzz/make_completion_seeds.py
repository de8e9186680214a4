#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Writes the hand-written seeds of completion_fuzzer (completion_corpus/): one
program per path the fuzzer must reach (every XDP verdict, XDP_TX with the
TX ring full, TX frames discarded at a reconfiguration, MTU / XDP /
full-page changes, detach and re-attach, faults, corrupted and coalesced
completions, truncated frames). The encoding is completion_fuzzer.cc's.
The grown-* files next to them are what a 600 s run of scripts/fuzz_long.sh
added, minimised with libFuzzer's -merge=1."""
import pathlib
import struct
import sys

# Verdict bytes (completion_fuzzer.cc: verdict % 7, REDIRECT's queue from bits 3-4).
ABORTED, DROP, PASS, PASS_TAG, TX, REDIRECT0, REDIRECT1, REDIRECT_NONE = 0, 1, 2, 3, 4, 5, 12, 26
# A program that moves data_end before data, then says PASS or TX.
BAD_MOVE_PASS, BAD_MOVE_TX = 6, 132


def offer(q, length, verdict):
    return bytes([0 if q == 0 else 132]) + struct.pack("<H", max(0, length - 16)) + bytes([verdict])


def flush(q): return bytes([3 if q == 0 else 27])
def tx(q): return bytes([4 if q == 0 else 28])
def poll(q, budget=255): return bytes([5 if q == 0 else 29, budget - 1])


XDP_ON, XDP_OFF, FULL_PAGE, DETACH_ATTACH = b"\x06", b"\x07", b"\x09", b"\x0a"
def mtu(i): return bytes([8, i])  # index into kMtus
def fault_alloc(p): return bytes([11, p])
def fault_dma(p): return bytes([59, p])


def drain():
    return flush(0) + flush(1) + poll(0) + poll(1) + tx(0) + tx(1) + poll(0) + poll(1)


def header(coalesce=1, corrupt=None, seed=1):
    flags = (coalesce - 1) & 3
    if corrupt is not None:
        flags |= 0x80 | (corrupt & 0x1F) << 2
    return bytes([flags, seed])


def seeds():
    verdicts = [ABORTED, DROP, PASS, PASS_TAG, TX, REDIRECT0, REDIRECT1, REDIRECT_NONE,
                BAD_MOVE_PASS, BAD_MOVE_TX]
    all_verdicts = header() + XDP_ON
    for q in (0, 1):
        for i, v in enumerate(verdicts):
            all_verdicts += offer(q, 60 + 97 * i, v)
    yield "xdp_all_verdicts", all_verdicts + drain()

    ring_full = header() + XDP_ON + b"".join(offer(0, 200, TX) for _ in range(40))
    yield "xdp_tx_ring_full", ring_full + flush(0) + poll(0) + tx(0) + poll(0) + drain()

    redirect_full = header() + XDP_ON + b"".join(offer(0, 300, REDIRECT1) for _ in range(40))
    yield "xdp_redirect_ring_full", redirect_full + flush(0) + poll(0) + drain()

    discard = header() + XDP_ON + b"".join(offer(q, 500, TX) for q in (0, 1) for _ in range(8))
    discard += flush(0) + flush(1) + poll(0) + poll(1) + mtu(5) + drain()
    discard += b"".join(offer(0, 400, REDIRECT1) for _ in range(8)) + flush(0) + poll(0)
    yield "tx_discarded_at_reconfigure", discard + FULL_PAGE + drain() + DETACH_ATTACH + DETACH_ATTACH + drain()

    reconf = header()
    for i in range(10):
        reconf += b"".join(offer(i & 1, 100 + 700 * i, PASS) for _ in range(4))
        reconf += flush(0) + mtu(i) + flush(1) + poll(0) + poll(1)
        reconf += (XDP_ON if i % 3 == 0 else XDP_OFF) + (FULL_PAGE if i % 4 == 0 else b"")
    yield "reconfigure_mtu_xdp_full_page", reconf + drain()

    detach = header() + b"".join(offer(0, 1000, PASS) for _ in range(6)) + flush(0)
    detach += DETACH_ATTACH + b"".join(offer(0, 1000, PASS) for _ in range(3)) + DETACH_ATTACH
    yield "detach_attach_with_frames_pending", detach + drain()

    faults = header() + fault_alloc(0x1F) + b"".join(offer(0, 1400, PASS) for _ in range(40))
    faults += flush(0) + poll(0) + fault_dma(0x1F) + mtu(3) + XDP_ON + FULL_PAGE + mtu(9)
    faults += fault_alloc(0) + fault_dma(0) + drain()
    yield "faults_alloc_dma_map", faults

    for kind in range(4):
        c = header(coalesce=4, corrupt=0x1F, seed=kind + 3) + XDP_ON
        c += b"".join(offer(q, 64 + 301 * i, verdicts[i % len(verdicts)]) for i in range(24) for q in (0, 1))
        yield f"corrupt_coalesced_{kind}", c + drain() + mtu(2) + drain()

    trunc = header() + mtu(1) + b"".join(offer(0, n, PASS) for n in (16, 60, 590, 591, 700, 4000, 9300))
    yield "truncated_frames", trunc + drain() + XDP_ON + mtu(7) + trunc[2:] + drain()

    coal = header(coalesce=4) + XDP_ON + b"".join(offer(1, 64, v) for v in verdicts * 4)
    yield "coalesced_xdp", coal + drain() + poll(1, 1) + poll(1, 2)

    budget = header(coalesce=3) + b"".join(offer(0, 128, PASS) for _ in range(100))
    yield "poll_budgets", budget + flush(0) + poll(0, 1) + poll(0, 7) + poll(0, 64) + drain()


def main(argv):
    out = pathlib.Path(argv[1] if len(argv) > 1 else pathlib.Path(__file__).parent / "completion_corpus")
    out.mkdir(exist_ok=True)
    for name, data in seeds():
        (out / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
