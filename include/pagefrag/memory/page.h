// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/page.h: the metadata of one provider page.
//
// Like the kernel's struct page, a Page describes one block of memory of
// page_size << order bytes and is found in O(1) from any address inside the
// block (MemoryProvider::page_of). The memory layer owns `va` and `order`;
// the fields under "pool layer" belong to whichever PagePool holds the page
// and mean nothing while the page sits in its provider.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "pagefrag/base/compiler.h"
#include "pagefrag/base/iova.h"

namespace pagefrag {

struct alignas(kCacheLineSize) Page {
  // --- memory layer: set by the provider, constant while allocated ---
  std::byte* va = nullptr;  // first byte of the block
  std::uint32_t order = 0;  // the block is page_size << order bytes
  // Pool layer: the page's index in its pool's table of DMA-mapped pages
  // (slow paths only; fits in what would be padding).
  std::uint32_t pool_slot = 0;

  // --- pool layer: meaningful only while a pool holds the page ---
  void* pool = nullptr;  // the owning pool (the kernel's page->pp)
  // The owning pool's type: a tag address unique to each pool type, checked
  // before `pool` is cast back to that type (PagePool::pool_of).
  const void* pool_type = nullptr;
  Iova dma{};  // device address of va while mapped
  // Shared reference count (the kernel's pp_ref_count): any thread may
  // decrement it; see frag/ for the bias scheme.
  std::atomic<std::int64_t> ref{0};
  // Owner-thread-only count (biased reference counting in frag/): plain.
  std::int64_t owner_ref = 0;
  // Owner-thread-only: the page's slot in its FragmentAllocator's watch set
  // (frag/), set when the page enters the set; meaningless otherwise.
  std::uint32_t frag_slot = 0;
  // Where the page is, for the misuse checks every build makes: a page
  // recycled twice, or put twice, finds itself kPooled and aborts.
  // Relaxed loads and stores only (plain moves) on the owner's paths.
  std::atomic<std::uint8_t> pool_state{0};
};

// Page::pool_state values.
inline constexpr std::uint8_t kPageAtProvider = 0;  // no pool holds it
inline constexpr std::uint8_t kPageOut = 1;         // handed out by its pool
inline constexpr std::uint8_t kPagePooled = 2;      // in its pool's cache or ring

static_assert(sizeof(Page) == kCacheLineSize, "Page metadata is one cache line");

}  // namespace pagefrag
