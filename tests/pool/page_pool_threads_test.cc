// SPDX-License-Identifier: BSD-3-Clause
// Multi-thread tests of PagePool (run under TSan and ASan in CI): one owner
// allocating while other threads recycle, destroy racing with remote
// recycles (the CVE-2025-38129 bug class), and owner hand-off. The oracle is
// the provider's block count: every page the pool took comes back exactly
// once (HeapProvider aborts on a double release).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "pagefrag/dma/no_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace pagefrag {
namespace {

using Pool = PagePool<HeapProvider, NoDma>;

HeapProvider make_provider() {
  auto p = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 16 << 20});
  REQUIRE(p.ok());
  return *std::move(p);
}

// Pages handed from the owner to one remote thread; std::mutex so TSan sees
// the hand-over.
class PageQueue {
 public:
  void push(Page* page) {
    // Bounded, so the owner never outruns the freeing threads by more than
    // the provider holds.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return pages_.size() < 256; });
    pages_.push_back(page);
    cv_.notify_all();
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  // nullptr once closed and empty.
  Page* pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !pages_.empty(); });
    if (pages_.empty()) return nullptr;
    Page* page = pages_.front();
    pages_.pop_front();
    cv_.notify_all();
    return page;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Page*> pages_;
  bool closed_ = false;
};

TEST_CASE("one owner allocates, three threads recycle: every page comes back") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 256});
  REQUIRE(pool.ok());
  constexpr int kThreads = 3;
  constexpr int kPages = 20000;
  std::vector<PageQueue> queues(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (Page* page = queues[t].pop()) {
        // Alternate the two any-thread paths.
        if (reinterpret_cast<std::uintptr_t>(page->va) & 4096) {
          static_cast<Pool*>(page->pool)->recycle(page);
        } else {
          static_cast<Pool*>(page->pool)->put_page(page, -1, false);
        }
      }
    });
  }
  int failed = 0;
  for (int i = 0; i < kPages; ++i) {
    Page* page = (*pool)->alloc();
    // The provider may be exhausted while the recyclers lag behind (how far
    // depends on scheduling): the data path reports null, and the owner polls
    // again, as a driver would on its next NAPI round.
    while (page == nullptr) {
      ++failed;
      std::this_thread::yield();
      page = (*pool)->alloc();
    }
    page->va[0] = std::byte{1};  // the owner writes the page, the remote reads it
    if (i % 5 == 0) {
      (*pool)->recycle_direct(page);
    } else {
      queues[i % kThreads].push(page);
    }
  }
  for (auto& q : queues) q.close();
  for (auto& t : threads) t.join();
  CHECK((*pool)->handed_out() == 0);
  const PoolStatsSnapshot s = (*pool)->stats();
  CHECK(s.recycle_ring + s.recycle_ring_full + s.recycle_cached ==
        static_cast<std::uint64_t>(kPages));
  CHECK(s.alloc_fail == static_cast<std::uint64_t>(failed));
  pool->reset();
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("destroy racing with remote recycles frees the pool exactly once, after the last page") {
  HeapProvider provider = make_provider();
  NoDma dma;
  for (int round = 0; round < 50; ++round) {
    auto pool = Pool::create(provider, dma, {.pool_size = 64});
    REQUIRE(pool.ok());
    constexpr int kThreads = 3;
    constexpr int kPerThread = 40;
    std::vector<std::vector<Page*>> pages(kThreads, std::vector<Page*>(kPerThread));
    for (auto& v : pages) REQUIRE((*pool)->alloc_bulk(v.data(), kPerThread) == kPerThread);
    const std::uint64_t id = (*pool)->id();
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        for (Page* page : pages[t]) static_cast<Pool*>(page->pool)->recycle(page);
      });
    }
    go.store(true, std::memory_order_release);
    if (round % 2 == 0) std::this_thread::yield();
    pool->reset();  // page_pool_destroy while the threads still recycle
    for (auto& t : threads) t.join();
    CHECK(provider.allocated_blocks() == 0);
    auto stuck = stuck_page_pools();
    CHECK(std::none_of(stuck.begin(), stuck.end(), [&](auto& s) { return s.pool_id == id; }));
  }
}

TEST_CASE("owner hand-off while quiesced: the new owner continues with the cache") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 64});
  REQUIRE(pool.ok());
  Pool* p = pool->get();
  Page* kept = p->alloc();
  p->release_owner();
  std::atomic<int> stage{0};
  std::thread second([&] {
    p->claim_owner();
    p->recycle_direct(kept);
    Page* again = p->alloc();
    CHECK(again == kept);  // LIFO cache survived the hand-off
    for (int i = 0; i < 1000; ++i) p->recycle_direct(p->alloc());
    p->recycle_direct(again);
    p->release_owner();
    stage.store(1, std::memory_order_release);
  });
  second.join();
  CHECK(stage.load(std::memory_order_acquire) == 1);
  p->claim_owner();
  CHECK(p->handed_out() == 0);
  CHECK(p->stats().recycle_cached == 1002);
  pool->reset();
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("the stuck list never shows a pool with nothing in flight, racing destroy and returns") {
  HeapProvider provider = make_provider();
  NoDma dma;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread poller([&] {
    while (!stop.load(std::memory_order_acquire)) {
      for (const StuckPagePool& s : stuck_page_pools()) {
        if (s.inflight <= 0) bad.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  for (int round = 0; round < 3000; ++round) {
    auto pool = Pool::create(provider, dma, {.pool_size = 4});
    REQUIRE(pool.ok());
    Page* a = (*pool)->alloc();
    Page* b = (*pool)->alloc();
    REQUIRE((a != nullptr && b != nullptr));
    Pool* raw = pool->get();
    std::atomic<bool> go{false};
    std::thread returner([&] {
      while (!go.load(std::memory_order_acquire)) {
      }
      raw->recycle(a);  // races destroy(); b stays out until after it
    });
    go.store(true, std::memory_order_release);
    pool->reset();
    returner.join();
    raw->recycle(b);  // the last page: frees the pool
  }
  stop.store(true, std::memory_order_release);
  poller.join();
  CHECK(bad.load() == 0);
}

}  // namespace
}  // namespace pagefrag
