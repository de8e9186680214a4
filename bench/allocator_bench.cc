// SPDX-License-Identifier: BSD-3-Clause
// bench/allocator_bench.cc: PagePool and FragmentAllocator fast and slow paths
// against three baselines measured in the same run.
//
// Baselines: an empty loop; the bare LIFO floor (a fixed pointer array with
// the top index in a local; each iteration pops an object, writes 8 bytes to
// its first cache line as every measured benchmark does to the object it
// gets, and pushes it back); the FIFO floor with BM_FragOwner's working set
// (same strides and live counts, objects cycled oldest first); one
// uncontended atomic fetch_add.
// Measured: page alloc + recycle_direct (with the counting stats policy and
// the no-op one), the ring path (alloc + recycle through the ring), the slow
// path (pages from the provider, per page), alloc_bulk of 32, fragment alloc +
// owner free with 64 and 1024 fragments live in a FIFO window (like an RX ring
// with 1024 buffers posted) at 1856- and 2048-byte strides in 64 KiB pages, the
// same in batches of 32 (alloc_frags + free_frags), and fragments allocated on
// one thread and freed on another in batches of 32.
// Every benchmark reports items_per_second (objects), so 1e9 / that rate is the
// cost per object. Run: ./bazelw run -c opt //bench:allocator_bench.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/live_window.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace pagefrag {
namespace {

using Pool = PagePool<HeapProvider, NoDma>;
using QuietPool = PagePool<HeapProvider, NoDma, NoPoolStats>;
using Frags = FragmentAllocator<Pool>;
constexpr std::size_t kBatch = 32;

// What every benchmark does to each object it gets: write its first line.
PAGEFRAG_ALWAYS_INLINE void touch(void* obj, std::uint64_t value) {
  *static_cast<std::uint64_t*>(obj) = value;
  benchmark::DoNotOptimize(obj);
}

template <class P>
typename P::Handle make_pool(benchmark::State& state, HeapProvider& provider, NoDma& dma,
                             const PagePoolParams& params) {
  auto handle = P::create(provider, dma, params);
  if (!handle.ok()) {
    state.SkipWithError(std::string(handle.status().message()).c_str());
    return {};
  }
  return *std::move(handle);
}

std::optional<HeapProvider> make_provider(benchmark::State& state, std::size_t page_size) {
  auto p = HeapProvider::create(
      {.page_size = page_size, .max_order = 0, .capacity = std::size_t{256} << 20});
  if (!p.ok()) {
    state.SkipWithError(std::string(p.status().message()).c_str());
    return std::nullopt;
  }
  return *std::move(p);
}

// ------------------------------------------------------------------ baselines

void BM_EmptyLoop(benchmark::State& state) {
  for (auto _ : state) benchmark::ClobberMemory();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EmptyLoop);

void BM_LifoFloor(benchmark::State& state) {
  constexpr std::size_t kObjects = 128;
  constexpr std::size_t kStride = 4096;
  auto memory = std::make_unique<std::byte[]>(kObjects * kStride + kCacheLineSize);
  std::array<std::byte*, kObjects> stack;
  for (std::size_t i = 0; i < kObjects; ++i) stack[i] = memory.get() + i * kStride;
  benchmark::DoNotOptimize(stack.data());
  std::size_t top = kObjects;  // the top index lives in a local
  std::uint64_t n = 0;
  for (auto _ : state) {
    std::byte* obj = stack[--top];
    touch(obj, ++n);
    stack[top++] = obj;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LifoFloor);

// The floor for BM_FragOwner's working set: `live` objects `stride` bytes
// apart, cycled FIFO through a window walked as BM_FragOwner walks its own
// (bench/live_window.h), each written once per pass as BM_FragOwner writes
// each fragment it gets. BM_LifoFloor reuses one hot object, so it cannot
// price the cache misses of a window of 1024 fragments (1.9 MB at 1856 bytes)
// that any allocator must pay.
void BM_FifoFloor(benchmark::State& state) {
  const auto stride = static_cast<std::size_t>(state.range(0));
  const auto live = static_cast<std::size_t>(state.range(1));
  auto memory = std::make_unique<std::byte[]>(live * stride + kCacheLineSize);
  std::vector<std::byte*> window(live);
  for (std::size_t i = 0; i < live; ++i) window[i] = memory.get() + i * stride;
  benchmark::DoNotOptimize(window.data());
  std::uint64_t n = 0;
  bench::for_each_slot(state, window, [&](std::byte*& slot) PAGEFRAG_BENCH_INLINE {
    std::byte* obj = slot;
    touch(obj, ++n);
    slot = obj;
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FifoFloor)->ArgNames({"stride", "live"})->ArgsProduct({{1856, 2048}, {64, 1024}});

void BM_AtomicUncontended(benchmark::State& state) {
  std::atomic<std::uint64_t> counter{0};
  for (auto _ : state) benchmark::DoNotOptimize(counter.fetch_add(1, std::memory_order_acq_rel));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AtomicUncontended);

// ---------------------------------------------------------------- page pool

// alloc + recycle_direct (cache only), or alloc + recycle() through the
// ring, every 64th alloc then refilling the cache from it.
template <class P, bool kRing>
void page_alloc_recycle(benchmark::State& state) {
  std::optional<HeapProvider> provider = make_provider(state, 4096);
  if (!provider) return;
  NoDma dma;
  typename P::Handle handle = make_pool<P>(state, *provider, dma, {.pool_size = 1024});
  if (!handle) return;
  P& pool = *handle;
  std::uint64_t n = 0;
  for (auto _ : state) {
    Page* page = pool.alloc();
    touch(page->va, ++n);
    if constexpr (kRing) {
      pool.recycle(page);
    } else {
      pool.recycle_direct(page);
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PageAllocRecycleDirect(benchmark::State& state) { page_alloc_recycle<Pool, false>(state); }
BENCHMARK(BM_PageAllocRecycleDirect);

void BM_PageAllocRecycleDirectNoStats(benchmark::State& state) {
  page_alloc_recycle<QuietPool, false>(state);
}
BENCHMARK(BM_PageAllocRecycleDirectNoStats);

void BM_PageRingPath(benchmark::State& state) { page_alloc_recycle<Pool, true>(state); }
BENCHMARK(BM_PageRingPath);

// Pages straight from the provider: a fresh pool takes 64 pages in one bulk
// (mapping each), hands them out, and its destruction returns them.
void BM_PageSlowPath64(benchmark::State& state) {
  std::optional<HeapProvider> provider = make_provider(state, 4096);
  if (!provider) return;
  NoDma dma;
  std::array<Page*, 64> pages;
  std::uint64_t n = 0;
  for (auto _ : state) {
    auto pool = Pool::create(*provider, dma, {.pool_size = 64, .flags = kPagePoolDmaMap});
    const std::size_t got = (*pool)->alloc_bulk(pages.data(), pages.size());
    for (std::size_t i = 0; i < got; ++i) touch(pages[i]->va, ++n);
    for (std::size_t i = 0; i < got; ++i) (*pool)->recycle_direct(pages[i]);
  }
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_PageSlowPath64);

void BM_PageAllocBulk32(benchmark::State& state) {
  std::optional<HeapProvider> provider = make_provider(state, 4096);
  if (!provider) return;
  NoDma dma;
  Pool::Handle handle = make_pool<Pool>(state, *provider, dma, {.pool_size = 1024});
  if (!handle) return;
  Pool& pool = *handle;
  std::array<Page*, kBatch> pages;
  std::uint64_t n = 0;
  for (auto _ : state) {
    pool.alloc_bulk(pages.data(), kBatch);
    for (Page* page : pages) touch(page->va, ++n);
    for (Page* page : pages) pool.recycle_direct(page);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_PageAllocBulk32);

// ---------------------------------------------------------------- fragments

struct FragSetup {
  std::optional<HeapProvider> provider;
  NoDma dma;
  Pool::Handle pool;
  std::optional<Frags> frags;

  explicit FragSetup(benchmark::State& state) : provider(make_provider(state, 65536)) {
    if (!provider) return;
    pool = make_pool<Pool>(state, *provider, dma, {.pool_size = 256});
    if (!pool) return;
    auto created = Frags::create(*pool);
    if (!created.ok()) {
      state.SkipWithError(std::string(created.status().message()).c_str());
      return;
    }
    frags.emplace(*std::move(created));
  }
};

// Args: stride (fragment bytes), fragments live. Each iteration allocates
// one fragment and frees the oldest live one, on the owner thread.
void BM_FragOwner(benchmark::State& state) {
  FragSetup s(state);
  if (!s.frags) return;
  Frags& frags = *s.frags;
  const auto stride = static_cast<std::uint32_t>(state.range(0));
  // The window keeps what an RX ring keeps per buffer: its page.
  std::vector<Page*> window(static_cast<std::size_t>(state.range(1)));
  for (Page*& p : window) p = frags.alloc_frag(stride).page;
  std::uint64_t n = 0;
  bench::for_each_slot(state, window, [&](Page*& slot) PAGEFRAG_BENCH_INLINE {
    const Frag f = frags.alloc_frag(stride);
    touch(f.va, ++n);
    frags.free_frag(slot);
    slot = f.page;
  });
  for (Page* p : window) frags.free_frag(p);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FragOwner)->ArgNames({"stride", "live"})->ArgsProduct({{1856, 2048}, {64, 1024}});

// Args: stride, fragments live (a multiple of 32). The bulk form of
// BM_FragOwner, as an RX refill of 32 uses it: per window slot,
// alloc_frags() of 32, each written, then free_frags() of the slot's 32
// oldest (the same FIFO window as BM_DpdkMempoolBulk32's get_bulk/put_bulk).
void BM_FragBulk32(benchmark::State& state) {
  FragSetup s(state);
  if (!s.frags) return;
  Frags& frags = *s.frags;
  const auto stride = static_cast<std::uint32_t>(state.range(0));
  std::vector<std::array<Page*, kBatch>> window(static_cast<std::size_t>(state.range(1)) / kBatch);
  std::array<Frag, kBatch> fresh;
  for (auto& slot : window) {
    if (frags.alloc_frags(stride, fresh.data(), kBatch) != kBatch) {
      return state.SkipWithError("pool too small");
    }
    for (std::size_t i = 0; i < kBatch; ++i) slot[i] = fresh[i].page;
  }
  std::uint64_t n = 0;
  // The visitor form, as an RX refill uses it: each fragment's page is kept
  // (DPDK's side keeps the object pointer) and its first line touched.
  std::array<Page*, kBatch> pages;
  bench::for_each_slot(state, window, [&](std::array<Page*, kBatch>& slot) PAGEFRAG_BENCH_INLINE {
    const std::size_t got = frags.alloc_frags(stride, kBatch, [&](std::size_t i, const Frag& f) {
      touch(f.va, ++n);
      pages[i] = f.page;
    });
    if (PAGEFRAG_UNLIKELY(got != kBatch)) return state.SkipWithError("alloc_frags came up short");
    frags.free_frags(slot.data(), kBatch);
    slot = pages;
  });
  for (auto& slot : window) frags.free_frags(slot.data(), kBatch);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_FragBulk32)->ArgNames({"stride", "live"})->ArgsProduct({{1856, 2048}, {64, 1024}});

// A single-producer single-consumer ring of 32-fragment batches. It holds 31
// batches (992 fragments): what DPDK's hand-off ring of 1024 entries (1023
// usable) holds of 32-object bursts, so both sides keep as much in flight.
class BatchRing {
 public:
  bool push(const std::array<Page*, kBatch>& batch) {
    const std::uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == kCapacity) return false;
    slots_[t % kSlots] = batch;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  bool pop(std::array<Page*, kBatch>& batch) {
    const std::uint64_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return false;
    batch = slots_[h % kSlots];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

 private:
  static constexpr std::uint64_t kSlots = 32;
  static constexpr std::uint64_t kCapacity = kSlots - 1;
  std::array<std::array<Page*, kBatch>, kSlots> slots_;
  alignas(kCacheLineSize) std::atomic<std::uint64_t> head_{0};
  alignas(kCacheLineSize) std::atomic<std::uint64_t> tail_{0};
};

// The CPUs this thread may run on, in order.
std::vector<int> usable_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

// Pins the calling thread to one CPU, as DPDK pins each lcore, and restores
// its previous CPU set when destroyed. cpu < 0: no pinning.
class ScopedPin {
 public:
  explicit ScopedPin(int cpu) {
    if (cpu < 0 || ::pthread_getaffinity_np(::pthread_self(), sizeof saved_, &saved_) != 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned_ = ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one) == 0;
  }
  ~ScopedPin() {
    if (pinned_) ::pthread_setaffinity_np(::pthread_self(), sizeof saved_, &saved_);
  }
  ScopedPin(const ScopedPin&) = delete;
  ScopedPin& operator=(const ScopedPin&) = delete;
  bool pinned() const { return pinned_; }

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

// Waiting for the other thread: spin when each thread has a CPU of its own
// (as DPDK's lcores do), else give the CPU away.
void wait_a_little(bool spin) {
  if (spin) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    std::this_thread::yield();
  }
}

// Arg: stride. One iteration: 32 fragments allocated on this thread, one
// alloc_frag() each (alloc_frags() took 5-10 % more time per batch here, back
// to back on this VM), handed to another thread that frees them, with
// free_frags_remote() (kBulk: one subtract per run of fragments of the same
// page, as DPDK's hand-off frees with put_bulk) or one free_frag_remote()
// each; items count fragments. With two CPUs both threads are pinned, one
// per CPU, and spin while they wait.
template <bool kBulk>
void frag_cross_thread(benchmark::State& state) {
  FragSetup s(state);
  if (!s.frags) return;
  const auto stride = static_cast<std::uint32_t>(state.range(0));
  const std::vector<int> cpus = usable_cpus();
  const bool two = cpus.size() >= 2;
  ScopedPin pin(two ? cpus[0] : -1);
  BatchRing ring;
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    ScopedPin consumer_pin(two ? cpus[1] : -1);
    const bool spin = pin.pinned() && consumer_pin.pinned();
    std::array<Page*, kBatch> batch;
    for (;;) {
      const bool stopping = stop.load(std::memory_order_acquire);
      if (ring.pop(batch)) {
        if constexpr (kBulk) {
          Frags::free_frags_remote(batch.data(), batch.size());
        } else {
          for (Page* page : batch) Frags::free_frag_remote(page);
        }
      } else if (stopping) {
        return;
      } else {
        wait_a_little(spin);
      }
    }
  });
  const bool spin = pin.pinned();
  std::array<Page*, kBatch> batch;
  std::uint64_t n = 0;
  for (auto _ : state) {
    for (Page*& page : batch) {
      Frag f = s.frags->alloc_frag(stride);
      while (!f) {  // pages in flight come back through the ring
        wait_a_little(spin);
        f = s.frags->alloc_frag(stride);
      }
      touch(f.va, ++n);
      page = f.page;
    }
    while (!ring.push(batch)) wait_a_little(spin);
  }
  stop.store(true, std::memory_order_release);
  consumer.join();
  state.SetItemsProcessed(state.iterations() * kBatch);
  // How pages came home, per page cut: merged (a remote free may be the
  // last), and ring refills (pages recycled by the freeing thread).
  const auto pages = static_cast<double>(s.frags->stats().pages_used);
  state.counters["merged_per_page"] = static_cast<double>(s.frags->stats().pages_merged) / pages;
  state.counters["ring_refills_per_page"] =
      static_cast<double>(s.pool->stats().alloc_refill) / pages;
}

void BM_FragCrossThread32(benchmark::State& state) { frag_cross_thread<true>(state); }
BENCHMARK(BM_FragCrossThread32)->ArgName("stride")->Arg(1856)->Arg(2048)->UseRealTime();

void BM_FragCrossThread32Single(benchmark::State& state) { frag_cross_thread<false>(state); }
BENCHMARK(BM_FragCrossThread32Single)->ArgName("stride")->Arg(1856)->Arg(2048)->UseRealTime();

}  // namespace
}  // namespace pagefrag

BENCHMARK_MAIN();
