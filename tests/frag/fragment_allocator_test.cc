// SPDX-License-Identifier: BSD-3-Clause
// Unit tests of FragmentAllocator: the page_pool_alloc() carving rules with
// hand-computed offsets and truesizes, the bias scheme (owner frees leave the
// shared count untouched; a page retires at the next request, as in the
// kernel, and goes back to the pool at once when nothing of it is out), remote
// frees, the watch set and destruction with fragments outstanding. Oracles:
// arithmetic from the kernel's rules, the provider's block count, and the
// pool's in-flight count against pages held by hand.
#include "pagefrag/frag/fragment_allocator.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"
#include "tests/support/in_child.h"

namespace pagefrag {
namespace {

using Pool = PagePool<HeapProvider, NoDma>;
using Frags = FragmentAllocator<Pool>;

struct Fixture {
  explicit Fixture(std::size_t page_size, FragmentAllocatorParams fp = {}) {
    auto p =
        HeapProvider::create({.page_size = page_size, .max_order = 0, .capacity = page_size * 256});
    REQUIRE(p.ok());
    provider.emplace(*std::move(p));
    auto pp = Pool::create(*provider, dma, {.pool_size = 64, .flags = kPagePoolDmaMap});
    REQUIRE(pp.ok());
    pool = *std::move(pp);
    auto f = Frags::create(*pool, fp);
    REQUIRE(f.ok());
    frags.emplace(*std::move(f));
  }
  ~Fixture() {
    frags.reset();
    pool.reset();
    CHECK(provider->allocated_blocks() == 0);
  }
  std::optional<HeapProvider> provider;
  NoDma dma;
  Pool::Handle pool;
  std::optional<Frags> frags;
};

TEST_CASE("create rejects a bad alignment or watch capacity") {
  Fixture f(4096);
  for (std::uint32_t align : {0u, 4u, 48u, 8192u}) {
    auto a = Frags::create(*f.pool, {.align = align, .watch_capacity = 8});
    REQUIRE_FALSE(a.ok());
    CHECK(std::string(a.status().message()).find("align") != std::string::npos);
  }
  CHECK_FALSE(Frags::create(*f.pool, {.align = 64, .watch_capacity = 0}).ok());
}

TEST_CASE("create rejects a sync-for-device pool whose window misses part of the page") {
  auto p = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 16 * 4096});
  REQUIRE(p.ok());
  NoDma dma;
  const std::uint32_t sync = kPagePoolDmaMap | kPagePoolDmaSyncDev;
  for (auto [offset, max_len] : {std::pair<std::uint32_t, std::uint32_t>{0, 2048}, {64, 4032}}) {
    auto pool = Pool::create(*p, dma,
                             {.pool_size = 4, .max_len = max_len, .offset = offset, .flags = sync});
    REQUIRE(pool.ok());
    auto made = Frags::create(**pool);
    REQUIRE_FALSE(made.ok());
    CHECK(made.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(made.status().message()).find("sync window") != std::string::npos);
  }
  auto whole = Pool::create(*p, dma, {.pool_size = 4, .max_len = 4096, .flags = sync});
  REQUIRE(whole.ok());
  CHECK(Frags::create(**whole).ok());
  // Without kPagePoolDmaSyncDev the window is never used: any is accepted.
  auto nosync = Pool::create(
      *p, dma, {.pool_size = 4, .max_len = 100, .offset = 64, .flags = kPagePoolDmaMap});
  REQUIRE(nosync.ok());
  CHECK(Frags::create(**nosync).ok());
}

TEST_CASE("sync_for_cpu(frag, len) syncs the fragment's own bytes") {
  auto p = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 16 * 4096});
  REQUIRE(p.ok());
  MockDma dma(MockDmaOptions{.mode = MockDmaMode::kStrict});
  using MockPool = PagePool<HeapProvider, MockDma>;
  auto pool = MockPool::create(
      *p, dma, {.pool_size = 4, .max_len = 4096, .flags = kPagePoolDmaMap | kPagePoolDmaSyncDev});
  REQUIRE(pool.ok());
  {
    auto made = FragmentAllocator<MockPool>::create(**pool);
    REQUIRE(made.ok());
    auto& frags = *made;
    const Frag a = frags.alloc_frag(1000);
    const Frag b = frags.alloc_frag(1000);  // at offset 1024: not the page's start
    REQUIRE(b.offset == 1024);
    std::vector<std::byte> packet(700, std::byte{0x5a});
    REQUIRE(dma.device_write(b.iova, packet).ok());
    CHECK_FALSE(dma.check_cpu_read(b.va, 700));
    frags.sync_for_cpu(b, 700);
    CHECK(dma.check_cpu_read(b.va, 700));
    CHECK(b.va[699] == std::byte{0x5a});
    frags.free_frag(a.page);
    frags.free_frag(b.page);
  }
  pool->reset();
}

TEST_CASE("1856-byte fragments in a 64 KiB page: 35 per page, the last one to the end") {
  Fixture f(65536);
  std::vector<Frag> got;
  for (int i = 0; i < 36; ++i) got.push_back(f.frags->alloc_frag(1856));
  for (int i = 0; i < 35; ++i) {
    CHECK(got[i].page == got[0].page);
    CHECK(got[i].offset == 1856u * i);  // 1856 is a multiple of 64
    CHECK(got[i].va == got[0].page->va + 1856 * i);
    CHECK(got[i].iova == Pool::dma_addr(got[0].page) + 1856u * i);
    CHECK(got[i].truesize == (i < 34 ? 1856u : 65536u - 34 * 1856u));
  }
  CHECK(got[34].truesize == 2432u);
  CHECK(got[35].page != got[0].page);
  CHECK(got[35].offset == 0);
  for (const Frag& g : got) f.frags->free_frag(g.page);
}

TEST_CASE("sizes round to the alignment; 2 * size > page bytes takes a whole page") {
  Fixture f(4096);
  Frag a = f.frags->alloc_frag(1);
  Frag b = f.frags->alloc_frag(65);
  CHECK(a.truesize == 64);
  CHECK(b.offset == 64);
  CHECK(b.truesize == 128);
  Frag whole = f.frags->alloc_frag(2049);  // rounds to 2112; 2 * 2112 > 4096
  CHECK(whole.page != a.page);
  CHECK(whole.offset == 0);
  CHECK(whole.truesize == 4096);
  // 2 * 2048 == 4096: still a fragment. It fits after the 192 bytes used;
  // a second would not, so it takes the rest of the page.
  Frag half1 = f.frags->alloc_frag(2048);
  CHECK(half1.page == a.page);
  CHECK(half1.offset == 192);
  CHECK(half1.truesize == 4096 - 192);
  Frag half2 = f.frags->alloc_frag(2048);
  Frag half3 = f.frags->alloc_frag(2048);
  CHECK(half2.page != a.page);
  CHECK(half2.offset == 0);
  CHECK(half2.truesize == 2048);
  CHECK(half3.page == half2.page);
  CHECK(half3.offset == 2048);
  CHECK(half3.truesize == 2048);
  for (const Frag& g : {a, b, whole, half1, half2, half3}) f.frags->free_frag(g.page);
  CHECK_FALSE(f.frags->alloc_frag(0));
  CHECK_FALSE(f.frags->alloc_frag(4097));
  CHECK(f.frags->stats().alloc_fail == 2);
  CHECK(f.frags->stats().full_pages == 1);

  Fixture g(4096, {.align = 256, .watch_capacity = 8});
  Frag c = g.frags->alloc_frag(1);
  Frag d = g.frags->alloc_frag(1);
  CHECK(d.offset == 256);
  g.frags->free_frag(c.va);
  g.frags->free_frag(d.va);
}

TEST_CASE("owner frees never touch the shared count; a page retires at the next request") {
  Fixture f(4096);
  Frag a = f.frags->alloc_frag(1024);
  Frag b = f.frags->alloc_frag(1024);
  Page* page = a.page;
  f.frags->free_frag(a.page);
  f.frags->free_frag(b.page);
  CHECK(page->ref.load() == kFragBias);  // no atomic read-modify-write happened
  CHECK(f.pool->handed_out() == 1);      // still the fragment page
  Frag c = f.frags->alloc_frag(1024);
  Frag d = f.frags->alloc_frag(1024);  // the last one: the page is used up
  CHECK(d.offset == 3072);
  CHECK(d.truesize == 1024);
  // As in the kernel, the page retires when the next request needs room.
  CHECK(f.frags->current_page() == page);
  f.frags->free_frag(c.page);
  f.frags->free_frag(d.page);
  CHECK(f.pool->handed_out() == 1);
  // Every fragment is back: retiring recycles the page into the pool's LIFO
  // cache, so the next request cuts the same page again.
  Frag e = f.frags->alloc_frag(1024);
  CHECK(e.page == page);
  CHECK(e.offset == 0);
  CHECK(f.pool->stats().recycle_cached == 1);
  // Two pages handed out: the slow path served the first, a cache hit the
  // second (the kernel counts only the hit in alloc_fast).
  CHECK(f.pool->stats().alloc_slow == 1);
  CHECK(f.pool->stats().alloc_fast == 1);
  CHECK(page->ref.load() == kFragBias);
  // With a fragment still out it is watched; the owner's last free
  // recycles it.
  Frag g = f.frags->alloc_frag(1024);
  Frag h = f.frags->alloc_frag(1024);
  Frag i = f.frags->alloc_frag(1024);
  Frag j = f.frags->alloc_frag(1024);  // another page: `page` retires
  CHECK(j.page != page);
  CHECK(f.frags->is_watched(page));
  CHECK(f.pool->handed_out() == 2);
  for (const Frag& x : {e, g, h}) f.frags->free_frag(x.page);
  CHECK(f.pool->handed_out() == 2);
  f.frags->free_frag(i.page);  // the owner's free completes it: recycled
  CHECK_FALSE(f.frags->is_watched(page));
  CHECK(f.pool->handed_out() == 1);
  CHECK(page->ref.load() == 1);
  CHECK(f.frags->stats().pages_merged == 0);
  f.frags->free_frag(j.page);
}

TEST_CASE("a page whose last free is remote: merged at retirement, or found by reclaim()") {
  Fixture f(4096);
  // Remote free before retirement: merged, the last remote free recycles.
  Frag a = f.frags->alloc_frag(2048);
  Frags::free_frag_remote(a.page);
  Frag b = f.frags->alloc_frag(2048);
  CHECK(f.frags->stats().pages_merged == 0);  // used up, not retired yet
  Frag c = f.frags->alloc_frag(2048);         // retires a's page
  CHECK(f.frags->stats().pages_merged == 1);
  CHECK(f.pool->handed_out() == 2);
  CHECK(a.page->ref.load() == 1);  // one fragment still out
  Frags::free_frag_remote(b.page);
  CHECK(f.pool->handed_out() == 1);
  CHECK(f.pool->stats().recycle_ring == 1);
  // No remote free before retirement: watched; remote frees alone leave it
  // for reclaim().
  Frag d = f.frags->alloc_frag(2048);
  Frag e = f.frags->alloc_frag(2048);  // retires c's page
  CHECK(f.frags->is_watched(c.page));
  Frags::free_frag_remote(c.page);
  Frags::free_frag_remote(d.page);
  CHECK(f.pool->handed_out() == 2);
  f.frags->reclaim();
  CHECK(f.pool->handed_out() == 1);
  CHECK(f.frags->watched_pages() == 0);
  f.frags->free_frag(e.page);
}

TEST_CASE("allocation never fails while a page finished by remote frees sits watched") {
  // Four pages in all: a provider of four, a pool of four.
  auto p = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 4 * 4096});
  REQUIRE(p.ok());
  NoDma dma;
  auto pool = Pool::create(*p, dma, {.pool_size = 4, .flags = kPagePoolDmaMap});
  REQUIRE(pool.ok());
  {
    auto made = Frags::create(**pool);
    REQUIRE(made.ok());
    Frags& frags = *made;
    std::vector<Frag> out;
    for (int i = 0; i < 8; ++i) out.push_back(frags.alloc_frag(2048));  // two per page
    for (const Frag& f : out) REQUIRE(f);
    // Pages 1 and 2 come back entirely through remote frees while they sit
    // watched: only the owner can find them.
    for (int i = 0; i < 4; ++i) Frags::free_frag_remote(out[static_cast<std::size_t>(i)].page);
    const Frag g = frags.alloc_frag(2048);
    CHECK(g);
    CHECK((g.page == out[0].page || g.page == out[2].page));  // a finished page, reused
    const Frag whole = frags.alloc_frag(4096);                // the other finished page
    CHECK(whole);
    if (g) frags.free_frag(g.page);
    if (whole) frags.free_frag(whole.page);
    for (std::size_t i = 4; i < 8; ++i) frags.free_frag(out[i].page);
  }
  pool->reset();
  CHECK(p->allocated_blocks() == 0);
}

TEST_CASE("alloc_frags cuts across pages as single requests would; free_frags returns them") {
  Fixture f(4096);
  // 1500 bytes round to 1536: two per 4 KiB page, the second taking the
  // rest of the page (4096 - 1536 = 2560).
  std::vector<Frag> out(5);
  REQUIRE(f.frags->alloc_frags(1500, out.data(), out.size()) == 5);
  const std::uint32_t want_offset[] = {0, 1536, 0, 1536, 0};
  const std::uint32_t want_truesize[] = {1536, 2560, 1536, 2560, 1536};
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(out[i].offset == want_offset[i]);
    CHECK(out[i].truesize == want_truesize[i]);
    CHECK(out[i].va == out[i].page->va + want_offset[i]);
    CHECK(out[i].iova == Pool::dma_addr(out[i].page) + want_offset[i]);
  }
  CHECK(out[0].page == out[1].page);
  CHECK(out[2].page == out[3].page);
  CHECK(std::set<Page*>{out[0].page, out[2].page, out[4].page}.size() == 3);
  CHECK(f.frags->stats().pages_used == 3);
  // A single request continues where the bulk call stopped.
  const Frag next = f.frags->alloc_frag(1500);
  CHECK(next.page == out[4].page);
  CHECK(next.offset == 1536);
  // The first two pages are retired and done once their runs come back:
  // both go back to the cache, one free_frags() call.
  const std::size_t cached = f.pool->cached();
  Page* back[] = {out[0].page, out[1].page, out[2].page, out[3].page};
  f.frags->free_frags(back, 4);
  CHECK(f.pool->cached() == cached + 2);
  CHECK(f.pool->handed_out() == 1);
  Page* last[] = {out[4].page, next.page};
  f.frags->free_frags(last, 2);
  CHECK(f.pool->handed_out() == 1);  // the fragment page stays out until retired
  // Bad sizes: nothing cut, one alloc_fail per call.
  const std::uint64_t fails = f.frags->stats().alloc_fail;
  CHECK(f.frags->alloc_frags(0, out.data(), 3) == 0);
  CHECK(f.frags->alloc_frags(4097, out.data(), 3) == 0);
  CHECK(f.frags->stats().alloc_fail == fails + 2);
}

TEST_CASE("alloc_frags: a page whose fragments all go to one call is watched, never current") {
  Fixture f(4096);
  // Hand-worked: 1000 bytes round to 1024, four per 4 KiB page, the fourth
  // at 3072 taking the rest (1024). The first call sets the size (one
  // fragment), finishes that page (three), then cuts page 2 whole (four) and
  // starts page 3 (one).
  std::vector<Frag> out(9);
  REQUIRE(f.frags->alloc_frags(1000, out.data(), out.size()) == 9);
  for (std::size_t i = 0; i < 9; ++i) {
    CHECK(out[i].offset == 1024 * (i % 4));
    CHECK(out[i].truesize == 1024);
    CHECK(out[i].va == out[i].page->va + out[i].offset);
    CHECK(out[i].iova == Pool::dma_addr(out[i].page) + out[i].offset);
  }
  Page* const whole = out[4].page;
  for (std::size_t i = 5; i < 8; ++i) CHECK(out[i].page == whole);
  CHECK(out[8].page != whole);
  CHECK(f.frags->current_page() == out[8].page);
  CHECK(f.frags->is_watched(out[0].page));  // retired when page 2 was taken
  CHECK(f.frags->is_watched(whole));        // retired as it was cut
  CHECK(f.frags->stats().pages_used == 3);
  CHECK(f.pool->handed_out() == 3);
  // Its owner frees bring it back at the fourth, not before.
  const std::size_t cached = f.pool->cached();
  Page* three[] = {whole, whole, whole};
  f.frags->free_frags(three, 3);
  CHECK(f.pool->handed_out() == 3);
  f.frags->free_frag(whole);
  CHECK(f.pool->handed_out() == 2);
  CHECK(f.pool->cached() == cached + 1);
  CHECK_FALSE(f.frags->is_watched(whole));
  // The visitor form hands out the same fragments the array form would: the
  // rest of page 3, then page 2 again (the cache's LIFO top), whole.
  std::vector<std::pair<std::size_t, Frag>> seen;
  CHECK(f.frags->alloc_frags(1000, 7,
                             [&](std::size_t i, const Frag& g) { seen.emplace_back(i, g); }) == 7);
  REQUIRE(seen.size() == 7);
  for (std::size_t i = 0; i < 7; ++i) {
    CHECK(seen[i].first == i);
    CHECK(seen[i].second.page == (i < 3 ? out[8].page : whole));
    CHECK(seen[i].second.offset == 1024 * ((i + 1) % 4));
  }
  // A remote free finishing the whole-cut page leaves it watched until the
  // owner looks (reclaim), as for any retired page.
  for (std::size_t i = 3; i < 7; ++i) Frags::free_frag_remote(seen[i].second.page);
  CHECK(f.frags->is_watched(whole));
  f.frags->reclaim();
  CHECK_FALSE(f.frags->is_watched(whole));
  for (std::size_t i = 0; i < 3; ++i) f.frags->free_frag(seen[i].second.page);
  for (const std::size_t i : {0, 1, 2, 3, 8}) f.frags->free_frag(out[i].page);
}

TEST_CASE("a size-0 request fails before any other request too (no size yet)") {
  Fixture f(4096);
  std::vector<Frag> out(2);
  CHECK_FALSE(f.frags->alloc_frag(0));
  CHECK(f.frags->alloc_frags(0, out.data(), out.size()) == 0);
  CHECK(f.frags->stats().alloc_fail == 2);
  CHECK(f.frags->stats().pages_used == 0);
  CHECK(f.pool->handed_out() == 0);
}

TEST_CASE("alloc_frags stops short when the pool runs dry") {
  auto p = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 2 * 4096});
  REQUIRE(p.ok());
  NoDma dma;
  auto pool = Pool::create(*p, dma, {.pool_size = 2});
  REQUIRE(pool.ok());
  auto frags = Frags::create(**pool);
  REQUIRE(frags.ok());
  std::vector<Frag> out(6);
  CHECK(frags->alloc_frags(2048, out.data(), out.size()) == 4);  // 2 pages x 2
  CHECK(frags->stats().alloc_fail == 1);
  Page* back[] = {out[0].page, out[1].page, out[2].page, out[3].page};
  frags->free_frags(back, 4);
}

TEST_CASE("free_frags_remote: one subtract per run of fragments of the same page") {
  Fixture f(4096);
  std::vector<Frag> p;  // 8 x 512 bytes: one page, used up
  for (int i = 0; i < 8; ++i) p.push_back(f.frags->alloc_frag(512));
  Frag q = f.frags->alloc_frag(512);  // a second page; the first retires, watched
  REQUIRE(q.page != p[0].page);
  REQUIRE(f.frags->is_watched(p[0].page));
  Page* run[] = {p[0].page, p[1].page, p[2].page};
  Frags::free_frags_remote(run, 3);
  CHECK(p[0].page->ref.load() == kFragBias - 3);
  for (int i = 3; i < 7; ++i) f.frags->free_frag(p[i].page);
  Page* mixed[] = {p[7].page, q.page};
  Frags::free_frags_remote(mixed, 2);
  CHECK(p[0].page->ref.load() == kFragBias - 4);
  CHECK(q.page->ref.load() == kFragBias - 1);
  CHECK(f.pool->handed_out() == 2);  // the first page's last free was remote
  f.frags->reclaim();
  CHECK(f.pool->handed_out() == 1);
  // A merged page: three fragments out, freed in one call that holds every
  // reference left, so it recycles (through the ring) without a subtract.
  Fixture g(4096);
  std::vector<Frag> c;
  for (int i = 0; i < 4; ++i) c.push_back(g.frags->alloc_frag(1024));
  Frags::free_frag_remote(c[0].page);
  Frag d = g.frags->alloc_frag(1024);  // retires c's page: merged with 3 out
  CHECK(g.frags->stats().pages_merged == 1);
  CHECK(c[0].page->ref.load() == 3);
  Page* rest[] = {c[1].page, c[2].page, c[3].page};
  Frags::free_frags_remote(rest, 3);
  CHECK(g.pool->stats().recycle_ring == 1);
  CHECK(g.pool->handed_out() == 1);
  g.frags->free_frag(d.page);
}

#if !defined(__SANITIZE_THREAD__) && !__has_feature(thread_sanitizer)
// (TSan's runtime and fork() do not mix; every other configuration runs it.)
TEST_CASE("a fragment freed twice aborts when its page retires") {
  Fixture f(4096);
  Frag a = f.frags->alloc_frag(2048);
  Frag b = f.frags->alloc_frag(2048);  // the page is used up
  Frags::free_frag_remote(a.page);
  f.frags->free_frag(b.page);
  const int status = testing::in_child([&] {
    f.frags->free_frag(a.page);  // a second free of `a`
    f.frags->alloc_frag(2048);   // retires the page: 3 frees of 2 fragments
  });
  CHECK(testing::aborted(status));
  Frag c = f.frags->alloc_frag(2048);  // in the parent the page is whole: cut again
  CHECK(c.page == a.page);
  f.frags->free_frag(c.page);
}

TEST_CASE("a page of a pool of another type never reaches a cast to this pool type") {
  Fixture f(4096);
  using OtherPool = PagePool<HeapProvider, NoDma, NoPoolStats>;
  static_assert(FragmentPool<OtherPool>);
  auto other = OtherPool::create(*f.provider, f.dma, {.pool_size = 4});
  REQUIRE(other.ok());
  Page* foreign = (*other)->alloc();
  REQUIRE(foreign != nullptr);
  CHECK(OtherPool::pool_of(foreign) == other->get());  // its own type: found
  CHECK(testing::aborted(testing::in_child([&] { Pool::pool_of(foreign); })));
  // The whole-page fragment's remote free is the last reference: it would
  // cast the page back to Pool.
  foreign->ref.store(1);
  CHECK(testing::aborted(testing::in_child([&] { Frags::free_frag_remote(foreign); })));
  (*other)->recycle_direct(foreign);
}
#endif

TEST_CASE("a full watch set merges a page; merged pages still recycle exactly once") {
  Fixture f(4096, {.align = 64, .watch_capacity = 2});
  std::vector<Frag> out;
  // 4 pages; the first 3 retire into a watch set of 2, so one is evicted.
  for (int i = 0; i < 8; ++i) out.push_back(f.frags->alloc_frag(2048));
  CHECK(f.frags->watched_pages() == 2);
  CHECK(f.frags->stats().pages_evicted == 1);
  CHECK(f.frags->stats().pages_merged == 1);
  CHECK(f.pool->handed_out() == 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i % 2 == 0) {
      f.frags->free_frag(out[i].page);
    } else {
      Frags::free_frag_remote(out[i].page);
    }
  }
  f.frags->reclaim();
  CHECK(f.pool->handed_out() == 1);  // the fragment page, used up but not yet retired
  CHECK(f.frags->watched_pages() == 0);
}

TEST_CASE("destroying the allocator with fragments out: remote frees bring every page back") {
  Fixture f(4096);
  std::vector<Frag> out;
  for (int i = 0; i < 5; ++i) out.push_back(f.frags->alloc_frag(1000));
  f.frags.reset();
  CHECK(f.pool->handed_out() == 2);
  for (const Frag& g : out) Frags::free_frag_remote(g.page);
  CHECK(f.pool->handed_out() == 0);
}

TEST_CASE("teardown in any order: the pool's destroy drains its fragment allocator") {
  for (const bool frags_out : {false, true}) {
    CAPTURE(frags_out);
    auto p = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 64 * 4096});
    REQUIRE(p.ok());
    NoDma dma;
    auto pool = Pool::create(*p, dma, {.pool_size = 16, .flags = kPagePoolDmaMap});
    REQUIRE(pool.ok());
    const std::uint64_t id = (*pool)->id();
    std::optional<Frags> frags;
    frags.emplace(*Frags::create(**pool));
    std::vector<Frag> out;
    for (int i = 0; i < 9; ++i) out.push_back(frags->alloc_frag(1000));  // 4 per page: 3 pages
    const std::size_t keep = frags_out ? 5 : 0;
    for (std::size_t i = keep; i < out.size(); ++i) frags->free_frag(out[i].page);
    pool->reset();                         // the handle goes first (member order can do this)
    CHECK_FALSE(frags->alloc_frag(1000));  // detached: allocations fail
    bool listed = false;
    for (const StuckPagePool& s : stuck_page_pools()) {
      if (s.pool_id != id) continue;
      listed = true;
      CHECK(s.inflight > 0);  // never "0 pages in flight" for a listed pool
    }
    CHECK(listed == frags_out);
    // Owner and remote frees after the pool is gone still return every page.
    for (std::size_t i = 0; i < keep; ++i) {
      if (i % 2 == 0) {
        frags->free_frag(out[i].page);
      } else {
        Frags::free_frag_remote(out[i].page);
      }
    }
    frags.reset();  // then the allocator
    CHECK(p->allocated_blocks() == 0);
    for (const StuckPagePool& s : stuck_page_pools()) CHECK(s.pool_id != id);
  }
}

}  // namespace
}  // namespace pagefrag
