// SPDX-License-Identifier: BSD-3-Clause
// PagePool at its edges: unmap at destroy (the backend may go right after
// the pool), the kernel's counters counted by hand, and misuse that aborts
// in every build (a page returned twice, into the wrong pool, a provider or
// backend destroyed before its pool). Oracles: MockDma's own map/unmap
// counts, a wrapper that counts backend calls after the caller closed it,
// the provider's block count and event counts written down in the test.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "pagefrag/dma/coherent_dma.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"
#include "tests/support/in_child.h"

namespace pagefrag {
namespace {

using testing::aborted;
using testing::in_child;

HeapProvider make_provider(std::size_t capacity = 4 << 20) {
  auto p = HeapProvider::create({.page_size = 4096, .max_order = 2, .capacity = capacity});
  REQUIRE(p.ok());
  return *std::move(p);
}

// A backend the test "closes" (as a driver closes its VFIO container): every
// call after close() is counted, the independent oracle for "no call reaches
// the backend after destroy()".
template <class Inner>
class ClosableDma {
 public:
  static constexpr DmaFeatures kFeatures{.needs_sync = true};
  explicit ClosableDma(Inner& inner) : inner_(&inner) {}
  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection dir) {
    note();
    return inner_->map(cpu, dir);
  }
  absl::Status unmap(Iova iova, std::size_t len, DmaDirection dir) {
    note();
    return inner_->unmap(iova, len, dir);
  }
  void sync_for_device(Iova iova, std::size_t len, DmaDirection dir) noexcept {
    note();
    if constexpr (Inner::kFeatures.needs_sync) inner_->sync_for_device(iova, len, dir);
  }
  void sync_for_cpu(Iova iova, std::size_t len, DmaDirection dir) noexcept {
    note();
    if constexpr (Inner::kFeatures.needs_sync) inner_->sync_for_cpu(iova, len, dir);
  }
  void close() { closed_.store(true); }
  std::uint64_t calls_after_close() const { return late_.load(); }

 private:
  void note() noexcept {
    if (closed_.load()) late_.fetch_add(1);
  }
  Inner* inner_;
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> late_{0};
};

constexpr PagePoolParams kMapped{
    .pool_size = 16, .max_len = 4096, .flags = kPagePoolDmaMap | kPagePoolDmaSyncDev};

// Returns `pages` from three threads through the any-thread path.
template <class Pool>
void return_from_threads(const std::vector<Page*>& pages, bool put) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&pages, t, put] {
      for (std::size_t i = static_cast<std::size_t>(t); i < pages.size(); i += 3) {
        Pool* pool = Pool::pool_of(pages[i]);
        if (put) {
          pool->put_page(pages[i], -1, false);
        } else {
          pool->recycle(pages[i]);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

TEST_CASE("destroy unmaps the pages in flight; the backend may be closed right after") {
  HeapProvider provider = make_provider();
  MockDma mock;
  ClosableDma<MockDma> dma(mock);
  using Pool = PagePool<HeapProvider, ClosableDma<MockDma>>;
  auto pool = Pool::create(provider, dma, kMapped);
  REQUIRE(pool.ok());
  std::vector<Page*> out(12);
  REQUIRE((*pool)->alloc_bulk(out.data(), 12) == 12);
  (*pool)->recycle_direct(out.back());  // one back in the cache, one in the ring
  (*pool)->recycle(out[10]);
  out.resize(10);
  CHECK(mock.counters().maps == 16);
  pool->reset();
  // Every mapping was unmapped once, including the 10 pages still out.
  CHECK(mock.counters().unmaps == 16);
  CHECK(mock.counters().unmap_errors == 0);
  CHECK(mock.live_mappings() == 0);
  dma.close();
  return_from_threads<Pool>(out, /*put=*/false);
  CHECK(dma.calls_after_close() == 0);
  CHECK(provider.allocated_blocks() == 0);
  CHECK(mock.counters().unmaps == 16);  // nothing unmapped twice
}

TEST_CASE("the backend object may be destroyed right after the pool (MockDma strict, put_page)") {
  HeapProvider provider = make_provider();
  auto mock = std::make_unique<MockDma>(MockDmaOptions{.mode = MockDmaMode::kStrict});
  using Pool = PagePool<HeapProvider, MockDma>;
  auto pool = Pool::create(provider, *mock, kMapped);
  REQUIRE(pool.ok());
  std::vector<Page*> out(9);
  REQUIRE((*pool)->alloc_bulk(out.data(), 9) == 9);
  pool->reset();
  const MockDmaCounters c = mock->counters();
  CHECK(c.maps == 16);
  CHECK(c.unmaps == 16);
  CHECK(c.unmap_errors == 0);
  mock.reset();  // no leak report: nothing is mapped; ASan sees any later use
  return_from_threads<Pool>(out, /*put=*/true);
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("the backend object may be destroyed right after the pool (CoherentDma)") {
  HeapProvider provider = make_provider();
  auto coherent = std::make_unique<CoherentDma>();
  using Pool = PagePool<HeapProvider, CoherentDma>;
  auto pool = Pool::create(provider, *coherent, kMapped);
  REQUIRE(pool.ok());
  std::vector<Page*> out(5);
  REQUIRE((*pool)->alloc_bulk(out.data(), 5) == 5);
  pool->reset();
  CHECK(coherent->maps() == 16);
  CHECK(coherent->unmaps() == 16);
  coherent.reset();
  return_from_threads<Pool>(out, /*put=*/false);
  CHECK(provider.allocated_blocks() == 0);
}

// ---- counters, each against a count of events made by hand ----

using NoDmaPool = PagePool<HeapProvider, NoDma>;

TEST_CASE("alloc counters: fast = cache hits, slow = slow calls that got pages, empty, fail") {
  HeapProvider provider = make_provider(16 * 4096);  // 16 order-0 pages in all
  NoDma dma;
  auto pool = NoDmaPool::create(provider, dma, {.pool_size = 4});
  REQUIRE(pool.ok());
  std::vector<Page*> out;
  // 1st alloc: ring empty (empty 1), provider gives 4 (slow 1), one served.
  out.push_back((*pool)->alloc());
  // 3 more: cache hits (fast 3).
  for (int i = 0; i < 3; ++i) out.push_back((*pool)->alloc());
  // Cache empty, ring empty (empty 2); pool_size reached: one page (slow 2).
  out.push_back((*pool)->alloc());
  PoolStatsSnapshot s = (*pool)->stats();
  CHECK(s.alloc_empty == 2);
  CHECK(s.alloc_slow == 2);
  CHECK(s.alloc_fast == 3);
  CHECK(s.alloc_refill == 0);
  CHECK(s.inflight == 5);  // hold - release
  CHECK(s.handed_out == 5);
  // Two back through the ring, then allocated again: one refill (refill 1)
  // that serves one page, then a cache hit (fast 4).
  (*pool)->recycle(out[0]);
  (*pool)->recycle(out[1]);
  out[0] = (*pool)->alloc();
  out[1] = (*pool)->alloc();
  s = (*pool)->stats();
  CHECK(s.recycle_ring == 2);
  CHECK(s.alloc_refill == 1);
  CHECK(s.alloc_fast == 4);
  CHECK(s.alloc_empty == 2);
  // Exhaust the provider: 11 more pages come one slow call each (pool_size
  // is reached), then a slow call that gets nothing: empty, fail, no slow.
  for (int i = 0; i < 11; ++i) {
    out.push_back((*pool)->alloc());
    REQUIRE(out.back() != nullptr);
  }
  CHECK((*pool)->alloc() == nullptr);
  s = (*pool)->stats();
  CHECK(s.alloc_slow == 13);
  CHECK(s.alloc_empty == 14);
  CHECK(s.alloc_fail == 1);
  CHECK(s.alloc_fast == 4);
  CHECK(s.alloc_waive == 0);
  CHECK(s.inflight == 16);
  CHECK(s.handed_out == 16);
  // Leave nothing out (the provider outlives the pool by declaration order).
  for (Page* p : out) (*pool)->recycle_direct(p);
}

TEST_CASE("alloc_slow_high_order counts slow calls of an order > 0 pool") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = NoDmaPool::create(provider, dma, {.order = 1, .pool_size = 2});
  REQUIRE(pool.ok());
  Page* a = (*pool)->alloc();  // slow call 1: 2 pages
  Page* b = (*pool)->alloc();  // hit
  Page* c = (*pool)->alloc();  // slow call 2: 1 page
  const PoolStatsSnapshot s = (*pool)->stats();
  CHECK(s.alloc_slow_high_order == 2);
  CHECK(s.alloc_slow == 0);
  CHECK(s.alloc_fast == 1);
  for (Page* p : {a, b, c}) (*pool)->recycle_direct(p);
}

TEST_CASE("recycle counters: cached, cache_full, ring, ring_full; released_refcnt stays 0") {
  HeapProvider provider = make_provider(256 * 4096);
  NoDma dma;
  // Ring of 4 slots (pool_size 3 rounds up to 4).
  auto pool = NoDmaPool::create(provider, dma, {.pool_size = 3});
  REQUIRE(pool.ok());
  std::vector<Page*> out(134);
  REQUIRE((*pool)->alloc_bulk(out.data(), 134) == 134);
  // The cache is empty: 128 direct recycles fit (cached 128), the next 6 find
  // it full (cache_full 6): 4 go into the ring (ring 4), 2 find it full
  // (ring_full 2) and are released to the provider.
  for (Page* p : out) (*pool)->recycle_direct(p);
  const PoolStatsSnapshot s = (*pool)->stats();
  CHECK(s.recycle_cached == 128);
  CHECK(s.recycle_cache_full == 6);
  CHECK(s.recycle_ring == 4);
  CHECK(s.recycle_ring_full == 2);
  CHECK(s.recycle_released_refcnt == 0);
  CHECK(s.inflight == 132);
  CHECK(provider.allocated_blocks() == 132);
  CHECK(s.handed_out == 0);
}

TEST_CASE("counters after destroy: released_after_destroy and the final in-flight count") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = NoDmaPool::create(provider, dma, {.pool_size = 8});
  REQUIRE(pool.ok());
  std::optional<PoolStatsSnapshot> final_stats;
  (*pool)->set_on_free([&](const PoolStatsSnapshot& s) { final_stats = s; });
  Page* a = (*pool)->alloc();  // slow 1
  Page* b = (*pool)->alloc();  // fast 1
  Page* c = (*pool)->alloc();  // fast 2
  (*pool)->recycle_direct(c);  // cached 1
  NoDmaPool* raw = pool->get();
  pool->reset();
  CHECK_FALSE(final_stats.has_value());  // two pages still out
  CHECK(raw->inflight() == 2);           // hold - release: only what is out
  raw->recycle(a);
  CHECK_FALSE(final_stats.has_value());
  raw->put_page(b, -1, false);  // the last: frees the pool
  REQUIRE(final_stats.has_value());
  CHECK(final_stats->released_after_destroy == 2);
  CHECK(final_stats->recycle_ring == 0);
  CHECK(final_stats->recycle_cached == 1);
  CHECK(final_stats->alloc_slow == 1);
  CHECK(final_stats->alloc_fast == 2);
  CHECK(final_stats->inflight == 0);
  CHECK(provider.allocated_blocks() == 0);
}

// ---- misuse that aborts in every build ----

TEST_CASE("a page recycled twice aborts, naming it (direct, remote, put_page)") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = NoDmaPool::create(provider, dma, {.pool_size = 8});
  REQUIRE(pool.ok());
  CHECK(aborted(in_child([&] {
    Page* p = (*pool)->alloc();
    (*pool)->recycle_direct(p);
    (*pool)->recycle_direct(p);
  })));
  CHECK(aborted(in_child([&] {
    Page* p = (*pool)->alloc();
    (*pool)->recycle(p);
    (*pool)->recycle(p);
  })));
  CHECK(aborted(in_child([&] {
    Page* p = (*pool)->alloc();
    (*pool)->put_page(p, -1, true);
    (*pool)->put_page(p, -1, false);
  })));
  // The same sequences once are fine (the child exits normally).
  CHECK(in_child([&] {
          Page* p = (*pool)->alloc();
          (*pool)->put_page(p, -1, true);
        }) == 0);
}

TEST_CASE("a page returned to the wrong pool aborts on every recycle path") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto mine = NoDmaPool::create(provider, dma, {.pool_size = 8});
  auto other = NoDmaPool::create(provider, dma, {.pool_size = 8});
  REQUIRE(mine.ok());
  REQUIRE(other.ok());
  CHECK(aborted(in_child([&] { (*other)->recycle_direct((*mine)->alloc()); })));
  CHECK(aborted(in_child([&] { (*other)->recycle((*mine)->alloc()); })));
  CHECK(aborted(in_child([&] { (*other)->put_page((*mine)->alloc(), -1, false); })));
  // A page released to the provider belongs to no pool.
  CHECK(aborted(in_child([&] {
    Page* p = provider.alloc(0);
    (*mine)->recycle(p);
  })));
}

TEST_CASE("a provider or backend destroyed before its pool aborts, naming the pool") {
  CHECK(aborted(in_child([] {
    auto provider = std::make_unique<HeapProvider>(make_provider());
    MockDma dma;
    auto pool = PagePool<HeapProvider, MockDma>::create(*provider, dma, kMapped);
    provider.reset();  // the pool still uses it
  })));
  CHECK(aborted(in_child([] {
    HeapProvider provider = make_provider();
    auto dma = std::make_unique<MockDma>();
    auto pool = PagePool<HeapProvider, MockDma>::create(provider, *dma, kMapped);
    dma.reset();
  })));
  // A destroyed pool with a page out still needs its provider (not its
  // backend: destroy unmapped the page).
  CHECK(aborted(in_child([] {
    auto provider = std::make_unique<HeapProvider>(make_provider());
    MockDma dma;
    auto pool = PagePool<HeapProvider, MockDma>::create(*provider, dma, kMapped);
    (*pool)->alloc();
    pool->reset();
    provider.reset();
  })));
  // The right order is silent.
  CHECK(in_child([] {
          auto provider = std::make_unique<HeapProvider>(make_provider());
          auto dma = std::make_unique<MockDma>();
          auto pool = PagePool<HeapProvider, MockDma>::create(*provider, *dma, kMapped);
          Page* p = (*pool)->alloc();
          pool->reset();
          dma.reset();
          PagePool<HeapProvider, MockDma>::pool_of(p)->recycle(p);
          provider.reset();
        }) == 0);
}

TEST_CASE("owner-only calls from another thread abort in debug and hardened builds") {
  if (!PAGEFRAG_HCHECKS_ON) {
    MESSAGE("skipped: owner checks are compiled out of this build (NDEBUG, not hardened)");
    return;
  }
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = NoDmaPool::create(provider, dma, {.pool_size = 8});
  REQUIRE(pool.ok());
  CHECK(aborted(in_child([&] { std::thread([&] { (*pool)->alloc(); }).join(); })));
}

}  // namespace
}  // namespace pagefrag
