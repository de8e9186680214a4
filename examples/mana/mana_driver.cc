// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/mana_driver.cc: the reference MANA driver against the
// simulated MANA device, with a traffic generator and end-to-end payload
// checks. This file holds the flags and the wiring; traffic.h the generator,
// XDP programs and verifier; report.h the checks and reports.
//
//   ./bazelw run //examples:mana_driver                     # verified demo
//   ./bazelw run //examples:mana_driver -- --dma=bounce --packets=2000000
//       --packet-size=random --reconfigure=20 --json      (one command line)
//
// A generator thread offers frames to the device queue by queue (frame.h:
// sequence number, length, a check word and a pattern keyed by seed and
// sequence number). The device writes them into the driver's buffers only
// through MockDma. Every frame handed to the "stack" (the packet sink) or
// transmitted by XDP (checked on the device's wire) is verified in full. A
// control thread performs --reconfigure random MTU / XDP / full-page changes
// while traffic runs. At the end the port is torn down and leaks are read
// from the provider (blocks still allocated) and MockDma (live mappings).
//
// Exit status (examples/cli/cli.h): 0 when every check passed, 1 when one
// failed or the port could not be set up, 2 for a usage error. With --json
// stdout carries one JSON object and the human report goes to stderr.
#include <absl/flags/flag.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "examples/cli/cli.h"
#include "examples/mana/limits.h"
#include "examples/mana/report.h"
#include "examples/mana/traffic.h"
#include "pagefrag/dma/coherent_dma.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/rxbuf/rxbuf.h"

ABSL_FLAG(std::uint64_t, page_size, 4096,
          "base page size in bytes, a power of two in 4096..1048576");
ABSL_FLAG(std::uint32_t, mtu, 1500, "initial MTU, 68..9202");
ABSL_FLAG(std::uint32_t, queues, 4, "number of queues, 1..64");
ABSL_FLAG(std::uint32_t, pollers, 0,
          "poller threads, 1..queues, each serving every pollers-th queue; 0: one per CPU the "
          "generator leaves (CPUs - 1, at least 1, at most --queues)");
ABSL_FLAG(std::uint32_t, queue_size, 1024, "RX queue entries, a power of two in 128..8192");
ABSL_FLAG(std::uint64_t, packets, 400000, "frames the generator offers, 1..2^40");
ABSL_FLAG(std::string, packet_size, "imix", "frame size: N bytes (60..65535), imix or random");
ABSL_FLAG(std::string, xdp, "none", "XDP program: none, pass, drop, tx, redirect or aborted");
ABSL_FLAG(std::string, policy, "kernel", "RX buffer policy: kernel, full-page or min-waste");
ABSL_FLAG(std::string, dma, "strict",
          "DMA backend: strict or bounce (MockDma, every sync checked) or coherent "
          "(CoherentDma: syncs are no-ops, as on coherent x86)");
ABSL_FLAG(std::string, inject, "",
          "fault probabilities once the port is up, e.g. alloc:0.001,dma-map:0.01,bad-cqe:0.001");
ABSL_FLAG(std::uint32_t, reconfigure, 0,
          "random MTU/XDP/full-page changes during the run, 0..100000");
ABSL_FLAG(std::uint64_t, seed, 1, "random seed (traffic, faults and frame patterns)");
ABSL_FLAG(bool, json, false, "print one JSON object on stdout (the report goes to stderr)");

namespace {

using namespace pagefrag;    // NOLINT: example brevity
using namespace mana;        // NOLINT
using namespace mana::demo;  // NOLINT

namespace cli = pagefrag::cli;

struct Config {
  TrafficConfig traffic;
  std::uint64_t page_size = 4096;
  std::uint32_t mtu = 1500;
  std::uint32_t queue_size = 1024;
  std::uint32_t pollers = 0;  // resolved: 1..queues
  std::string xdp_name = "none";
  std::string policy = "kernel";
  RxBufConfigureFn policy_fn = &KernelRxBufPolicy<>::configure;
  std::string dma = "strict";  // strict, bounce or coherent
  double p_alloc = 0, p_dma_map = 0, p_bad_cqe = 0;
  bool json = false;
};

void parse_inject(const std::string& spec, Config& c) {
  if (spec.empty()) return;
  for (absl::string_view piece : absl::StrSplit(spec, ',')) {
    const std::string item(piece.data(), piece.size());
    const std::size_t colon = item.find(':');
    const std::string key = item.substr(0, colon);
    const std::string val = colon == std::string::npos ? "" : item.substr(colon + 1);
    const std::string what = "--inject " + key;
    if (key == "alloc") {
      c.p_alloc = cli::parse_probability(what, val);
    } else if (key == "dma-map") {
      c.p_dma_map = cli::parse_probability(what, val);
    } else if (key == "bad-cqe") {
      c.p_bad_cqe = cli::parse_probability(what, val);
    } else {
      cli::usage_error(
          fmt::format("--inject item '{}' is invalid: expected alloc:P, dma-map:P or "
                      "bad-cqe:P separated by commas",
                      item));
    }
  }
}

void parse_size(const std::string& s, TrafficConfig& t) {
  if (s == "imix") {
    t.size_mode = SizeMode::kImix;
  } else if (s == "random") {
    t.size_mode = SizeMode::kRandom;
  } else {
    std::uint32_t n = 0;
    if (!absl::SimpleAtoi(s, &n) || n < kMinFrame || n > 65535) {
      cli::usage_error(fmt::format(
          "--packet-size={} is invalid: expected imix, random or an integer in {}..65535", s,
          kMinFrame));
    }
    t.size_mode = SizeMode::kFixed;
    t.fixed_size = n;
  }
}

void parse_choices(Config& c) {
  c.xdp_name = absl::GetFlag(FLAGS_xdp);
  c.traffic.xdp = static_cast<XdpMode>(cli::require_choice(
      "--xdp", c.xdp_name, {"none", "pass", "drop", "tx", "redirect", "aborted"}));
  c.policy = absl::GetFlag(FLAGS_policy);
  constexpr RxBufConfigureFn kPolicies[] = {&KernelRxBufPolicy<>::configure,
                                            &FullPageRxBufPolicy<>::configure,
                                            &MinWasteRxBufPolicy<>::configure};
  c.policy_fn =
      kPolicies[cli::require_choice("--policy", c.policy, {"kernel", "full-page", "min-waste"})];
  c.dma = absl::GetFlag(FLAGS_dma);
  cli::require_choice("--dma", c.dma, {"strict", "bounce", "coherent"});
}

Config parse_config(int argc, char** argv) {
  cli::parse_flags(argc, argv,
                   {.name = "mana_driver",
                    .synopsis = "The reference MANA driver over a simulated device, every frame "
                                "verified end to end.",
                    .details = ""});
  Config c;
  c.page_size = absl::GetFlag(FLAGS_page_size);
  cli::require_power_of_two("--page-size", c.page_size, 4096, 1u << 20);
  c.mtu = absl::GetFlag(FLAGS_mtu);
  cli::require_range("--mtu", c.mtu, 68, 9202);
  c.traffic.queues = absl::GetFlag(FLAGS_queues);
  cli::require_range("--queues", c.traffic.queues, 1, 64);
  c.pollers = absl::GetFlag(FLAGS_pollers);
  cli::require_range("--pollers", c.pollers, 0, c.traffic.queues);
  if (c.pollers == 0) {
    // The generator (the device) keeps one CPU busy; more poller threads
    // than the CPUs left would spend their time switching between queues.
    const unsigned cpus = std::max(2u, std::thread::hardware_concurrency());
    c.pollers = std::min<std::uint32_t>(c.traffic.queues, cpus - 1);
  }
  c.queue_size = absl::GetFlag(FLAGS_queue_size);
  cli::require_power_of_two("--queue-size", c.queue_size, ManaLimits::kMinRxQueueSize,
                            ManaLimits::kMaxRxQueueSize);
  c.traffic.packets = absl::GetFlag(FLAGS_packets);
  cli::require_range("--packets", c.traffic.packets, 1, std::uint64_t{1} << 40);
  parse_size(absl::GetFlag(FLAGS_packet_size), c.traffic);
  parse_choices(c);
  parse_inject(absl::GetFlag(FLAGS_inject), c);
  c.traffic.reconfigure = absl::GetFlag(FLAGS_reconfigure);
  cli::require_range("--reconfigure", c.traffic.reconfigure, 0, 100000);
  c.traffic.seed = absl::GetFlag(FLAGS_seed);
  c.traffic.max_frame = std::max(kMinFrame, c.mtu + 14);
  c.json = absl::GetFlag(FLAGS_json);
  return c;
}

// Bytes of provider memory the run may need: two full queue sets (old and
// pre-allocated new during a reconfiguration) of the hungriest layout the
// run can visit, plus pool cache slack.
std::uint64_t provider_capacity(const Config& c, unsigned max_order) {
  std::uint64_t worst = 0;
  for (std::uint32_t mtu : {c.mtu, 576u, 1280u, 1500u, 1700u, 2000u, 3000u, 4000u, 9000u}) {
    for (bool xdp : {false, true}) {
      for (RxBufConfigureFn fn : {c.policy_fn, &FullPageRxBufPolicy<>::configure}) {
        const RxBufRequest req{.page_size = c.page_size,
                               .mtu = mtu,
                               .xdp = xdp,
                               .queue_size = c.queue_size,
                               .max_order = max_order};
        absl::StatusOr<RxBufCfg> cfg = fn(req);
        if (!cfg.ok()) continue;
        worst = std::max(worst, (cfg->pool_size(c.queue_size) + 320) * cfg->block_bytes());
      }
    }
  }
  const std::uint64_t block = c.page_size << max_order;
  return align_up(2 * c.traffic.queues * worst + 4 * block, block);
}

ManaPortOptions port_options(const Config& c, unsigned max_order, FaultInjector& injector,
                             Verifier& ver) {
  ManaPortOptions opts;
  opts.num_queues = c.traffic.queues;
  opts.pollers = c.pollers;
  opts.rx_queue_size = c.queue_size;
  opts.mtu = c.mtu;
  opts.max_order = max_order;
  opts.policy = c.policy_fn;
  // Without --inject alloc/dma-map the port gets no injector: its per-poll
  // hit count is an atomic add on a line every poller shares.
  opts.injector = c.p_alloc > 0 || c.p_dma_map > 0 ? &injector : nullptr;
  opts.sink = ver.sink();
  opts.time_polls = true;  // the driver's own ns/packet, beside end-to-end packets/s
  return opts;
}

template <class Port>
absl::Status attach_with_retries(Port& port, std::uint64_t* failures) {
  absl::Status s;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    s = port.attach();
    if (s.ok()) return s;
    ++*failures;
  }
  return s;
}

// Reads the final configuration, tears the port down and reads what the
// teardown left behind.
template <class Port, class Device>
void finish(Port& port, const Device& dev, const Verifier& ver, RunResult& r) {
  r.cfg = port.rxbuf_cfg();
  r.final_mtu = port.mtu();
  r.final_xdp = port.xdp_attached();
  r.final_full_page = port.full_page();
  r.queue_bytes = port.queue_bytes_high_water();
  (void)port.detach();
  r.reconfigurations = port.reconfigurations();
  r.failed_reconfigurations = port.failed_reconfigurations();
  const PortTotals pt = port.totals();
  r.counters = pt;
  r.truesize_sum = pt.rx_truesize;
  r.unsynced_reads = pt.rx_unsynced_reads;
  r.tx_discarded = pt.tx_discarded;
  r.inflight = port.inflight_at_destroy();
  r.corrupted_cqes = dev.counters().completions_corrupted;
  r.dma_faults = dev.counters().dma_faults + dev.counters().tx_faults;
  r.tx_errors = dev.counters().tx_faults;
  r.truncated = dev.counters().frames_truncated;
  r.tx_frames = dev.counters().tx_frames;
  r.verified_sink = ver.verified_sink();
  r.verified_wire = ver.verified_wire();
  r.corrupt = ver.corrupt();
  r.tagged = ver.tagged();
}

int print_report(const Config& c, const RunResult& r) {
  const RunShape shape{.page_size = c.page_size,
                       .queues = c.traffic.queues,
                       .pollers = c.pollers,
                       .queue_size = c.queue_size,
                       .policy = c.policy,
                       .xdp = c.xdp_name,
                       .dma = c.dma};
  std::fputs(text_report(shape, r).c_str(), c.json ? stderr : stdout);
  if (c.json) std::puts(json_report(shape, r).c_str());
  return passed(r) ? cli::kExitOk : cli::kExitFailure;
}

// The run over one DMA backend: `dma` is the backend, `leaked` reads how
// many of its mappings are still live once the port is gone.
template <class Dma>
int run_over(const Config& c, HeapProvider& provider, Dma& dma) {
  using Device = DeviceOf<Dma>;
  using Port = PortOf<Dma>;
  RunResult r;
  Verifier ver(c.traffic.seed);
  sim::SimDeviceOptions dopts;
  dopts.coalesce = 4;
  dopts.corrupt_probability = c.p_bad_cqe;
  dopts.seed = c.traffic.seed;
  Device dev(dma, dopts);
  ver.watch_wire<Dma>(dev);
  FaultInjector injector(c.traffic.seed);
  const unsigned max_order = provider.max_order();
  absl::StatusOr<std::unique_ptr<Port>> port =
      Port::create(provider, dma, dev, port_options(c, max_order, injector, ver));
  // Flags passed the range checks, so what the port refuses is a
  // combination of them (e.g. --mtu=9000 with --xdp on 4 KiB pages).
  if (!port.ok()) cli::usage_error(std::string(port.status().message()));
  if (c.traffic.xdp != XdpMode::kNone) {
    absl::Status s = (*port)->set_xdp(make_program(c.traffic.xdp, c.traffic.queues));
    if (!s.ok())
      cli::usage_error(fmt::format("--xdp={}: {}", c.xdp_name, std::string(s.message())));
  }
  if (absl::Status s = attach_with_retries(**port, &r.attach_failures); !s.ok()) {
    cli::fail(fmt::format("attach failed: {}", std::string(s.message())));
  }
  // Faults are injected once the port is up: into refills on the data path
  // and into every reconfiguration, which must fail cleanly.
  injector.set_probability(FaultCategory::kAlloc, c.p_alloc);
  injector.set_probability(FaultCategory::kDmaMap, c.p_dma_map);
  r.totals = run_traffic<Dma>(**port, dev, c.traffic);
  finish(**port, dev, ver, r);
  port->reset();
  r.leaked_mappings = dma.live_mappings();
  r.leaked_pages = provider.allocated_blocks();
  return print_report(c, r);
}

int run(const Config& c) {
  const unsigned max_order = 4;
  absl::StatusOr<HeapProvider> provider =
      HeapProvider::create({.page_size = c.page_size,
                            .max_order = max_order,
                            .capacity = provider_capacity(c, max_order)});
  if (!provider.ok()) cli::fail(std::string(provider.status().message()));
  if (c.dma == "coherent") {
    CoherentDma dma;
    return run_over(c, *provider, dma);
  }
  MockDma dma(
      MockDmaOptions{.mode = c.dma == "bounce" ? MockDmaMode::kBounce : MockDmaMode::kStrict,
                     .seed = c.traffic.seed,
                     .on_leak = [](std::string_view) {}});
  return run_over(c, *provider, dma);
}

}  // namespace

int main(int argc, char** argv) { return run(parse_config(argc, argv)); }
