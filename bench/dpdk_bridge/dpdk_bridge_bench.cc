// SPDX-License-Identifier: BSD-3-Clause
// bench/dpdk_bridge/dpdk_bridge_bench.cc: pagefrag's DPDK mbuf bridge against
// DPDK's own ways of handing RX buffers to applications (issue 15, item 4).
//
// Per packet, in bursts of 32, with 1024 packets live (a 1024-entry RX ring's
// worth, walked as the driver walks its ring: bench/live_window.h), every
// mbuf's first data cache line read once (the application's touch), and
// every mbuf header from a zero- or 2 KiB-data mempool with a 256-object
// per-lcore cache:
//
//   BM_BridgeExtbuf   pagefrag: FragmentAllocator::alloc_frag of the
//                     DpdkRxBufPolicy stride (MTU 1500) from 64 KiB blocks,
//                     MbufBridge::attach_bulk (one rte_pktmbuf_alloc_bulk of
//                     headers, rte_pktmbuf_attach_extbuf with the shared info
//                     in the fragment's tailroom), rte_pktmbuf_free_bulk (the
//                     bridge's callback returns each fragment on the owner
//                     lcore).
//   BM_MprqIdiom      DPDK's external-buffer idiom as mlx5's multi-packet RQ
//                     uses it (written here from its description, not its
//                     code): 64 KiB buffers from an rte_mempool (cache 256),
//                     each cut into strides of the same size; per packet one
//                     stride attached with rte_pktmbuf_attach_extbuf, its own
//                     rte_mbuf_ext_shared_info (an array in the buffer's
//                     header) with refcount 1, and a reference on the buffer
//                     (atomic); the shared info's callback drops that
//                     reference and the last one puts the buffer back.
//   BM_PktmbufBulk    plain rte_pktmbuf_alloc_bulk + rte_pktmbuf_free_bulk of
//                     2 KiB-data mbufs (RTE_MBUF_DEFAULT_BUF_SIZE).
//   BM_QueueBytes     no time: the memory one RX queue of 1024 buffers at
//                     MTU 1500 holds (counter queue_bytes): pagefrag's pool
//                     pages (4 KiB pages, DpdkRxBufPolicy, measured high water
//                     with 1024 fragments out) plus a 1024-header mempool,
//                     against a pktmbuf pool of 1024 2 KiB-data mbufs (each
//                     mempool: objects x (header + element + trailer)).
//
// EAL: once per process, --no-huge --no-pci, lcore 0 (the benchmark thread).
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bench/live_window.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/dma/premapped_region.h"
#include "pagefrag/dpdk/mbuf_bridge.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace {

using pagefrag::dpdk::DpdkRxBufPolicy;
using pagefrag::dpdk::ExtmemDma;
using pagefrag::dpdk::MbufBridge;
using Pool = pagefrag::PagePool<pagefrag::HeapProvider, ExtmemDma>;
using Alloc = pagefrag::FragmentAllocator<Pool>;

constexpr unsigned kBurst = 32;
constexpr unsigned kLive = 1024;
constexpr unsigned kCache = 256;
constexpr unsigned kHeaders = 4095;             // 2^n - 1, >= live + burst + cache
constexpr std::uint32_t kBufBytes = 64u << 10;  // one large buffer / pool block
constexpr std::uint32_t kBlockOrder = 4;        // 4 KiB << 4
constexpr std::uint32_t kMaxStrides = 64;       // strides of >= 1 KiB per buffer
constexpr std::uint32_t kQueueEntries = 1024;   // the memory comparison's RX queue
constexpr std::uint32_t kMtu = 1500;

const pagefrag::RxBufCfg& cfg() {
  static const pagefrag::RxBufCfg c = *DpdkRxBufPolicy::configure({.mtu = kMtu});
  return c;
}

std::string unique_name(const char* prefix) {
  static int counter = 0;
  return fmt::format("{}_{}", prefix, counter++);
}

// The application's touch: a read of the first data cache line.
PAGEFRAG_ALWAYS_INLINE void touch(const rte_mbuf* m, std::uint64_t& sum) {
  sum += *rte_pktmbuf_mtod(m, const volatile std::uint64_t*);
}

using Burst = std::array<rte_mbuf*, kBurst>;

// Walks the live window: per slot, a fresh burst from `rx`, each mbuf
// touched, then the slot's oldest burst freed in bulk.
template <class Rx>
void run_window(benchmark::State& state, Rx&& rx) {
  std::vector<Burst> window(kLive / kBurst);
  for (Burst& b : window) {
    if (!rx(b)) return state.SkipWithError("could not fill the live window");
  }
  std::uint64_t sum = 0;
  auto step = [&](Burst& slot) PAGEFRAG_BENCH_INLINE {
    Burst fresh;
    if (PAGEFRAG_UNLIKELY(!rx(fresh))) return state.SkipWithError("rx burst failed");
    for (rte_mbuf* m : fresh) touch(m, sum);
    rte_pktmbuf_free_bulk(slot.data(), kBurst);
    slot = fresh;
  };
  // Two laps untimed: every buffer the loop uses has been through its pool
  // once (steady state, as a running queue is), so a short timed run (e.g.
  // under callgrind) does not count first-touch set-up.
  for (int lap = 0; lap < 2; ++lap) {
    for (Burst& slot : window) step(slot);
  }
  pagefrag::bench::for_each_slot(state, window, step);
  for (Burst& b : window) rte_pktmbuf_free_bulk(b.data(), kBurst);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * kBurst);
}

// ---------------------------------------------------------------------------
// pagefrag through the bridge
// ---------------------------------------------------------------------------

struct BridgeRig {
  pagefrag::HeapProvider provider;
  ExtmemDma dma{4096};
  std::optional<pagefrag::PremappedRegion> region;
  Pool::Handle pool;
  std::optional<Alloc> alloc;
  rte_mempool* headers = nullptr;
  std::optional<MbufBridge<Pool>> bridge;

  BridgeRig(std::uint32_t order, std::size_t blocks)
      : provider(*pagefrag::HeapProvider::create(
            {.page_size = 4096, .max_order = order, .capacity = blocks * (4096u << order)})) {
    region.emplace(
        *pagefrag::PremappedRegion::create(dma, provider, pagefrag::DmaDirection::kFromDevice));
    pagefrag::PagePoolParams pp;
    pp.order = order;
    pp.pool_size = blocks;
    pp.premapped = true;
    pp.premapped_iova = region->base();
    pool = *Pool::create(provider, dma, pp);
    alloc.emplace(*Alloc::create(*pool));
    headers = *pagefrag::dpdk::make_header_pool(unique_name("br_hdr"), kHeaders, kCache);
    bridge.emplace(*MbufBridge<Pool>::create(*alloc, headers, cfg().alloc_size, cfg().headroom));
  }
  ~BridgeRig() {
    bridge.reset();
    alloc.reset();
    pool.reset();
    region.reset();
    rte_mempool_free(headers);
  }

  // One RX burst: 32 fragments (the driver's refill), attached in bulk.
  PAGEFRAG_ALWAYS_INLINE bool rx(Burst& out, std::uint16_t len) {
    std::array<pagefrag::Frag, kBurst> frags;
    std::array<std::uint16_t, kBurst> lens;
    const std::uint32_t size = cfg().alloc_size;
    for (unsigned i = 0; i < kBurst; ++i) {
      frags[i] = alloc->alloc_frag(size);
      lens[i] = len;
      if (PAGEFRAG_UNLIKELY(!frags[i])) return false;
    }
    return bridge->attach_bulk(frags.data(), lens.data(), out.data(), kBurst) == kBurst;
  }
};

void BM_BridgeExtbuf(benchmark::State& state) {
  BridgeRig rig(kBlockOrder, 256);
  const auto len = static_cast<std::uint16_t>(state.range(0));
  run_window(state, [&](Burst& b) PAGEFRAG_BENCH_INLINE { return rig.rx(b, len); });
}
BENCHMARK(BM_BridgeExtbuf)->ArgName("len")->Arg(1500);

// ---------------------------------------------------------------------------
// DPDK's MPRQ idiom: strides of a large buffer as external buffers
// ---------------------------------------------------------------------------

// One multi-packet buffer: its reference count (one per attached stride plus
// the driver's while it cuts strides), the shared info of each stride, then
// the data.
struct MprqBuf {
  std::atomic<std::uint32_t> refcnt;
  rte_mempool* mp;
  alignas(RTE_CACHE_LINE_SIZE) std::array<rte_mbuf_ext_shared_info, kMaxStrides> shinfo;
  alignas(RTE_CACHE_LINE_SIZE) std::byte data[kBufBytes];
};

void mprq_put_ref(MprqBuf* buf) {
  // The holder of the only reference skips the read-modify-write.
  if (buf->refcnt.load(std::memory_order_acquire) == 1 ||
      buf->refcnt.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    buf->refcnt.store(1, std::memory_order_relaxed);
    rte_mempool_put(buf->mp, buf);
  }
}

void mprq_free_cb(void* /*addr*/, void* opaque) { mprq_put_ref(static_cast<MprqBuf*>(opaque)); }

struct MprqRig {
  rte_mempool* bufs = nullptr;
  rte_mempool* headers = nullptr;
  MprqBuf* cur = nullptr;
  std::uint32_t stride = cfg().alloc_size;
  std::uint32_t strides = std::min(kMaxStrides, kBufBytes / cfg().alloc_size);
  std::uint32_t next = 0;

  MprqRig() {
    bufs = rte_mempool_create(unique_name("mprq_buf").c_str(), 511, sizeof(MprqBuf), kCache, 0,
                              nullptr, nullptr, nullptr, nullptr, SOCKET_ID_ANY, 0);
    headers = *pagefrag::dpdk::make_header_pool(unique_name("mprq_hdr"), kHeaders, kCache);
  }
  ~MprqRig() {
    if (cur != nullptr) mprq_put_ref(cur);
    rte_mempool_free(headers);
    rte_mempool_free(bufs);
  }
  bool ok() const { return bufs != nullptr && headers != nullptr; }

  // The next buffer once every stride of the current one is cut; the
  // driver's own reference on the old one is dropped then.
  PAGEFRAG_NOINLINE bool next_buffer() {
    if (cur != nullptr) mprq_put_ref(cur);
    void* obj = nullptr;
    if (rte_mempool_get(bufs, &obj) != 0) return false;
    cur = static_cast<MprqBuf*>(obj);
    cur->mp = bufs;
    cur->refcnt.store(1, std::memory_order_relaxed);
    next = 0;
    return true;
  }

  PAGEFRAG_ALWAYS_INLINE bool rx(Burst& out, std::uint16_t len) {
    if (PAGEFRAG_UNLIKELY(rte_pktmbuf_alloc_bulk(headers, out.data(), kBurst) != 0)) return false;
    for (rte_mbuf* m : out) {
      if (PAGEFRAG_UNLIKELY(cur == nullptr || next == strides) && !next_buffer()) return false;
      const std::uint32_t i = next++;
      rte_mbuf_ext_shared_info* sh = &cur->shinfo[i];
      sh->free_cb = &mprq_free_cb;
      sh->fcb_opaque = cur;
      rte_mbuf_ext_refcnt_set(sh, 1);
      cur->refcnt.fetch_add(1, std::memory_order_relaxed);
      std::byte* va = cur->data + std::size_t{i} * stride;
      rte_pktmbuf_attach_extbuf(
          m, va, rte_mempool_virt2iova(cur) + (va - reinterpret_cast<std::byte*>(cur)),
          static_cast<std::uint16_t>(stride), sh);
      m->data_off = static_cast<std::uint16_t>(cfg().headroom);
      m->data_len = len;
      m->pkt_len = len;
    }
    return true;
  }
};

void BM_MprqIdiom(benchmark::State& state) {
  MprqRig rig;
  if (!rig.ok()) return state.SkipWithError("MPRQ mempools could not be created");
  const auto len = static_cast<std::uint16_t>(state.range(0));
  run_window(state, [&](Burst& b) PAGEFRAG_BENCH_INLINE { return rig.rx(b, len); });
}
BENCHMARK(BM_MprqIdiom)->ArgName("len")->Arg(1500);

// ---------------------------------------------------------------------------
// Plain pktmbufs: 2 KiB of data room each
// ---------------------------------------------------------------------------

void BM_PktmbufBulk(benchmark::State& state) {
  rte_mempool* mp = rte_pktmbuf_pool_create(unique_name("pkt").c_str(), kHeaders, kCache, 0,
                                            RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (mp == nullptr) return state.SkipWithError("rte_pktmbuf_pool_create failed");
  const auto len = static_cast<std::uint16_t>(state.range(0));
  run_window(state, [&](Burst& b) PAGEFRAG_BENCH_INLINE {
    if (PAGEFRAG_UNLIKELY(rte_pktmbuf_alloc_bulk(mp, b.data(), kBurst) != 0)) return false;
    for (rte_mbuf* m : b) {
      m->data_len = len;
      m->pkt_len = len;
    }
    return true;
  });
  rte_mempool_free(mp);
}
BENCHMARK(BM_PktmbufBulk)->ArgName("len")->Arg(1500);

// ---------------------------------------------------------------------------
// Memory per RX queue of 1024 at MTU 1500
// ---------------------------------------------------------------------------

// Bytes a mempool's objects take as DPDK lays them out back to back in
// hugepage memory: (header + element + trailer) per object. (Under
// --no-huge DPDK also keeps each object inside one 4 KiB page, which would
// charge a 2 KiB-data mbuf a whole page: not what a hugepage-backed PMD
// pays, so that padding is not counted.)
std::size_t mempool_bytes(const rte_mempool* mp) {
  return std::size_t{mp->populated_size} * (mp->header_size + mp->elt_size + mp->trailer_size);
}

// Arg 0: pagefrag (4 KiB pages, the policy's own sizing) + its headers.
// Arg 1: a 2 KiB-data pktmbuf pool of as many mbufs.
void BM_QueueBytes(benchmark::State& state) {
  std::size_t bytes = 0;
  if (state.range(0) == 0) {
    const pagefrag::RxBufCfg& c = cfg();
    BridgeRig rig(c.order, c.pool_size(kQueueEntries));
    std::vector<pagefrag::Frag> posted;
    for (std::uint32_t i = 0; i < kQueueEntries; ++i) {
      posted.push_back(rig.alloc->alloc_frag(c.alloc_size));
      if (!posted.back()) return state.SkipWithError("the queue's pool ran out");
    }
    rte_mempool* hdrs = rte_pktmbuf_pool_create(unique_name("q_hdr").c_str(), kQueueEntries, kCache,
                                                0, 0, SOCKET_ID_ANY);
    if (hdrs == nullptr) return state.SkipWithError("header pool");
    bytes = rig.pool->held_bytes_high_water() + mempool_bytes(hdrs);
    rte_mempool_free(hdrs);
    for (const pagefrag::Frag& f : posted) rig.alloc->free_frag(f.page);
  } else {
    rte_mempool* mp = rte_pktmbuf_pool_create(unique_name("q_pkt").c_str(), kQueueEntries, kCache,
                                              0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (mp == nullptr) return state.SkipWithError("pktmbuf pool");
    bytes = mempool_bytes(mp);
    rte_mempool_free(mp);
  }
  for (auto _ : state) benchmark::DoNotOptimize(bytes);
  state.counters["queue_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_QueueBytes)->ArgName("dpdk")->Arg(0)->Arg(1)->Iterations(1);

int init_eal() {
  std::array<const char*, 10> args = {
      "dpdk_bridge_bench", "-l", "0",   "--no-huge",         "--no-pci",
      "--no-telemetry",    "-m", "512", "--log-level=error", "--no-shconf"};
  return rte_eal_init(static_cast<int>(args.size()), const_cast<char**>(args.data()));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (init_eal() < 0) {
    std::fputs(fmt::format("dpdk_bridge_bench: rte_eal_init(--no-huge --no-pci -l 0) failed: "
                           "{}\n",
                           rte_strerror(rte_errno))
                   .c_str(),
               stderr);
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
