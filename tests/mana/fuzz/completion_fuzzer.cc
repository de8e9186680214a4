// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target over the whole completion path: the input is a program
// of operations on a two-queue ManaPort over the simulated device
// (examples/mana/sim): offer frames of any length (truncated ones included)
// to either queue, flush RX completions, let the device transmit and
// complete TX (XDP_TX / REDIRECT), poll with any budget, attach an XDP
// program whose verdict for each frame the input chose (all five: ABORTED,
// DROP, PASS with or without a pushed header, TX, REDIRECT to a queue that
// may not exist, and a program that moves data_end before data), detach it, change the MTU, toggle
// full-page RX, detach and re-attach the port, inject allocation / DMA-map faults, and corrupt
// completions (the simulator's four corruption kinds, seeded by the input).
//
// Oracles: every frame the stack receives or the wire carries is the frame
// the generator wrote (frame.h; checked only while completions are not
// being corrupted), sent == received + dropped once drained, and after
// teardown no page, mapping or fragment is left behind. Any violation
// aborts; so does any sanitizer report.
//
// Built with clang++ -fsanitize=fuzzer,address (tagged manual);
// .ci/steps/70-mana-fuzz.sh replays the seed corpus and fuzzes briefly,
// scripts/fuzz_long.sh runs it for FUZZ_SECONDS, scripts/fuzz_coverage.sh
// reports the source coverage of a corpus replay.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

// queue.h names pagefrag::MockDma without including it: include it first.
// clang-format off
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "examples/mana/frame.h"
#include "examples/mana/port.h"
#include "examples/mana/sim/sim_device.h"
// clang-format on

namespace {

using namespace pagefrag;  // NOLINT
using namespace mana;      // NOLINT

using Device = sim::SimDevice<MockDma>;
using Port = ManaPort<HeapProvider, MockDma, Device>;

constexpr std::uint32_t kQueues = 2;
constexpr std::uint64_t kSeed = 0x5EED;
constexpr std::uint32_t kTagLen = 16;
constexpr std::size_t kMaxOps = 512;
// Each reconfiguration rebuilds both queues (pools, mappings, MockDma's
// per-byte ownership tables): ~0.25 s under ASan. Past this many per input
// control operations are skipped, so inputs stay fast to run.
constexpr std::uint32_t kMaxControlOps = 16;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "completion_fuzzer: %s\n", what);
  std::abort();
}

// Reads the input a byte at a time; zeros once it runs out.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// The verdict the input chose for each sequence number (read by the XDP
// program from the frame's header).
struct Verdicts {
  std::vector<std::uint8_t> by_seq;
  std::uint8_t of(std::uint64_t seq) const { return seq < by_seq.size() ? by_seq[seq] : 2; }
};

XdpProgram make_program(const Verdicts& v) {
  return [&v](XdpBuff& x) {
    if (x.data_end - x.data < 8) return XdpAction::kAborted;
    std::uint64_t seq = 0;
    std::memcpy(&seq, x.data, 8);
    const std::uint8_t verdict = v.of(seq);
    switch (verdict % 7) {
      case 0:
        return XdpAction::kAborted;
      case 1:
        return XdpAction::kDrop;
      case 2:
        return XdpAction::kPass;
      case 3:  // PASS after pushing a header (adjust_head), if there is room
        if (x.data - x.data_hard_start < static_cast<std::ptrdiff_t>(kTagLen)) {
          return XdpAction::kAborted;
        }
        x.data -= kTagLen;
        std::memset(x.data, 0xA5, kTagLen);
        return XdpAction::kPass;
      case 4:
        return XdpAction::kTx;
      case 5:  // REDIRECT; queue 2 and up do not exist
        x.redirect_queue = (verdict >> 3) % (kQueues + 2);
        return XdpAction::kRedirect;
      default:  // a program bug: data_end before data; the driver must abort it
        x.data_end -= 1;
        x.data = x.data_end + 1;
        x.data_end -= (verdict >> 3) & 1;
        return (verdict & 0x80) ? XdpAction::kTx : XdpAction::kPass;
    }
  };
}

struct Harness {
  explicit Harness(HeapProvider& provider, MockDma& dma, const sim::SimDeviceOptions& dopts)
      : dev(dma, dopts), injector(dopts.seed) {
    dev.set_wire(
        [this](std::uint32_t, std::span<const std::byte> f) { check(f.data(), f.size()); });
    ManaPortOptions o;
    o.num_queues = kQueues;
    o.rx_queue_size = 128;
    o.tx_queue_size = 16;
    o.mtu = 1500;
    o.max_order = 2;
    o.threaded = false;
    o.injector = &injector;
    o.sink = [this](const RxPacket& p) { check_rx(p.data, p.len); };
    auto p = Port::create(provider, dma, dev, o);
    if (!p.ok()) fail("port create failed");
    port = *std::move(p);
  }

  void check(const std::byte* p, std::size_t len) {
    if (!strict) return;
    if (!frame::frame_ok(p, static_cast<std::uint32_t>(len), kSeed)) fail("corrupt frame");
  }
  void check_rx(const std::byte* p, std::uint32_t len) {
    if (!strict) return;
    if (frame::frame_ok(p, len, kSeed)) return;
    const bool tagged = len > kTagLen && std::to_integer<unsigned>(p[0]) == 0xA5 &&
                        frame::frame_ok(p + kTagLen, len - kTagLen, kSeed);
    if (!tagged) fail("corrupt frame at the sink");
  }

  std::uint32_t pump_once() {
    std::uint32_t work = 0;
    for (std::uint32_t q = 0; q < kQueues; ++q) {
      dev.flush_rx(q);
      work += dev.process_tx(q);
      work += port->poll(q, 256);
    }
    return work;
  }

  Device dev;
  FaultInjector injector;
  std::unique_ptr<Port> port;
  Verdicts verdicts;
  bool strict = true;
  bool rebuilt = false;  // a reconfiguration or detach ran
  std::uint32_t control_ops = 0;
  std::uint64_t next_seq = 0;
};

constexpr std::uint32_t kMtus[] = {68, 576, 1280, 1500, 1700, 2000, 3000, 3506, 4000, 9000};

void step(Harness& h, Input& in, std::vector<std::byte>& buf) {
  const std::uint8_t op = in.u8();
  if (op % 12 >= 6 && op % 12 <= 10) {
    h.rebuilt = true;
    if (++h.control_ops > kMaxControlOps) {
      if (op % 12 == 8) in.u8();  // the MTU's argument
      return;
    }
  }
  switch (op % 12) {
    case 0:
    case 1:
    case 2: {  // offer a frame with a verdict
      const std::uint32_t q = op >> 7;
      const std::uint32_t len = frame::kFrameHeaderBytes + in.u16() % 9300;
      const std::uint64_t seq = h.next_seq++;
      h.verdicts.by_seq.push_back(in.u8());
      std::span<std::byte> f(buf.data(), len);
      frame::write_frame(f, kSeed, seq);
      h.dev.offer_rx(q % kQueues, f, static_cast<std::uint32_t>(seq));
      return;
    }
    case 3:
      h.dev.flush_rx((op >> 4) % kQueues);
      return;
    case 4:
      h.dev.process_tx((op >> 4) % kQueues);
      return;
    case 5:
      h.port->poll((op >> 4) % kQueues, 1u + in.u8());
      return;
    case 6:
      (void)h.port->set_xdp(make_program(h.verdicts));
      return;
    case 7:
      (void)h.port->set_xdp({});
      return;
    case 8:
      (void)h.port->set_mtu(kMtus[in.u8() % std::size(kMtus)]);
      return;
    case 9:
      (void)h.port->set_full_page(!h.port->full_page());
      return;
    case 10:
      if (h.port->is_up()) {
        (void)h.port->detach();
      } else {
        (void)h.port->attach();
      }
      return;
    default: {  // faults: allocation / DMA mapping, 0..~10 %
      const std::uint8_t p = in.u8();
      const FaultCategory c = (op & 0x10) ? FaultCategory::kDmaMap : FaultCategory::kAlloc;
      h.injector.set_probability(c, (p & 0x1F) / 300.0);
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static HeapProvider* provider = new HeapProvider(*HeapProvider::create(
      {.page_size = 4096, .max_order = 2, .capacity = std::size_t{48} << 20}));
  static MockDma* dma = new MockDma(MockDmaOptions{.on_leak = [](std::string_view) {}});
  static std::vector<std::byte>* buf = new std::vector<std::byte>(16384);
  Input in(data, size);
  // Header: device options.
  const std::uint8_t flags = in.u8();
  sim::SimDeviceOptions dopts;
  dopts.coalesce = 1 + (flags & 3);
  dopts.corrupt_probability = (flags & 0x80) ? (1 + (flags >> 2 & 0x1F)) / 64.0 : 0;
  dopts.seed = in.u8() + 1;
  {
    Harness h(*provider, *dma, dopts);
    h.strict = dopts.corrupt_probability == 0;
    if (!h.port->attach().ok()) fail("attach failed");
    for (std::size_t n = 0; n < kMaxOps && !in.done(); ++n) step(h, in, *buf);
    // Drain: no more faults, everything offered is accounted for.
    h.injector.set_probability(FaultCategory::kAlloc, 0);
    h.injector.set_probability(FaultCategory::kDmaMap, 0);
    for (int round = 0; round < 256 && h.pump_once() != 0; ++round) {
    }
    const PortTotals t = h.port->totals();
    const auto& c = h.dev.counters();
    const std::uint64_t accounted =
        t.rx_packets + t.dropped() + c.frames_no_queue + c.frames_no_buffer;
    // Frames placed in a queue that was torn down (a reconfiguration or a
    // detach) before they were polled are counted by nobody, and corrupted
    // completions may lose frames: judge the balance only without either.
    if (h.strict && !h.rebuilt && c.frames_offered != accounted) {
      fail("sent != received + dropped");
    }
    if (!h.port->detach().ok()) fail("detach failed");
    if (h.port->inflight_at_destroy() != 0) fail("pages in flight after teardown");
    h.port.reset();
  }
  if (provider->allocated_blocks() != 0) fail("leaked pages");
  if (dma->live_mappings() != 0) fail("leaked DMA mappings");
  return 0;
}
