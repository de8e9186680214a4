// SPDX-License-Identifier: BSD-3-Clause
// bench/dpdk_baseline.cc: DPDK 22.11 mempool, mbuf and ring baselines.
//
// The figures pagefrag's allocator is held to: rte_mempool get/put through a
// 256-object per-lcore cache, get_bulk/put_bulk of 32, rte_pktmbuf_alloc/free
// and their bulk forms, and a two-lcore hand-off where lcore 0 allocates in
// batches of 32 and lcore 1 frees them after an rte_ring carried them across.
// Every benchmark writes the first cache line of each object it allocates
// (what a driver does when it posts a buffer) and keeps `live` objects
// outstanding in FIFO order (an RX ring keeps its buffers posted; 1024 is the
// default MANA RX queue), so it measures what pagefrag's frag benchmarks do.
// Each benchmark reports items_per_second per object, so a bulk iteration of
// 32 objects compares with 32 single ones.
//
// EAL: initialised once per process, before any benchmark, with arguments that
// need neither hugepages nor PCI. rte_eal_init makes the calling thread lcore
// 0 and pins it to CPU 0; Google Benchmark runs single-threaded benchmarks on
// that thread, so every mempool call below runs on an EAL lcore and uses its
// cache. The hand-off's consumer runs on lcore 1 via rte_eal_remote_launch.
// Only this binary links DPDK: pagefrag's library code never does.

// <rte_config.h> stands in for pkg-config's `-include rte_config.h`; it sorts
// before the other DPDK headers, so they all see it.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/live_window.h"
#include "pagefrag/base/compiler.h"

namespace {

// ---------------------------------------------------------------------------
// Constants and helpers
// ---------------------------------------------------------------------------

constexpr unsigned kCacheSize = 256;     // per-lcore mempool cache (the target's)
constexpr unsigned kPoolObjects = 8191;  // 2^n - 1: what the ring backend sizes best
constexpr unsigned kBatch = 32;
constexpr unsigned kHandoffRingSize = 1024;
constexpr unsigned kConsumerLcore = 1;

// Writes the first cache line's first word of an object, as posting a buffer
// does; the store is kept because the pointer escapes to the optimiser.
inline void touch(void* obj, std::uint64_t value) {
  *static_cast<std::uint64_t*>(obj) = value;
  benchmark::DoNotOptimize(obj);
}

std::string unique_name(const char* prefix) {
  static int counter = 0;
  return fmt::format("{}_{}", prefix, counter++);
}

// A mempool of kPoolObjects objects of `elt_size` bytes with a 256-object
// cache, the default ring_mp_mc backend; freed when the benchmark ends.
class ScopedMempool {
 public:
  ScopedMempool(benchmark::State& state, unsigned elt_size)
      : mp_(rte_mempool_create(unique_name("pf_mp").c_str(), kPoolObjects, elt_size, kCacheSize, 0,
                               nullptr, nullptr, nullptr, nullptr, SOCKET_ID_ANY, 0)) {
    if (mp_ == nullptr) {
      state.SkipWithError(fmt::format("rte_mempool_create: {}", rte_strerror(rte_errno)).c_str());
      return;
    }
    state.counters["obj_stride"] =
        static_cast<double>(mp_->header_size + mp_->elt_size + mp_->trailer_size);
  }
  ~ScopedMempool() { rte_mempool_free(mp_); }
  ScopedMempool(const ScopedMempool&) = delete;
  ScopedMempool& operator=(const ScopedMempool&) = delete;
  rte_mempool* get() const { return mp_; }

 private:
  rte_mempool* mp_;
};

// A pktmbuf pool with the default 2048-byte data room plus headroom.
class ScopedPktmbufPool {
 public:
  explicit ScopedPktmbufPool(benchmark::State& state)
      : mp_(rte_pktmbuf_pool_create(unique_name("pf_mbuf").c_str(), kPoolObjects, kCacheSize, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY)) {
    if (mp_ == nullptr) {
      state.SkipWithError(
          fmt::format("rte_pktmbuf_pool_create: {}", rte_strerror(rte_errno)).c_str());
    }
  }
  ~ScopedPktmbufPool() { rte_mempool_free(mp_); }
  ScopedPktmbufPool(const ScopedPktmbufPool&) = delete;
  ScopedPktmbufPool& operator=(const ScopedPktmbufPool&) = delete;
  rte_mempool* get() const { return mp_; }

 private:
  rte_mempool* mp_;
};

// ---------------------------------------------------------------------------
// rte_mempool: get/put one object, get_bulk/put_bulk of 32
// ---------------------------------------------------------------------------
// Each benchmark keeps `live` objects outstanding in a window walked as a
// driver walks its RX ring (bench/live_window.h, shared with pagefrag's
// benchmarks): per slot, get a fresh object, write it, put the slot's oldest.

// Args: element size (stride), live objects.
void BM_DpdkMempoolGetPut(benchmark::State& state) {
  ScopedMempool pool(state, static_cast<unsigned>(state.range(0)));
  rte_mempool* mp = pool.get();
  if (mp == nullptr) return;
  std::vector<void*> window(static_cast<std::size_t>(state.range(1)));
  for (void*& slot : window) {
    if (rte_mempool_get(mp, &slot) != 0) return state.SkipWithError("pool too small");
  }
  std::uint64_t n = 0;
  pagefrag::bench::for_each_slot(state, window, [&](void*& slot) PAGEFRAG_BENCH_INLINE {
    void* obj;
    if (PAGEFRAG_UNLIKELY(rte_mempool_get(mp, &obj) != 0)) {
      return state.SkipWithError("rte_mempool_get failed");
    }
    touch(obj, ++n);
    rte_mempool_put(mp, slot);
    slot = obj;
  });
  for (void* slot : window) rte_mempool_put(mp, slot);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DpdkMempoolGetPut)
    ->ArgNames({"stride", "live"})
    ->ArgsProduct({{1856, 2048}, {64, 1024}});

// Args: element size (stride), live objects (a multiple of 32).
void BM_DpdkMempoolBulk32(benchmark::State& state) {
  ScopedMempool pool(state, static_cast<unsigned>(state.range(0)));
  rte_mempool* mp = pool.get();
  if (mp == nullptr) return;
  std::vector<std::array<void*, kBatch>> window(static_cast<std::size_t>(state.range(1)) / kBatch);
  for (auto& batch : window) {
    if (rte_mempool_get_bulk(mp, batch.data(), kBatch) != 0) {
      return state.SkipWithError("pool too small");
    }
  }
  std::uint64_t n = 0;
  pagefrag::bench::for_each_slot(
      state, window, [&](std::array<void*, kBatch>& slot) PAGEFRAG_BENCH_INLINE {
        std::array<void*, kBatch> fresh;
        if (PAGEFRAG_UNLIKELY(rte_mempool_get_bulk(mp, fresh.data(), kBatch) != 0)) {
          return state.SkipWithError("rte_mempool_get_bulk failed");
        }
        for (void* obj : fresh) touch(obj, ++n);
        rte_mempool_put_bulk(mp, slot.data(), kBatch);
        slot = fresh;
      });
  for (auto& batch : window) rte_mempool_put_bulk(mp, batch.data(), kBatch);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_DpdkMempoolBulk32)
    ->ArgNames({"stride", "live"})
    ->ArgsProduct({{1856, 2048}, {64, 1024}});

// ---------------------------------------------------------------------------
// rte_pktmbuf: alloc/free one mbuf, alloc_bulk/free_bulk of 32
// ---------------------------------------------------------------------------

// Arg: live mbufs. Touches the first cache line of the packet data.
void BM_DpdkPktmbufAllocFree(benchmark::State& state) {
  ScopedPktmbufPool pool(state);
  rte_mempool* mp = pool.get();
  if (mp == nullptr) return;
  std::vector<rte_mbuf*> window(static_cast<std::size_t>(state.range(0)));
  for (rte_mbuf*& slot : window) {
    slot = rte_pktmbuf_alloc(mp);
    if (slot == nullptr) return state.SkipWithError("pool too small");
  }
  std::uint64_t n = 0;
  pagefrag::bench::for_each_slot(state, window, [&](rte_mbuf*& slot) PAGEFRAG_BENCH_INLINE {
    rte_mbuf* m = rte_pktmbuf_alloc(mp);
    if (PAGEFRAG_UNLIKELY(m == nullptr)) return state.SkipWithError("rte_pktmbuf_alloc failed");
    touch(rte_pktmbuf_mtod(m, void*), ++n);
    rte_pktmbuf_free(slot);
    slot = m;
  });
  for (rte_mbuf* slot : window) rte_pktmbuf_free(slot);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DpdkPktmbufAllocFree)->ArgName("live")->Arg(64)->Arg(1024);

// Arg: live mbufs (a multiple of 32).
void BM_DpdkPktmbufBulk32(benchmark::State& state) {
  ScopedPktmbufPool pool(state);
  rte_mempool* mp = pool.get();
  if (mp == nullptr) return;
  std::vector<std::array<rte_mbuf*, kBatch>> window(static_cast<std::size_t>(state.range(0)) /
                                                    kBatch);
  for (auto& batch : window) {
    if (rte_pktmbuf_alloc_bulk(mp, batch.data(), kBatch) != 0) {
      return state.SkipWithError("pool too small");
    }
  }
  std::uint64_t n = 0;
  pagefrag::bench::for_each_slot(
      state, window, [&](std::array<rte_mbuf*, kBatch>& slot) PAGEFRAG_BENCH_INLINE {
        std::array<rte_mbuf*, kBatch> fresh;
        if (PAGEFRAG_UNLIKELY(rte_pktmbuf_alloc_bulk(mp, fresh.data(), kBatch) != 0)) {
          return state.SkipWithError("rte_pktmbuf_alloc_bulk failed");
        }
        for (rte_mbuf* m : fresh) touch(rte_pktmbuf_mtod(m, void*), ++n);
        rte_pktmbuf_free_bulk(slot.data(), kBatch);
        slot = fresh;
      });
  for (auto& batch : window) rte_pktmbuf_free_bulk(batch.data(), kBatch);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_DpdkPktmbufBulk32)->ArgName("live")->Arg(64)->Arg(1024);

// ---------------------------------------------------------------------------
// Two-lcore hand-off: get_bulk on lcore 0, rte_ring, put_bulk on lcore 1
// ---------------------------------------------------------------------------

struct Handoff {
  rte_mempool* mp = nullptr;
  rte_ring* ring = nullptr;
  std::atomic<bool> stop{false};
};

// lcore 1: frees every batch that arrives until told to stop, then drains.
int run_handoff_consumer(void* arg) {
  auto* h = static_cast<Handoff*>(arg);
  std::array<void*, kBatch> objs;
  for (;;) {
    const bool stopping = h->stop.load(std::memory_order_acquire);
    const unsigned n = rte_ring_dequeue_burst(h->ring, objs.data(), kBatch, nullptr);
    if (n != 0) {
      rte_mempool_put_bulk(h->mp, objs.data(), n);
    } else if (stopping) {
      return 0;
    } else {
      rte_pause();
    }
  }
}

// Arg: element size (stride). One iteration is one batch of 32 objects
// allocated on lcore 0 and freed on lcore 1; items_per_second counts objects.
void BM_DpdkRingHandoff32(benchmark::State& state) {
  ScopedMempool pool(state, static_cast<unsigned>(state.range(0)));
  if (pool.get() == nullptr) return;
  Handoff h;
  h.mp = pool.get();
  h.ring = rte_ring_create(unique_name("pf_ring").c_str(), kHandoffRingSize, SOCKET_ID_ANY,
                           RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (h.ring == nullptr) return state.SkipWithError("rte_ring_create failed");
  if (rte_eal_remote_launch(run_handoff_consumer, &h, kConsumerLcore) != 0) {
    rte_ring_free(h.ring);
    return state.SkipWithError("lcore 1 is busy");
  }
  std::array<void*, kBatch> objs;
  std::uint64_t n = 0;
  for (auto _ : state) {
    // Objects in flight come back through lcore 1's cache: retry until they do.
    while (rte_mempool_get_bulk(h.mp, objs.data(), kBatch) != 0) rte_pause();
    for (void* obj : objs) touch(obj, ++n);
    while (rte_ring_enqueue_bulk(h.ring, objs.data(), kBatch, nullptr) == 0) rte_pause();
  }
  h.stop.store(true, std::memory_order_release);
  rte_eal_wait_lcore(kConsumerLcore);
  rte_ring_free(h.ring);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_DpdkRingHandoff32)->ArgName("stride")->Arg(1856)->Arg(2048)->UseRealTime();

// ---------------------------------------------------------------------------
// DPDK's own RX loop on a net_null port: the driver-only RX baseline
// ---------------------------------------------------------------------------
// Ports net_null0 (64-byte packets) and net_null1 (1500-byte packets), both
// copy=0: rte_eth_rx_burst hands out fresh mbufs from the RX queue's pktmbuf
// pool (cache 256) with their lengths set and no data copied. Per burst of
// 32 the loop reads each packet's first cache line and returns the burst
// with rte_pktmbuf_free_bulk: the per-buffer work bench/rx_driver_bench.cc
// times for the MANA driver. Instructions: callgrind with
// --toggle-collect=pagefrag_dpdk_null_timed_bursts (the warm-up runs
// through pagefrag_dpdk_null_warm_bursts and is not counted); the binary
// prints `dpdk_baseline: timed_packets N` at exit.

constexpr std::uint16_t kNullRing = 1024;
std::uint64_t g_null_timed_packets = 0;

// Configures and starts port `port` (once per process) with one RX and one
// TX queue of kNullRing descriptors over `mp`; an error message or "".
std::string start_null_port(std::uint16_t port, rte_mempool* mp) {
  rte_eth_conf conf{};
  if (int rc = rte_eth_dev_configure(port, 1, 1, &conf); rc != 0) {
    return fmt::format("rte_eth_dev_configure(port {}): {}", port, rte_strerror(-rc));
  }
  if (int rc = rte_eth_rx_queue_setup(port, 0, kNullRing, SOCKET_ID_ANY, nullptr, mp); rc != 0) {
    return fmt::format("rte_eth_rx_queue_setup(port {}): {}", port, rte_strerror(-rc));
  }
  if (int rc = rte_eth_tx_queue_setup(port, 0, kNullRing, SOCKET_ID_ANY, nullptr); rc != 0) {
    return fmt::format("rte_eth_tx_queue_setup(port {}): {}", port, rte_strerror(-rc));
  }
  if (int rc = rte_eth_dev_start(port); rc != 0) {
    return fmt::format("rte_eth_dev_start(port {}): {}", port, rte_strerror(-rc));
  }
  return "";
}

}  // namespace

namespace {

// `bursts` rx_burst(32) + first-line read + free_bulk; returns the packets.
std::uint64_t null_bursts(std::uint16_t port, std::uint64_t bursts, std::uint64_t* sum) {
  std::array<rte_mbuf*, kBatch> bufs;
  std::uint64_t packets = 0;
  std::uint64_t acc = 0;
  for (std::uint64_t b = 0; b < bursts; ++b) {
    const std::uint16_t n = rte_eth_rx_burst(port, 0, bufs.data(), kBatch);
    for (std::uint16_t i = 0; i < n; ++i) {
      std::uint64_t first;
      std::memcpy(&first, rte_pktmbuf_mtod(bufs[i], const void*), sizeof(first));
      acc += first;
    }
    rte_pktmbuf_free_bulk(bufs.data(), n);
    packets += n;
  }
  *sum += acc;
  return packets;
}

}  // namespace

// The timed loop, and the same work untimed for warming up. Out of line and
// unmangled so callgrind can collect exactly the first.
extern "C" __attribute__((noinline)) std::uint64_t pagefrag_dpdk_null_timed_bursts(
    std::uint16_t port, std::uint64_t bursts, std::uint64_t* sum) {
  const std::uint64_t packets = null_bursts(port, bursts, sum);
  g_null_timed_packets += packets;
  return packets;
}
extern "C" __attribute__((noinline)) std::uint64_t pagefrag_dpdk_null_warm_bursts(
    std::uint16_t port, std::uint64_t bursts, std::uint64_t* sum) {
  return null_bursts(port, bursts, sum);
}

namespace {

// Args: packet size (64: port 0, 1500: port 1).
void BM_DpdkNullRxBurst(benchmark::State& state) {
  const std::uint16_t port = state.range(0) == 64 ? 0 : 1;
  static std::array<rte_mempool*, 2> pools{};
  static std::array<std::string, 2> errors;
  if (pools[port] == nullptr && errors[port].empty()) {
    pools[port] = rte_pktmbuf_pool_create(unique_name("pf_null").c_str(), kPoolObjects, kCacheSize,
                                          0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    errors[port] = pools[port] == nullptr
                       ? fmt::format("rte_pktmbuf_pool_create: {}", rte_strerror(rte_errno))
                       : start_null_port(port, pools[port]);
  }
  if (!errors[port].empty()) return state.SkipWithError(errors[port].c_str());
  std::uint64_t sum = 0;
  pagefrag_dpdk_null_warm_bursts(port, 256, &sum);  // warm the cache and the pool
  std::uint64_t packets = 0;
  constexpr std::uint64_t kBursts = 32;  // 1024 packets per iteration, as a driver chunk
  for (auto _ : state) packets += pagefrag_dpdk_null_timed_bursts(port, kBursts, &sum);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
}
BENCHMARK(BM_DpdkNullRxBurst)->ArgName("size")->Arg(64)->Arg(1500);

// ---------------------------------------------------------------------------
// main: EAL once, then Google Benchmark
// ---------------------------------------------------------------------------

int init_eal() {
  // No hugepages, no PCI, no telemetry socket, no shared config: works in a
  // container as a plain process. Lcores 0 and 1: the hand-off needs two.
  // Two net_null ports for the RX-loop baseline (copy=0: no data copied).
  std::array<const char*, 12> args = {"dpdk_baseline",
                                      "-l",
                                      "0-1",
                                      "--no-huge",
                                      "--no-pci",
                                      "--no-telemetry",
                                      "-m",
                                      "256",
                                      "--log-level=error",
                                      "--no-shconf",
                                      "--vdev=net_null0,copy=0,size=64",
                                      "--vdev=net_null1,copy=0,size=1500"};
  return rte_eal_init(static_cast<int>(args.size()), const_cast<char**>(args.data()));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (init_eal() < 0) {
    std::fputs(fmt::format("dpdk_baseline: rte_eal_init failed: {} (expected it to succeed "
                           "with --no-huge --no-pci on lcores 0-1; does the machine have "
                           "2 CPUs?)\n",
                           rte_strerror(rte_errno))
                   .c_str(),
               stderr);
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fprintf(stderr, "dpdk_baseline: timed_packets %llu\n",
               static_cast<unsigned long long>(g_null_timed_packets));
  rte_eal_cleanup();
  return 0;
}
