// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/report.cc: mana_driver's human and JSON reports (report.h).
#include "examples/mana/report.h"

#include <fmt/format.h>

#include <iterator>
#include <string_view>

namespace mana::demo {
namespace {

double mpps(const RunResult& r) {
  const Totals& t = r.totals;
  return t.seconds > 0 ? static_cast<double>(t.received) / t.seconds / 1e6 : 0;
}

double truesize_per_packet(const RunResult& r) {
  const std::uint64_t n = r.totals.received;
  return n != 0 ? static_cast<double>(r.truesize_sum) / static_cast<double>(n) : 0;
}

// "name":value for every port counter, in list order.
std::string counters_json(const PortTotals& t) {
  std::string out;
  for (const pagefrag::CounterValue& v : pagefrag::counter_table(t)) {
    fmt::format_to(std::back_inserter(out), "{}\"{}\":{}", out.empty() ? "" : ",", v.name, v.value);
  }
  return out;
}

}  // namespace

double driver_ns_per_packet(const RunResult& r) {
  const std::uint64_t n = r.counters.rx_packets;
  return n != 0 ? static_cast<double>(r.counters.rx_poll_ns) / static_cast<double>(n) : 0;
}

double e2e_ns_per_packet(const RunResult& r) {
  const std::uint64_t n = r.totals.received;
  return n != 0 ? r.totals.seconds * 1e9 / static_cast<double>(n) : 0;
}

double cpu_ns_per_packet(const RunResult& r) {
  const std::uint64_t n = r.totals.received;
  return n != 0 ? r.totals.cpu_seconds * 1e9 / static_cast<double>(n) : 0;
}

bool balanced(const RunResult& r) { return r.totals.sent == r.totals.received + r.totals.dropped; }

bool reconciled(const RunResult& r) {
  return r.totals.received ==
         r.verified_sink + r.verified_wire + r.corrupt + r.tx_discarded + r.tx_errors;
}

bool passed(const RunResult& r) {
  return balanced(r) && reconciled(r) && r.corrupt == 0 && r.unsynced_reads == 0 &&
         r.dma_faults == 0 && r.leaked_pages == 0 && r.leaked_mappings == 0 && r.inflight == 0;
}

std::string text_report(const RunShape& s, const RunResult& r) {
  const Totals& t = r.totals;
  std::string out;
  auto row = [&out](std::string_view k, const std::string& val) {
    fmt::format_to(std::back_inserter(out), "  {:<30} {}\n", k, val);
  };
  auto count = [](std::uint64_t n, std::string_view noun) {
    return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
  };
  fmt::format_to(std::back_inserter(out),
                 "mana_driver: {} x {} RX slots ({}), {} B pages, policy {}, xdp {}, dma {}\n",
                 count(s.queues, "queue"), s.queue_size, count(s.pollers, "poller thread"),
                 s.page_size, s.policy, s.xdp, s.dma);
  row("packets sent", fmt::format("{}", t.sent));
  row("packets received", fmt::format("{} ({} verified at the sink, {} on the wire)", t.received,
                                      r.verified_sink, r.verified_wire));
  row("packets dropped", fmt::format("{}", t.dropped));
  for (const auto& [name, n] : t.drops) {
    if (n != 0) row(fmt::format("  drop: {}", name), fmt::format("{}", n));
  }
  row("sent == received + dropped", balanced(r) ? "yes" : "NO");
  row("XDP TX discarded / errors", fmt::format("{} / {}", r.tx_discarded, r.tx_errors));
  row("received all checked", reconciled(r) ? "yes" : "NO");
  row("corrupt payloads", fmt::format("{}", r.corrupt));
  row("unsynced CPU reads", fmt::format("{}", r.unsynced_reads));
  row("leaked pages / mappings", fmt::format("{} / {}", r.leaked_pages, r.leaked_mappings));
  row("pages in flight at destroy", fmt::format("{}", r.inflight));
  row("final layout",
      fmt::format("{} (mtu {}, {} per {} B block, alloc {} B)", r.cfg.kind, r.final_mtu,
                  r.cfg.frag_count, r.cfg.block_bytes(), r.cfg.alloc_size));
  row("truesize per packet", fmt::format("{:.1f} B", truesize_per_packet(r)));
  row("queue bytes (high water)", fmt::format("{} B ({:.2f} MiB)", r.queue_bytes,
                                              static_cast<double>(r.queue_bytes) / 1048576.0));
  row("reconfigurations",
      fmt::format("{} ok, {} failed", r.reconfigurations, r.failed_reconfigurations));
  row("device", fmt::format("{} corrupted CQEs, {} truncated, {} DMA faults, {} TX frames",
                            r.corrupted_cqes, r.truncated, r.dma_faults, r.tx_frames));
  row("throughput", fmt::format("{:.3f} Mpps over {:.2f} s ({:.1f} ns per packet end to end)",
                                mpps(r), t.seconds, e2e_ns_per_packet(r)));
  row("driver time", fmt::format("{:.1f} ns per packet inside poll (device and sink excluded)",
                                 driver_ns_per_packet(r)));
  row("process CPU time", fmt::format("{:.1f} ns per packet (all threads)", cpu_ns_per_packet(r)));
  row("result", passed(r) ? "PASS" : "FAIL");
  return out;
}

std::string json_report(const RunShape& s, const RunResult& r) {
  const Totals& t = r.totals;
  std::string drops;
  for (const auto& [name, n] : t.drops) {
    drops += fmt::format("{}\"{}\":{}", drops.empty() ? "" : ",", name, n);
  }
  return fmt::format(
      "{{\"packets_sent\":{},\"packets_received\":{},\"packets_dropped\":{},"
      "\"drops_by_reason\":{{{}}},\"corrupt\":{},\"unsynced_reads\":{},\"verified\":{},"
      "\"verified_sink\":{},\"verified_wire\":{},\"tx_discarded\":{},\"tx_errors\":{},"
      "\"leaked_pages\":{},\"leaked_mappings\":{},\"inflight_pages\":{},\"frags_per_page\":{},"
      "\"truesize_per_packet\":{:.1f},\"queue_bytes\":{},\"reconfigurations\":{},"
      "\"failed_reconfigurations\":{},\"mpps\":{:.4f},\"seconds\":{:.3f},\"page_size\":{},"
      "\"mtu\":{},\"queues\":{},\"queue_size\":{},\"policy\":\"{}\",\"xdp\":\"{}\",\"dma\":\"{}\","
      "\"final_kind\":\"{}\",\"corrupted_cqes\":{},\"truncated\":{},\"tx_frames\":{},"
      "\"driver_ns_per_packet\":{:.2f},\"e2e_ns_per_packet\":{:.2f},\"cpu_ns_per_packet\":{:.2f},"
      "\"counters\":{{{}}},"
      "\"result\":\"{}\"}}",
      t.sent, t.received, t.dropped, drops, r.corrupt, r.unsynced_reads,
      r.verified_sink + r.verified_wire, r.verified_sink, r.verified_wire, r.tx_discarded,
      r.tx_errors, r.leaked_pages, r.leaked_mappings, r.inflight, r.cfg.frag_count,
      truesize_per_packet(r), r.queue_bytes, r.reconfigurations, r.failed_reconfigurations, mpps(r),
      t.seconds, s.page_size, r.final_mtu, s.queues, s.queue_size, s.policy, s.xdp, s.dma,
      r.cfg.kind, r.corrupted_cqes, r.truncated, r.tx_frames, driver_ns_per_packet(r),
      e2e_ns_per_packet(r), cpu_ns_per_packet(r), counters_json(r.counters),
      passed(r) ? "PASS" : "FAIL");
}

}  // namespace mana::demo
