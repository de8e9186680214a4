// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/internal/arena_provider.h: what every region provider
// shares.
//
// ArenaProvider owns one MappedRegion and the BuddyArena over it, and
// implements the MemoryProvider operations. HeapProvider and
// HugepageProvider derive from it and differ only in how the region is
// mapped and which geometries they accept. Not API: use the providers.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/pool_attachments.h"
#include "pagefrag/memory/internal/buddy_arena.h"
#include "pagefrag/memory/mapped_region.h"
#include "pagefrag/memory/page.h"

namespace pagefrag::internal {

class ArenaProvider {
 public:
  ArenaProvider(ArenaProvider&&) noexcept = default;
  ArenaProvider& operator=(ArenaProvider&&) noexcept = default;

  // Base page bytes and largest order, as created. Any thread.
  std::size_t page_size() const noexcept { return page_size_; }
  unsigned max_order() const noexcept { return max_order_; }

  // Stores up to n blocks of `order` (<= max_order()) in pages[0..k) and
  // returns k; k < n only when the region holds no more free blocks of that
  // order. Each block is aligned to its own size; its Page has va and order
  // set (pool-layer fields are the pool's to set). Owner (caller-serialised) only.
  std::size_t alloc_bulk(unsigned order, Page** pages, std::size_t n) {
    return arena_.alloc_bulk(order, pages, n);
  }
  // One block of `order`, or nullptr when none is free. Owner only.
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

  // The whole reserved region (what a PremappedRegion maps once). Any thread.
  std::span<std::byte> region() const noexcept { return arena_.region(); }

  // Bytes in free blocks, and blocks currently allocated. Owner only.
  std::size_t free_bytes() const noexcept { return arena_.free_bytes(); }
  std::size_t allocated_blocks() const noexcept { return arena_.allocated_blocks(); }

  // The pools using this provider (base/pool_attachments.h): destroying it while
  // one is attached aborts, naming the pools. Any thread.
  PoolAttachments& pool_attachments() noexcept { return pool_attachments_; }

 protected:
  // `region` is aligned to and a multiple of page_size << max_order
  // (validated by the derived factory).
  ArenaProvider(MappedRegion region, std::size_t page_size, unsigned max_order)
      : region_(std::move(region)),
        page_size_(page_size),
        max_order_(max_order),
        arena_({region_.data(), region_.size()}, log2_exact(page_size), max_order) {}
  ~ArenaProvider() = default;

 private:
  MappedRegion region_;
  std::size_t page_size_;
  unsigned max_order_;
  BuddyArena arena_;
  PoolAttachments pool_attachments_{"memory provider"};
};

}  // namespace pagefrag::internal
