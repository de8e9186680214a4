// SPDX-License-Identifier: BSD-3-Clause
// examples/mana_driver.cc: the reference MANA driver against the simulated
// MANA device, with a traffic generator and end-to-end payload checks.
//
//   ./bazelw run //examples:mana_driver                     # verified demo
//   ./bazelw run //examples:mana_driver -- --dma=bounce --packets=2000000
//       --packet-size=random --reconfigure=20 --json      (one command line)
//
// A generator thread offers frames to the device queue by queue; each frame
// carries its sequence number, its length, a check word and a pattern
// derived from both. The device writes them into the driver's buffers only
// through MockDma. Every frame handed to the "stack" (the packet sink) or
// transmitted by XDP (checked on the device's wire) is verified byte by byte.
// A control thread performs --reconfigure random MTU / XDP / full-page
// changes while traffic runs. At the end the port is torn down and leaks are
// read from the provider (blocks still allocated) and MockDma (live
// mappings).
//
// Exit status: 0 when nothing is corrupt, nothing leaked and
// sent == received + dropped; 1 otherwise; 2 for bad flags.
#include <absl/flags/flag.h>
#include <absl/flags/parse.h>
#include <absl/flags/reflection.h>
#include <absl/flags/usage.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "pagefrag/dma/mock_dma.h"
#include "examples/mana/port.h"
#include "examples/mana/sim/sim_device.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/rxbuf/rxbuf.h"

ABSL_FLAG(std::string, page_size, "4096", "base page size in bytes (power of two >= 4096)");
ABSL_FLAG(std::string, mtu, "1500", "initial MTU");
ABSL_FLAG(std::string, queues, "4", "number of queues (1..64), one poller thread each");
ABSL_FLAG(std::string, queue_size, "1024", "RX queue entries (power of two, 128..8192)");
ABSL_FLAG(std::string, packets, "400000", "frames the generator offers");
ABSL_FLAG(std::string, packet_size, "imix", "frame size: N bytes, imix, or random");
ABSL_FLAG(std::string, xdp, "none", "XDP program: none, pass, drop, tx, redirect");
ABSL_FLAG(std::string, policy, "kernel", "RX buffer policy: kernel, full-page, min-waste");
ABSL_FLAG(std::string, dma, "strict", "MockDma mode: strict or bounce");
ABSL_FLAG(std::string, inject, "",
          "fault probabilities once the port is up, e.g. alloc:0.001,dma-map:0.01,bad-cqe:0.001");
ABSL_FLAG(std::string, reconfigure, "0", "random MTU/XDP changes during the run");
ABSL_FLAG(std::string, seed, "1", "random seed");
ABSL_FLAG(bool, json, false, "print one JSON object as the last line of stdout");

namespace {

using namespace pagefrag;        // NOLINT: example brevity
using namespace mana;  // NOLINT

using Device = sim::SimDevice<MockDma>;
using Port = ManaPort<HeapProvider, MockDma, Device>;

constexpr std::uint32_t kMinFrame = 60;
constexpr std::uint32_t kHeader = 16;  // seq (8) + length (4) + check (4)
constexpr std::uint32_t kXdpTagLen = 16;

enum class SizeMode { kFixed, kImix, kRandom };
enum class XdpMode { kNone, kPass, kDrop, kTx, kRedirect };

struct Config {
  std::uint64_t page_size = 4096;
  std::uint32_t mtu = 1500;
  std::uint32_t queues = 4;
  std::uint32_t queue_size = 1024;
  std::uint64_t packets = 400000;
  SizeMode size_mode = SizeMode::kImix;
  std::uint32_t fixed_size = 0;
  XdpMode xdp = XdpMode::kNone;
  std::string xdp_name = "none";
  std::string policy = "kernel";
  RxBufConfigureFn policy_fn = &KernelRxBufPolicy<>::configure;
  MockDmaMode dma = MockDmaMode::kStrict;
  double p_alloc = 0, p_dma_map = 0, p_bad_cqe = 0;
  std::uint32_t reconfigure = 0;
  std::uint64_t seed = 1;
  bool json = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::exit(2);
}

template <class T>
T parse_number(std::string_view flag, const std::string& text, T lo, T hi) {
  std::uint64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < lo || v > hi) {
    usage_error(
        fmt::format("--{}={} is invalid: expected an integer in {}..{}", flag, text, lo, hi));
  }
  return static_cast<T>(v);
}

double parse_probability(const std::string& what, const std::string& text) {
  double p = 0;
  if (!absl::SimpleAtod(text, &p) || p < 0 || p > 1) {
    usage_error(
        fmt::format("--inject {}:{} is invalid: expected a probability in 0..1", what, text));
  }
  return p;
}

void parse_inject(const std::string& spec, Config& c) {
  if (spec.empty()) return;
  for (absl::string_view piece : absl::StrSplit(spec, ',')) {
    const std::string item(piece.data(), piece.size());
    const std::size_t colon = item.find(':');
    const std::string key = item.substr(0, colon);
    const std::string val = colon == std::string::npos ? "" : item.substr(colon + 1);
    if (key == "alloc") {
      c.p_alloc = parse_probability(key, val);
    } else if (key == "dma-map") {
      c.p_dma_map = parse_probability(key, val);
    } else if (key == "bad-cqe") {
      c.p_bad_cqe = parse_probability(key, val);
    } else {
      usage_error(
          fmt::format("--inject item '{}' is invalid: expected alloc:P, dma-map:P or "
                      "bad-cqe:P separated by commas",
                      item));
    }
  }
}

void parse_size(const std::string& s, Config& c) {
  if (s == "imix") {
    c.size_mode = SizeMode::kImix;
  } else if (s == "random") {
    c.size_mode = SizeMode::kRandom;
  } else {
    c.size_mode = SizeMode::kFixed;
    c.fixed_size = parse_number<std::uint32_t>("packet-size", s, kMinFrame, 65535);
  }
}

void parse_choices(Config& c) {
  const std::string xdp = absl::GetFlag(FLAGS_xdp);
  const std::pair<const char*, XdpMode> xdps[] = {{"none", XdpMode::kNone},
                                                  {"pass", XdpMode::kPass},
                                                  {"drop", XdpMode::kDrop},
                                                  {"tx", XdpMode::kTx},
                                                  {"redirect", XdpMode::kRedirect}};
  auto it = std::find_if(std::begin(xdps), std::end(xdps), [&](auto& p) { return xdp == p.first; });
  if (it == std::end(xdps)) {
    usage_error(fmt::format("--xdp={} is invalid: expected none, pass, drop, tx or redirect", xdp));
  }
  c.xdp = it->second;
  c.xdp_name = xdp;
  c.policy = absl::GetFlag(FLAGS_policy);
  if (c.policy == "kernel") {
    c.policy_fn = &KernelRxBufPolicy<>::configure;
  } else if (c.policy == "full-page") {
    c.policy_fn = &FullPageRxBufPolicy<>::configure;
  } else if (c.policy == "min-waste") {
    c.policy_fn = &MinWasteRxBufPolicy<>::configure;
  } else {
    usage_error(
        fmt::format("--policy={} is invalid: expected kernel, full-page or min-waste", c.policy));
  }
  const std::string dma = absl::GetFlag(FLAGS_dma);
  if (dma != "strict" && dma != "bounce") {
    usage_error(fmt::format("--dma={} is invalid: expected strict or bounce", dma));
  }
  c.dma = dma == "bounce" ? MockDmaMode::kBounce : MockDmaMode::kStrict;
}

// Rejects flags the program does not define with exit status 2 (absl would
// exit with 1).
void check_known_flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a.substr(0, 2) != "--" && a.substr(0, 1) != "-") {
      usage_error(fmt::format("unexpected argument '{}': expected only --flag=value", a));
    }
    a.remove_prefix(a.substr(0, 2) == "--" ? 2 : 1);
    std::string name(a.substr(0, a.find('=')));
    if (name == "help" || name == "helpfull") continue;
    if (name.substr(0, 2) == "no") {
      if (absl::FindCommandLineFlag(name.substr(2)) != nullptr) continue;
    }
    std::replace(name.begin(), name.end(), '-', '_');
    if (absl::FindCommandLineFlag(name) == nullptr) {
      usage_error(fmt::format("unknown flag --{}: see --help", a.substr(0, a.find('='))));
    }
  }
}

// absl flags use underscores; accept the documented dashed spellings too.
std::vector<char*> normalise_args(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  for (std::size_t i = 1; i < storage.size(); ++i) {
    std::string& s = storage[i];
    if (s.rfind("--", 0) != 0) continue;
    const std::size_t end = std::min(s.find('='), s.size());
    std::replace(s.begin() + 2, s.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  std::vector<char*> out;
  for (std::string& s : storage) out.push_back(s.data());
  return out;
}

Config parse_flags(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "reference MANA driver over a simulated device, verified end to end");
  std::vector<std::string> storage;
  std::vector<char*> args = normalise_args(argc, argv, storage);
  check_known_flags(static_cast<int>(args.size()), args.data());
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  Config c;
  c.page_size =
      parse_number<std::uint64_t>("page-size", absl::GetFlag(FLAGS_page_size), 4096, 1u << 20);
  if (!is_power_of_two(c.page_size)) {
    usage_error(fmt::format("--page-size={} is invalid: expected a power of two in 4096..1048576",
                            c.page_size));
  }
  c.mtu = parse_number<std::uint32_t>("mtu", absl::GetFlag(FLAGS_mtu), 68, 9202);
  c.queues = parse_number<std::uint32_t>("queues", absl::GetFlag(FLAGS_queues), 1, 64);
  c.queue_size =
      parse_number<std::uint32_t>("queue-size", absl::GetFlag(FLAGS_queue_size), 128, 8192);
  if (!is_power_of_two(c.queue_size)) {
    usage_error(fmt::format("--queue-size={} is invalid: expected a power of two in 128..8192",
                            c.queue_size));
  }
  c.packets = parse_number<std::uint64_t>("packets", absl::GetFlag(FLAGS_packets), 1, 1ull << 40);
  parse_size(absl::GetFlag(FLAGS_packet_size), c);
  parse_choices(c);
  parse_inject(absl::GetFlag(FLAGS_inject), c);
  c.reconfigure =
      parse_number<std::uint32_t>("reconfigure", absl::GetFlag(FLAGS_reconfigure), 0, 100000);
  c.seed = parse_number<std::uint64_t>("seed", absl::GetFlag(FLAGS_seed), 0, ~0ull);
  c.json = absl::GetFlag(FLAGS_json);
  return c;
}

// ----- frames -----

std::uint32_t check_word(std::uint64_t seq, std::uint32_t len) {
  std::uint64_t x = seq * 0x9E3779B97F4A7C15ull ^ len;
  x ^= x >> 29;
  return static_cast<std::uint32_t>(x * 0xBF58476D1CE4E5B9ull >> 32);
}

std::byte pattern_byte(std::uint64_t seq, std::uint32_t i) {
  return static_cast<std::byte>((seq * 131 + i * 7 + (i >> 8)) & 0xFF);
}

void write_frame(std::vector<std::byte>& f, std::uint64_t seq, std::uint32_t len) {
  f.resize(len);
  const std::uint32_t check = check_word(seq, len);
  std::memcpy(f.data(), &seq, 8);
  std::memcpy(f.data() + 8, &len, 4);
  std::memcpy(f.data() + 12, &check, 4);
  for (std::uint32_t i = kHeader; i < len; ++i) f[i] = pattern_byte(seq, i);
}

// True when `data` is exactly a frame the generator wrote.
bool verify_frame(const std::byte* data, std::uint32_t len, std::uint64_t* seq_out) {
  if (len < kHeader) return false;
  std::uint64_t seq = 0;
  std::uint32_t flen = 0, check = 0;
  std::memcpy(&seq, data, 8);
  std::memcpy(&flen, data + 8, 4);
  std::memcpy(&check, data + 12, 4);
  if (flen != len || check != check_word(seq, len)) return false;
  for (std::uint32_t i = kHeader; i < len; ++i) {
    if (data[i] != pattern_byte(seq, i)) return false;
  }
  *seq_out = seq;
  return true;
}

struct Verifier {
  std::atomic<std::uint64_t> verified{0};
  std::atomic<std::uint64_t> verified_wire{0};
  std::atomic<std::uint64_t> corrupt{0};
  std::atomic<std::uint64_t> tagged{0};
};

std::uint32_t frame_size(const Config& c, std::mt19937_64& rng, std::uint32_t max_frame) {
  switch (c.size_mode) {
    case SizeMode::kFixed:
      return c.fixed_size;
    case SizeMode::kImix: {  // 7:4:1 of 64, 576, 1500-byte IP packets
      const std::uint64_t r = rng() % 12;
      return std::min<std::uint32_t>(max_frame, r < 7 ? 64 : r < 11 ? 590 : 1514);
    }
    case SizeMode::kRandom:
      return kMinFrame + static_cast<std::uint32_t>(rng() % (max_frame - kMinFrame + 1));
  }
  return kMinFrame;
}

// ----- XDP programs -----

XdpProgram make_program(XdpMode mode, std::uint32_t queues) {
  switch (mode) {
    case XdpMode::kNone:
      return {};
    case XdpMode::kPass:  // push a 16-byte tag into the headroom (adjust_head)
      return [](XdpBuff& x) {
        if (x.data - x.data_hard_start < static_cast<std::ptrdiff_t>(kXdpTagLen)) {
          return XdpAction::kAborted;
        }
        x.data -= kXdpTagLen;
        std::memset(x.data, 0xA5, kXdpTagLen);
        return XdpAction::kPass;
      };
    case XdpMode::kDrop:  // drop odd sequence numbers
      return [](XdpBuff& x) {
        return (std::to_integer<unsigned>(x.data[0]) & 1) ? XdpAction::kDrop : XdpAction::kPass;
      };
    case XdpMode::kTx:  // bounce even sequence numbers back out
      return [](XdpBuff& x) {
        return (std::to_integer<unsigned>(x.data[0]) & 1) ? XdpAction::kPass : XdpAction::kTx;
      };
    case XdpMode::kRedirect:  // even sequence numbers leave by the next queue
      return [queues](XdpBuff& x) {
        if (std::to_integer<unsigned>(x.data[0]) & 1) return XdpAction::kPass;
        x.redirect_queue = (x.rx_queue + 1) % queues;
        return XdpAction::kRedirect;
      };
  }
  return {};
}

// ----- the run -----

struct Totals {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t dropped = 0;
  std::vector<std::pair<std::string, std::uint64_t>> drops;
  double seconds = 0;
};

std::uint64_t device_drops(const Device& dev) {
  return dev.counters().frames_no_queue.load() + dev.counters().frames_no_buffer.load();
}

Totals account(const Port& port, const Device& dev) {
  Totals t;
  const PortTotals pt = port.totals();
  t.sent = dev.counters().frames_offered.load();
  t.received = pt.rx_packets;
  t.dropped = pt.rx_dropped + device_drops(dev);
  for (DropReason r : kAllDropReasons) {
    t.drops.emplace_back(std::string(to_string(r)), pt.drops[static_cast<std::size_t>(r)]);
  }
  t.drops.emplace_back("device_no_queue", dev.counters().frames_no_queue.load());
  t.drops.emplace_back("device_no_buffer", dev.counters().frames_no_buffer.load());
  return t;
}

// One random MTU / XDP / full-page change. Returns whether it succeeded.
bool reconfigure_once(Port& port, const Config& c, std::mt19937_64& rng) {
  static constexpr std::uint32_t kMtus[] = {576, 1280, 1500, 1700, 2000, 3000, 4000, 9000};
  switch (rng() % 4) {
    case 0:
    case 1:
      return port.set_mtu(kMtus[rng() % std::size(kMtus)]).ok();
    case 2:
      if (port.xdp_attached()) return port.set_xdp({}).ok();
      return port.set_xdp(make_program(c.xdp == XdpMode::kNone ? XdpMode::kPass : c.xdp, c.queues))
          .ok();
    default:
      return port.set_full_page(!port.full_page()).ok();
  }
}

void generate(Device& dev, const Config& c, std::uint32_t max_frame,
              std::atomic<std::uint64_t>& progress) {
  std::mt19937_64 rng(c.seed);
  std::vector<std::byte> frame;
  constexpr std::uint32_t kBurst = 32;
  for (std::uint64_t seq = 0; seq < c.packets;) {
    const auto q = static_cast<std::uint32_t>((seq / kBurst) % c.queues);
    const std::uint64_t end = std::min<std::uint64_t>(c.packets, seq + kBurst);
    for (; seq < end; ++seq) {
      write_frame(frame, seq, frame_size(c, rng, max_frame));
      // Back-pressure: wait (bounded) for a posted buffer, or for the queue
      // to come back after a reconfiguration, rather than drop at once.
      for (int spins = 0; spins < 20000 && (dev.rx_backpressure(q) || !dev.rx_steered(q));
           ++spins) {
        dev.process_tx(q);
        std::this_thread::yield();
      }
      dev.offer_rx(q, frame, check_word(seq, 0));
    }
    dev.flush_rx(q);
    for (std::uint32_t t = 0; t < c.queues; ++t) dev.process_tx(t);  // XDP_TX / REDIRECT
    progress.store(seq, std::memory_order_relaxed);
  }
  for (std::uint32_t q = 0; q < c.queues; ++q) dev.flush_rx(q);
}

PacketSink make_sink(Verifier& v) {
  return [&v](const RxPacket& p) {
    std::uint64_t seq = 0;
    if (verify_frame(p.data, p.len, &seq)) {
      v.verified.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // The pass program pushed a tag into the headroom.
    static const std::array<std::byte, kXdpTagLen> kTag = [] {
      std::array<std::byte, kXdpTagLen> t;
      t.fill(std::byte{0xA5});
      return t;
    }();
    if (p.len > kXdpTagLen && std::memcmp(p.data, kTag.data(), kXdpTagLen) == 0 &&
        verify_frame(p.data + kXdpTagLen, p.len - kXdpTagLen, &seq)) {
      v.verified.fetch_add(1, std::memory_order_relaxed);
      v.tagged.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    v.corrupt.fetch_add(1, std::memory_order_relaxed);
  };
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
  return align_up(2 * c.queues * worst + 4 * block, block);
}

struct RunResult {
  Totals totals;
  std::uint64_t reconfigurations = 0, failed_reconfigurations = 0, attach_failures = 0;
  std::size_t queue_bytes = 0;
  std::uint64_t inflight = 0, leaked_pages = 0, leaked_mappings = 0;
  std::uint64_t truesize_sum = 0;
  std::uint64_t unsynced_reads = 0;
  RxBufCfg cfg;
  std::uint32_t final_mtu = 0;
  bool final_xdp = false, final_full_page = false;
  std::uint64_t corrupted_cqes = 0, dma_faults = 0, truncated = 0, tx_frames = 0;
};

void wait_accounted(Port& port, Device& dev, const Config& c) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    for (std::uint32_t q = 0; q < c.queues; ++q) {
      dev.flush_rx(q);
      dev.process_tx(q);
    }
    const Totals t = account(port, dev);
    if (t.received + t.dropped >= t.sent) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void control_loop(Port& port, const Config& c, const std::atomic<std::uint64_t>& progress,
                  const std::atomic<bool>& done, Device& dev) {
  std::mt19937_64 rng(c.seed ^ 0xC0FFEEull);
  std::uint32_t next = 1;
  auto last_print = std::chrono::steady_clock::now();
  const auto start = last_print;
  while (!done.load(std::memory_order_acquire) || next <= c.reconfigure) {
    const std::uint64_t sent = progress.load(std::memory_order_relaxed);
    if (next <= c.reconfigure && sent >= c.packets * next / (c.reconfigure + 1)) {
      reconfigure_once(port, c, rng);
      ++next;
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_print >= std::chrono::seconds(2)) {
      const double secs = std::chrono::duration<double>(now - start).count();
      const Totals t = account(port, dev);
      std::fprintf(stderr, "progress: %llu/%llu offered, %llu received, %.2f Mpps\n",
                   static_cast<unsigned long long>(t.sent),
                   static_cast<unsigned long long>(c.packets),
                   static_cast<unsigned long long>(t.received), t.received / secs / 1e6);
      last_print = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

absl::Status attach_with_retries(Port& port, std::uint64_t* failures) {
  absl::Status s;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    s = port.attach();
    if (s.ok()) return s;
    ++*failures;
  }
  return s;
}

std::string json_report(const Config& c, const RunResult& r, const Verifier& v, double mpps,
                        double truesize) {
  std::string drops;
  for (const auto& [name, n] : r.totals.drops) {
    drops += fmt::format("{}\"{}\":{}", drops.empty() ? "" : ",", name, n);
  }
  return fmt::format(
      "{{\"packets_sent\":{},\"packets_received\":{},\"packets_dropped\":{},"
      "\"drops_by_reason\":{{{}}},\"corrupt\":{},\"unsynced_reads\":{},\"verified\":{},"
      "\"leaked_pages\":{},\"leaked_mappings\":{},\"inflight_pages\":{},\"frags_per_page\":{},"
      "\"truesize_per_packet\":{:.1f},\"queue_bytes\":{},\"reconfigurations\":{},"
      "\"failed_reconfigurations\":{},\"mpps\":{:.4f},\"seconds\":{:.3f},\"page_size\":{},"
      "\"mtu\":{},\"queues\":{},\"queue_size\":{},\"policy\":\"{}\",\"xdp\":\"{}\",\"dma\":\"{}\","
      "\"final_kind\":\"{}\",\"corrupted_cqes\":{},\"truncated\":{},\"tx_frames\":{}}}",
      r.totals.sent, r.totals.received, r.totals.dropped, drops, v.corrupt.load(), r.unsynced_reads,
      v.verified.load() + v.verified_wire.load(), r.leaked_pages, r.leaked_mappings, r.inflight,
      r.cfg.frag_count, truesize, r.queue_bytes, r.reconfigurations, r.failed_reconfigurations,
      mpps, r.totals.seconds, c.page_size, r.final_mtu, c.queues, c.queue_size, c.policy,
      c.xdp_name, c.dma == MockDmaMode::kBounce ? "bounce" : "strict", r.cfg.kind, r.corrupted_cqes,
      r.truncated, r.tx_frames);
}

int report(const Config& c, const RunResult& r, const Verifier& v) {
  const Totals& t = r.totals;
  const double mpps = t.seconds > 0 ? t.received / t.seconds / 1e6 : 0;
  const double truesize = t.received ? static_cast<double>(r.truesize_sum) / t.received : 0;
  const bool balanced = t.sent == t.received + t.dropped;
  const bool ok = balanced && v.corrupt.load() == 0 && r.unsynced_reads == 0 && r.dma_faults == 0 &&
                  r.leaked_pages == 0 && r.leaked_mappings == 0 && r.inflight == 0;
  std::string out;
  auto row = [&out](std::string_view k, const std::string& val) {
    fmt::format_to(std::back_inserter(out), "  {:<30} {}\n", k, val);
  };
  fmt::format_to(std::back_inserter(out),
                 "mana_driver: {} queues x {} RX slots, {} B pages, "
                 "policy {}, xdp {}, dma {}\n",
                 c.queues, c.queue_size, c.page_size, c.policy, c.xdp_name,
                 c.dma == MockDmaMode::kBounce ? "bounce" : "strict");
  row("packets sent", fmt::format("{}", t.sent));
  row("packets received", fmt::format("{} ({} verified at the sink, {} on the wire)", t.received,
                                      v.verified.load(), v.verified_wire.load()));
  row("packets dropped", fmt::format("{}", t.dropped));
  for (const auto& [name, n] : t.drops) {
    if (n != 0) row(fmt::format("  drop: {}", name), fmt::format("{}", n));
  }
  row("sent == received + dropped", balanced ? "yes" : "NO");
  row("corrupt payloads", fmt::format("{}", v.corrupt.load()));
  row("unsynced CPU reads", fmt::format("{}", r.unsynced_reads));
  row("leaked pages / mappings", fmt::format("{} / {}", r.leaked_pages, r.leaked_mappings));
  row("pages in flight at destroy", fmt::format("{}", r.inflight));
  row("final layout",
      fmt::format("{} (mtu {}, {} per {} B block, alloc {} B)", r.cfg.kind, r.final_mtu,
                  r.cfg.frag_count, r.cfg.block_bytes(), r.cfg.alloc_size));
  row("truesize per packet", fmt::format("{:.1f} B", truesize));
  row("queue bytes (high water)",
      fmt::format("{} B ({:.2f} MiB)", r.queue_bytes, r.queue_bytes / 1048576.0));
  row("reconfigurations",
      fmt::format("{} ok, {} failed", r.reconfigurations, r.failed_reconfigurations));
  row("device", fmt::format("{} corrupted CQEs, {} truncated, {} DMA faults, {} TX frames",
                            r.corrupted_cqes, r.truncated, r.dma_faults, r.tx_frames));
  row("throughput", fmt::format("{:.3f} Mpps over {:.2f} s", mpps, t.seconds));
  row("result", ok ? "PASS" : "FAIL");
  std::fputs(out.c_str(), stdout);
  if (c.json) std::puts(json_report(c, r, v, mpps, truesize).c_str());
  return ok ? 0 : 1;
}

ManaPortOptions port_options(const Config& c, unsigned max_order, FaultInjector& injector,
                             Verifier& ver) {
  ManaPortOptions opts;
  opts.num_queues = c.queues;
  opts.rx_queue_size = c.queue_size;
  opts.mtu = c.mtu;
  opts.max_order = max_order;
  opts.policy = c.policy_fn;
  opts.injector = &injector;
  opts.sink = make_sink(ver);
  return opts;
}

void verify_on_wire(Device& dev, Verifier& ver) {
  dev.set_wire([&ver](std::uint32_t, std::span<const std::byte> f) {
    std::uint64_t seq = 0;
    const bool ok = verify_frame(f.data(), static_cast<std::uint32_t>(f.size()), &seq);
    (ok ? ver.verified_wire : ver.corrupt).fetch_add(1, std::memory_order_relaxed);
  });
}

// Runs the generator and the control thread until every frame is accounted.
void run_traffic(Port& port, Device& dev, const Config& c, RunResult& r) {
  const std::uint32_t max_frame = std::max(kMinFrame, c.mtu + 14);
  std::atomic<std::uint64_t> progress{0};
  std::atomic<bool> done{false};
  const auto start = std::chrono::steady_clock::now();
  std::thread control([&] { control_loop(port, c, progress, done, dev); });
  generate(dev, c, max_frame, progress);
  progress.store(c.packets);
  wait_accounted(port, dev, c);
  done.store(true, std::memory_order_release);
  control.join();
  wait_accounted(port, dev, c);
  r.totals = account(port, dev);
  r.totals.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Reads the final configuration, tears the port down and reads what the
// teardown left behind.
void finish(Port& port, const Device& dev, RunResult& r) {
  r.cfg = port.rxbuf_cfg();
  r.final_mtu = port.mtu();
  r.final_xdp = port.xdp_attached();
  r.final_full_page = port.full_page();
  r.queue_bytes = port.queue_bytes_high_water();
  (void)port.detach();
  r.reconfigurations = port.reconfigurations();
  r.failed_reconfigurations = port.failed_reconfigurations();
  const PortTotals pt = port.totals();
  r.truesize_sum = pt.rx_truesize;
  r.unsynced_reads = pt.rx_unsynced_reads;
  r.inflight = port.inflight_at_destroy();
  r.corrupted_cqes = dev.counters().completions_corrupted.load();
  r.dma_faults = dev.counters().dma_faults.load() + dev.counters().tx_faults.load();
  r.truncated = dev.counters().frames_truncated.load();
  r.tx_frames = dev.counters().tx_frames.load();
}

int run(const Config& c) {
  const unsigned max_order = 4;
  absl::StatusOr<HeapProvider> provider =
      HeapProvider::create({.page_size = c.page_size,
                            .max_order = max_order,
                            .capacity = provider_capacity(c, max_order)});
  if (!provider.ok()) usage_error(std::string(provider.status().message()));
  RunResult r;
  Verifier ver;
  MockDma dma(MockDmaOptions{.mode = c.dma, .seed = c.seed, .on_leak = [](std::string_view) {}});
  sim::SimDeviceOptions dopts;
  dopts.coalesce = 4;
  dopts.corrupt_probability = c.p_bad_cqe;
  dopts.seed = c.seed;
  Device dev(dma, dopts);
  verify_on_wire(dev, ver);
  FaultInjector injector(c.seed);
  absl::StatusOr<std::unique_ptr<Port>> port =
      Port::create(*provider, dma, dev, port_options(c, max_order, injector, ver));
  if (!port.ok()) usage_error(std::string(port.status().message()));
  if (c.xdp != XdpMode::kNone) {
    if (absl::Status s = (*port)->set_xdp(make_program(c.xdp, c.queues)); !s.ok()) {
      usage_error(std::string(s.message()));
    }
  }
  if (absl::Status s = attach_with_retries(**port, &r.attach_failures); !s.ok()) {
    std::fprintf(stderr, "error: attach failed: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // Faults are injected once the port is up: into refills on the data path
  // and into every reconfiguration, which must fail cleanly.
  injector.set_probability(FaultCategory::kAlloc, c.p_alloc);
  injector.set_probability(FaultCategory::kDmaMap, c.p_dma_map);
  run_traffic(**port, dev, c, r);
  finish(**port, dev, r);
  port->reset();
  r.leaked_mappings = dma.live_mappings();
  r.leaked_pages = provider->allocated_blocks();
  return report(c, r, ver);
}

}  // namespace

int main(int argc, char** argv) { return run(parse_flags(argc, argv)); }
