// SPDX-License-Identifier: BSD-3-Clause
// Tests of the IOVA range allocator VfioDma and MockDma share: ranges,
// clipping to a DMA mask, alignment, and a model of which bytes are free.
#include "pagefrag/dma/internal/iova_allocator.h"

#include <doctest/doctest.h>

#include <map>
#include <vector>

#include "tests/support/rc_doctest.h"

namespace pagefrag::internal {
namespace {

TEST_CASE("allocation stays inside the ranges and below the clip") {
  IovaAllocator a;
  // The ranges QEMU's VT-d reports (a hole for the MSI window at 0xfee00000).
  a.add_range(0, 0xfedfffff);
  a.add_range(0xfef00000, 0x7fffffffff);
  a.clip_above((std::uint64_t{1} << 28) - 1);  // edu: 28-bit DMA mask
  CHECK(a.total_bytes() == std::uint64_t{1} << 28);
  auto first = a.alloc(4096, 4096);
  REQUIRE(first);
  CHECK(*first == 0);
  auto big = a.alloc((std::uint64_t{1} << 27), std::uint64_t{1} << 27);
  REQUIRE(big);
  CHECK(*big == std::uint64_t{1} << 27);
  CHECK_FALSE(a.alloc(std::uint64_t{1} << 27, 4096));  // only 2^27 - 4096 left below
  a.free(*first, 4096);
  CHECK(a.alloc(std::uint64_t{1} << 27, 4096) == std::uint64_t{0});
}

TEST_CASE("a range above the clip disappears; the MSI hole is never handed out") {
  IovaAllocator a;
  a.add_range(0xfee00000 - 0x2000, 0xfedfffff + 0);  // ends just below the hole
  a.add_range(0xfef00000, 0xfef00000 + 0x1fff);
  auto x = a.alloc(0x2000, 4096);
  auto y = a.alloc(0x2000, 4096);
  REQUIRE(x);
  REQUIRE(y);
  CHECK(*x == 0xfee00000 - 0x2000);
  CHECK(*y == 0xfef00000);
  CHECK_FALSE(a.alloc(4096, 4096));
  IovaAllocator clipped;
  clipped.add_range(0x10000000, 0x1fffffff);
  clipped.clip_above(0x0fffffff);
  CHECK(clipped.empty());
  CHECK_FALSE(clipped.alloc(4096, 4096));
}

TEST_CASE("alloc/free sequences match a byte-set model (stateful)") {
  PAGEFRAG_RC_CHECK("allocated ranges are aligned, disjoint, inside; frees restore", [] {
    constexpr std::uint64_t kBase = 0x40000, kSize = 64 * 4096;
    IovaAllocator a;
    a.add_range(kBase, kBase + kSize - 1);
    std::map<std::uint64_t, std::uint64_t> live;  // start -> size
    const int steps = *rc::gen::inRange(1, 80);
    for (int s = 0; s < steps; ++s) {
      if (live.empty() || *rc::gen::inRange(0, 3) != 0) {
        const std::uint64_t size = 4096 * *rc::gen::inRange<std::uint64_t>(1, 9);
        const std::uint64_t align = 4096u << *rc::gen::inRange(0, 4);
        auto got = a.alloc(size, align);
        if (!got) continue;
        RC_ASSERT(*got % align == 0);
        RC_ASSERT(*got >= kBase);
        RC_ASSERT(*got + size <= kBase + kSize);
        auto next = live.lower_bound(*got);
        if (next != live.end()) RC_ASSERT(*got + size <= next->first);
        if (next != live.begin())
          RC_ASSERT(std::prev(next)->first + std::prev(next)->second <= *got);
        live.emplace(*got, size);
      } else {
        auto it = live.begin();
        std::advance(it, *rc::gen::inRange<std::size_t>(0, live.size()));
        a.free(it->first, it->second);
        live.erase(it);
      }
      std::uint64_t used = 0;
      for (const auto& [start, size] : live) used += size;
      RC_ASSERT(a.free_bytes() == kSize - used);
    }
    for (const auto& [start, size] : live) a.free(start, size);
    RC_ASSERT(a.alloc(kSize, 4096) == std::optional<std::uint64_t>(kBase));  // fully merged
  });
}

}  // namespace
}  // namespace pagefrag::internal
