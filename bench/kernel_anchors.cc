// SPDX-License-Identifier: BSD-3-Clause
// bench/kernel_anchors.cc: two Linux kernel micro-benchmarks reimplemented
// from their descriptions for pagefrag (no kernel code: GPL-2.0), so
// pagefrag's figures can be put beside the kernel's published ones.
//
//  1. bench_page_pool_simple (tools/testing/selftests/net/bench/page_pool):
//     a page pool's paths timed in TSC cycles per operation over a fixed
//     loop count, as the kernel's time_bench does with get_cycles():
//       page_pool_fast_path  alloc + recycle_direct (the owner's cache)
//       page_pool_ptr_ring   alloc + recycle through the ring (the return
//                            path of a page freed outside the owner's
//                            context; the next allocs refill from the ring)
//       page_pool_slow_path  pages from the provider: a fresh pool per 64
//                            pages (bulk allocation and mapping, return on
//                            destruction) -- pagefrag's pools have no
//                            per-page path to the provider, so this is the
//                            nearest, and labelled so
//  2. page_frag_test (tools/testing/selftests/mm/page_frag): one thread
//     allocates fragments and pushes them into a 512-entry ring, a thread on
//     another CPU pops and frees them (free_frag_remote); 2048-byte
//     fragments and unaligned 75-byte ones (alignment 8, pagefrag's
//     smallest). Reported as ns per fragment (wall time / fragments) and
//     TSC cycles per fragment.
//
// Output: one line per test, then a last line of JSON with
// page_pool_fast_cycles, page_pool_ring_cycles, page_pool_slow_cycles,
// page_frag_cross_thread_ns (2048-byte), page_frag_cross_thread_75_ns and
// the TSC frequency estimate. Flags: --loops=N (default 10,000,000, the
// page_pool loops; page_frag runs N/5 fragments).
#include <absl/strings/string_view.h>
#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <x86intrin.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "pagefrag/dma/no_dma.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace {

using pagefrag::FragmentAllocator;
using pagefrag::HeapProvider;
using pagefrag::NoDma;
using pagefrag::Page;
using Pool = pagefrag::PagePool<HeapProvider, NoDma>;
using Frags = FragmentAllocator<Pool>;

[[noreturn]] void die(absl::string_view what) {
  std::fprintf(stderr, "kernel_anchors: error: %.*s\n", static_cast<int>(what.size()), what.data());
  std::exit(1);
}

HeapProvider make_provider() {
  auto p =
      HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = std::size_t{256} << 20});
  if (!p.ok()) die(p.status().message());
  return *std::move(p);
}

Pool::Handle make_pool(HeapProvider& provider, NoDma& dma, std::size_t pool_size) {
  auto h = Pool::create(provider, dma, {.pool_size = pool_size});
  if (!h.ok()) die(h.status().message());
  return *std::move(h);
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// TSC ticks per ns, measured against steady_clock over 50 ms.
double tsc_per_ns() {
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t c0 = __rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::uint64_t c1 = __rdtsc();
  const auto t1 = std::chrono::steady_clock::now();
  return static_cast<double>(c1 - c0) /
         static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

template <class Fn>
double cycles_per_op(std::uint64_t loops, Fn&& op) {
  for (std::uint64_t i = 0; i < loops / 10; ++i) op();  // warm
  const std::uint64_t c0 = __rdtsc();
  for (std::uint64_t i = 0; i < loops; ++i) op();
  return static_cast<double>(__rdtsc() - c0) / static_cast<double>(loops);
}

// One page taken from the pool and given back per op, as the kernel's
// benchmark loops do; give_back is the path measured.
template <class GiveBack>
double page_pool_alloc_return(std::uint64_t loops, const char* test, GiveBack give_back) {
  HeapProvider provider = make_provider();
  NoDma dma;
  Pool::Handle h = make_pool(provider, dma, 1024);
  Pool& pool = *h;
  return cycles_per_op(loops, [&] {
    Page* page = pool.alloc();
    if (page == nullptr) die(fmt::format("{}: alloc failed", test));
    give_back(pool, page);
  });
}

// The fast recycle path: back into the owner cache.
double page_pool_fast(std::uint64_t loops) {
  return page_pool_alloc_return(loops, "page_pool_fast_path",
                                [](Pool& pool, Page* page) { pool.recycle_direct(page); });
}

// The ptr_ring path: back through the ring, refilled into the cache in bulk.
double page_pool_ring(std::uint64_t loops) {
  return page_pool_alloc_return(loops, "page_pool_ptr_ring",
                                [](Pool& pool, Page* page) { pool.recycle(page); });
}

double page_pool_slow(std::uint64_t loops) {
  HeapProvider provider = make_provider();
  NoDma dma;
  std::array<Page*, 64> pages;
  const std::uint64_t rounds = std::max<std::uint64_t>(1, loops / 64 / 10);
  const double per_round = cycles_per_op(rounds, [&] {
    auto pool = Pool::create(provider, dma, {.pool_size = 64, .flags = pagefrag::kPagePoolDmaMap});
    if (!pool.ok()) die(pool.status().message());
    const std::size_t got = (*pool)->alloc_bulk(pages.data(), pages.size());
    for (std::size_t i = 0; i < got; ++i) (*pool)->recycle_direct(pages[i]);
  });
  return per_round / 64;
}

// A single-producer single-consumer ring of pages (one per fragment).
class FragRing {
 public:
  bool push(Page* p) {
    const std::uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ == kSize) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t - head_cache_ == kSize) return false;
    }
    slots_[t % kSize] = p;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  Page* pop() {
    const std::uint64_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h == tail_cache_) return nullptr;
    }
    Page* p = slots_[h % kSize];
    head_.store(h + 1, std::memory_order_release);
    return p;
  }

 private:
  static constexpr std::uint64_t kSize = 512;
  std::array<Page*, kSize> slots_{};
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::uint64_t tail_cache_ = 0;  // consumer's
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  std::uint64_t head_cache_ = 0;  // producer's
};

struct FragResult {
  double ns_per_frag;
  double cycles_per_frag;
};

FragResult page_frag_cross_thread(std::uint64_t n, std::uint32_t size, std::uint32_t align) {
  HeapProvider provider = make_provider();
  NoDma dma;
  Pool::Handle h = make_pool(provider, dma, 4096);
  auto frags = Frags::create(*h, {.align = align});
  if (!frags.ok()) die(frags.status().message());
  FragRing ring;
  std::atomic<bool> start{false};
  std::thread consumer([&] {
    pin(1);
    while (!start.load(std::memory_order_acquire)) {
    }
    for (std::uint64_t i = 0; i < n;) {
      if (Page* p = ring.pop()) {
        Frags::free_frag_remote(p);
        ++i;
      }
    }
  });
  pin(0);
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t c0 = __rdtsc();
  start.store(true, std::memory_order_release);
  for (std::uint64_t i = 0; i < n; ++i) {
    pagefrag::Frag f = frags->alloc_frag(size);
    if (!f) {
      frags->reclaim();
      f = frags->alloc_frag(size);
      if (!f) die("page_frag_test: the pool ran out of pages");
    }
    std::memset(f.va, 0, 8);
    while (!ring.push(f.page)) {
    }
  }
  consumer.join();
  const std::uint64_t c1 = __rdtsc();
  const auto t1 = std::chrono::steady_clock::now();
  const double ns =
      static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  return {ns / static_cast<double>(n), static_cast<double>(c1 - c0) / static_cast<double>(n)};
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t loops = 10'000'000;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help") {
      std::puts("usage: kernel_anchors [--loops=N]  (see bench/kernel_anchors.cc)");
      return 0;
    }
    if (arg.starts_with("--loops=")) {
      loops = std::strtoull(argv[i] + 8, nullptr, 10);
      if (loops == 0) {
        std::fprintf(stderr, "error: --loops=%s: expected a positive integer\n", argv[i] + 8);
        return 2;
      }
      continue;
    }
    std::fprintf(stderr, "error: unknown flag %s (expected --loops=N or --help)\n", argv[i]);
    return 2;
  }
  pin(0);
  const double tsc = tsc_per_ns();
  const double fast = page_pool_fast(loops);
  const double ring = page_pool_ring(loops);
  const double slow = page_pool_slow(loops);
  const FragResult f2048 = page_frag_cross_thread(loops / 5, 2048, 64);
  const FragResult f75 = page_frag_cross_thread(loops / 5, 75, 8);
  std::printf("page_pool_fast_path:  %.1f cycles/op (alloc + recycle_direct), %llu loops\n", fast,
              static_cast<unsigned long long>(loops));
  std::printf("page_pool_ptr_ring:   %.1f cycles/op (alloc + recycle via ring)\n", ring);
  std::printf("page_pool_slow_path:  %.1f cycles/page (fresh pool of 64 pages per round)\n", slow);
  std::printf("page_frag_test 2048:  %.1f ns/frag, %.1f cycles/frag (alloc CPU0, free CPU1)\n",
              f2048.ns_per_frag, f2048.cycles_per_frag);
  std::printf("page_frag_test 75:    %.1f ns/frag, %.1f cycles/frag (unaligned, align 8)\n",
              f75.ns_per_frag, f75.cycles_per_frag);
  std::printf(
      "{\"page_pool_fast_cycles\": %.2f, \"page_pool_ring_cycles\": %.2f, "
      "\"page_pool_slow_cycles\": %.2f, \"page_frag_cross_thread_ns\": %.2f, "
      "\"page_frag_cross_thread_75_ns\": %.2f, \"tsc_per_ns\": %.3f}\n",
      fast, ring, slow, f2048.ns_per_frag, f75.ns_per_frag, tsc);
  return 0;
}
