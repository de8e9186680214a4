// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/internal/buddy_arena.h: the block allocator of providers.
//
// BuddyArena hands out naturally aligned blocks of page_size << order bytes
// from one region whose size is a multiple of the largest block. Free blocks
// sit on one intrusive list per order (links are slot indices in side
// arrays, so free memory itself is never touched); a released block merges
// with its free buddy, order by order, as in the kernel's page allocator.
//
// Metadata is one Page per base-page slot, indexed by
// (addr - base) >> page_shift. While a block is allocated, every slot it
// covers points at the block's head Page, so page_of() is one subtraction,
// one shift and one load. Slots of free blocks map to nullptr.
//
// Not thread-safe; not API (providers wrap it).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/memory/page.h"

namespace pagefrag::internal {

class BuddyArena {
 public:
  BuddyArena() = default;

  // `region` must be aligned to, and a multiple of, page_size << max_order
  // (callers validate; violations are broken invariants).
  BuddyArena(std::span<std::byte> region, unsigned page_shift, unsigned max_order)
      : base_(region.data()),
        bytes_(region.size()),
        page_shift_(page_shift),
        max_order_(max_order),
        slots_(region.size() >> page_shift),
        pages_(std::make_unique<Page[]>(slots_)),
        heads_(std::make_unique<Page*[]>(slots_)),
        links_(slots_),
        free_(max_order + 1, kNil) {
    const std::size_t top = std::size_t{1} << max_order;
    PAGEFRAG_CHECK(slots_ % top == 0 && slots_ < kNil, "slots {} top {}", slots_, top);
    for (std::size_t i = slots_; i >= top; i -= top) {
      push(static_cast<std::uint32_t>(i - top), max_order);  // lowest block first in the list
    }
    free_bytes_ = bytes_;
  }

  // Stores up to n blocks of `order` in pages[0..k), returns k; k < n only
  // when no free block of that order or larger remains.
  std::size_t alloc_bulk(unsigned order, Page** pages, std::size_t n) {
    PAGEFRAG_CHECK(order <= max_order_, "order {} > max_order {}", order, max_order_);
    std::size_t k = 0;
    while (k < n) {
      Page* page = alloc_one(order);
      if (page == nullptr) break;
      pages[k++] = page;
    }
    return k;
  }

  // Returns n allocated blocks. Releasing a block twice or a Page that is
  // not the head of an allocated block of this arena aborts.
  void release_bulk(Page* const* pages, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) release_one(pages[k]);
  }

  // The head Page of the allocated block holding addr; nullptr when addr is
  // outside the region or inside a free block.
  PAGEFRAG_ALWAYS_INLINE Page* page_of(const void* addr) const noexcept {
    const std::uintptr_t off =
        reinterpret_cast<std::uintptr_t>(addr) - reinterpret_cast<std::uintptr_t>(base_);
    if (PAGEFRAG_UNLIKELY(off >= bytes_)) return nullptr;
    return heads_[off >> page_shift_];
  }

  std::span<std::byte> region() const noexcept { return {base_, bytes_}; }
  std::size_t free_bytes() const noexcept { return free_bytes_; }
  std::size_t allocated_blocks() const noexcept { return allocated_blocks_; }

 private:
  static constexpr std::uint32_t kNil = UINT32_MAX;
  static constexpr std::uint8_t kNone = 0;     // slot heads no block
  static constexpr std::uint8_t kFree = 0x40;  // | order: heads a free block
  static constexpr std::uint8_t kUsed = 0x80;  // | order: heads an allocated block

  struct Link {
    std::uint32_t next = kNil;
    std::uint32_t prev = kNil;
    std::uint8_t state = kNone;
  };

  void push(std::uint32_t i, unsigned order) noexcept {
    links_[i] = Link{free_[order], kNil, static_cast<std::uint8_t>(kFree | order)};
    if (free_[order] != kNil) links_[free_[order]].prev = i;
    free_[order] = i;
  }

  void unlink(std::uint32_t i, unsigned order) noexcept {
    Link& link = links_[i];
    if (link.prev != kNil)
      links_[link.prev].next = link.next;
    else
      free_[order] = link.next;
    if (link.next != kNil) links_[link.next].prev = link.prev;
    link = Link{};
  }

  PAGEFRAG_NOINLINE Page* alloc_one(unsigned order) {
    unsigned k = order;
    while (k <= max_order_ && free_[k] == kNil) ++k;
    if (k > max_order_) return nullptr;
    const std::uint32_t i = free_[k];
    unlink(i, k);
    while (k > order) {  // split: keep the lower half, free the upper
      --k;
      push(i + (std::uint32_t{1} << k), k);
    }
    return mark_used(i, order);
  }

  Page* mark_used(std::uint32_t i, unsigned order) noexcept {
    links_[i].state = static_cast<std::uint8_t>(kUsed | order);
    Page* page = &pages_[i];
    std::fill_n(&heads_[i], std::size_t{1} << order, page);
    page->va = base_ + (std::size_t{i} << page_shift_);
    page->order = order;
    free_bytes_ -= std::size_t{1} << (page_shift_ + order);
    ++allocated_blocks_;
    return page;
  }

  PAGEFRAG_NOINLINE void release_one(Page* page) {
    const std::uintptr_t byte_off =
        reinterpret_cast<std::uintptr_t>(page) - reinterpret_cast<std::uintptr_t>(pages_.get());
    const std::uintptr_t i = byte_off / sizeof(Page);
    PAGEFRAG_CHECK(i < slots_ && byte_off % sizeof(Page) == 0, "Page {} is not from this provider",
                   static_cast<const void*>(page));
    unsigned order = page->order;
    PAGEFRAG_CHECK(order <= max_order_ && links_[i].state == (kUsed | order),
                   "release of a block that is not allocated (double release?) at {}",
                   static_cast<const void*>(page->va));
    std::fill_n(&heads_[i], std::size_t{1} << order, nullptr);
    free_bytes_ += std::size_t{1} << (page_shift_ + order);
    --allocated_blocks_;
    auto head = static_cast<std::uint32_t>(i);
    links_[head].state = kNone;
    while (order < max_order_) {  // merge with the free buddy, order by order
      const std::uint32_t buddy = head ^ (std::uint32_t{1} << order);
      if (links_[buddy].state != (kFree | order)) break;
      unlink(buddy, order);
      head = std::min(head, buddy);
      ++order;
    }
    push(head, order);
  }

  std::byte* base_ = nullptr;
  std::size_t bytes_ = 0;
  unsigned page_shift_ = 12;
  unsigned max_order_ = 0;
  std::size_t slots_ = 0;
  std::unique_ptr<Page[]> pages_;
  std::unique_ptr<Page*[]> heads_;
  std::vector<Link> links_;
  std::vector<std::uint32_t> free_;
  std::size_t free_bytes_ = 0;
  std::size_t allocated_blocks_ = 0;
};

}  // namespace pagefrag::internal
