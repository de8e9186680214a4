// SPDX-License-Identifier: BSD-3-Clause
// The fault-injection list and injector.
#include "examples/mana/fault.h"

#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <set>
#include <span>
#include <string>

#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "tests/dma/dma_conformance.h"
#include "tests/memory/provider_conformance.h"

namespace mana {
namespace {

using namespace pagefrag;  // NOLINT: tests name the library types unqualified

// The MemoryProvider conformance suite over InjectingProvider with nothing
// armed (a null injector).
struct InjectingHeapModel : testing::HeapWrapperModel<InjectingProvider<HeapProvider>> {
  static constexpr const char* kName = "InjectingProvider<HeapProvider>";
};

TEST_CASE_TEMPLATE_INVOKE(memory_provider_conformance, InjectingHeapModel);

// The DmaBackend conformance suite over InjectingDma with nothing armed (a
// null injector): it must be the strict MockDma it wraps, checked reads
// included. The device side is the inner MockDma's.
alignas(4096) std::array<std::byte, 4 * 4096> g_memory;

struct InjectingMockModel {
  using Backend = InjectingDma<MockDma>;
  static constexpr const char* kName = "InjectingDma<MockDma strict>";
  static constexpr bool kTracksMappings = true;
  static inline std::unique_ptr<MockDma> inner;
  static inline std::unique_ptr<Backend> dma;
  static Backend& backend() {
    dma.reset();
    inner = std::make_unique<MockDma>(MockDmaOptions{.mode = MockDmaMode::kStrict});
    dma = std::make_unique<Backend>(*inner);
    return *dma;
  }
  static std::span<std::byte> memory(std::size_t bytes) {
    REQUIRE(bytes <= g_memory.size());
    g_memory.fill(std::byte{0});
    return g_memory;
  }
  static absl::Status device_write(Backend& d, Iova iova, std::span<const std::byte> bytes) {
    return d.inner().device_write(iova, bytes);
  }
  static absl::Status device_read(Backend& d, Iova iova, std::span<std::byte> out) {
    return d.inner().device_read(iova, out);
  }
};

TEST_CASE_TEMPLATE_INVOKE(dma_backend_conformance, InjectingMockModel);

TEST_CASE("every declared fault point has a distinct name") {
  std::set<std::string> names;
  for (FaultPoint p : kAllFaultPoints) names.insert(std::string(to_string(p)));
  CHECK(names.size() == kFaultPointCount);
  CHECK(names.count("dma_map") == 1);
  CHECK(category_of(FaultPoint::kDmaMap) == FaultCategory::kDmaMap);
  CHECK(category_of(FaultPoint::kRxPoolCreate) == FaultCategory::kAlloc);
}

TEST_CASE("fail_nth fails exactly the n-th hit and counts hits") {
  FaultInjector inj;
  inj.fail_nth(FaultPoint::kRxRefill, 3);
  const bool expected[] = {false, false, true, false, false};
  for (bool e : expected) CHECK(inj.should_fail(FaultPoint::kRxRefill) == e);
  CHECK(inj.hits(FaultPoint::kRxRefill) == 5);
  CHECK(inj.failures(FaultPoint::kRxRefill) == 1);
  CHECK(inj.hits(FaultPoint::kDmaMap) == 0);
}

TEST_CASE("probability 0 never fails, 1 always fails, in between roughly p and repeatable") {
  FaultInjector a(42), b(42);
  a.set_probability(FaultCategory::kAlloc, 0.25);
  b.set_probability(FaultCategory::kAlloc, 0.25);
  int fails = 0;
  for (int i = 0; i < 10000; ++i) {
    const bool fa = a.should_fail(FaultPoint::kProviderAlloc);
    CHECK(fa == b.should_fail(FaultPoint::kProviderAlloc));
    fails += fa;
  }
  CHECK(fails > 2000);
  CHECK(fails < 3000);
  CHECK_FALSE(a.should_fail(FaultPoint::kDmaMap));  // other category untouched
  a.set_probability(FaultCategory::kDmaMap, 1.0);
  CHECK(a.should_fail(FaultPoint::kDmaMap));
}

TEST_CASE("InjectingProvider fails alloc_bulk at provider_alloc and forwards otherwise") {
  absl::StatusOr<HeapProvider> heap =
      HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 16 * 4096});
  REQUIRE(heap.ok());
  FaultInjector inj;
  InjectingProvider<HeapProvider> p(*heap, &inj);
  Page* pages[2] = {};
  inj.fail_nth(FaultPoint::kProviderAlloc, 1);
  CHECK(p.alloc_bulk(0, pages, 2) == 0);
  CHECK(p.alloc_bulk(0, pages, 2) == 2);
  CHECK(heap->allocated_blocks() == 2);
  p.release_bulk(pages, 2);
  CHECK(heap->allocated_blocks() == 0);
}

}  // namespace
}  // namespace mana
