// SPDX-License-Identifier: BSD-3-Clause
// Every sync on the MANA driver's RX and TX paths is needed: the driver runs
// over MockDma in strict and in bounce mode, and each case fails when one
// sync (or part of one) is missing:
//   RX, batched path (no XDP) and per-completion path (XDP): the sync for
//     the CPU before the packet is read;
//   TX (XDP_TX and REDIRECT): the sync for the device before the device
//     reads a frame the XDP program rewrote;
//   refill: the pool's sync for the device when a buffer comes back (owner
//     recycles, and REDIRECT's remote returns).
// Oracles, none of them the driver's own bookkeeping: the frame oracle of
// examples/mana/frame.h (every byte derived from a seed and a sequence
// number: the XDP program rewrites each frame under another seed, so a
// stale byte on the wire fails), MockDma's fault and unsynced-read counters,
// the device's fault counters, and the provider and DMA backend leak counts
// after teardown.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
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

namespace mana {
namespace {

using namespace pagefrag;  // NOLINT: tests name the library types unqualified

using Device = sim::SimDevice<MockDma>;
using Port = ManaPort<HeapProvider, MockDma, Device>;

constexpr std::uint64_t kRxSeed = 0;  // frames as the device receives them
constexpr std::uint64_t kTxSeed = 1;  // frames as the XDP program rewrites them

enum class Verdict { kPass, kTx, kRedirect };

// The kernel's layouts, plus 128 bytes of headroom without XDP (a policy a
// driver may bring): the packet does not start at the buffer's start on
// the batched RX path either.
absl::StatusOr<RxBufCfg> headroom_policy(const RxBufRequest& req) {
  absl::StatusOr<RxBufCfg> c = KernelRxBufPolicy<>::configure(req);
  if (!c.ok() || req.xdp) return c;
  c->headroom = 128;
  c->alloc_size += 128;
  c->frag_count =
      static_cast<std::uint32_t>(std::max<std::uint64_t>(1, c->block_bytes() / c->alloc_size));
  c->truesize = c->frag_count > 1 ? c->alloc_size : static_cast<std::uint32_t>(c->block_bytes());
  return c;
}

struct Rig {
  Rig(MockDmaMode mode, std::uint32_t queues, std::uint32_t tx_size = 64,
      RxBufConfigureFn policy = &KernelRxBufPolicy<>::configure)
      : provider(*HeapProvider::create(
            {.page_size = 4096, .max_order = 4, .capacity = std::size_t{32} << 20})),
        dma(MockDmaOptions{.mode = mode, .on_leak = [](std::string_view) {}}),
        dev(dma, {}) {
    ManaPortOptions po;
    po.num_queues = queues;
    po.rx_queue_size = 128;
    po.tx_queue_size = tx_size;
    po.threaded = false;
    po.policy = policy;
    po.sink = [this, queues](const RxPacket& p) {
      std::uint64_t seq = 0;
      if (!frame::frame_ok(p.data, p.len, stack_seed, &seq)) {
        ++stack_bad;
        return;
      }
      ++stack_ok;
      if (p.queue != seq % queues) ++stack_wrong_queue;  // traffic() offers seq to seq % queues
    };
    auto p = Port::create(provider, dma, dev, po);
    REQUIRE(p.ok());
    port = *std::move(p);
    dev.set_wire([this](std::uint32_t, std::span<const std::byte> f) {
      (frame::frame_ok(f.data(), static_cast<std::uint32_t>(f.size()), kTxSeed) ? wire_ok
                                                                                : wire_bad)++;
    });
  }

  // An XDP program that checks the received frame, rewrites it in place
  // under kTxSeed (CPU writes the device must see) and returns `v`; with a
  // shift, the rewritten frame starts that many bytes earlier, in the
  // buffer's headroom.
  void attach_xdp(Verdict v, std::uint32_t queues, std::ptrdiff_t shift = 0) {
    stack_seed = kTxSeed;  // PASS hands the rewritten frame up
    REQUIRE(port->set_xdp([this, v, queues, shift](XdpBuff& x) {
                  const auto len = static_cast<std::uint32_t>(x.data_end - x.data);
                  std::uint64_t seq = 0;
                  if (!frame::frame_ok(x.data, len, kRxSeed, &seq)) {
                    ++rx_bad;
                    return XdpAction::kDrop;
                  }
                  ++rx_ok;
                  if (x.data - x.data_hard_start < shift) return XdpAction::kAborted;
                  x.data -= shift;
                  x.data_end -= shift;
                  frame::write_frame(std::span(x.data, len), kTxSeed, seq);
                  if (v == Verdict::kPass) return XdpAction::kPass;
                  if (v == Verdict::kTx) return XdpAction::kTx;
                  x.redirect_queue = (x.rx_queue + 1) % queues;
                  return XdpAction::kRedirect;
                })
                .ok());
  }

  // Offers n frames round robin over the queues, polling and transmitting
  // every `burst` frames.
  void traffic(std::uint64_t n, std::uint32_t queues, std::uint64_t burst = 8) {
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t seq = next_seq++;
      const auto len = 60 + static_cast<std::uint32_t>((seq * 37) % 1455);
      dev.offer_rx(static_cast<std::uint32_t>(seq % queues), frame::make_frame(kRxSeed, seq, len),
                   static_cast<std::uint32_t>(seq));
      if (i % burst == burst - 1) pump(queues);
    }
    pump(queues);
  }

  void pump(std::uint32_t queues) {
    for (int round = 0; round < 64; ++round) {
      std::uint32_t work = 0;
      for (std::uint32_t q = 0; q < queues; ++q) {
        dev.flush_rx(q);
        work += port->poll(q, 1u << 20);
        work += dev.process_tx(q);
      }
      if (work == 0) return;
    }
  }

  // No DMA fault anywhere: the device never wrote or read bytes the CPU
  // owned, and never read bytes it had written without a sync.
  void check_dma_clean() {
    const MockDmaCounters c = dma.counters();
    CHECK(c.device_faults == 0);
    CHECK(c.device_writes_to_cpu_owned == 0);
    CHECK(c.device_reads_of_cpu_owned == 0);
    CHECK(c.unsynced_cpu_reads == 0);
    CHECK(c.sync_errors == 0);
    CHECK(port->totals().rx_unsynced_reads == 0);
    const auto& d = dev.counters();
    CHECK(d.dma_faults == 0);
    CHECK(d.tx_faults == 0);
  }

  void teardown_and_check_leaks() {
    CHECK(port->detach().ok());
    CHECK(port->inflight_at_destroy() == 0);
    port.reset();
    CHECK(provider.allocated_blocks() == 0);
    CHECK(dma.live_mappings() == 0);
    CHECK(stuck_page_pools().empty());
  }

  HeapProvider provider;
  MockDma dma;
  Device dev;
  std::unique_ptr<Port> port;
  std::uint64_t stack_seed = kRxSeed;         // what the stack must see
  std::uint64_t stack_ok = 0, stack_bad = 0;  // frames the stack got
  std::uint64_t stack_wrong_queue = 0;        // ... naming another queue than their own
  std::uint64_t rx_ok = 0, rx_bad = 0;        // frames the XDP program got
  std::uint64_t wire_ok = 0, wire_bad = 0;
  std::uint64_t next_seq = 0;
};

TEST_CASE("RX without XDP: every frame reaches the stack intact, no DMA fault") {
  for (MockDmaMode mode : {MockDmaMode::kStrict, MockDmaMode::kBounce}) {
    CAPTURE(static_cast<int>(mode));
    Rig r(mode, 2);
    REQUIRE(r.port->attach().ok());
    constexpr std::uint64_t kFrames = 3000;  // ~23 laps of each 128-entry ring: buffers recycle
    r.traffic(kFrames, 2);
    CHECK(r.stack_ok == kFrames);
    CHECK(r.stack_bad == 0);
    CHECK(r.stack_wrong_queue == 0);
    CHECK(r.port->totals().rx_packets == kFrames);
    r.check_dma_clean();
    r.teardown_and_check_leaks();
  }
}

TEST_CASE("RX without XDP into buffers with headroom: the sync starts at the packet") {
  for (MockDmaMode mode : {MockDmaMode::kStrict, MockDmaMode::kBounce}) {
    CAPTURE(static_cast<int>(mode));
    Rig r(mode, 1, 64, &headroom_policy);
    REQUIRE(r.port->attach().ok());
    REQUIRE(r.port->rxbuf_cfg().headroom == 128);
    constexpr std::uint64_t kFrames = 1500;
    r.traffic(kFrames, 1);
    CHECK(r.stack_ok == kFrames);
    CHECK(r.stack_bad == 0);
    r.check_dma_clean();
    r.teardown_and_check_leaks();
  }
}

TEST_CASE("XDP rewrites each frame: PASS, TX and REDIRECT deliver the rewritten bytes") {
  for (MockDmaMode mode : {MockDmaMode::kStrict, MockDmaMode::kBounce}) {
    for (Verdict v : {Verdict::kPass, Verdict::kTx, Verdict::kRedirect}) {
      CAPTURE(static_cast<int>(mode));
      CAPTURE(static_cast<int>(v));
      constexpr std::uint32_t kQueues = 2;
      Rig r(mode, kQueues);
      r.attach_xdp(v, kQueues);
      REQUIRE(r.port->attach().ok());
      constexpr std::uint64_t kFrames = 2000;
      r.traffic(kFrames, kQueues);
      // The program saw every frame as the device wrote it (RX synced).
      CHECK(r.rx_ok == kFrames);
      CHECK(r.rx_bad == 0);
      const PortTotals t = r.port->totals();
      CHECK(t.dropped() == 0);
      if (v == Verdict::kPass) {
        CHECK(t.xdp_pass == kFrames);
        CHECK(r.stack_ok == kFrames);  // the rewrite is what the stack sees
        CHECK(r.stack_bad == 0);
      } else {
        // Every frame went out as the CPU rewrote it (TX synced).
        CHECK(r.wire_ok == kFrames);
        CHECK(r.wire_bad == 0);
        CHECK(t.tx_completed == kFrames);
        if (v == Verdict::kRedirect) CHECK(t.tx_remote_returned == kFrames);
      }
      r.check_dma_clean();
      r.teardown_and_check_leaks();
    }
  }
}

TEST_CASE("XDP moves each frame into the headroom: PASS and TX deliver it from there") {
  for (MockDmaMode mode : {MockDmaMode::kStrict, MockDmaMode::kBounce}) {
    for (Verdict v : {Verdict::kPass, Verdict::kTx}) {
      CAPTURE(static_cast<int>(mode));
      CAPTURE(static_cast<int>(v));
      Rig r(mode, 1);
      r.attach_xdp(v, 1, 64);
      REQUIRE(r.port->attach().ok());
      REQUIRE(r.port->rxbuf_cfg().headroom >= 64);
      constexpr std::uint64_t kFrames = 500;
      r.traffic(kFrames, 1);
      CHECK(r.rx_ok == kFrames);
      CHECK(r.port->totals().dropped() == 0);
      if (v == Verdict::kPass) {
        CHECK(r.stack_ok == kFrames);
        CHECK(r.stack_bad == 0);
      } else {
        CHECK(r.wire_ok == kFrames);
        CHECK(r.wire_bad == 0);
      }
      r.check_dma_clean();
      r.teardown_and_check_leaks();
    }
  }
}

TEST_CASE("XDP_TX bursts larger than the TX ring: the excess is dropped, nothing leaks") {
  for (MockDmaMode mode : {MockDmaMode::kStrict, MockDmaMode::kBounce}) {
    CAPTURE(static_cast<int>(mode));
    constexpr std::uint32_t kTxRing = 16;
    Rig r(mode, 1, kTxRing);
    r.attach_xdp(Verdict::kTx, 1);
    REQUIRE(r.port->attach().ok());
    // 100 frames per poll, TX processed only after it: 16 fit, 84 are
    // dropped as TX-full, every burst.
    constexpr std::uint64_t kBurst = 100, kBursts = 6;
    for (std::uint64_t b = 0; b < kBursts; ++b) {
      for (std::uint64_t i = 0; i < kBurst; ++i) {
        const std::uint64_t seq = r.next_seq++;
        r.dev.offer_rx(0, frame::make_frame(kRxSeed, seq, 200), 0);
      }
      r.dev.flush_rx(0);
      r.port->poll(0, 1u << 20);
      r.dev.process_tx(0);
      r.port->poll(0, 1u << 20);  // TX completions
    }
    const PortTotals t = r.port->totals();
    CHECK(r.rx_ok == kBurst * kBursts);
    CHECK(r.wire_ok == kTxRing * kBursts);
    CHECK(r.wire_bad == 0);
    CHECK(t.drops_for(DropReason::kXdpTxFull) == (kBurst - kTxRing) * kBursts);
    r.check_dma_clean();
    r.teardown_and_check_leaks();
  }
}

}  // namespace
}  // namespace mana
