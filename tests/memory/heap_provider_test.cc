// SPDX-License-Identifier: BSD-3-Clause
// Tests of HeapProvider: the MemoryProvider conformance suite over several
// page sizes and orders, the factory's argument checks, and aborts on
// releases that break the provider's invariants.
#include "pagefrag/memory/heap_provider.h"

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "pagefrag/memory/locked_provider.h"
#include "tests/memory/provider_conformance.h"

namespace pagefrag {
namespace {

template <std::size_t PageSize, unsigned MaxOrder>
using HeapModel =
    testing::RegionProviderModel<HeapProvider, HeapProviderParams, PageSize, MaxOrder>;

struct LockedHeapModel : testing::HeapWrapperModel<LockedProvider<HeapProvider>> {
  static constexpr const char* kName = "LockedProvider<HeapProvider>";
};

TEST_CASE_TEMPLATE_INVOKE(memory_provider_conformance, HeapModel<4096, 0>, HeapModel<4096, 4>,
                          HeapModel<16384, 3>, HeapModel<65536, 2>, LockedHeapModel);

TEST_CASE("LockedProvider serialises threads sharing one provider") {
  auto heap = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 64 * 4096});
  REQUIRE(heap.ok());
  LockedProvider<HeapProvider> shared(*heap);
  static_assert(kShareableProvider<LockedProvider<HeapProvider>>);
  static_assert(!kShareableProvider<HeapProvider>);
  auto churn = [&] {
    std::vector<Page*> pages(8);
    for (int round = 0; round < 2000; ++round) {
      const std::size_t k = shared.alloc_bulk(0, pages.data(), pages.size());
      for (std::size_t i = 0; i < k; ++i) std::memset(pages[i]->va, round & 0xff, 64);
      shared.release_bulk(pages.data(), k);
    }
  };
  std::thread a(churn), b(churn), c(churn);
  a.join();
  b.join();
  c.join();
  CHECK(heap->allocated_blocks() == 0);
  CHECK(heap->free_bytes() == 64 * 4096);
}

// The message must name the field and state the valid range.
void check_invalid(const HeapProviderParams& params, const std::string& field,
                   const std::string& expected_range) {
  auto made = HeapProvider::create(params);
  REQUIRE_FALSE(made.ok());
  CHECK(made.status().code() == absl::StatusCode::kInvalidArgument);
  const std::string msg(made.status().message());
  CAPTURE(msg);
  CHECK(msg.find(field) != std::string::npos);
  CHECK(msg.find(expected_range) != std::string::npos);
}

TEST_CASE("HeapProvider::create rejects bad geometry with the valid range") {
  check_invalid({.page_size = 0}, "page_size 0", "[4096, 1073741824]");
  check_invalid({.page_size = 2048}, "page_size 2048", "power of two in [4096,");
  check_invalid({.page_size = 12288}, "page_size 12288", "power of two");
  check_invalid({.page_size = std::size_t{1} << 31}, "page_size 2147483648", "1073741824]");
  check_invalid({.page_size = 4096, .max_order = 21}, "max_order 21", "0..20");
  check_invalid({.page_size = std::size_t{1} << 30, .max_order = 11}, "max_order 11", "0..10");
  check_invalid({.page_size = 4096, .max_order = 4, .capacity = 0}, "capacity 0",
                "multiple of page_size << max_order (65536 bytes)");
  check_invalid({.page_size = 4096, .max_order = 4, .capacity = 65536 + 4096}, "capacity 69632",
                "(65536 bytes)");
  check_invalid({.page_size = 4096, .max_order = 0, .capacity = (std::size_t{1} << 40) + 4096},
                "capacity", "up to 1099511627776 bytes");
}

TEST_CASE("HeapProvider accepts the edges of the valid ranges") {
  CHECK(HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 4096}).ok());
  CHECK(HeapProvider::create({.page_size = 65536, .max_order = 14, .capacity = 65536 << 14}).ok());
  auto big = HeapProvider::create({.page_size = 4096, .max_order = 18, .capacity = 4096 << 18});
  REQUIRE(big.ok());
  CHECK(big->max_order() == 18);
}

TEST_CASE("HeapProvider counts free bytes and allocated blocks") {
  auto made = HeapProvider::create({.page_size = 4096, .max_order = 2, .capacity = 4 * 16384});
  REQUIRE(made.ok());
  HeapProvider& p = *made;
  CHECK(p.free_bytes() == 65536);
  Page* a = p.alloc(2);
  Page* b = p.alloc(0);
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(p.allocated_blocks() == 2);
  CHECK(p.free_bytes() == 65536 - 16384 - 4096);
  p.release(a);
  p.release(b);
  CHECK(p.allocated_blocks() == 0);
  CHECK(p.free_bytes() == 65536);
}

TEST_CASE("a moved HeapProvider keeps its blocks and metadata") {
  auto made = HeapProvider::create({.page_size = 4096, .max_order = 1, .capacity = 8192 * 2});
  REQUIRE(made.ok());
  Page* pg = made->alloc(1);
  REQUIRE(pg != nullptr);
  HeapProvider moved = *std::move(made);
  CHECK(moved.page_of(pg->va + 5000) == pg);
  moved.release(pg);
  CHECK(moved.free_bytes() == 16384);
}

TEST_CASE("releasing a block twice or a foreign Page aborts") {
  auto made = HeapProvider::create({.page_size = 4096, .max_order = 0, .capacity = 4 * 4096});
  REQUIRE(made.ok());
  HeapProvider& p = *made;
  const int twice = testing::in_child([&p] {
    Page* pg = p.alloc(0);
    p.release(pg);
    p.release(pg);
  });
  CHECK(WIFSIGNALED(twice));
  CHECK(WTERMSIG(twice) == SIGABRT);
  const int foreign = testing::in_child([&p] {
    Page stranger;
    p.release(&stranger);
  });
  CHECK(WIFSIGNALED(foreign));
  CHECK(WTERMSIG(foreign) == SIGABRT);
}

}  // namespace
}  // namespace pagefrag
