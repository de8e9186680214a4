// SPDX-License-Identifier: BSD-3-Clause
// The edges of PagePool and FragmentAllocator the layer tests left open:
//   - the sync for the device on the remote recycle path (recycle(),
//     put_page() without allow_direct, a fragment page whose last free is
//     remote), seen by MockDma strict mode: a device write into bytes the
//     CPU still owns is a fault;
//   - a pool whose sync window starts at params.offset != 0: sync_for_cpu,
//     the recycle sync and put_page's dma_sync_size clamp all measured from
//     it;
//   - fragments of another pool freed by address: the free aborts;
//   - the memory one RX queue pins when every free comes from another
//     thread.
// Oracles: MockDma's per-byte ownership (device_write faults, check_cpu_read,
// sync_errors), the provider's own block count, and death by SIGABRT.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "pagefrag/base/hardened.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"
#include "tests/support/in_child.h"

namespace pagefrag {
namespace {

using MockPool = PagePool<HeapProvider, MockDma>;
using MockFrags = FragmentAllocator<MockPool>;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kSyncFlags = kPagePoolDmaMap | kPagePoolDmaSyncDev;

HeapProvider make_provider(std::size_t page = kPage, std::size_t pages = 64) {
  auto p = HeapProvider::create({.page_size = page, .max_order = 0, .capacity = page * pages});
  REQUIRE(p.ok());
  return *std::move(p);
}

std::vector<std::byte> bytes(std::size_t n, unsigned char v) {
  return std::vector<std::byte>(n, std::byte{v});
}

// The device fills [from, from + n) of the page, the CPU takes it (the
// driver's RX: device write, sync for the CPU, read).
void receive(MockDma& dma, MockPool& pool, Page* page, std::uint32_t from, std::uint32_t n) {
  REQUIRE(dma.device_write(MockPool::dma_addr(page) + from, bytes(n, 0x5a)).ok());
  pool.sync_for_cpu_in_page(page, from, n);
  REQUIRE(dma.check_cpu_read(page->va + from, n));
}

TEST_CASE("remote recycle paths sync the page for the device (MockDma strict)") {
  HeapProvider provider = make_provider();
  MockDma dma({.mode = MockDmaMode::kStrict});
  // pool_size 1: every allocation after the first comes back through the ring.
  auto pool =
      MockPool::create(provider, dma, {.pool_size = 1, .max_len = kPage, .flags = kSyncFlags});
  REQUIRE(pool.ok());
  MockPool& p = **pool;
  for (int how = 0; how < 2; ++how) {
    CAPTURE(how);
    Page* page = p.alloc();
    REQUIRE(page != nullptr);
    receive(dma, p, page, 0, kPage);
    std::thread([&] {
      if (how == 0) {
        p.recycle(page);
      } else {
        p.put_page(page, -1, false);
      }
    }).join();
    Page* again = p.alloc();
    REQUIRE(again == page);  // back from the ring
    // The device may write every byte again: the recycle handed it back.
    CHECK(dma.device_write(MockPool::dma_addr(again), bytes(kPage, 0x6b)).ok());
    p.recycle_direct(again);
  }
  CHECK(dma.counters().device_faults == 0);
}

TEST_CASE("a fragment page whose last free is remote comes back synced for the device") {
  HeapProvider provider = make_provider();
  MockDma dma({.mode = MockDmaMode::kStrict});
  auto pool =
      MockPool::create(provider, dma, {.pool_size = 2, .max_len = kPage, .flags = kSyncFlags});
  REQUIRE(pool.ok());
  {
    auto made = MockFrags::create(**pool);
    REQUIRE(made.ok());
    MockFrags& frags = *made;
    std::vector<Page*> seen;
    for (int round = 0; round < 40; ++round) {
      // Two 2 KiB fragments fill a page; the device writes both, the CPU
      // takes them, one is freed remotely before the page retires (so it is
      // merged) and the other remotely after: that free recycles the page.
      const Frag a = frags.alloc_frag(2048);
      const Frag b = frags.alloc_frag(2048);
      REQUIRE(a);
      REQUIRE(b);
      REQUIRE(a.page == b.page);
      seen.push_back(a.page);
      for (const Frag& f : {a, b}) {
        // A fault here is a page that came back without its sync.
        REQUIRE(dma.device_write(f.iova, bytes(2048, 0x11)).ok());
        frags.sync_for_cpu(f, 2048);
        REQUIRE(dma.check_cpu_read(f.va, 2048));
      }
      std::thread([&] { MockFrags::free_frag_remote(a.page); }).join();
      const Frag next = frags.alloc_frag(2048);  // retires (merges) the page
      REQUIRE(next);
      std::thread([&] { MockFrags::free_frag_remote(b.page); }).join();
      frags.free_frag(next.page);  // an owner free; the page is cut again
      const Frag rest = frags.alloc_frag(2048);
      REQUIRE(rest);
      REQUIRE(rest.page == next.page);
      frags.free_frag(rest.page);
    }
    std::sort(seen.begin(), seen.end());
    CHECK(std::unique(seen.begin(), seen.end()) - seen.begin() <= 3);  // pages were reused
  }
  pool->reset();
  CHECK(dma.counters().device_faults == 0);
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("params.offset != 0: every sync is measured from the window's start") {
  HeapProvider provider = make_provider();
  MockDma dma({.mode = MockDmaMode::kStrict});
  constexpr std::uint32_t kOffset = 256;
  constexpr std::uint32_t kWindow = kPage - kOffset;
  auto pool = MockPool::create(
      provider, dma, {.pool_size = 1, .max_len = kWindow, .offset = kOffset, .flags = kSyncFlags});
  REQUIRE(pool.ok());
  MockPool& p = **pool;
  Page* page = p.alloc();
  REQUIRE(page != nullptr);
  const Iova window = MockPool::dma_addr(page) + kOffset;

  SUBCASE("sync_for_cpu(page, offset, len) starts at params.offset") {
    REQUIRE(dma.device_write(window, bytes(kWindow, 0x21)).ok());
    p.sync_for_cpu(page, 0, 1000);
    CHECK(dma.check_cpu_read(page->va + kOffset, 1000));
    CHECK_FALSE(dma.check_cpu_read(page->va + kOffset + 1000, 1));  // not synced
    p.sync_for_cpu(page, 1000, kWindow - 1000);
    CHECK(dma.check_cpu_read(page->va + kOffset, kWindow));
    p.recycle_direct(page);
  }
  SUBCASE("recycle syncs [offset, offset + max_len) for the device") {
    REQUIRE(dma.device_write(window, bytes(kWindow, 0x22)).ok());
    p.sync_for_cpu_in_page(page, kOffset, kWindow);  // the CPU owns the whole window
    p.recycle_direct(page);
    page = p.alloc();
    CHECK(dma.device_write(window, bytes(kWindow, 0x23)).ok());
    p.recycle_direct(page);
  }
  SUBCASE("put_page syncs min(dma_sync_size, max_len) from the window's start") {
    p.sync_for_cpu_in_page(page, kOffset, kWindow);
    p.put_page(page, 100, true);  // the device wrote 100 bytes at most
    page = p.alloc();
    CHECK(dma.device_write(window, bytes(100, 0x24)).ok());
    CHECK_FALSE(dma.device_write(window + 100, bytes(1, 0x24)).ok());  // still the CPU's
    p.sync_for_cpu_in_page(page, kOffset, kWindow);
    p.put_page(page, 2 * kPage, true);  // more than max_len: clamped to it
    page = p.alloc();
    CHECK(dma.device_write(window, bytes(kWindow, 0x25)).ok());
    CHECK(dma.counters().sync_errors == 0);  // no sync ran past the page
    p.recycle_direct(page);
  }
  pool->reset();
  CHECK(dma.counters().device_faults <= 1);  // the one fault put_page's subcase expects
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("a whole-page request takes a watched page whose fragments all came back") {
  using Pool = PagePool<HeapProvider, NoDma>;
  using Frags = FragmentAllocator<Pool>;
  HeapProvider provider = make_provider(kPage, 2);  // two pages, no more
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 2});
  REQUIRE(pool.ok());
  {
    auto made = Frags::create(**pool);
    REQUIRE(made.ok());
    Frags& frags = *made;
    const Frag a = frags.alloc_frag(2048);
    const Frag b = frags.alloc_frag(2048);
    const Frag c = frags.alloc_frag(2048);  // retires a's page (watched: no remote free yet)
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(c);
    REQUIRE(frags.is_watched(a.page));
    Frags::free_frag_remote(a.page);
    Frags::free_frag_remote(b.page);          // done, still watched
    CHECK(provider.allocated_blocks() == 2);  // the provider has nothing left
    const Frag whole = frags.alloc_frag(kPage);
    REQUIRE(whole);  // the finished page, not a failure
    CHECK(whole.page == a.page);
    CHECK(whole.truesize == kPage);
    frags.free_frag(whole.page);
    frags.free_frag(c.page);
  }
  pool->reset();
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("a fragment of another pool freed by address aborts") {
  using Pool = PagePool<HeapProvider, NoDma>;
  using Frags = FragmentAllocator<Pool>;
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool_a = Pool::create(provider, dma, {.pool_size = 4});
  auto pool_b = Pool::create(provider, dma, {.pool_size = 4});
  REQUIRE(pool_a.ok());
  REQUIRE(pool_b.ok());
  {
    auto a = Frags::create(**pool_a);
    auto b = Frags::create(**pool_b);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    const Frag mine = a->alloc_frag(512);
    const Frag theirs = b->alloc_frag(512);
    REQUIRE(mine);
    REQUIRE(theirs);
    CHECK(testing::aborted(testing::in_child([&] { a->free_frag(theirs.va); })));
    CHECK(testing::aborted(testing::in_child([&] { a->free_frag_remote(theirs.va); })));
    int heap_int = 0;  // memory of no pool at all
    CHECK(testing::aborted(testing::in_child([&] { a->free_frag(&heap_int); })));
    // The parent is untouched: each fragment frees into its own pool.
    a->free_frag(mine.va);
    b->free_frag(theirs.va);
  }
  pool_a->reset();
  pool_b->reset();
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("pages of another pool, or returned twice, abort on every return path") {
  using Pool = PagePool<HeapProvider, NoDma>;
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool_a = Pool::create(provider, dma, {.pool_size = 4});
  auto pool_b = Pool::create(provider, dma, {.pool_size = 4});
  REQUIRE(pool_a.ok());
  REQUIRE(pool_b.ok());
  Pool& a = **pool_a;
  Pool& b = **pool_b;
  Page* mine = a.alloc();
  Page* theirs = b.alloc();
  REQUIRE(mine != nullptr);
  REQUIRE(theirs != nullptr);
  using testing::aborted;
  using testing::in_child;
  // Another pool's page, on each path into a.
  CHECK(aborted(in_child([&] { a.recycle_direct(theirs); })));
  CHECK(aborted(in_child([&] { a.recycle(theirs); })));
  CHECK(aborted(in_child([&] { a.put_page(theirs, -1, true); })));
  CHECK(aborted(in_child([&] { a.put_page(theirs, -1, false); })));
  // Its own page, returned twice.
  CHECK(aborted(in_child([&] {
    a.recycle_direct(mine);
    a.recycle_direct(mine);
  })));
  CHECK(aborted(in_child([&] {
    a.recycle(mine);
    a.recycle(mine);
  })));
  CHECK(aborted(in_child([&] {
    a.recycle_direct(mine);
    a.put_page(mine, -1, false);
  })));
  // In the parent both go home once.
  a.recycle_direct(mine);
  b.recycle_direct(theirs);
  pool_a->reset();
  pool_b->reset();
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("a fragment page of another pool freed by Page* aborts in hardened builds") {
  using Pool = PagePool<HeapProvider, NoDma>;
  using Frags = FragmentAllocator<Pool>;
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool_a = Pool::create(provider, dma, {.pool_size = 4});
  auto pool_b = Pool::create(provider, dma, {.pool_size = 4});
  REQUIRE(pool_a.ok());
  REQUIRE(pool_b.ok());
  {
    auto a = Frags::create(**pool_a);
    auto b = Frags::create(**pool_b);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    const Frag theirs = b->alloc_frag(512);
    REQUIRE(theirs);
    if constexpr (kHardened) {
      CHECK(testing::aborted(testing::in_child([&] { a->free_frag(theirs.page); })));
    }
    b->free_frag(theirs.page);
  }
  pool_a->reset();
  pool_b->reset();
  CHECK(provider.allocated_blocks() == 0);
}

// Pages still out when the pool is destroyed: destroy unmaps them at once
// (no DMA call after it), each later return is released and counted, and
// the last one delivers the final counters. Oracles: MockDma's mapping and
// call counts, the provider's block count, and counts kept by hand.
TEST_CASE("counters after destroy: the final snapshot counts every late return") {
  HeapProvider provider = make_provider();
  MockDma dma({.mode = MockDmaMode::kStrict});
  auto pool =
      MockPool::create(provider, dma, {.pool_size = 8, .max_len = kPage, .flags = kSyncFlags});
  REQUIRE(pool.ok());
  std::optional<PoolStatsSnapshot> final_stats;
  int calls = 0;
  (*pool)->set_on_free([&](const PoolStatsSnapshot& s) {
    final_stats = s;
    ++calls;
  });
  constexpr int kOut = 5, kBackBefore = 2;
  std::vector<Page*> out;
  for (int i = 0; i < kOut + kBackBefore; ++i) out.push_back((*pool)->alloc());
  for (Page* p : out) REQUIRE(p != nullptr);
  for (int i = 0; i < kBackBefore; ++i) (*pool)->recycle_direct(out[kOut + i]);
  MockPool* raw = pool->get();
  pool->reset();  // kOut pages still out
  CHECK(calls == 0);
  CHECK(dma.live_mappings() == 0);  // unmapped at destroy, pages out included
  const MockDmaCounters at_destroy = dma.counters();
  std::thread([&] {
    for (int i = 0; i < 3; ++i) raw->recycle(out[i]);
  }).join();
  CHECK(calls == 0);
  raw->put_page(out[3], -1, false);
  CHECK(calls == 0);
  std::thread([&] { raw->put_page(out[4], -1, false); }).join();  // the last: frees the pool
  REQUIRE(calls == 1);
  CHECK(final_stats->released_after_destroy == kOut);
  CHECK(final_stats->recycle_ring == 0);
  CHECK(final_stats->recycle_cached == kBackBefore);
  CHECK(final_stats->alloc_slow == 1);  // one slow-path call brought pool_size pages
  CHECK(final_stats->alloc_fast == kOut + kBackBefore - 1);
  CHECK(final_stats->inflight == 0);
  CHECK(provider.allocated_blocks() == 0);
  // No DMA call after destroy: the late returns neither synced nor unmapped.
  const MockDmaCounters now = dma.counters();
  CHECK(now.syncs_for_device == at_destroy.syncs_for_device);
  CHECK(now.unmaps == at_destroy.unmaps);
  CHECK(now.unmap_errors == 0);
}

// One RX queue's workload, every free on another thread: 1024 live
// 1856-byte fragments of 64 KiB pages, freed oldest first. The freeing
// thread trails the owner by at most kSlack fragments.
TEST_CASE("held memory stays within 2 MiB when every free comes from another thread") {
  using Pool = PagePool<HeapProvider, NoDma>;
  using Frags = FragmentAllocator<Pool>;
  constexpr std::size_t kBig = 65536;
  constexpr std::size_t kLive = 1024, kSlack = 16, kAllocs = 60000;
  constexpr std::uint32_t kSize = 1856;
  for (bool mixed : {false, true}) {
    CAPTURE(mixed);
    HeapProvider provider = make_provider(kBig, 256);
    NoDma dma;
    // Sized as the MANA queue sizes its pool: ring entries / fragments per
    // page + 1.
    const std::size_t pool_size = kLive / (kBig / kSize) + 1;
    auto pool = Pool::create(provider, dma, {.pool_size = pool_size});
    REQUIRE(pool.ok());
    std::size_t most_blocks = 0;
    {
      auto made = Frags::create(**pool);
      REQUIRE(made.ok());
      Frags& frags = *made;
      std::vector<Page*> out(kAllocs, nullptr);  // written before `published` moves past it
      std::atomic<std::size_t> published{0};     // out[0, published) may be freed remotely
      std::atomic<std::size_t> freed{0};         // the remote thread's progress
      std::thread remote([&] {
        std::size_t i = 0;
        while (i < kAllocs) {
          const std::size_t upto = published.load(std::memory_order_acquire);
          if (i == upto) {
            std::this_thread::yield();
            continue;
          }
          for (; i < upto; ++i) {
            if (!mixed || i % 2 == 1) Frags::free_frag_remote(out[i]);
          }
          freed.store(i, std::memory_order_release);
        }
      });
      for (std::size_t i = 0; i < kAllocs; ++i) {
        if (i >= kLive) {
          // The oldest fragment leaves the window: in mixed mode the owner
          // frees the even ones itself, the remote thread the odd ones.
          const std::size_t old = i - kLive;
          if (mixed && old % 2 == 0) frags.free_frag(out[old]);
          published.store(old + 1, std::memory_order_release);
          while (freed.load(std::memory_order_acquire) + kSlack < old + 1) {
            std::this_thread::yield();
          }
        }
        const Frag f = frags.alloc_frag(kSize);
        REQUIRE(f);
        out[i] = f.page;
        most_blocks = std::max(most_blocks, provider.allocated_blocks());
      }
      for (std::size_t old = kAllocs - kLive; old < kAllocs; ++old) {
        if (mixed && old % 2 == 0) frags.free_frag(out[old]);
      }
      published.store(kAllocs, std::memory_order_release);
      remote.join();
    }
    pool->reset();
    CHECK(provider.allocated_blocks() == 0);
    // The provider's own count: at most 32 pages (2 MiB) ever out at once;
    // the window alone needs 1024 / 35 = 30.
    CHECK(most_blocks * kBig <= std::size_t{2} << 20);
    CHECK(most_blocks >= 30);
  }
}

}  // namespace
}  // namespace pagefrag
