// SPDX-License-Identifier: BSD-3-Clause
// Tests of PremappedRegion: one mapping of a provider's whole region, IOVAs
// by offset, unmapped on destruction, errors carrying the backend's reason.
#include "pagefrag/dma/premapped_region.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/memory/heap_provider.h"

namespace pagefrag {
namespace {

TEST_CASE("a premapped provider region: iova_of is base + offset and reaches the page") {
  MockDma dma;
  auto provider = HeapProvider::create({.page_size = 16384, .max_order = 2, .capacity = 4 << 16});
  REQUIRE(provider.ok());
  {
    auto region = PremappedRegion::create(dma, *provider, DmaDirection::kFromDevice);
    REQUIRE(region.ok());
    CHECK(dma.live_mappings() == 1);
    CHECK(region->region().data() == provider->region().data());
    CHECK(region->region().size() == provider->region().size());
    Page* pages[3];
    REQUIRE(provider->alloc_bulk(1, pages, 3) == 3);
    for (Page* pg : pages) {
      const std::uint64_t offset = static_cast<std::uint64_t>(pg->va - provider->region().data());
      CHECK(region->iova_of(pg->va) == region->base() + offset);
      CHECK(region->iova_of(pg->va + 100) == region->base() + offset + 100);
      CHECK(region->contains(pg->va + 32767));
      // The device writes at the page's IOVA; strict mode lands it in the page.
      const std::vector<std::byte> packet(1500, std::byte{0x5a});
      REQUIRE(dma.device_write(region->iova_of(pg->va + 64), packet).ok());
      dma.sync_for_cpu(region->iova_of(pg->va + 64), 1500, DmaDirection::kFromDevice);
      CHECK(dma.check_cpu_read(pg->va + 64, 1500));
      CHECK(pg->va[64] == std::byte{0x5a});
      CHECK(pg->va[64 + 1499] == std::byte{0x5a});
    }
    CHECK_FALSE(region->contains(provider->region().data() + provider->region().size()));
    CHECK_FALSE(region->contains(provider->region().data() - 1));
    PremappedRegion moved = *std::move(region);
    CHECK(moved.direction() == DmaDirection::kFromDevice);
    provider->release_bulk(pages, 3);
  }
  CHECK(dma.live_mappings() == 0);
  CHECK(dma.counters().unmaps == 1);
}

TEST_CASE("a failing map makes create fail with the backend's reason") {
  MockDma dma({.fail_nth_map = 1});
  std::vector<std::byte> bytes(8192);
  auto region = PremappedRegion::create(dma, std::span(bytes), DmaDirection::kToDevice);
  REQUIRE_FALSE(region.ok());
  CHECK(region.status().code() == absl::StatusCode::kResourceExhausted);
  const std::string msg(region.status().message());
  CHECK(msg.find("PremappedRegion: mapping 8192 bytes") != std::string::npos);
  CHECK(msg.find("injected failure") != std::string::npos);
}

}  // namespace
}  // namespace pagefrag
