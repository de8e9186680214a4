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
// paths; providers shared between pools need the caller's lock.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstddef>
#include <span>
#include <utility>

#include "pagefrag/base/bits.h"
#include "pagefrag/memory/internal/buddy_arena.h"
#include "pagefrag/memory/internal/geometry.h"
#include "pagefrag/memory/internal/mapped_region.h"
#include "pagefrag/memory/page.h"
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

class HeapProvider {
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
    absl::StatusOr<internal::MappedRegion> region =
        internal::MappedRegion::map_anonymous(params.capacity, block, 0, "HeapProvider");
    if (!region.ok()) return region.status();
    return HeapProvider(*std::move(region), params);
  }

  HeapProvider(HeapProvider&&) noexcept = default;
  HeapProvider& operator=(HeapProvider&&) noexcept = default;

  // Base page bytes and largest order, as created. Any thread.
  std::size_t page_size() const noexcept { return page_size_; }
  unsigned max_order() const noexcept { return max_order_; }

  // Stores up to n blocks of `order` (<= max_order()) in pages[0..k) and
  // returns k; k < n only when the region holds no more free blocks of that
  // order. Each block is aligned to its own size; its Page has va and order
  // set and pool-layer fields reset. Owner (caller-serialised) only.
  std::size_t alloc_bulk(unsigned order, Page** pages, std::size_t n) {
    return arena_.alloc_bulk(order, pages, n);
  }
  // One block of `order`, or nullptr when none is free.
  Page* alloc(unsigned order) {
    Page* page = nullptr;
    return alloc_bulk(order, &page, 1) == 1 ? page : nullptr;
  }

  // Returns n blocks of any orders. A Page that is not an allocated block of
  // this provider (double release, foreign page) aborts. Owner only.
  void release_bulk(Page** pages, std::size_t n) { arena_.release_bulk(pages, n); }
  void release(Page* page) { release_bulk(&page, 1); }

  // O(1): the Page of the allocated block holding addr; nullptr if addr is
  // outside the region or in a free block. Any thread, as long as the block
  // is not concurrently released.
  Page* page_of(const void* addr) const noexcept { return arena_.page_of(addr); }

  // The whole reserved region (what a PremappedRegion maps once).
  std::span<std::byte> region() const noexcept { return arena_.region(); }

  // Bytes in free blocks, and blocks currently allocated. Owner only.
  std::size_t free_bytes() const noexcept { return arena_.free_bytes(); }
  std::size_t allocated_blocks() const noexcept { return arena_.allocated_blocks(); }

 private:
  HeapProvider(internal::MappedRegion region, const HeapProviderParams& params)
      : region_(std::move(region)),
        page_size_(params.page_size),
        max_order_(params.max_order),
        arena_({region_.data(), region_.size()}, log2_exact(params.page_size), params.max_order) {}

  internal::MappedRegion region_;
  std::size_t page_size_;
  unsigned max_order_;
  internal::BuddyArena arena_;
};

static_assert(MemoryProvider<HeapProvider>);

}  // namespace pagefrag
