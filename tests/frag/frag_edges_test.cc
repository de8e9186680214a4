// SPDX-License-Identifier: BSD-3-Clause
// FragmentAllocator at its edges: fragments still out when pool, allocator
// and DMA backend are all destroyed, then freed from other threads; and
// hardened mode (base/hardened.h), whose checks must abort a double free
// within the page's count, a foreign page, a free of a fragment never handed
// out, and (with ASan) a use after free at the faulty access. Death tests run
// in a forked child (tests/support/in_child.h).
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "pagefrag/base/hardened.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/frag/internal/frag_liveness.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"
#include "tests/support/in_child.h"

namespace pagefrag {
namespace {

using testing::aborted;
using testing::in_child;

HeapProvider make_provider() {
  auto p = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 256 * 4096});
  REQUIRE(p.ok());
  return *std::move(p);
}

TEST_CASE("fragments out; pool, allocator and backend destroyed; freed from other threads") {
  for (const MockDmaMode mode : {MockDmaMode::kStrict, MockDmaMode::kBounce}) {
    CAPTURE(static_cast<int>(mode));
    using Pool = PagePool<HeapProvider, MockDma>;
    using Frags = FragmentAllocator<Pool>;
    HeapProvider provider = make_provider();
    auto dma = std::make_unique<MockDma>(MockDmaOptions{.mode = mode});
    auto pool = Pool::create(
        provider, *dma,
        {.pool_size = 16, .max_len = 4096, .flags = kPagePoolDmaMap | kPagePoolDmaSyncDev});
    REQUIRE(pool.ok());
    std::optional<Frags> frags;
    frags.emplace(*Frags::create(**pool));
    std::vector<Frag> out;
    for (int i = 0; i < 40; ++i) out.push_back(frags->alloc_frag(700));  // 5 per page: 8 pages
    for (std::size_t i = 0; i < out.size(); i += 4) frags->free_frag(out[i].va);
    std::vector<Page*> held;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (i % 4 != 0) held.push_back(out[i].page);
    }
    pool->reset();
    frags.reset();
    const MockDmaCounters c = dma->counters();
    CHECK(c.maps == c.unmaps);  // every mapping unmapped, pages out included
    CHECK(c.unmap_errors == 0);
    CHECK(c.sync_errors == 0);
    dma.reset();  // the caller closes the backend at once
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&held, t] {
        std::vector<Page*> mine;
        for (std::size_t i = static_cast<std::size_t>(t); i < held.size(); i += 3) {
          mine.push_back(held[i]);
        }
        // Half one at a time, half in one batch.
        const std::size_t half = mine.size() / 2;
        for (std::size_t i = 0; i < half; ++i) Frags::free_frag_remote(mine[i]);
        Frags::free_frags_remote(mine.data() + half, mine.size() - half);
      });
    }
    for (std::thread& t : threads) t.join();
    CHECK(provider.allocated_blocks() == 0);
  }
}

// ---- hardened mode ----

using Pool = PagePool<HeapProvider, NoDma>;
using Frags = FragmentAllocator<Pool>;

struct Rig {
  Rig() : provider(make_provider()) {
    auto p = Pool::create(provider, dma, {.pool_size = 8, .flags = kPagePoolDmaMap});
    REQUIRE(p.ok());
    pool = *std::move(p);
    frags.emplace(*Frags::create(*pool));
  }
  ~Rig() {
    frags.reset();
    pool.reset();
  }
  HeapProvider provider;
  NoDma dma;
  Pool::Handle pool;
  std::optional<Frags> frags;
};

bool skip_unless_hardened() {
  if (kHardened) return false;
  MESSAGE("skipped: built without PAGEFRAG_HARDENED (the asan and tsan configurations set it)");
  return true;
}

TEST_CASE("hardened liveness: a cut overlapping a live fragment on either side aborts") {
  // The liveness map itself (it backs hardened builds), in every build.
  Page page{};
  internal::FragLiveness live;
  live.on_cut(&page, 1856, 2432);  // a last fragment whose truesize runs on
  live.on_cut(&page, 0, 1856);     // touching it from below: fine
  CHECK(testing::aborted(testing::in_child([&] { live.on_cut(&page, 2048, 64); })));    // inside
  CHECK(testing::aborted(testing::in_child([&] { live.on_cut(&page, 1792, 128); })));   // across
  CHECK(testing::aborted(testing::in_child([&] { live.on_cut(&page, 4000, 1000); })));  // its end
  CHECK(testing::in_child([&] { live.on_cut(&page, 4288, 64); }) == 0);  // just past: fine
}

TEST_CASE("hardened: correct use passes, frees by address and by page mixed") {
  if (skip_unless_hardened()) return;
  Rig r;
  std::vector<Frag> out;
  for (int i = 0; i < 12; ++i) out.push_back(r.frags->alloc_frag(1000));  // 4 per page
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i % 3 == 0) {
      r.frags->free_frag(out[i].va + 10);  // any byte of the fragment names it
    } else if (i % 3 == 1) {
      r.frags->free_frag(out[i].page);
    } else {
      Frags::free_frag_remote(out[i].page);
    }
  }
  CHECK(r.pool->handed_out() == 1);  // the fragment page
}

TEST_CASE("ref_frag: an extra reference keeps the page until it comes back remotely") {
  Rig r;
  // Four 1000-byte fragments a page: cut them all, then one more, so the
  // first page is retired while references are out.
  std::vector<Frag> out;
  for (int i = 0; i < 5; ++i) out.push_back(r.frags->alloc_frag(1000));
  Page* page = out[0].page;
  REQUIRE(out[3].page == page);
  REQUIRE(out[4].page != page);
  Frags::ref_frag(page);  // as an mbuf bridge lends out[0] beyond the driver's free
  for (int i = 0; i < 4; ++i) r.frags->free_frag(out[static_cast<std::size_t>(i)].page);
  // Every fragment the allocator cut is back, the extra reference is not:
  // the page is still out (the fragment page out[4] lies on is too).
  CHECK(r.pool->handed_out() == 2);
  std::thread([page] { Frags::free_frag_remote(page); }).join();
  r.frags->reclaim();  // the last free was remote: the page is watched, or merged
  CHECK(r.pool->handed_out() == 1);
  r.frags->free_frag(out[4].va);
}

TEST_CASE("hardened: ref_frag of a page with no live fragment aborts") {
  if (skip_unless_hardened()) return;
  Rig r;
  Frag a = r.frags->alloc_frag(1000);
  Frag b = r.frags->alloc_frag(1000);
  r.frags->free_frag(a.va);
  r.frags->free_frag(b.va);
  Frag c = r.frags->alloc_frag(1000);  // the same page, now with one fragment out
  REQUIRE(c.page == a.page);
  r.frags->free_frag(c.page);
  CHECK(aborted(in_child([&] { Frags::ref_frag(c.page); })));
}

TEST_CASE("hardened: a double free within the page's count aborts") {
  if (skip_unless_hardened()) return;
  Rig r;
  // Four fragments of one page; freeing `a` twice stays within the count of
  // 4, so only per-fragment liveness can see it.
  Frag a = r.frags->alloc_frag(1000);
  Frag b = r.frags->alloc_frag(1000);
  CHECK(a.page == b.page);
  CHECK(aborted(in_child([&] {
    r.frags->free_frag(a.va);
    r.frags->free_frag(a.va);
  })));
  CHECK(aborted(in_child([&] {
    r.frags->free_frag(a.va);
    r.frags->free_frag_remote(a.va);
  })));
  // By page: four frees of a page with three fragments out (a, b, c).
  CHECK(aborted(in_child([&] {
    Frag c = r.frags->alloc_frag(1000);
    for (int i = 0; i < 4; ++i) r.frags->free_frag(c.page);
  })));
  CHECK(in_child([&] {
          r.frags->free_frag(a.va);
          r.frags->free_frag(b.va);
        }) == 0);
  r.frags->free_frag(a.va);
  r.frags->free_frag(b.va);
}

TEST_CASE("hardened: a free of a fragment never handed out aborts") {
  if (skip_unless_hardened()) return;
  Rig r;
  Frag a = r.frags->alloc_frag(1000);
  // The next 1000-byte slot of the same page was never cut.
  CHECK(aborted(in_child([&] { r.frags->free_frag(a.va + 1024); })));
  r.frags->free_frag(a.va);
}

TEST_CASE("hardened: a foreign page aborts") {
  if (skip_unless_hardened()) return;
  Rig mine;
  Rig other;
  Frag theirs = other.frags->alloc_frag(1000);
  Frag own = mine.frags->alloc_frag(1000);
  CHECK(aborted(in_child([&] { mine.frags->free_frag(theirs.page); })));
  // A page of no allocator at all (a pool page handed out whole).
  CHECK(aborted(in_child([&] {
    Page* whole = mine.pool->alloc();
    Frags::free_frag_remote(whole);
  })));
  mine.frags->free_frag(own.va);
  other.frags->free_frag(theirs.va);
}

TEST_CASE("hardened + ASan: a use after free is reported at the faulty access") {
  if (!kPoisoning) {
    MESSAGE(
        "skipped: needs PAGEFRAG_HARDENED and AddressSanitizer (the asan configuration); "
        "elsewhere nothing poisons freed fragments and the write succeeds silently");
    return;
  }
  Rig r;
  Frag a = r.frags->alloc_frag(1000);
  Frag b = r.frags->alloc_frag(1000);
  // ASan ends the child with abort (abort_on_error=1, as .bazelrc sets) or
  // exit code 1; either is a report. A live fragment's bytes stay usable.
  const auto died = [](int status) {
    return aborted(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
  };
  CHECK(died(in_child([&] {
    r.frags->free_frag(a.va);
    static_cast<volatile std::byte*>(a.va)[8] = std::byte{0xee};
  })));
  // A page back in the pool is poisoned too.
  CHECK(died(in_child([&] {
    Page* whole = r.pool->alloc();
    std::byte* va = whole->va;
    r.pool->recycle_direct(whole);
    static_cast<volatile std::byte*>(va)[0] = std::byte{1};
  })));
  // A live fragment stays usable next to a freed one. Checked in this
  // process: the provider's region is not inherited by a forked child
  // (MADV_DONTFORK, as DMA memory must be), so a child's access that ASan
  // lets through faults instead (and died() does not count a fault).
  static_cast<volatile std::byte*>(a.va)[8] = std::byte{0xee};
  r.frags->free_frag(b.va);
  static_cast<volatile std::byte*>(a.va)[999] = std::byte{0xee};
  r.frags->free_frag(a.va);
}

}  // namespace
}  // namespace pagefrag
