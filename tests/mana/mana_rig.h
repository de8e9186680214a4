// SPDX-License-Identifier: BSD-3-Clause
// tests/mana/mana_rig.h: a ManaPort over HeapProvider, MockDma and the
// simulated device, with frames whose every byte the test can predict.
//
// The oracle is independent of the driver and shared with the demo
// (examples/mana/frame.h): make_frame() derives every byte from (seq, len),
// and frame_ok() recomputes the frame from the header it received and
// compares all of it, a word at a time.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

// queue.h names pagefrag::MockDma without including it: include it first.
// clang-format off
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "examples/mana/frame.h"
#include "examples/mana/port.h"
#include "examples/mana/sim/sim_device.h"
// clang-format on

namespace mana::testing {

using namespace pagefrag;  // NOLINT: tests name the library types unqualified

using Device = sim::SimDevice<MockDma>;
using Port = ManaPort<HeapProvider, MockDma, Device>;

// The frame oracle is the demo's (examples/mana/frame.h), under seed 0.
inline constexpr std::uint64_t kRigSeed = 0;

inline std::vector<std::byte> make_frame(std::uint64_t seq, std::uint32_t len) {
  return frame::make_frame(kRigSeed, seq, len);
}

inline bool frame_ok(const std::byte* p, std::uint32_t len) {
  return frame::frame_ok(p, len, kRigSeed);
}

struct RigOptions {
  std::size_t page_size = 4096;
  std::uint32_t queues = 2;
  std::uint32_t queue_size = 128;
  std::uint32_t mtu = 1500;
  MockDmaMode dma = MockDmaMode::kStrict;
  bool threaded = false;
  std::uint32_t pollers = 0;  // ManaPortOptions::pollers (threaded)
  bool skip_sync = false;
  sim::SimDeviceOptions device{};
  std::size_t capacity = std::size_t{64} << 20;
};

// Everything one test needs; the port is destroyed first by teardown().
struct Rig {
  explicit Rig(const RigOptions& o)
      : opts(o),
        provider(*HeapProvider::create(
            {.page_size = o.page_size, .max_order = 4, .capacity = o.capacity})),
        dma(MockDmaOptions{.mode = o.dma, .on_leak = [](std::string_view) {}}),
        dev(dma, o.device) {
    ManaPortOptions po;
    po.num_queues = o.queues;
    po.rx_queue_size = o.queue_size;
    po.tx_queue_size = 64;
    po.mtu = o.mtu;
    po.threaded = o.threaded;
    po.pollers = o.pollers;
    po.injector = &injector;
    po.testing_skip_sync_for_cpu = o.skip_sync;
    po.sink = [this](const RxPacket& p) {
      (frame_ok(p.data, p.len) ? good : bad).fetch_add(1, std::memory_order_relaxed);
    };
    absl::StatusOr<std::unique_ptr<Port>> p = Port::create(provider, dma, dev, po);
    REQUIRE(p.ok());
    port = *std::move(p);
  }

  // Non-threaded: offers n frames round-robin (sizes from size_of(seq)),
  // polling as it goes, then drains. Returns frames offered.
  template <class SizeFn>
  std::uint64_t traffic(std::uint64_t n, SizeFn size_of) {
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t seq = next_seq++;
      const auto q = static_cast<std::uint32_t>(seq % opts.queues);
      const std::vector<std::byte> f = make_frame(seq, size_of(seq));
      dev.offer_rx(q, f, static_cast<std::uint32_t>(seq));
      if (i % 16 == 15) pump();
    }
    pump();
    return n;
  }
  std::uint64_t traffic(std::uint64_t n) {
    return traffic(n,
                   [](std::uint64_t seq) { return 60 + static_cast<std::uint32_t>(seq % 1455); });
  }

  // Flushes the device and polls every queue until nothing moves.
  void pump() {
    for (int round = 0; round < 64; ++round) {
      std::uint32_t work = 0;
      for (std::uint32_t q = 0; q < opts.queues; ++q) {
        dev.flush_rx(q);
        work += dev.process_tx(q);
        work += port->poll(q, 1u << 20);
      }
      if (work == 0) return;
    }
  }

  std::uint64_t device_drops() const {
    return dev.counters().frames_no_queue + dev.counters().frames_no_buffer;
  }
  // sent == received + dropped, every drop counted where it happened.
  bool balanced() const {
    const PortTotals t = port->totals();
    return dev.counters().frames_offered == t.rx_packets + t.dropped() + device_drops();
  }

  // Destroys the port and checks nothing leaked.
  void teardown_and_check_leaks() {
    CHECK(port->detach().ok());
    const std::uint64_t inflight = port->inflight_at_destroy();
    port.reset();
    CHECK(inflight == 0);
    CHECK(provider.allocated_blocks() == 0);
    CHECK(dma.live_mappings() == 0);
  }

  RigOptions opts;
  HeapProvider provider;
  MockDma dma;
  Device dev;
  FaultInjector injector{7};
  std::unique_ptr<Port> port;
  std::atomic<std::uint64_t> good{0};
  std::atomic<std::uint64_t> bad{0};
  std::uint64_t next_seq = 0;
};

}  // namespace mana::testing
