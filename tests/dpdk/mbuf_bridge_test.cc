// SPDX-License-Identifier: BSD-3-Clause
// The DPDK mbuf bridge under a real EAL (--no-huge --no-pci, lcores 0-1):
// fragments attached as extbufs, freed on the owner and on lcore 1, clones
// freed in any order, chains, the header mempool and the pool's in-flight
// count back to where they started (every fragment returned exactly once:
// twice would abort in the allocator, never would leave pages in flight).
#include <rte_config.h>
// (rte_config.h first, as pkg-config's -include does)
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#include "pagefrag/dma/premapped_region.h"
#include "pagefrag/dpdk/mbuf_bridge.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace {

using pagefrag::Frag;
using pagefrag::dpdk::DpdkRxBufPolicy;
using pagefrag::dpdk::ExtmemDma;
using pagefrag::dpdk::MbufBridge;
using Pool = pagefrag::PagePool<pagefrag::HeapProvider, ExtmemDma>;
using Alloc = pagefrag::FragmentAllocator<Pool>;

constexpr unsigned kWorker = 1;

// One RX queue on the bridge: provider registered with DPDK through
// ExtmemDma (whole region, once), a premapped pool, the allocator, a header
// mempool and the bridge.
struct Queue {
  pagefrag::RxBufCfg cfg;
  pagefrag::HeapProvider provider;
  ExtmemDma dma{4096};
  std::optional<pagefrag::PremappedRegion> region;
  Pool::Handle pool;
  std::optional<Alloc> alloc;
  rte_mempool* headers = nullptr;
  std::optional<MbufBridge<Pool>> bridge;
  unsigned headers_at_start = 0;

  explicit Queue(std::uint32_t mtu, std::size_t pool_size)
      : cfg(*DpdkRxBufPolicy::configure({.mtu = mtu})),
        provider(*pagefrag::HeapProvider::create(
            {.page_size = 4096, .max_order = 4, .capacity = pool_size * (4096u << 4)})) {
    region.emplace(
        *pagefrag::PremappedRegion::create(dma, provider, pagefrag::DmaDirection::kFromDevice));
    pagefrag::PagePoolParams pp;
    pp.order = cfg.order;
    pp.pool_size = pool_size;
    pp.premapped = true;
    pp.premapped_iova = region->base();
    pool = *Pool::create(provider, dma, pp);
    alloc.emplace(*Alloc::create(*pool));
    static int n = 0;
    headers = *pagefrag::dpdk::make_header_pool("pf_hdr" + std::to_string(n++), 2047, 256);
    bridge.emplace(*MbufBridge<Pool>::create(*alloc, headers, cfg.alloc_size, cfg.headroom));
    headers_at_start = rte_mempool_avail_count(headers);
  }
  ~Queue() {
    bridge.reset();
    alloc.reset();
    pool.reset();
    region.reset();
    rte_mempool_free(headers);
  }

  // Allocator gone: the pages left in flight (0 when every fragment came
  // home exactly once).
  std::int64_t inflight_after_allocator() {
    alloc->reclaim();
    alloc.reset();
    return pool->handed_out();
  }

  Frag rx(std::uint32_t len, std::uint8_t seed) {
    Frag f = alloc->alloc_frag(cfg.alloc_size);
    REQUIRE(f);
    auto* p = reinterpret_cast<std::uint8_t*>(f.va) + cfg.headroom;
    for (std::uint32_t i = 0; i < len; ++i) p[i] = static_cast<std::uint8_t>(seed + i);
    return f;
  }
};

bool payload_ok(const rte_mbuf* m, std::uint8_t seed) {
  std::vector<std::uint8_t> buf(m->pkt_len);
  const auto* p = static_cast<const std::uint8_t*>(rte_pktmbuf_read(m, 0, m->pkt_len, buf.data()));
  for (std::uint32_t i = 0; i < m->pkt_len; ++i) {
    if (p[i] != static_cast<std::uint8_t>(seed + i)) return false;
  }
  return true;
}

struct FreeJob {
  std::vector<rte_mbuf*> mbufs;
  unsigned lcore = 0;
};

int free_on_worker(void* arg) {
  auto* job = static_cast<FreeJob*>(arg);
  job->lcore = rte_lcore_id();
  rte_pktmbuf_free_bulk(job->mbufs.data(), static_cast<unsigned>(job->mbufs.size()));
  return 0;
}

void run_on_worker(FreeJob& job) {
  REQUIRE(rte_eal_remote_launch(free_on_worker, &job, kWorker) == 0);
  REQUIRE(rte_eal_wait_lcore(kWorker) == 0);
  CHECK(job.lcore == kWorker);
}

TEST_CASE("the DPDK policy reserves the trailer after the data") {
  for (std::uint32_t mtu : {1500u, 4000u, 9000u}) {
    const pagefrag::RxBufCfg cfg = *DpdkRxBufPolicy::configure({.mtu = mtu});
    CHECK(cfg.alloc_size >= cfg.headroom + cfg.datasize + pagefrag::dpdk::kTrailerBytes);
    CHECK(pagefrag::dpdk::kTrailerBytes % RTE_CACHE_LINE_SIZE == 0);
    CHECK(pagefrag::dpdk::kTrailerBytes >= sizeof(rte_mbuf_ext_shared_info));
  }
}

TEST_CASE("ExtmemDma makes the region known to DPDK, once") {
  Queue q(1500, 8);
  const auto region = q.provider.region();
  CHECK(rte_mem_virt2memseg_list(region.data()) != nullptr);
  CHECK(q.region->base().value() == reinterpret_cast<std::uintptr_t>(region.data()));
  // A second registration of the same memory is refused.
  CHECK_FALSE(q.dma.map(region, pagefrag::DmaDirection::kFromDevice).ok());
  CHECK_FALSE(q.dma.map(region.subspan(1, 4096), pagefrag::DmaDirection::kFromDevice).ok());
}

TEST_CASE("attach and free on the owner lcore: the owner fast path") {
  Queue q(1500, 16);
  for (int round = 0; round < 20; ++round) {
    constexpr std::size_t kBurst = 32;
    std::array<Frag, kBurst> frags;
    std::array<std::uint16_t, kBurst> lens;
    for (std::size_t i = 0; i < kBurst; ++i) {
      lens[i] = static_cast<std::uint16_t>(60 + (i * 41) % 1400);
      frags[i] = q.rx(lens[i], static_cast<std::uint8_t>(i));
    }
    std::array<rte_mbuf*, kBurst> m;
    REQUIRE(q.bridge->attach_bulk(frags.data(), lens.data(), m.data(), kBurst) == kBurst);
    for (std::size_t i = 0; i < kBurst; ++i) {
      CHECK(m[i]->pkt_len == lens[i]);
      CHECK(rte_pktmbuf_mtod(m[i], std::byte*) == frags[i].va + q.cfg.headroom);
      CHECK(rte_pktmbuf_iova(m[i]) == frags[i].iova.value() + q.cfg.headroom);
      CHECK(RTE_MBUF_HAS_EXTBUF(m[i]));
      CHECK(payload_ok(m[i], static_cast<std::uint8_t>(i)));
    }
    rte_pktmbuf_free_bulk(m.data(), kBurst);
  }
  CHECK(q.bridge->owner_frees() == 20 * 32);
  CHECK(rte_mempool_avail_count(q.headers) == q.headers_at_start);
  CHECK(q.inflight_after_allocator() == 0);
}

TEST_CASE("clones and originals freed in any order on another lcore") {
  Queue q(1500, 64);
  std::mt19937 rng(7);
  for (int round = 0; round < 10; ++round) {
    FreeJob job;
    std::vector<rte_mbuf*> owner_side;
    for (std::size_t i = 0; i < 64; ++i) {
      const auto len = static_cast<std::uint16_t>(64 + i * 13);
      const Frag f = q.rx(len, static_cast<std::uint8_t>(round + i));
      rte_mbuf* m = q.bridge->attach(f, len);
      REQUIRE(m != nullptr);
      CHECK(payload_ok(m, static_cast<std::uint8_t>(round + i)));
      // A third of them cloned (twice for some); clones share the fragment.
      if (i % 3 == 0) {
        rte_mbuf* c = rte_pktmbuf_clone(m, q.headers);
        REQUIRE(c != nullptr);
        CHECK(rte_pktmbuf_mtod(c, void*) == rte_pktmbuf_mtod(m, void*));
        CHECK(payload_ok(c, static_cast<std::uint8_t>(round + i)));
        (i % 2 == 0 ? owner_side : job.mbufs).push_back(c);
        if (i % 9 == 0) job.mbufs.push_back(rte_pktmbuf_clone(c, q.headers));
      }
      job.mbufs.push_back(m);
    }
    std::shuffle(job.mbufs.begin(), job.mbufs.end(), rng);
    // Some clones die on the owner first, the rest (and every original) on
    // lcore 1, in random order; then the owner's rest.
    const std::size_t half = owner_side.size() / 2;
    rte_pktmbuf_free_bulk(owner_side.data(), static_cast<unsigned>(half));
    run_on_worker(job);
    rte_pktmbuf_free_bulk(owner_side.data() + half,
                          static_cast<unsigned>(owner_side.size() - half));
    q.alloc->reclaim();
  }
  CHECK(rte_mempool_avail_count(q.headers) == q.headers_at_start);
  CHECK(q.inflight_after_allocator() == 0);
}

TEST_CASE("a jumbo frame is a chain over several fragments") {
  Queue q(1500, 16);
  for (int round = 0; round < 8; ++round) {
    // 9000 bytes over fragments of at most buf_len - headroom bytes.
    const std::uint32_t seg = q.bridge->buf_len() - q.cfg.headroom;
    const std::uint32_t total = 9000;
    std::vector<Frag> frags;
    std::vector<std::uint16_t> lens;
    for (std::uint32_t off = 0; off < total; off += seg) {
      const std::uint32_t len = std::min(seg, total - off);
      frags.push_back(q.rx(len, static_cast<std::uint8_t>(round + off)));
      lens.push_back(static_cast<std::uint16_t>(len));
    }
    rte_mbuf* head = q.bridge->attach_chain(frags.data(), lens.data(), frags.size());
    REQUIRE(head != nullptr);
    CHECK(head->nb_segs == frags.size());
    CHECK(head->pkt_len == total);
    CHECK(rte_pktmbuf_is_contiguous(head) == 0);
    CHECK(payload_ok(head, static_cast<std::uint8_t>(round)));
    rte_mbuf* clone = rte_pktmbuf_clone(head, q.headers);
    REQUIRE(clone != nullptr);
    CHECK(clone->pkt_len == total);
    FreeJob job;
    job.mbufs.push_back(round % 2 == 0 ? head : clone);
    run_on_worker(job);
    rte_pktmbuf_free(round % 2 == 0 ? clone : head);
  }
  CHECK(rte_mempool_avail_count(q.headers) == q.headers_at_start);
  CHECK(q.inflight_after_allocator() == 0);
}

TEST_CASE("a chain that finds too few headers attaches nothing and returns them all") {
  Queue q(1500, 16);
  // A header pool of 4 (no cache, so the count is exact) for a chain of 6.
  rte_mempool* few = *pagefrag::dpdk::make_header_pool("pf_hdr_few", 4, 0);
  auto bridge = MbufBridge<Pool>::create(*q.alloc, few, q.cfg.alloc_size, q.cfg.headroom);
  REQUIRE(bridge.ok());
  std::vector<Frag> frags;
  std::vector<std::uint16_t> lens;
  for (int i = 0; i < 6; ++i) {
    frags.push_back(q.rx(100, static_cast<std::uint8_t>(i)));
    lens.push_back(100);
  }
  CHECK(bridge->attach_chain(frags.data(), lens.data(), frags.size()) == nullptr);
  CHECK(rte_mempool_avail_count(few) == 4);
  CHECK(bridge->owner_frees() == 0);  // no fragment went back through a callback
  // The fragments are still the caller's: four fit now.
  rte_mbuf* head = bridge->attach_chain(frags.data(), lens.data(), 4);
  REQUIRE(head != nullptr);
  CHECK(head->nb_segs == 4);
  CHECK(head->pkt_len == 400);
  CHECK(rte_mempool_avail_count(few) == 0);
  rte_pktmbuf_free(head);
  CHECK(bridge->owner_frees() == 4);
  CHECK(rte_mempool_avail_count(few) == 4);
  q.alloc->free_frag(frags[4].page);
  q.alloc->free_frag(frags[5].page);
  CHECK(q.inflight_after_allocator() == 0);
  rte_mempool_free(few);
}

TEST_CASE("bad bridge parameters are refused") {
  Queue q(1500, 4);
  CHECK_FALSE(MbufBridge<Pool>::create(*q.alloc, nullptr, q.cfg.alloc_size, 0).ok());
  CHECK_FALSE(MbufBridge<Pool>::create(*q.alloc, q.headers, 64, 0).ok());
  CHECK_FALSE(MbufBridge<Pool>::create(*q.alloc, q.headers, 1000, 0).ok());
  CHECK_FALSE(MbufBridge<Pool>::create(*q.alloc, q.headers, 1u << 17, 0).ok());
  // headroom + the trailer would wrap a 32-bit sum to a small value.
  CHECK_FALSE(MbufBridge<Pool>::create(*q.alloc, q.headers, q.cfg.alloc_size, 0xFFFFFFC0u).ok());
  CHECK_FALSE(
      MbufBridge<Pool>::create(*q.alloc, q.headers, q.cfg.alloc_size, q.cfg.alloc_size).ok());
}

TEST_CASE("a bridge is refused on a thread with no lcore id") {
  Queue q(1500, 4);
  absl::Status st;
  std::thread t([&] {  // a plain thread: rte_lcore_id() is LCORE_ID_ANY
    st = MbufBridge<Pool>::create(*q.alloc, q.headers, q.cfg.alloc_size, q.cfg.headroom).status();
  });
  t.join();
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(st.message().find("rte_thread_register") != std::string_view::npos);
}

}  // namespace

int main(int argc, char** argv) {
  std::array<const char*, 10> args = {
      "mbuf_bridge_test", "-l", "0-1", "--no-huge",         "--no-pci",
      "--no-telemetry",   "-m", "256", "--log-level=error", "--no-shconf"};
  if (rte_eal_init(static_cast<int>(args.size()), const_cast<char**>(args.data())) < 0) {
    std::fputs("mbuf_bridge_test: rte_eal_init(--no-huge --no-pci -l 0-1) failed\n", stderr);
    return 1;
  }
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  rte_eal_cleanup();
  return rc;
}
