// SPDX-License-Identifier: BSD-3-Clause
// Poller threads (one per queue, or fewer serving several queues each, which
// then sleep on one event queue for all of them), device threads feeding
// them, and XDP REDIRECT between queues: buffers return to their home pool
// from another queue's thread through the remote recycle path. Run under
// TSan in CI.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "tests/mana/mana_rig.h"

namespace mana::testing {
namespace {

using namespace pagefrag;  // NOLINT: tests name the library types unqualified

constexpr std::uint32_t kQueues = 4;
constexpr std::uint64_t kFramesPerQueue = 6000;

// Device thread t feeds queues t and t + 2 with back-pressure.
void feed(Rig& r, std::uint32_t t) {
  for (std::uint64_t i = 0; i < kFramesPerQueue; ++i) {
    for (std::uint32_t q : {t, t + 2}) {
      const std::uint64_t seq = (i * kQueues + q) * 2 + (i % 2);  // low bit: pass or redirect
      const std::vector<std::byte> f = make_frame(seq, 60 + static_cast<std::uint32_t>(seq % 1400));
      for (int spin = 0; spin < 100000 && r.dev.rx_backpressure(q); ++spin) {
        r.dev.process_tx(q);
        std::this_thread::yield();
      }
      r.dev.offer_rx(q, f, 0);
      if (i % 8 == 7) r.dev.flush_rx(q);
      r.dev.process_tx(q);
    }
  }
  for (std::uint32_t q : {t, t + 2}) r.dev.flush_rx(q);
}

// pollers 0: one poller thread per queue; 2 and 1: each serves several.
void redirect_between_queues(std::uint32_t pollers) {
  Rig r({.queues = kQueues,
         .queue_size = 256,
         .dma = MockDmaMode::kStrict,
         .threaded = true,
         .pollers = pollers,
         .capacity = std::size_t{64} << 20});
  std::atomic<std::uint64_t> wire_ok{0}, wire_bad{0};
  r.dev.set_wire([&](std::uint32_t, std::span<const std::byte> f) {
    (frame_ok(f.data(), static_cast<std::uint32_t>(f.size())) ? wire_ok : wire_bad)
        .fetch_add(1, std::memory_order_relaxed);
  });
  REQUIRE(r.port
              ->set_xdp([](XdpBuff& x) {
                std::uint8_t low = std::to_integer<std::uint8_t>(x.data[0]);
                if ((low & 1) == 0) return XdpAction::kPass;
                x.redirect_queue = (x.rx_queue + 1) % kQueues;
                return XdpAction::kRedirect;
              })
              .ok());
  REQUIRE(r.port->attach().ok());
  std::thread a([&] { feed(r, 0); });
  std::thread b([&] { feed(r, 1); });
  a.join();
  b.join();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!r.balanced() && std::chrono::steady_clock::now() < deadline) {
    for (std::uint32_t q = 0; q < kQueues; ++q) r.dev.process_tx(q);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(r.port->detach().ok());
  const PortTotals t = r.port->totals();
  CHECK(r.balanced());
  CHECK(r.bad.load() == 0);
  CHECK(wire_bad.load() == 0);
  CHECK(r.good.load() > 0);
  CHECK(t.xdp_redirect > 0);
  CHECK(t.tx_remote_returned > 0);
  // Every redirected frame was either transmitted intact or reclaimed.
  CHECK(wire_ok.load() + t.tx_discarded == t.xdp_redirect);
  CHECK(t.rx_unsynced_reads == 0);
  r.teardown_and_check_leaks();
}

TEST_CASE("multi-queue pollers with REDIRECT between queues") { redirect_between_queues(0); }
TEST_CASE("two pollers serve four queues, REDIRECT between them") { redirect_between_queues(2); }
TEST_CASE("one poller serves four queues, REDIRECT between them") { redirect_between_queues(1); }

TEST_CASE("a TX completion wakes a sleeping poller: redirected buffers come home") {
  // Queue 1 receives nothing, so its poller sleeps; frames queue 0
  // redirects there wait on its TX ring, and their buffers (queue 0's)
  // come home only when that poller runs poll_tx(). Only the device's TX
  // completion can wake it.
  Rig r({.queues = 2, .queue_size = 128, .dma = MockDmaMode::kStrict, .threaded = true});
  std::atomic<std::uint64_t> wire_ok{0};
  r.dev.set_wire([&](std::uint32_t, std::span<const std::byte> f) {
    if (frame_ok(f.data(), static_cast<std::uint32_t>(f.size()))) {
      wire_ok.fetch_add(1, std::memory_order_relaxed);
    }
  });
  REQUIRE(r.port
              ->set_xdp([](XdpBuff& x) {
                x.redirect_queue = 1;
                return x.rx_queue == 0 ? XdpAction::kRedirect : XdpAction::kPass;
              })
              .ok());
  REQUIRE(r.port->attach().ok());
  constexpr std::uint64_t kFrames = 48;  // below the rig's 64-entry TX ring
  for (std::uint64_t seq = 0; seq < kFrames; ++seq) r.dev.offer_rx(0, make_frame(seq, 200), 0);
  r.dev.flush_rx(0);
  auto wait_for = [](auto done) {  // liveness, not timing: a generous bound
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
  };
  REQUIRE(wait_for([&] { return r.port->totals().xdp_redirect == kFrames; }));
  // Both pollers have long gone to sleep by now (after 4 empty rounds).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(r.dev.process_tx(1) == kFrames);  // transmitted and completed, once
  CHECK(wait_for([&] { return r.port->queue_stats(1).tx_completed.get() == kFrames; }));
  CHECK(wire_ok.load() == kFrames);
  CHECK(wait_for([&] { return r.port->totals().tx_remote_returned == kFrames; }));
  REQUIRE(r.port->detach().ok());
  r.teardown_and_check_leaks();
}

TEST_CASE("reconfiguration while pollers and the device run") {
  Rig r({.queues = 2, .queue_size = 128, .dma = MockDmaMode::kBounce, .threaded = true});
  REQUIRE(r.port->attach().ok());
  std::atomic<bool> stop{false};
  std::thread dev([&] {
    std::uint64_t seq = 0;
    while (!stop.load(std::memory_order_acquire)) {
      const auto q = static_cast<std::uint32_t>(seq % 2);
      r.dev.offer_rx(q, make_frame(seq, 60 + static_cast<std::uint32_t>(seq % 500)), 0);
      ++seq;
      if (seq % 4 == 0) r.dev.flush_rx(q);
    }
    r.dev.flush_rx(0);
    r.dev.flush_rx(1);
  });
  for (int i = 0; i < 12; ++i) {
    CHECK(r.port->set_mtu(i % 2 ? 1500 : 3000).ok());
    CHECK(r.port->set_full_page(i % 3 == 0).ok());
  }
  stop.store(true, std::memory_order_release);
  dev.join();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!r.balanced() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(r.balanced());
  CHECK(r.bad.load() == 0);
  CHECK(r.port->reconfigurations() == 24);
  r.teardown_and_check_leaks();
}

}  // namespace
}  // namespace mana::testing
