#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Tests of bench/compare.py's arithmetic against values worked out by hand."""

import json
import tempfile
import unittest
from pathlib import Path

import compare


class ParseGbenchTest(unittest.TestCase):
    def parse(self, benchmarks):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "out.json"
            path.write_text(json.dumps({"context": {}, "benchmarks": benchmarks}))
            return compare.parse_gbench(path, "")

    def test_items_per_second_gives_time_per_object(self):
        # 32 objects per 320 ns iteration: 100e6 objects/s -> 10 ns each.
        got = self.parse([{"name": "A", "run_type": "iteration", "real_time": 320,
                           "cpu_time": 320, "time_unit": "ns", "items_per_second": 1e8}])
        self.assertAlmostEqual(got["A"], 10.0)

    def test_without_items_uses_cpu_time_or_real_time_as_marked(self):
        got = self.parse([
            {"name": "B", "run_type": "iteration", "real_time": 9, "cpu_time": 2,
             "time_unit": "us"},
            {"name": "C/real_time", "run_type": "iteration", "real_time": 9, "cpu_time": 2,
             "time_unit": "us"}])
        self.assertAlmostEqual(got["B"], 2000.0)
        self.assertAlmostEqual(got["C/real_time"], 9000.0)

    def test_aggregates_and_errors_are_skipped(self):
        got = self.parse([
            {"name": "D_median", "run_type": "aggregate", "real_time": 1, "cpu_time": 1,
             "time_unit": "ns"},
            {"name": "E", "run_type": "iteration", "error_occurred": True,
             "real_time": 1, "cpu_time": 1, "time_unit": "ns"}])
        self.assertEqual(got, {})


class RatioTest(unittest.TestCase):
    def spec(self, ours="s:ours", base="s:base", target="<= 0.5"):
        return compare.Ratio("k", ours, base, target, "what", missing_reason="not built")

    def test_median_of_per_round_ratios(self):
        samples = {"s:ours": [1.0, 2.0, 9.0], "s:base": [4.0, 4.0, 10.0]}
        r = compare.compute_ratio(self.spec(), samples, {})
        # Per round: 0.25, 0.5, 0.9 -> median 0.5; met at <= 0.5.
        self.assertEqual(r["per_round"], [0.25, 0.5, 0.9])
        self.assertEqual(r["value"], 0.5)
        self.assertTrue(r["met"])
        self.assertEqual(r["ours_median"], 2.0)

    def test_missed_target(self):
        r = compare.compute_ratio(self.spec(target=">= 2.0"),
                                  {"s:ours": [3.0], "s:base": [2.0]}, {})
        self.assertEqual(r["value"], 1.5)
        self.assertFalse(r["met"])

    def test_null_with_reason_when_a_side_is_missing(self):
        self.assertEqual(compare.compute_ratio(self.spec(ours=None), {}, {})["why_null"],
                         "not built")
        r = compare.compute_ratio(self.spec(), {"s:ours": [1.0]}, {})
        self.assertIsNone(r["value"])
        self.assertIn("s:base", r["why_null"])
        # A side whose whole suite is missing gives the suite's reason.
        r = compare.compute_ratio(self.spec(), {}, {"s": "binary not built"})
        self.assertEqual(r["why_null"], "binary not built")


class ItemsPerIterationTest(unittest.TestCase):
    def test_bulk_of_32(self):
        # 32 objects per 0.32 us of CPU time -> 1e8 objects/s.
        bench = {"name": "B", "time_unit": "us", "cpu_time": 0.32, "real_time": 5.0,
                 "items_per_second": 1e8}
        self.assertEqual(compare.items_per_iteration(bench), 32)

    def test_real_time_benchmarks_use_real_time(self):
        bench = {"name": "H/real_time", "time_unit": "ns", "cpu_time": 1.0, "real_time": 640.0,
                 "items_per_second": 5e7}
        self.assertEqual(compare.items_per_iteration(bench), 32)

    def test_no_items_is_one(self):
        self.assertEqual(compare.items_per_iteration({"name": "X"}), 1.0)


class AttachInstructionsTest(unittest.TestCase):
    def test_ratio_of_counts_when_both_sides_counted(self):
        ratios = {"a": {"ours": "p:x", "baseline": "d:y"}, "b": {"ours": "p:z", "baseline": "d:y"}}
        compare.attach_instructions(ratios, {"p:x": 21.0, "d:y": 63.0})
        self.assertAlmostEqual(ratios["a"]["ir_ratio"], 1 / 3)
        self.assertNotIn("ir_ratio", ratios["b"])


class ParseRxTest(unittest.TestCase):
    def test_last_line_mpps_and_queue_bytes(self):
        stdout = "table line\n" + json.dumps({"mpps": 1.25, "queue_bytes": 1966080}) + "\n"
        got = compare.parse_rx(Path("/nonexistent"), stdout)
        self.assertEqual(got, {"pps": 1250000.0, "queue_bytes": 1966080.0})


class DemoTest(unittest.TestCase):
    def test_parse_and_ratios_per_round(self):
        line = {"e2e_ns_per_packet": 300.0, "driver_ns_per_packet": 60.0,
                "cpu_ns_per_packet": 200.0, "mpps": 3.0, "result": "PASS"}
        got = compare.parse_demo(Path("/nonexistent"), "report\n" + json.dumps(line) + "\n")
        self.assertEqual(got, {"e2e_ns": 300.0, "driver_ns": 60.0, "cpu_ns": 200.0,
                               "pps": 3e6})
        samples = {"demo:e2e_ns/size:1500/queues:1": [300.0, 400.0, 500.0],
                   "demo:driver_ns/size:1500/queues:1": [60.0, 50.0, 50.0],
                   "demo:cpu_ns/size:1500/queues:1": [1.0, 2.0, 3.0],
                   "demo:pps/size:1500/queues:4": [2.0, 2.0, 2.0],
                   "demo:pps/size:1500/queues:1": [4.0, 2.0, 1.0],
                   "demo:pps/size:1500/queues:4/qsize:256": [2.0, 3.0, 1.5]}
        r = compare.demo_ratios(samples, {})
        self.assertEqual(r["demo_e2e_vs_driver_1500"]["per_round"], [5.0, 8.0, 10.0])
        self.assertEqual(r["demo_e2e_vs_driver_1500"]["value"], 8.0)
        self.assertTrue(r["demo_e2e_vs_driver_1500"]["met"])
        self.assertEqual(r["demo_e2e_vs_driver_1500"]["cpu_ns_median"], 2.0)
        self.assertIsNone(r["demo_e2e_vs_driver_64"]["value"])
        self.assertEqual(r["demo_queue_scaling_4_vs_1"]["value"], 1.0)
        self.assertEqual(r["demo_queue_scaling_4_vs_1_quarter_rings"]["per_round"],
                         [0.5, 1.5, 1.5])
        self.assertIsNone(r["demo_queue_scaling_4_vs_1_same_buffers"]["value"])
        self.assertEqual(r["demo_cpu_vs_driver_1500"]["per_round"], [1 / 60, 2 / 50, 3 / 50])

    def test_a_failed_run_is_an_error(self):
        line = {"e2e_ns_per_packet": 1, "driver_ns_per_packet": 1, "cpu_ns_per_packet": 1,
                "mpps": 1, "result": "FAIL"}
        with self.assertRaises(RuntimeError):
            compare.parse_demo(Path("/nonexistent"), json.dumps(line))


class AutotestLineTest(unittest.TestCase):
    def test_dpdk_test_line(self):
        m = compare.AUTOTEST_LINE.search(
            "mempool_autotest cache=512 cores=1 n_get_bulk=32 n_put_bulk=32 n_keep=512 "
            "constant_n=0 rate_persec=15676211\n")
        self.assertEqual((m["cache"], m["cores"], m["get"], m["put"], m["keep"], m["const"],
                          m["rate"]), ("512", "1", "32", "32", "512", "0", "15676211"))


if __name__ == "__main__":
    unittest.main()
