// SPDX-License-Identifier: BSD-3-Clause
// The MANA queue's batched RX path (rx_okay_run) driven one poll at a time
// by a scripted device on the test's own thread: runs that reach the end of
// the slot ring, and refills the pool cannot finish. The oracle is what the
// sink saw: every packet's sequence number and payload, and the sums of its
// lengths and truesizes against the queue's counters.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "examples/mana/gdma.h"
#include "examples/mana/queue.h"
#include "examples/mana/sim/scripted_rq.h"
#include "pagefrag/dma/coherent_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/rxbuf/kernel_policy.h"

namespace mana::testing {
namespace {

using pagefrag::CoherentDma;
using pagefrag::HeapProvider;

// Frame k (from 0): its sequence number k in the first four bytes, then
// byte i = (k + i) mod 251.
void fill(std::byte* va, std::uint32_t len, std::uint32_t seq) {
  std::memcpy(va, &seq, sizeof(seq));
  for (std::uint32_t i = sizeof(seq); i < len; ++i) va[i] = std::byte((seq + i) % 251);
}
// The frame's sequence number, or -1 when its bytes are not that frame's.
std::int64_t seq_of(const std::byte* va, std::uint32_t len) {
  std::uint32_t seq;
  std::memcpy(&seq, va, sizeof(seq));
  for (std::uint32_t i = sizeof(seq); i < len; ++i) {
    if (va[i] != std::byte((seq + i) % 251)) return -1;
  }
  return seq;
}

using Queue = ManaQueue<HeapProvider, CoherentDma, sim::ScriptedRqDevice>;

// One queue of rx_size buffers at MTU 1500 on 4 KiB pages (two buffers a
// page), its provider holding `spare_pages` pages beyond what the ring
// needs.
struct QueueRig {
  std::unique_ptr<HeapProvider> provider;
  CoherentDma dma;
  sim::ScriptedRqDevice device;
  QueueStats stats;
  PacketBatchSink sink;
  std::unique_ptr<Queue> queue;
  // What the sink saw: damaged counts payloads that are no frame's, and
  // frames out of order.
  std::int64_t last_seq = -1;
  std::uint64_t packets = 0, bytes = 0, truesize = 0, damaged = 0;

  QueueRig(std::uint32_t rx_size, std::size_t spare_pages) {
    const pagefrag::RxBufRequest req{.page_size = 4096, .mtu = 1500, .queue_size = rx_size};
    absl::StatusOr<pagefrag::RxBufCfg> cfg = pagefrag::KernelRxBufPolicy<>::configure(req);
    REQUIRE(cfg.ok());
    REQUIRE(cfg->frag_count == 2);
    absl::StatusOr<HeapProvider> p = HeapProvider::create(
        {.page_size = 4096, .max_order = 0, .capacity = (rx_size / 2 + spare_pages) * 4096});
    REQUIRE(p.ok());
    provider = std::make_unique<HeapProvider>(*std::move(p));
    sink = [this](std::span<const RxPacket> batch) {
      for (const RxPacket& pkt : batch) {
        const std::int64_t seq = seq_of(pkt.data, pkt.len);
        if (seq <= last_seq) ++damaged;
        last_seq = std::max(last_seq, seq);
        ++packets;
        bytes += pkt.len;
        truesize += pkt.truesize;
      }
    };
    Queue::Env env;
    env.provider = provider.get();
    env.dma = &dma;
    env.device = &device;
    env.batch_sink = &sink;
    absl::StatusOr<std::unique_ptr<Queue>> q =
        Queue::create(env, 0, QueueShape{.cfg = *cfg, .rx_size = rx_size, .tx_size = 64}, &stats);
    REQUIRE(q.ok());
    queue = *std::move(q);
  }

  // Polls until a poll finds nothing.
  void drain() {
    while (queue->poll(64) != 0) {
    }
  }
};

TEST_CASE("a run of completions that reaches the slot ring's end delivers every packet intact") {
  // 64 slots, a 128-entry CQ: the CQ's lap does not end where the slot
  // ring does, so only the slot ring's end can stop the run there.
  QueueRig r(64, 64);
  // 40 packets, then 60 more: slots 40..99 cross the end at 64 in a run.
  for (std::uint32_t n : {40u, 60u, 64u, 64u}) {
    REQUIRE(r.device.place(n, 200, fill) == n);
    r.drain();
  }
  const std::uint64_t sent = 40 + 60 + 64 + 64;
  CHECK(r.packets == sent);
  CHECK(r.last_seq + 1 == static_cast<std::int64_t>(sent));
  CHECK(r.damaged == 0);
  const QueueCounters c = r.stats.snapshot();
  CHECK(c.rx_packets == sent);
  CHECK(c.rx_bytes == sent * 200);
  CHECK(c.dropped() == 0);
  r.queue->release_rx();
  CHECK(r.queue->inflight() == 0);
}

TEST_CASE("a refill the pool cannot finish: only the packets it took are received and counted") {
  // The ring's 32 pages and 2 more: a poll of 32 packets needs 16 fresh
  // pages before the batch's old buffers go back, so the refill runs dry in
  // the middle of a run and the packets past it are dropped (kNoRefill).
  QueueRig r(64, 2);
  std::uint64_t placed = 0;
  for (int round = 0; round < 8; ++round) {
    placed += r.device.place(32, 300, fill);
    r.drain();
  }
  const QueueCounters c = r.stats.snapshot();
  const std::uint64_t dry = c.drops_for(DropReason::kNoRefill);
  CHECK(dry > 0);  // the case under test happened
  CHECK(r.packets + dry == placed);
  CHECK(r.damaged == 0);
  // The counters count exactly what the sink received.
  CHECK(c.rx_packets == r.packets);
  CHECK(c.rx_bytes == r.bytes);
  CHECK(c.rx_truesize == r.truesize);
  r.queue->release_rx();
  CHECK(r.queue->inflight() == 0);
}

}  // namespace
}  // namespace mana::testing
