// SPDX-License-Identifier: BSD-3-Clause
// The conformance suites over the C API's run-time models: the
// MemoryProvider suite over c_api::AnyProvider holding a HeapProvider (the
// hugepage variant needs reserved hugepages, which `bazel test //...` does
// not have; HugepageProvider's own run is tests/memory's), and the DmaBackend suite over
// c_api::AnyDma holding CoherentDma and strict MockDma: the backends a C pool
// gets for PAGEFRAG_DMA_COHERENT and _MOCK_STRICT. (_NONE holds NoDma, whose
// own run is in tests/dma/mock_dma_test.cc; _VFIO holds ContainerVfioDma, run
// in the QEMU guest test, tests/vm.) The device side is the inner backend's
// simulated device, reached through a pointer kept before the backend moved
// into the variant.
//
// Includes the C API's implementation itself (no //:pagefrag_c): it is the
// only translation unit of this test that defines the C functions.
#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <memory>
#include <span>

#include "pagefrag/c/pagefrag_impl.h"
#include "tests/dma/dma_conformance.h"
#include "tests/memory/provider_conformance.h"

namespace pagefrag {
namespace {

// AnyProvider over the provider pagefrag_pool_create would build: its live
// count (the pool's lifetime, see pagefrag_impl.h) starts at zero and must
// be back at zero whenever the suite has released every block.
std::atomic<std::int64_t> g_live{0};
void no_op(void*) {}

template <class P, class Params, std::size_t PageSize, unsigned MaxOrder>
struct AnyProviderModel {
  using Provider = c_api::AnyProvider;
  static absl::StatusOr<Provider> make(std::size_t top_blocks) {
    absl::StatusOr<P> inner =
        testing::RegionProviderModel<P, Params, PageSize, MaxOrder>::make(top_blocks);
    if (!inner.ok()) return inner.status();
    return Provider(c_api::AnyProvider::Variant(*std::move(inner)), &g_live, &no_op, nullptr);
  }
};
struct AnyHeapModel : AnyProviderModel<HeapProvider, HeapProviderParams, 4096, 2> {
  static constexpr const char* kName = "AnyProvider (HeapProvider)";
};

TEST_CASE_TEMPLATE_INVOKE(memory_provider_conformance, AnyHeapModel);

// Runs after the suite (doctest's default order is by file and line).
TEST_CASE("AnyProvider counted every block the suite took and gave back") {
  CHECK(g_live.load() == 0);
}

alignas(4096) std::array<std::byte, 4 * 4096> g_memory;

std::span<std::byte> zeroed_memory(std::size_t bytes) {
  REQUIRE(bytes <= g_memory.size());
  g_memory.fill(std::byte{0});
  return g_memory;
}

// One AnyDma per test run over a fresh Inner, as make_dma() builds it.
template <class Inner>
struct AnyDmaModel {
  using Backend = c_api::AnyDma;
  static constexpr bool kTracksMappings = true;
  static inline Inner* inner = nullptr;
  static inline std::unique_ptr<c_api::AnyDma> any;
  static c_api::AnyDma& backend() {
    any.reset();
    auto made = make();
    inner = made.get();
    any = std::make_unique<c_api::AnyDma>(c_api::AnyDma::Variant(std::move(made)));
    return *any;
  }
  static std::span<std::byte> memory(std::size_t bytes) { return zeroed_memory(bytes); }
  static absl::Status device_write(c_api::AnyDma&, Iova iova, std::span<const std::byte> bytes) {
    return inner->device_write(iova, bytes);
  }
  static absl::Status device_read(c_api::AnyDma&, Iova iova, std::span<std::byte> out) {
    return inner->device_read(iova, out);
  }
  static std::unique_ptr<Inner> make();
};

struct CoherentAny : AnyDmaModel<CoherentDma> {
  static constexpr const char* kName = "AnyDma (CoherentDma)";
  static constexpr bool kFixedTranslation = true;  // Iova = VA + window base
};
template <>
std::unique_ptr<CoherentDma> AnyDmaModel<CoherentDma>::make() {
  return std::make_unique<CoherentDma>();
}

struct MockAny : AnyDmaModel<MockDma> {
  static constexpr const char* kName = "AnyDma (MockDma strict)";
};
template <>
std::unique_ptr<MockDma> AnyDmaModel<MockDma>::make() {
  return std::make_unique<MockDma>(MockDmaOptions{.mode = MockDmaMode::kStrict});
}

TEST_CASE_TEMPLATE_INVOKE(dma_backend_conformance, CoherentAny, MockAny);

// The suite checks what a device and the CPU see; strict MockDma also
// checks whose turn it is, which shows that AnyDma hands every sync to it.
TEST_CASE("AnyDma hands syncs to MockDma: ownership moves to the CPU and back") {
  c_api::AnyDma& any = MockAny::backend();
  MockDma& mock = *MockAny::inner;
  std::span<std::byte> buf = zeroed_memory(4096).first(1500);
  auto iova = any.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  const std::array<std::byte, 1500> packet{std::byte{7}};
  REQUIRE(mock.device_write(*iova, packet).ok());
  CHECK_FALSE(mock.check_cpu_read(buf.data(), buf.size()));  // the device's, unsynced
  any.sync_for_cpu(*iova, buf.size(), DmaDirection::kFromDevice);
  CHECK(mock.check_cpu_read(buf.data(), buf.size()));
  // The CPU owns the bytes now: a device write first needs sync_for_device.
  CHECK(mock.device_write(*iova, packet).code() == absl::StatusCode::kFailedPrecondition);
  any.sync_for_device(*iova, buf.size(), DmaDirection::kFromDevice);
  CHECK(mock.device_write(*iova, packet).ok());
  CHECK(any.unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok());
}

}  // namespace
}  // namespace pagefrag
