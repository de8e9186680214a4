// SPDX-License-Identifier: BSD-3-Clause
// Unit tests of PagePool: parameter validation, the cache/ring/provider
// paths, bounded bulk allocation, the held-bytes gauge, stats and destroy
// with pages in flight. Oracles are the provider's own block count, the
// kernel's documented rules and hand-computed numbers, never the pool's.
#include "pagefrag/pool/page_pool.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "pagefrag/dma/no_dma.h"
#include "pagefrag/memory/heap_provider.h"

namespace pagefrag {
namespace {

HeapProvider make_provider(std::size_t page_size = 4096, std::size_t capacity = 16 << 20) {
  auto p = HeapProvider::create({.page_size = page_size, .max_order = 4, .capacity = capacity});
  REQUIRE(p.ok());
  return *std::move(p);
}

using Pool = PagePool<HeapProvider, NoDma>;

std::string error_of(HeapProvider& provider, const PagePoolParams& params) {
  NoDma dma;
  auto pool = Pool::create(provider, dma, params);
  REQUIRE_FALSE(pool.ok());
  CHECK(pool.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(pool.status().message());
}

TEST_CASE("create rejects bad params, naming the field and the valid range") {
  HeapProvider provider = make_provider();
  CHECK(error_of(provider, {.order = 5}).find("order 5") != std::string::npos);
  CHECK(error_of(provider, {.order = 5}).find("0..4") != std::string::npos);
  CHECK(error_of(provider, {.pool_size = 0}).find("pool_size 0; expected 1..32768") !=
        std::string::npos);
  CHECK(error_of(provider, {.pool_size = 32769}).find("pool_size") != std::string::npos);
  CHECK(error_of(provider, {.flags = 4}).find("unknown bits") != std::string::npos);
  CHECK(error_of(provider, {.flags = kPagePoolDmaSyncDev}).find("kPagePoolDmaSyncDev needs") !=
        std::string::npos);
  CHECK(error_of(provider, {.max_len = 0, .flags = kPagePoolAllFlags}).find("max_len 0") !=
        std::string::npos);
  CHECK(error_of(provider, {.max_len = 4000, .offset = 256, .flags = kPagePoolAllFlags})
            .find("expected 1..3840") != std::string::npos);
  CHECK(error_of(provider, {.offset = 4096}).find("offset 4096") != std::string::npos);
  CHECK(error_of(provider, {.dma_dir = DmaDirection::kToDevice, .flags = kPagePoolDmaMap})
            .find("dma_dir to_device") != std::string::npos);
  CHECK(error_of(provider, {.flags = kPagePoolDmaMap, .premapped = true}).find("both set") !=
        std::string::npos);
  NoDma dma;
  CHECK(
      Pool::create(provider, dma, {.order = 4, .max_len = 65536, .flags = kPagePoolAllFlags}).ok());
}

TEST_CASE("the first alloc takes min(64, pool_size) pages from the provider, mapped once") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 1024, .flags = kPagePoolDmaMap});
  REQUIRE(pool.ok());
  Page* page = (*pool)->alloc();
  REQUIRE(page != nullptr);
  CHECK(provider.allocated_blocks() == 64);
  CHECK((*pool)->held_bytes() == 64 * 4096);
  CHECK((*pool)->handed_out() == 1);
  // NoDma maps identity: the page's dma is its CPU address.
  CHECK(Pool::dma_addr(page).value() == reinterpret_cast<std::uintptr_t>(page->va));
  CHECK((*pool)->page_of(page->va + 100) == page);
  PoolStatsSnapshot s = (*pool)->stats();
  CHECK(s.alloc_slow == 1);
  CHECK(s.alloc_empty == 1);
  CHECK(s.alloc_fast == 0);  // the slow path served it (the kernel counts no fast hit)
  CHECK(s.inflight == 64);   // hold - release: 63 cached + 1 out
  (*pool)->recycle_direct(page);
  CHECK((*pool)->handed_out() == 0);
  CHECK((*pool)->stats().recycle_cached == 1);
}

TEST_CASE("bulk allocation never takes the pool past pool_size pages held, but at least 1") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.order = 2, .pool_size = 5});
  REQUIRE(pool.ok());
  std::vector<Page*> pages(7);
  CHECK((*pool)->alloc_bulk(pages.data(), 7) == 7);
  // 5 in the first bulk, then one at a time: 7 pages of 16 KiB held.
  CHECK(provider.allocated_blocks() == 7);
  CHECK((*pool)->held_bytes() == 7 * 16384);
  CHECK((*pool)->held_bytes_high_water() == 7 * 16384);
  PoolStatsSnapshot s = (*pool)->stats();
  CHECK(s.alloc_slow_high_order == 3);
  CHECK(s.alloc_slow == 0);
  CHECK(std::set<Page*>(pages.begin(), pages.end()).size() == 7);
  for (Page* p : pages) (*pool)->recycle_direct(p);
  CHECK((*pool)->handed_out() == 0);
  CHECK(provider.allocated_blocks() == 7);  // kept for reuse
}

TEST_CASE("recycled pages come back LIFO from the cache without touching the provider") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 8});
  REQUIRE(pool.ok());
  Page* a = (*pool)->alloc();
  Page* b = (*pool)->alloc();
  (*pool)->recycle_direct(a);
  (*pool)->recycle_direct(b);
  CHECK((*pool)->alloc() == b);
  CHECK((*pool)->alloc() == a);
  CHECK(provider.allocated_blocks() == 8);
  (*pool)->recycle_direct(a);
  (*pool)->recycle_direct(b);
  pool->reset();
  CHECK(provider.allocated_blocks() == 0);
}

TEST_CASE("remote recycles go through the ring and refill the cache") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 4});
  REQUIRE(pool.ok());
  std::vector<Page*> pages(4);
  REQUIRE((*pool)->alloc_bulk(pages.data(), 4) == 4);
  for (Page* p : pages) (*pool)->recycle(p);
  CHECK((*pool)->handed_out() == 0);
  PoolStatsSnapshot s = (*pool)->stats();
  CHECK(s.recycle_ring == 4);
  Page* again = (*pool)->alloc();
  CHECK(std::find(pages.begin(), pages.end(), again) != pages.end());
  s = (*pool)->stats();
  CHECK(s.alloc_refill == 1);
  CHECK(provider.allocated_blocks() == 4);
  (*pool)->recycle_direct(again);
}

TEST_CASE("a full cache spills into the ring; a full ring releases to the provider") {
  HeapProvider provider = make_provider();
  NoDma dma;
  // Ring of 2 slots (pool_size 2), cache of 128.
  auto pool = Pool::create(provider, dma, {.pool_size = 2});
  REQUIRE(pool.ok());
  std::vector<Page*> pages(131);
  REQUIRE((*pool)->alloc_bulk(pages.data(), 131) == 131);
  CHECK(provider.allocated_blocks() == 131);
  for (Page* p : pages) (*pool)->recycle_direct(p);
  PoolStatsSnapshot s = (*pool)->stats();
  CHECK(s.recycle_cached == 128);
  CHECK(s.recycle_cache_full == 3);
  CHECK(s.recycle_ring == 2);
  CHECK(s.recycle_ring_full == 1);
  CHECK(provider.allocated_blocks() == 130);
  CHECK((*pool)->held_bytes() == 130 * 4096);
  CHECK((*pool)->held_bytes_high_water() == 131 * 4096);
}

TEST_CASE("put_page drops one reference and recycles on the last") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 8});
  REQUIRE(pool.ok());
  Page* page = (*pool)->alloc();
  Pool::ref_page(page);
  Pool::ref_page(page);
  (*pool)->put_page(page, -1, true);
  (*pool)->put_page(page, -1, false);
  CHECK((*pool)->handed_out() == 1);
  (*pool)->put_page(page, -1, true);
  CHECK((*pool)->handed_out() == 0);
  CHECK((*pool)->stats().recycle_cached == 1);
  CHECK(page->ref.load() == 1);
}

TEST_CASE("alloc returns nullptr and counts alloc_fail when the provider is exhausted") {
  HeapProvider provider = make_provider(4096, 64 << 10);  // 16 pages
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 64});
  REQUIRE(pool.ok());
  std::vector<Page*> pages(20);
  CHECK((*pool)->alloc_bulk(pages.data(), 20) == 16);
  CHECK((*pool)->alloc() == nullptr);
  CHECK((*pool)->stats().alloc_fail == 2);
  for (std::size_t i = 0; i < 16; ++i) (*pool)->recycle_direct(pages[i]);
}

TEST_CASE("destroy returns every held page; a pool with pages in flight waits for them") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 16});
  REQUIRE(pool.ok());
  Page* a = (*pool)->alloc();
  Page* b = (*pool)->alloc();
  const std::uint64_t id = (*pool)->id();
  CHECK(provider.allocated_blocks() == 16);
  pool->reset();
  CHECK(provider.allocated_blocks() == 2);
  auto stuck = stuck_page_pools();
  auto mine = std::find_if(stuck.begin(), stuck.end(), [&](auto& s) { return s.pool_id == id; });
  REQUIRE(mine != stuck.end());
  CHECK(mine->inflight == 2);
  CHECK(format_stuck_page_pools().find(fmt::format("page_pool {}: 2 pages", id)) !=
        std::string::npos);
  static_cast<Pool*>(a->pool)->recycle(a);
  CHECK(provider.allocated_blocks() == 1);
  static_cast<Pool*>(b->pool)->put_page(b, -1, false);
  CHECK(provider.allocated_blocks() == 0);
  stuck = stuck_page_pools();
  CHECK(std::none_of(stuck.begin(), stuck.end(), [&](auto& s) { return s.pool_id == id; }));
}

TEST_CASE("stats format with the kernel's names; the no-op policy counts nothing") {
  HeapProvider provider = make_provider();
  NoDma dma;
  auto pool = Pool::create(provider, dma, {.pool_size = 8});
  REQUIRE(pool.ok());
  (*pool)->recycle_direct((*pool)->alloc());
  const std::string text = fmt::format("{}", (*pool)->stats());
  CHECK(text.find("alloc_fast=0 alloc_slow=1") != std::string::npos);
  CHECK(text.find("recycle_cached=1") != std::string::npos);
  CHECK(text.find("held_bytes=32768") != std::string::npos);
  // The name/value table carries the same names and values, in list order.
  const PoolStatsSnapshot snap = (*pool)->stats();
  const auto table = counter_table(snap);
  CHECK(table.size() == static_cast<std::size_t>(PoolCounter::kCount) + 4);  // + 4 gauges
  CHECK(table[0].name == "alloc_fast");
  CHECK(table[static_cast<unsigned>(PoolCounter::kRecycleCached)].name == "recycle_cached");
  CHECK(table[static_cast<unsigned>(PoolCounter::kRecycleCached)].value == 1);
  CHECK(snap.get(PoolCounter::kAllocSlow) == 1);
  const PoolStatsSnapshot twice = counters_sum(snap, snap);
  CHECK(twice.recycle_cached == 2);
  CHECK(twice.held_bytes == 2 * snap.held_bytes);

  using Quiet = PagePool<HeapProvider, NoDma, NoPoolStats>;
  auto quiet = Quiet::create(provider, dma, {.pool_size = 8});
  REQUIRE(quiet.ok());
  Page* p = (*quiet)->alloc();
  CHECK((*quiet)->stats().alloc_fast == 0);
  CHECK((*quiet)->handed_out() == 1);
  (*quiet)->recycle_direct(p);
  CHECK(sizeof(Quiet) < sizeof(Pool));  // the no-op policy takes no bytes
}

TEST_CASE("pool ids are unique across pool types in one process") {
  HeapProvider provider = make_provider();
  NoDma dma;
  LockedProvider<HeapProvider> locked(provider);
  // Types no other test instantiates: a per-type counter gives each its id 1.
  using A = PagePool<LockedProvider<HeapProvider>, NoDma, NoPoolStats>;
  using B = PagePool<LockedProvider<HeapProvider>, NoDma>;
  auto a = A::create(locked, dma, {.pool_size = 4});
  auto b = B::create(locked, dma, {.pool_size = 4});
  auto c = Pool::create(provider, dma, {.pool_size = 4});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  const std::set<std::uint64_t> ids{(*a)->id(), (*b)->id(), (*c)->id()};
  CHECK(ids.size() == 3);
}

}  // namespace
}  // namespace pagefrag
