// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/heap_provider.h: HeapProvider, pages from one anonymous
// mapping.
//
// HeapProvider reserves one region of ordinary (4 KiB host page) anonymous
// memory up front, marked MADV_DONTFORK, and hands out naturally aligned
// blocks of page_size << order bytes for any power-of-two page_size >= 4096
// (so a 4 KiB host can model a 64 KiB-page platform) and any order up to
// max_order. page_of() is O(1): one subtraction, shift and load into a
// metadata array with one entry per base page.
//
// Blocks are virtually contiguous only: host pages behind a block may be
// scattered physically, so kPhysicallyContiguous is false and a device
// without an IOMMU must not be given a block larger than a host page.
//
// Thread contract: not thread-safe. One PagePool calls it from its slow
// paths; pools that share one use LockedProvider<HeapProvider>.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstddef>
#include <utility>

#include "pagefrag/memory/internal/arena_provider.h"
#include "pagefrag/memory/internal/geometry.h"
#include "pagefrag/memory/locked_provider.h"
#include "pagefrag/memory/mapped_region.h"
#include "pagefrag/memory/provider.h"

namespace pagefrag {

struct HeapProviderParams {
  // Base page bytes: a power of two in [4096, 1 GiB].
  std::size_t page_size = 4096;
  // Largest order alloc_bulk accepts: 0..20.
  unsigned max_order = 4;
  // Region bytes: a positive multiple of page_size << max_order, <= 1 TiB.
  std::size_t capacity = std::size_t{64} << 20;
};

class HeapProvider : public internal::ArenaProvider {
 public:
  static constexpr bool kPhysicallyContiguous = false;
  static constexpr std::size_t kMaxPageSize = std::size_t{1} << 30;

  // Reserves the region. Errors: InvalidArgument naming the bad field and its
  // valid range; ResourceExhausted/Internal when mmap or madvise fails.
  // Setup path; any thread.
  static absl::StatusOr<HeapProvider> create(const HeapProviderParams& params) {
    if (absl::Status bad =
            internal::check_geometry("HeapProvider", params.page_size, params.max_order,
                                     params.capacity, kMaxPageSize, internal::kMaxCapacity);
        !bad.ok()) {
      return bad;
    }
    const std::size_t block = params.page_size << params.max_order;
    absl::StatusOr<MappedRegion> region =
        MappedRegion::map_anonymous(params.capacity, block, 0, "HeapProvider");
    if (!region.ok()) return region.status();
    return HeapProvider(*std::move(region), params);
  }

  // The MemoryProvider operations (alloc_bulk, release_bulk, page_of, ...)
  // and their contracts are ArenaProvider's.

 private:
  HeapProvider(MappedRegion region, const HeapProviderParams& params)
      : ArenaProvider(std::move(region), params.page_size, params.max_order) {}
};

static_assert(MemoryProvider<HeapProvider>);
static_assert(!kShareableProvider<HeapProvider>);
static_assert(MemoryProvider<LockedProvider<HeapProvider>>);
static_assert(kShareableProvider<LockedProvider<HeapProvider>>);

}  // namespace pagefrag
