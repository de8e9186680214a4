// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/hugepage_provider.h: HugepageProvider, pages carved from
// 2 MiB hugepages.
//
// HugepageProvider maps its whole region with MAP_HUGETLB | MAP_HUGE_2MB
// (the system's reserved hugepage pool, /proc/sys/vm/nr_hugepages) and hands
// out naturally aligned blocks of page_size << order bytes exactly like
// HeapProvider, with the same O(1) page_of. Because a block never exceeds one
// 2 MiB hugepage and hugepages are physically contiguous, every block is
// physically contiguous (kPhysicallyContiguous): a device without an IOMMU
// may be given a block of any order, and an IOMMU needs one IOTLB entry per
// 2 MiB instead of per 4 KiB.
//
// When the system has too few free hugepages, create() fails with a Status
// that says how many are needed, how many exist and how to reserve them.
// The region is MADV_DONTFORK like every DMA-able region.
//
// Thread contract: as HeapProvider (not thread-safe; caller-serialised).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>

#include "pagefrag/memory/internal/arena_provider.h"
#include "pagefrag/memory/internal/geometry.h"
#include "pagefrag/memory/mapped_region.h"
#include "pagefrag/memory/provider.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif

namespace pagefrag {

struct HugepageProviderParams {
  // Base page bytes: a power of two in [4096, 2 MiB].
  std::size_t page_size = 4096;
  // Largest order: page_size << max_order must not exceed 2 MiB.
  unsigned max_order = 4;
  // Region bytes: a positive multiple of 2 MiB (whole hugepages).
  std::size_t capacity = std::size_t{2} << 20;
};

namespace internal {

// The count `field` (e.g. "HugePages_Free") from /proc/meminfo, or -1.
inline long meminfo_count(const std::string& field) {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long value = 0;
  std::string unit;
  while (meminfo >> key >> value) {
    if (key == field + ":") return value;
    std::getline(meminfo, unit);
  }
  return -1;
}

}  // namespace internal

class HugepageProvider : public internal::ArenaProvider {
 public:
  static constexpr bool kPhysicallyContiguous = true;
  static constexpr std::size_t kHugepageSize = std::size_t{2} << 20;

  // Maps the region from the hugepage pool. Errors: InvalidArgument naming
  // the bad field and its valid range; FailedPrecondition when the system
  // has no hugepages configured, ResourceExhausted when too few are free
  // (both say how to reserve more); Internal for other mmap failures.
  // Setup path; any thread.
  static absl::StatusOr<HugepageProvider> create(const HugepageProviderParams& params) {
    if (absl::Status bad = check_params(params); !bad.ok()) return bad;
    absl::StatusOr<MappedRegion> region = MappedRegion::map_anonymous(
        params.capacity, kHugepageSize, MAP_HUGETLB | MAP_HUGE_2MB, "HugepageProvider");
    if (!region.ok()) {
      if (region.status().code() != absl::StatusCode::kResourceExhausted) return region.status();
      return explain_shortage(params.capacity);
    }
    return HugepageProvider(*std::move(region), params);
  }

  // The MemoryProvider operations (alloc_bulk, release_bulk, page_of, ...)
  // and their contracts are ArenaProvider's.

 private:
  HugepageProvider(MappedRegion region, const HugepageProviderParams& params)
      : ArenaProvider(std::move(region), params.page_size, params.max_order) {}

  static absl::Status check_params(const HugepageProviderParams& params) {
    if (absl::Status bad =
            internal::check_geometry("HugepageProvider", params.page_size, params.max_order,
                                     params.capacity, kHugepageSize, kHugepageSize);
        !bad.ok()) {
      return bad;
    }
    if (params.capacity % kHugepageSize != 0) {
      return absl::InvalidArgumentError(
          fmt::format("HugepageProvider: capacity {} is invalid; expected a positive multiple of "
                      "the 2 MiB hugepage size ({} bytes)",
                      params.capacity, kHugepageSize));
    }
    return absl::OkStatus();
  }

  static absl::Status explain_shortage(std::size_t capacity) {
    const long total = internal::meminfo_count("HugePages_Total");
    const long free = internal::meminfo_count("HugePages_Free");
    const std::size_t needed = capacity / kHugepageSize;
    const std::string msg = fmt::format(
        "HugepageProvider: mmap(MAP_HUGETLB | MAP_HUGE_2MB) of {} bytes failed: needs {} free "
        "2 MiB hugepages, the system has {} configured and {} free (HugePages_Total/_Free in "
        "/proc/meminfo); reserve more as root: echo {} > /proc/sys/vm/nr_hugepages",
        capacity, needed, total, free, (total > 0 ? total : 0) + static_cast<long>(needed));
    return total <= 0 ? absl::FailedPreconditionError(msg) : absl::ResourceExhaustedError(msg);
  }
};

static_assert(MemoryProvider<HugepageProvider>);

}  // namespace pagefrag
