// SPDX-License-Identifier: BSD-3-Clause
// Multi-thread tests of FragmentAllocator over PagePool (TSan and ASan in
// CI): one owner cutting fragments while three threads free some of them
// (the owner frees the rest), and allocator + pool destruction racing with
// remote frees. Oracles: the provider's block count (every page back exactly
// once; HeapProvider aborts on a double release) and byte patterns written
// into each fragment (an overlap or early reuse corrupts them).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "pagefrag/dma/no_dma.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace pagefrag {
namespace {

using Pool = PagePool<HeapProvider, NoDma>;
using Frags = FragmentAllocator<Pool>;

// Fragments handed to one remote thread (std::mutex: TSan sees the hand-over).
class FragQueue {
 public:
  void push(const Frag& frag) {
    // Bounded, so the owner never outruns the freeing threads by more than
    // the provider holds.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return frags_.size() < 256; });
    frags_.push_back(frag);
    cv_.notify_all();
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  std::optional<Frag> pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !frags_.empty(); });
    if (frags_.empty()) return std::nullopt;
    Frag f = frags_.front();
    frags_.pop_front();
    cv_.notify_all();
    return f;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Frag> frags_;
  bool closed_ = false;
};

// Fills a fragment with a pattern derived from its serial number; verifies it.
void stamp(const Frag& f, std::uint32_t serial, std::uint32_t size) {
  std::memset(f.va, static_cast<int>(serial & 0xff), size);
}
bool intact(const Frag& f, std::uint32_t serial, std::uint32_t size) {
  for (std::uint32_t i = 0; i < size; ++i) {
    if (f.va[i] != static_cast<std::byte>(serial & 0xff)) return false;
  }
  return true;
}

HeapProvider make_provider() {
  auto p = HeapProvider::create({.page_size = 65536, .max_order = 0, .capacity = 64 << 20});
  REQUIRE(p.ok());
  return *std::move(p);
}

struct Stamped {
  Frag frag;
  std::uint32_t serial;
};

TEST_CASE("one owner allocates fragments, three threads free most of them") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 256});
  REQUIRE(pool.ok());
  std::optional<Frags> frags(*Frags::create(*pool->get()));
  constexpr int kThreads = 3;
  constexpr std::uint32_t kFrags = 30000;
  constexpr std::uint32_t kSize = 1856;
  std::vector<FragQueue> queues(kThreads);
  std::atomic<int> corrupt{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (std::optional<Frag> f = queues[t].pop()) {
        // The serial travels in the fragment's first 4 bytes.
        std::uint32_t serial;
        std::memcpy(&serial, f->va, 4);
        if (!intact(Frag{f->page, 0, 0, f->va + 4, {}}, serial, kSize - 4)) ++corrupt;
        Frags::free_frag_remote(f->page);
      }
    });
  }
  std::deque<Stamped> mine;  // fragments the owner frees itself, a bit later
  for (std::uint32_t i = 0; i < kFrags; ++i) {
    Frag f = frags->alloc_frag(kSize);
    REQUIRE(f);
    stamp(f, i, kSize);
    std::memcpy(f.va, &i, 4);
    if (i % 4 == 0) {
      mine.push_back({f, i});
      if (mine.size() > 64) {
        Stamped s = mine.front();
        mine.pop_front();
        std::uint32_t serial;
        std::memcpy(&serial, s.frag.va, 4);
        CHECK(serial == s.serial);
        frags->free_frag(s.frag.page);
      }
    } else {
      queues[i % kThreads].push(f);
    }
  }
  for (auto& q : queues) q.close();
  for (auto& t : threads) t.join();
  for (const Stamped& s : mine) frags->free_frag(s.frag.page);
  CHECK(corrupt.load() == 0);
  frags->reclaim();
  // Only the current fragment page may still be out.
  CHECK((*pool)->handed_out() == (frags->current_page() != nullptr ? 1 : 0));
  frags.reset();
  CHECK((*pool)->handed_out() == 0);
  pool->reset();
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("allocator and pool destroyed while other threads still free fragments") {
  HeapProvider provider = make_provider();
  NoDma dma;
  for (int round = 0; round < 30; ++round) {
    auto pool = Pool::create(provider, dma, {.pool_size = 64});
    REQUIRE(pool.ok());
    std::optional<Frags> frags(*Frags::create(*pool->get()));
    constexpr int kThreads = 3;
    std::vector<std::vector<Frag>> out(kThreads);
    for (int i = 0; i < 300; ++i) out[i % kThreads].push_back(frags->alloc_frag(2000));
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        for (const Frag& f : out[t]) Frags::free_frag_remote(f.page);
      });
    }
    go.store(true, std::memory_order_release);
    frags.reset();
    pool->reset();
    for (auto& t : threads) t.join();
    CHECK(provider.allocated_blocks() == 0);
  }
}

}  // namespace
}  // namespace pagefrag
