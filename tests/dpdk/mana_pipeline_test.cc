// SPDX-License-Identifier: BSD-3-Clause
// A DPDK pipeline on pagefrag buffers (issue 15, item 3), under a real EAL
// (--no-huge --no-pci, lcores 0-1):
//
//   lcore 0: the simulated MANA device receives generated frames
//            (examples/mana/frame.h); the MANA reference driver polls them;
//            its batch sink, the PMD glue, hands each packet up as an
//            rte_mbuf through pagefrag::dpdk::MbufBridge and enqueues the
//            burst on an rte_ring:
//              - a packet that fits one 2 KiB DPDK segment is lent without
//                a copy (attach_ref(): the mbuf holds a reference on the
//                driver's own fragment, returned from lcore 1);
//              - a jumbo frame (phase 2, MTU 9000) is handed up as a chain
//                over the bridge's own 2 KiB fragments (attach_chain()), as
//                a scatter-RX PMD presents it.
//   lcore 1: the application dequeues bursts, reads every payload byte
//            (rte_pktmbuf_read; the frame oracle checks all of them),
//            clones a share (rte_pktmbuf_clone) and reads the clone too, and
//            frees originals and clones with rte_pktmbuf_free_bulk.
//
// At the end: 0 corrupt frames, every delivered frame seen exactly once, the
// header mempool full again, both pools with 0 pages in flight, the driver's
// pools destroyed with nothing in flight, every provider block released and
// no DMA mapping left.
#include <rte_config.h>
// (rte_config.h first, as pkg-config's -include does)
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <vector>

// queue.h names pagefrag::MockDma without including it: include it first.
// clang-format off
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/dma/premapped_region.h"
#include "pagefrag/dpdk/mbuf_bridge.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"
#include "examples/mana/frame.h"
#include "examples/mana/port.h"
#include "examples/mana/sim/sim_device.h"
// clang-format on

namespace {

using pagefrag::Frag;
using pagefrag::HeapProvider;
using pagefrag::MockDma;
using pagefrag::dpdk::DpdkRxBufPolicy;
using pagefrag::dpdk::ExtmemDma;
using pagefrag::dpdk::kTrailerBytes;
using pagefrag::dpdk::MbufBridge;

using Device = mana::sim::SimDevice<MockDma>;
using Port = mana::ManaPort<HeapProvider, MockDma, Device>;
using ManaPool = Port::Queue::Pool;
using OwnPool = pagefrag::PagePool<HeapProvider, ExtmemDma>;
using OwnAlloc = pagefrag::FragmentAllocator<OwnPool>;

constexpr unsigned kApp = 1;
constexpr std::uint64_t kSeed = 0x15;
constexpr unsigned kBurst = 32;
// Packets the glue lets be out (in the ring or in the application) before
// it polls again: the driver's pool is sized for its ring only (the
// kernel's pool_size), so a lagging application starves its refill.
constexpr std::uint64_t kWindow = 48;

// ---- the application, on lcore 1 ----

struct App {
  rte_ring* ring = nullptr;
  rte_mempool* clones = nullptr;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0};  // packets freed (originals)
  // Written by lcore 1 only, read by lcore 0 after rte_eal_wait_lcore.
  std::vector<std::uint8_t> seen;  // per sequence number
  std::uint64_t ok = 0, corrupt = 0, out_of_range = 0, cloned = 0, clone_fail = 0;
  std::uint64_t chains = 0, segments = 0, bytes = 0;
  unsigned lcore = 0;

  bool read_ok(const rte_mbuf* m, std::vector<std::byte>& scratch, std::uint64_t* seq) {
    scratch.resize(m->pkt_len);
    const auto* p =
        static_cast<const std::byte*>(rte_pktmbuf_read(m, 0, m->pkt_len, scratch.data()));
    return p != nullptr && mana::frame::frame_ok(p, m->pkt_len, kSeed, seq);
  }

  void consume(rte_mbuf** m, unsigned n, std::vector<std::byte>& scratch) {
    std::array<rte_mbuf*, 2 * kBurst> frees;
    unsigned k = 0;
    for (unsigned i = 0; i < n; ++i) {
      std::uint64_t seq = 0;
      if (!read_ok(m[i], scratch, &seq)) {
        ++corrupt;
      } else if (seq >= seen.size()) {
        ++out_of_range;
      } else {
        ++ok;
        ++seen[seq];
      }
      bytes += m[i]->pkt_len;
      segments += m[i]->nb_segs;
      chains += m[i]->nb_segs > 1 ? 1 : 0;
      // A third are cloned; the clone is read like the original.
      if ((seq + i) % 3 == 0) {
        rte_mbuf* c = rte_pktmbuf_clone(m[i], clones);
        if (c == nullptr) {
          ++clone_fail;
        } else {
          ++cloned;
          std::uint64_t cseq = 0;
          if (!read_ok(c, scratch, &cseq) || cseq != seq) ++corrupt;
          // Half the clones die before their original, half after.
          if (i % 2 == 0) {
            frees[k++] = c;
            frees[k++] = m[i];
            continue;
          }
          frees[k++] = m[i];
          frees[k++] = c;
          continue;
        }
      }
      frees[k++] = m[i];
    }
    rte_pktmbuf_free_bulk(frees.data(), k);
    done.fetch_add(n, std::memory_order_release);
  }

  static int main(void* arg) {
    auto* app = static_cast<App*>(arg);
    app->lcore = rte_lcore_id();
    std::vector<std::byte> scratch(16384);
    std::array<rte_mbuf*, kBurst> m;
    for (;;) {
      const bool last = app->stop.load(std::memory_order_acquire);
      const unsigned n =
          rte_ring_dequeue_burst(app->ring, reinterpret_cast<void**>(m.data()), kBurst, nullptr);
      if (n != 0) {
        app->consume(m.data(), n, scratch);
      } else if (last) {
        return 0;  // stop was set before this empty dequeue: nothing more comes
      }
    }
  }
};

// ---- the PMD glue, on lcore 0 ----

// The bridge's own pool (for chains): a provider registered with DPDK once
// through ExtmemDma, a premapped pool, its allocator, and the bridge, which
// also lends the driver's fragments (attach_ref).
struct Glue {
  pagefrag::RxBufCfg cfg = *DpdkRxBufPolicy::configure({.mtu = 1500});
  HeapProvider provider = *HeapProvider::create(
      {.page_size = 4096, .max_order = 0, .capacity = std::size_t{4096} * 1024});
  ExtmemDma dma{4096};
  std::optional<pagefrag::PremappedRegion> region;
  OwnPool::Handle pool;
  std::optional<OwnAlloc> alloc;
  rte_mempool* headers = nullptr;
  std::optional<MbufBridge<OwnPool>> bridge;
  App* app = nullptr;
  Port* port = nullptr;
  HeapProvider* mana_provider = nullptr;

  std::uint64_t delivered = 0, lent = 0, chained = 0, no_mbuf = 0;

  Glue() {
    region.emplace(
        *pagefrag::PremappedRegion::create(dma, provider, pagefrag::DmaDirection::kFromDevice));
    pagefrag::PagePoolParams pp;
    pp.order = cfg.order;
    pp.pool_size = 1024;
    pp.premapped = true;
    pp.premapped_iova = region->base();
    pool = *OwnPool::create(provider, dma, pp);
    alloc.emplace(*OwnAlloc::create(*pool));
    headers = *pagefrag::dpdk::make_header_pool("pipe_hdr", 16383, 256);
    bridge.emplace(*MbufBridge<OwnPool>::create(*alloc, headers, cfg.alloc_size, cfg.headroom));
  }

  // Bytes one segment of the bridge's own fragments carries.
  std::uint32_t seg_bytes() const { return bridge->buf_len() - cfg.headroom; }

  // The driver's fragment lent as one segment (no copy).
  rte_mbuf* lend(const mana::RxPacket& p) {
    const std::uint32_t headroom = port->rxbuf_cfg().headroom;
    auto* buf = const_cast<std::byte*>(p.data) - headroom;
    pagefrag::Page* page = mana_provider->page_of(buf);
    REQUIRE(page != nullptr);
    const auto buf_len = static_cast<std::uint16_t>(port->rxbuf_cfg().alloc_size - kTrailerBytes);
    return bridge->attach_ref<ManaPool>(page, buf, buf_len, static_cast<std::uint16_t>(headroom),
                                        static_cast<std::uint16_t>(p.len));
  }

  // A jumbo frame copied into a chain over the bridge's own fragments.
  rte_mbuf* chain(const mana::RxPacket& p) {
    std::array<Frag, RTE_MBUF_MAX_NB_SEGS> frags;
    std::array<std::uint16_t, RTE_MBUF_MAX_NB_SEGS> lens;
    std::size_t n = 0;
    for (std::uint32_t off = 0; off < p.len; off += seg_bytes(), ++n) {
      REQUIRE(n < frags.size());
      frags[n] = alloc->alloc_frag(cfg.alloc_size);
      REQUIRE(frags[n]);
      lens[n] = static_cast<std::uint16_t>(std::min(seg_bytes(), p.len - off));
      std::memcpy(frags[n].va + cfg.headroom, p.data + off, lens[n]);
    }
    rte_mbuf* head = bridge->attach_chain(frags.data(), lens.data(), n);
    if (head == nullptr) {
      for (std::size_t i = 0; i < n; ++i) alloc->free_frag(frags[i].page);
    }
    return head;
  }

  // The driver's batch sink: one burst of mbufs per poll, onto the ring.
  void deliver(std::span<const mana::RxPacket> pkts) {
    std::array<rte_mbuf*, mana::kRxBatch> out;
    unsigned n = 0;
    for (const mana::RxPacket& p : pkts) {
      const bool jumbo = p.len > seg_bytes();
      rte_mbuf* m = jumbo ? chain(p) : lend(p);
      if (m == nullptr) {
        ++no_mbuf;
        continue;
      }
      (jumbo ? chained : lent) += 1;
      out[n++] = m;
    }
    for (unsigned sent = 0; sent < n;) {
      sent += rte_ring_enqueue_burst(app->ring, reinterpret_cast<void**>(out.data() + sent),
                                     n - sent, nullptr);
    }
    delivered += n;
  }

  // Waits until at most `window` delivered packets are still out.
  void wait_for_app(std::uint64_t window) const {
    while (delivered - app->done.load(std::memory_order_acquire) > window) rte_pause();
  }
};

std::uint32_t frame_len(std::uint64_t seq, std::uint32_t max) {
  // Small, mid-size and full frames, deterministic in seq.
  return 60 + static_cast<std::uint32_t>((seq * 7919) % (max - 59));
}

TEST_CASE("MANA -> bridge -> rte_ring -> application on lcore 1: every byte, clones, chains") {
  constexpr std::uint64_t kPhase1 = 20000;  // MTU 1500: fragments lent, no copy
  constexpr std::uint64_t kPhase2 = 4000;   // MTU 9000: jumbo frames as chains
  constexpr std::uint64_t kTotal = kPhase1 + kPhase2;

  App app;
  app.seen.assign(kTotal, 0);
  app.ring = rte_ring_create("pipe_ring", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  REQUIRE(app.ring != nullptr);

  Glue glue;
  app.clones = glue.headers;
  const unsigned headers_at_start = rte_mempool_avail_count(glue.headers);

  HeapProvider mana_provider =
      *HeapProvider::create({.page_size = 4096, .max_order = 4, .capacity = std::size_t{64} << 20});
  MockDma mana_dma(pagefrag::MockDmaOptions{.mode = pagefrag::MockDmaMode::kStrict});
  Device dev(mana_dma, mana::sim::SimDeviceOptions{});
  mana::ManaPortOptions po;
  po.num_queues = 1;
  po.rx_queue_size = 256;
  po.tx_queue_size = 64;
  po.mtu = 1500;
  po.threaded = false;
  po.budget = kBurst;
  // The PMD's policy: the kernel's rules with the bridge's trailer reserved.
  po.policy = &DpdkRxBufPolicy::configure;
  po.batch_sink = [&glue](std::span<const mana::RxPacket> pkts) { glue.deliver(pkts); };
  std::unique_ptr<Port> port = *Port::create(mana_provider, mana_dma, dev, po);
  glue.app = &app;
  glue.port = port.get();
  glue.mana_provider = &mana_provider;
  REQUIRE(port->attach().ok());

  REQUIRE(rte_eal_remote_launch(&App::main, &app, kApp) == 0);

  std::uint64_t offered = 0, not_placed = 0;
  auto run = [&](std::uint64_t first, std::uint64_t n, std::uint32_t max_len) {
    std::vector<std::byte> frame;
    for (std::uint64_t seq = first; seq < first + n; ++seq) {
      frame.resize(frame_len(seq, max_len));
      mana::frame::write_frame(frame, kSeed, seq);
      ++offered;
      if (dev.offer_rx(0, frame, static_cast<std::uint32_t>(seq)) !=
          mana::sim::OfferResult::kPlaced) {
        ++not_placed;
      }
      if (seq % kBurst == kBurst - 1 || seq + 1 == first + n) {
        dev.flush_rx(0);
        while (port->poll(0, kBurst) != 0) glue.wait_for_app(kWindow);
        glue.wait_for_app(kWindow);
      }
    }
    glue.wait_for_app(0);
  };
  run(0, kPhase1, 1500);
  REQUIRE(port->set_mtu(9000).ok());
  run(kPhase1, kPhase2, 9000);

  app.stop.store(true, std::memory_order_release);
  REQUIRE(rte_eal_wait_lcore(kApp) == 0);
  CHECK(app.lcore == kApp);

  const mana::PortTotals t = port->totals();
  MESSAGE("offered ", offered, ", not placed ", not_placed, ", driver rx ", t.rx_packets,
          " dropped ", t.dropped(), "; lent ", glue.lent, ", chained ", glue.chained, ", no mbuf ",
          glue.no_mbuf, "; app ok ", app.ok, ", corrupt ", app.corrupt, ", cloned ", app.cloned,
          ", segments ", app.segments);

  // Every frame accounted for, every delivered one intact and seen once.
  CHECK(app.corrupt == 0);
  CHECK(app.out_of_range == 0);
  CHECK(app.clone_fail == 0);
  CHECK(glue.no_mbuf == 0);
  CHECK(offered == kTotal);
  CHECK(t.rx_packets + t.dropped() + not_placed == offered);
  CHECK(glue.delivered == t.rx_packets);
  CHECK(app.ok == glue.delivered);
  CHECK(std::count(app.seen.begin(), app.seen.end(), 0) ==
        static_cast<std::ptrdiff_t>(offered - app.ok));
  CHECK(std::count_if(app.seen.begin(), app.seen.end(), [](std::uint8_t s) { return s > 1; }) == 0);
  // The pipeline really ran: most frames delivered, lent and chained ones,
  // clones, multi-segment chains.
  CHECK(app.ok >= kTotal * 9 / 10);
  CHECK(glue.lent > kPhase1 / 2);
  CHECK(glue.chained > kPhase2 / 2);
  CHECK(app.chains == glue.chained);
  CHECK(app.segments > app.ok);
  CHECK(app.cloned > app.ok / 4);

  // Nothing leaked: mbufs, the bridge's fragments and pages, the driver's.
  CHECK(rte_mempool_avail_count(glue.headers) == headers_at_start);
  glue.alloc->reclaim();
  glue.alloc.reset();
  CHECK(glue.pool->handed_out() == 0);
  CHECK(port->detach().ok());
  CHECK(port->inflight_at_destroy() == 0);
  port.reset();
  CHECK(mana_provider.allocated_blocks() == 0);
  CHECK(mana_dma.live_mappings() == 0);

  glue.bridge.reset();
  glue.pool.reset();
  CHECK(glue.provider.allocated_blocks() == 0);
  glue.region.reset();
  rte_mempool_free(glue.headers);
  rte_ring_free(app.ring);
}

}  // namespace

int main(int argc, char** argv) {
  std::array<const char*, 10> args = {
      "mana_pipeline_test", "-l", "0-1", "--no-huge",         "--no-pci",
      "--no-telemetry",     "-m", "256", "--log-level=error", "--no-shconf"};
  if (rte_eal_init(static_cast<int>(args.size()), const_cast<char**>(args.data())) < 0) {
    std::fputs("mana_pipeline_test: rte_eal_init(--no-huge --no-pci -l 0-1) failed\n", stderr);
    return 1;
  }
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  rte_eal_cleanup();
  return rc;
}
