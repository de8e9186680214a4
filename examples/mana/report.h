// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/report.h: mana_driver's result: what a run measured, the
// checks that decide PASS/FAIL, the human report and the JSON document.
#pragma once

#include <cstdint>
#include <string>

#include "examples/mana/traffic.h"
#include "pagefrag/rxbuf/rxbuf.h"

namespace mana::demo {

// The run's shape, echoed in both reports.
struct RunShape {
  std::uint64_t page_size = 0;
  std::uint32_t queues = 0;
  std::uint32_t pollers = 0;
  std::uint32_t queue_size = 0;
  std::string policy, xdp, dma;
};

struct RunResult {
  Totals totals;
  std::uint64_t verified_sink = 0, verified_wire = 0, corrupt = 0, tagged = 0;
  std::uint64_t reconfigurations = 0, failed_reconfigurations = 0, attach_failures = 0;
  std::size_t queue_bytes = 0;
  std::uint64_t inflight = 0, leaked_pages = 0, leaked_mappings = 0;
  std::uint64_t truesize_sum = 0;
  std::uint64_t unsynced_reads = 0;
  pagefrag::RxBufCfg cfg;
  std::uint32_t final_mtu = 0;
  bool final_xdp = false, final_full_page = false;
  std::uint64_t corrupted_cqes = 0, dma_faults = 0, truncated = 0, tx_frames = 0;
  // XDP TX / REDIRECT frames posted for transmission and reclaimed unsent
  // when their queue was torn down (reconfiguration or detach), and frames
  // the device reported a TX error for.
  std::uint64_t tx_discarded = 0, tx_errors = 0;
  // Every counter of the port, summed over its queues (rx_poll_ns: time
  // inside the queues' busy polls, the sink excluded).
  PortTotals counters;
};

// The driver's own nanoseconds per received packet (rx_poll_ns / rx_packets),
// and the end-to-end nanoseconds per received packet (wall time / packets);
// 0 when nothing was received.
double driver_ns_per_packet(const RunResult& r);
double e2e_ns_per_packet(const RunResult& r);
// CPU nanoseconds of the whole process per received packet.
double cpu_ns_per_packet(const RunResult& r);

// sent == received + dropped.
bool balanced(const RunResult& r);
// Every received frame is accounted for by a check: verified at the sink or
// on the wire, counted corrupt, or (XDP TX/REDIRECT) discarded unsent or
// failed by the device.
bool reconciled(const RunResult& r);
// Nothing corrupt, unsynced, faulted or leaked, and both identities hold.
bool passed(const RunResult& r);

// The human report (several lines).
std::string text_report(const RunShape& s, const RunResult& r);
// One JSON object on one line.
std::string json_report(const RunShape& s, const RunResult& r);

}  // namespace mana::demo
