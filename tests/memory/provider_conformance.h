// SPDX-License-Identifier: BSD-3-Clause
// tests/memory/provider_conformance.h: the MemoryProvider conformance suite.
//
// One suite for every MemoryProvider model. A test file defines "model"
// types (a Provider type, a kName and a make(top_blocks) factory returning
// absl::StatusOr<Provider> with a region of top_blocks largest blocks) and
// instantiates the suite with
//   TEST_CASE_TEMPLATE_INVOKE(memory_provider_conformance, ModelA, ModelB);
//
// Oracles are independent of the provider's bookkeeping: a map of the live
// blocks the test holds (overlap and exhaustion are judged from it), and byte
// patterns written into every block (overlap shows as a clobbered pattern).
#pragma once

#ifndef __has_feature
#define __has_feature(x) 0
#endif

#include <absl/status/statusor.h>
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <list>
#include <map>
#include <vector>

#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/memory/provider.h"
#include "tests/support/in_child.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag::testing {

inline std::uintptr_t addr_of(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// The blocks a test holds, keyed by start address, with the pattern byte
// written into each.
class LiveBlocks {
 public:
  struct Block {
    Page* page;
    std::size_t bytes;
    std::byte pattern;
  };

  bool overlaps(std::uintptr_t start, std::size_t bytes) const {
    auto it = live_.lower_bound(start);
    if (it != live_.end() && it->first < start + bytes) return true;
    if (it == live_.begin()) return false;
    --it;
    return it->first + it->second.bytes > start;
  }

  // Whether an aligned, free range of `bytes` exists inside [base, base+size).
  bool has_free_aligned(std::uintptr_t base, std::size_t size, std::size_t bytes) const {
    for (std::uintptr_t s = base; s + bytes <= base + size; s += bytes) {
      if (!overlaps(s, bytes)) return true;
    }
    return false;
  }

  void add(Page* page, std::size_t bytes) {
    const auto pattern = static_cast<std::byte>(next_pattern_++ | 1);
    std::memset(page->va, static_cast<int>(pattern), bytes);
    live_.emplace(addr_of(page->va), Block{page, bytes, pattern});
  }

  // The pattern is intact in the block's first, middle and last bytes.
  static bool intact(const Block& b) {
    const std::byte* va = b.page->va;
    return va[0] == b.pattern && va[b.bytes / 2] == b.pattern && va[b.bytes - 1] == b.pattern;
  }

  std::map<std::uintptr_t, Block>& map() { return live_; }

 private:
  std::map<std::uintptr_t, Block> live_;
  unsigned next_pattern_ = 0;
};

// Every byte of an allocated block maps to its head Page (first, a base
// page boundary inside, last).
template <class Provider>
void check_page_of_covers(const Provider& p, Page* page, std::size_t bytes) {
  CHECK(p.page_of(page->va) == page);
  CHECK(p.page_of(page->va + bytes - 1) == page);
  CHECK(p.page_of(page->va + bytes / 2) == page);
  if (bytes > p.page_size()) CHECK(p.page_of(page->va + p.page_size()) == page);
}

// A model for providers whose params are {page_size, max_order, capacity}
// and whose factory is static create(params).
template <class P, class Params, std::size_t PageSize, unsigned MaxOrder>
struct RegionProviderModel {
  using Provider = P;
  static constexpr const char* kName = "region provider";
  static absl::StatusOr<P> make(std::size_t top_blocks) {
    Params params;
    params.page_size = PageSize;
    params.max_order = MaxOrder;
    params.capacity = top_blocks * (PageSize << MaxOrder);
    return P::create(params);
  }
};

// A model for a provider wrapping a HeapProvider (LockedProvider, a fault
// injector) and constructed from it by reference: every HeapProvider made
// here is kept alive for the test run, beyond the wrappers over it.
template <class Wrapper>
struct HeapWrapperModel {
  using Provider = Wrapper;
  static absl::StatusOr<Wrapper> make(std::size_t top_blocks) {
    static std::list<HeapProvider> heaps;
    auto heap = HeapProvider::create(
        {.page_size = 4096, .max_order = 2, .capacity = top_blocks * (4096 << 2)});
    if (!heap.ok()) return heap.status();
    return Wrapper(heaps.emplace_back(*std::move(heap)));
  }
};

}  // namespace pagefrag::testing

TEST_CASE_TEMPLATE_DEFINE("MemoryProvider conformance", Model, memory_provider_conformance) {
  using Provider = typename Model::Provider;
  using pagefrag::Page;
  using pagefrag::testing::addr_of;
  static_assert(pagefrag::MemoryProvider<Provider>);
  constexpr std::size_t kTopBlocks = 4;
  auto made = Model::make(kTopBlocks);
  REQUIRE_MESSAGE(made.ok(), made.status().ToString());
  Provider& p = *made;
  const std::size_t top = p.page_size() << p.max_order();
  const auto base = addr_of(p.region().data());
  CAPTURE(Model::kName);

  SUBCASE("the region is one aligned range of whole largest blocks") {
    CHECK(p.page_size() >= 4096);
    CHECK((p.page_size() & (p.page_size() - 1)) == 0);
    CHECK(p.region().size() == kTopBlocks * top);
    CHECK(base % top == 0);
  }

  SUBCASE("every order: exhausting the region yields aligned, disjoint blocks") {
    for (unsigned order = 0; order <= p.max_order(); ++order) {
      const std::size_t bytes = p.page_size() << order;
      const std::size_t expected = p.region().size() / bytes;
      std::vector<Page*> pages(expected + 3);
      const std::size_t got = p.alloc_bulk(order, pages.data(), pages.size());
      CHECK(got == expected);
      pagefrag::testing::LiveBlocks live;
      for (std::size_t i = 0; i < got; ++i) {
        Page* pg = pages[i];
        CHECK(pg->order == order);
        CHECK(addr_of(pg->va) % bytes == 0);
        CHECK(addr_of(pg->va) >= base);
        CHECK(addr_of(pg->va) + bytes <= base + p.region().size());
        CHECK_FALSE(live.overlaps(addr_of(pg->va), bytes));
        live.add(pg, bytes);
        pagefrag::testing::check_page_of_covers(p, pg, bytes);
      }
      for (auto& [start, block] : live.map()) CHECK(live.intact(block));
      CHECK(p.alloc_bulk(order, pages.data(), 1) == 0);
      p.release_bulk(pages.data(), got);
    }
  }

  SUBCASE("released blocks coalesce back into largest blocks") {
    std::vector<Page*> small(p.region().size() / p.page_size());
    REQUIRE(p.alloc_bulk(0, small.data(), small.size()) == small.size());
    // Release in an order that leaves buddies apart as long as possible.
    std::vector<Page*> odd, even;
    for (std::size_t i = 0; i < small.size(); ++i) (i % 2 ? odd : even).push_back(small[i]);
    p.release_bulk(odd.data(), odd.size());
    p.release_bulk(even.data(), even.size());
    std::vector<Page*> big(kTopBlocks);
    CHECK(p.alloc_bulk(p.max_order(), big.data(), big.size()) == kTopBlocks);
    p.release_bulk(big.data(), big.size());
  }

  SUBCASE("page_of is null outside the region and in free blocks") {
    CHECK(p.page_of(p.region().data() - 1) == nullptr);
    CHECK(p.page_of(p.region().data() + p.region().size()) == nullptr);
    CHECK(p.page_of(nullptr) == nullptr);
    CHECK(p.page_of(p.region().data()) == nullptr);
    Page* pg = nullptr;
    REQUIRE(p.alloc_bulk(0, &pg, 1) == 1);
    CHECK(p.page_of(pg->va) == pg);
    p.release_bulk(&pg, 1);
    CHECK(p.page_of(pg->va) == nullptr);
  }

// ThreadSanitizer's runtime maps memory of its own in a forked child, and it
// may land in the hole MADV_DONTFORK left; the check runs in every other
// configuration.
#if !defined(__SANITIZE_THREAD__) && !__has_feature(thread_sanitizer)
  SUBCASE("the region is not inherited by a forked child (MADV_DONTFORK)") {
    Page* pg = nullptr;
    REQUIRE(p.alloc_bulk(0, &pg, 1) == 1);
    pg->va[0] = std::byte{1};
    std::byte* va = pg->va;
    const int status = pagefrag::testing::in_child([va] {
      unsigned char vec = 0;
      // mincore fails with ENOMEM for addresses the child does not map.
      const bool unmapped = ::mincore(va, 4096, &vec) != 0 && errno == ENOMEM;
      ::_exit(unmapped ? 0 : 1);
    });
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    p.release_bulk(&pg, 1);
  }
#endif

  SUBCASE("random alloc/release sequences keep every block intact (stateful)") {
    PAGEFRAG_RC_CHECK("provider matches a live-block model", [] {
      auto fresh = Model::make(kTopBlocks);  // a failed run never taints the next
      RC_ASSERT(fresh.ok());
      Provider& p = *fresh;
      const std::size_t top = p.page_size() << p.max_order();
      const auto base = addr_of(p.region().data());
      pagefrag::testing::LiveBlocks live;
      const std::size_t steps = *rc::gen::inRange<std::size_t>(1, 60);
      for (std::size_t s = 0; s < steps; ++s) {
        if (*rc::gen::inRange(0, 3) != 0) {
          const unsigned order = *rc::gen::inRange(0u, p.max_order() + 1);
          const std::size_t n = *rc::gen::inRange<std::size_t>(1, 9);
          const std::size_t bytes = p.page_size() << order;
          std::vector<Page*> got(n);
          const std::size_t k = p.alloc_bulk(order, got.data(), n);
          for (std::size_t i = 0; i < k; ++i) {
            RC_ASSERT(got[i]->order == order);
            RC_ASSERT(addr_of(got[i]->va) % bytes == 0);
            RC_ASSERT(!live.overlaps(addr_of(got[i]->va), bytes));
            RC_ASSERT(p.page_of(got[i]->va + bytes - 1) == got[i]);
            live.add(got[i], bytes);
          }
          // Short only when the model agrees nothing aligned is free.
          if (k < n) RC_ASSERT(!live.has_free_aligned(base, p.region().size(), bytes));
        } else if (!live.map().empty()) {
          auto it = live.map().begin();
          std::advance(it, *rc::gen::inRange<std::size_t>(0, live.map().size()));
          RC_ASSERT(live.intact(it->second));
          Page* pg = it->second.page;
          live.map().erase(it);
          p.release_bulk(&pg, 1);
        }
      }
      for (auto& [start, block] : live.map()) {
        RC_ASSERT(live.intact(block));
        Page* pg = block.page;
        p.release_bulk(&pg, 1);
      }
      // Everything returned: the region is whole largest blocks again.
      std::vector<Page*> big(p.region().size() / top);
      RC_ASSERT(p.alloc_bulk(p.max_order(), big.data(), big.size()) == big.size());
      p.release_bulk(big.data(), big.size());
    });
  }
}
