// SPDX-License-Identifier: BSD-3-Clause
// Tests of HugepageProvider that need reserved 2 MiB hugepages (tagged
// manual; .ci/steps/20-hugepages.sh reserves them and runs this): the
// MemoryProvider conformance suite, and physical contiguity of blocks checked
// against the kernel's own page tables (/proc/self/pagemap, as root).
#include "pagefrag/memory/hugepage_provider.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>

#include "tests/memory/provider_conformance.h"

namespace pagefrag {
namespace {

template <std::size_t PageSize, unsigned MaxOrder>
using HugepageModel =
    testing::RegionProviderModel<HugepageProvider, HugepageProviderParams, PageSize, MaxOrder>;

TEST_CASE_TEMPLATE_INVOKE(memory_provider_conformance, HugepageModel<4096, 9>,
                          HugepageModel<65536, 5>, HugepageModel<(2u << 20), 0>);

// The page frame number behind va from /proc/self/pagemap (0 when the
// kernel hides PFNs, i.e. without CAP_SYS_ADMIN).
std::uint64_t pfn_of(const void* va) {
  const int fd = ::open("/proc/self/pagemap", O_RDONLY);
  REQUIRE(fd >= 0);
  std::uint64_t entry = 0;
  const off_t at = static_cast<off_t>(reinterpret_cast<std::uintptr_t>(va) / 4096 * 8);
  REQUIRE(::pread(fd, &entry, sizeof entry, at) == static_cast<ssize_t>(sizeof entry));
  ::close(fd);
  REQUIRE_MESSAGE((entry >> 63) == 1, "page not present");
  return entry & ((std::uint64_t{1} << 55) - 1);
}

TEST_CASE("every HugepageProvider block is physically contiguous") {
  static_assert(HugepageProvider::kPhysicallyContiguous);
  auto made = HugepageProvider::create({.page_size = 65536, .max_order = 5, .capacity = 4u << 20});
  REQUIRE_MESSAGE(made.ok(), made.status().ToString());
  Page* blocks[2];
  REQUIRE(made->alloc_bulk(5, blocks, 2) == 2);  // two whole 2 MiB blocks
  for (Page* block : blocks) {
    for (std::size_t off = 0; off < (2u << 20); off += 4096) block->va[off] = std::byte{1};
    const std::uint64_t first = pfn_of(block->va);
    REQUIRE_MESSAGE(first != 0, "PFNs hidden: run as root outside a sandbox");
    for (std::size_t off = 4096; off < (2u << 20); off += 4096) {
      CHECK(pfn_of(block->va + off) == first + off / 4096);
    }
  }
  made->release_bulk(blocks, 2);
}

}  // namespace
}  // namespace pagefrag
