// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/afxdp/umem_provider.h: UmemProvider, a MemoryProvider over an AF_XDP UMEM.
//
// An AF_XDP socket can only receive into, and send from, one memory area
// registered with the kernel once: the UMEM. UmemProvider reserves that area
// (anonymous, populated, page-aligned) and hands it out as naturally aligned
// pages of page_size() bytes, exactly like any other pagefrag provider, so a
// PagePool and a FragmentAllocator place RX buffers inside it. umem() is the
// span to register; it is region() plus a tail of `tail_bytes` that belongs
// to no page: the kernel requires fill address + chunk_size <= UMEM length,
// and a fragment near the end of the last page is shorter than a chunk.
//
// Order 0 only: AF_XDP frames never exceed one host page, so a pool never
// needs bigger blocks; alloc_bulk with order > 0 returns 0.
//
// Not thread-safe (MemoryProvider contract): one pool calls it from its own
// slow paths.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/memory/mapped_region.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/memory/provider.h"

namespace pagefrag::afxdp {

struct UmemProviderOptions {
  std::size_t page_size = 65536;  // pool page bytes: a power of two >= 4096
  std::size_t pages = 64;         // pages in the area
  std::size_t tail_bytes =
      4096;  // registered bytes after the last page: 4096 * n, n >= 1 (>= chunk_size)
};

class UmemProvider {
 public:
  static constexpr bool kPhysicallyContiguous = false;

  // Reserves page_size * pages + tail_bytes bytes aligned to page_size, not
  // inherited by forked children (MADV_DONTFORK, as for any DMA memory).
  // InvalidArgument for a bad size, ResourceExhausted when mmap fails.
  static absl::StatusOr<UmemProvider> create(const UmemProviderOptions& o) {
    if (o.page_size < 4096 || !pagefrag::is_power_of_two(o.page_size) || o.pages == 0 ||
        o.tail_bytes == 0 || !pagefrag::is_aligned(o.tail_bytes, 4096)) {
      return absl::InvalidArgumentError(fmt::format(
          "UMEM page_size {} / pages {} / tail_bytes {}: expected a power of two >= 4096, at "
          "least one page and a tail that is a nonzero multiple of 4096 (at least a chunk)",
          o.page_size, o.pages, o.tail_bytes));
    }
    absl::StatusOr<pagefrag::MappedRegion> area = pagefrag::MappedRegion::map_anonymous(
        o.page_size * o.pages + o.tail_bytes, o.page_size, MAP_POPULATE, "UMEM");
    if (!area.ok()) return area.status();
    return UmemProvider(o, *std::move(area));
  }

  UmemProvider(UmemProvider&&) noexcept = default;  // vectors keep their buffers: Page* stay valid
  UmemProvider& operator=(UmemProvider&&) noexcept = default;

  std::size_t page_size() const { return options_.page_size; }
  unsigned max_order() const { return 0; }

  // Up to n free pages (order 0 only; 0 for any other order). Slow path,
  // pool thread.
  std::size_t alloc_bulk(unsigned order, pagefrag::Page** pages, std::size_t n) {
    if (order != 0) return 0;
    std::size_t k = 0;
    for (; k < n && !free_.empty(); ++k) {
      pagefrag::Page* page = free_.back();
      free_.pop_back();
      handed_out_[index_of(page)] = true;
      pages[k] = page;
    }
    allocated_ += k;
    return k;
  }

  // Takes back n pages this provider handed out. Slow path, pool thread.
  void release_bulk(pagefrag::Page** pages, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      PAGEFRAG_CHECK(page_of(pages[i]->va) == pages[i], "page {} is not handed out by this UMEM",
                     static_cast<const void*>(pages[i]->va));
      handed_out_[index_of(pages[i])] = false;
      free_.push_back(pages[i]);
      --allocated_;
    }
  }

  // O(1): the handed-out page holding addr; nullptr outside the pages (the
  // tail included) and for a page sitting free in the provider.
  pagefrag::Page* page_of(const void* addr) const {
    const auto a = reinterpret_cast<std::uintptr_t>(addr);
    const auto base = reinterpret_cast<std::uintptr_t>(region_.data());
    if (a < base || a - base >= region_.size()) return nullptr;
    const std::size_t i = (a - base) >> page_shift_;
    return handed_out_[i] ? const_cast<pagefrag::Page*>(&pages_[i]) : nullptr;
  }

  // The pages (what a pool may hold).
  std::span<std::byte> region() const { return region_; }
  // What to register with the kernel: region() plus the tail.
  std::span<std::byte> umem() const {
    return {region_.data(), region_.size() + options_.tail_bytes};
  }
  // Pages currently handed out (0 again once every pool gave its pages back).
  std::size_t allocated() const { return allocated_; }

 private:
  UmemProvider(const UmemProviderOptions& o, pagefrag::MappedRegion area)
      : options_(o),
        area_(std::move(area)),
        page_shift_(pagefrag::log2_exact(o.page_size)),
        pages_(o.pages),
        handed_out_(o.pages, false) {
    std::byte* start = area_.data();
    region_ = {start, o.page_size * o.pages};
    free_.reserve(o.pages);
    for (std::size_t i = o.pages; i-- > 0;) {  // lowest address handed out first
      pages_[i].va = start + i * o.page_size;
      free_.push_back(&pages_[i]);
    }
  }

  std::size_t index_of(const pagefrag::Page* page) const {
    return static_cast<std::size_t>(page - pages_.data());
  }

  UmemProviderOptions options_{};
  pagefrag::MappedRegion area_;  // the pages and the tail, aligned to page_size
  unsigned page_shift_ = 0;
  std::span<std::byte> region_;
  std::vector<pagefrag::Page> pages_;
  std::vector<pagefrag::Page*> free_;
  std::vector<bool> handed_out_;
  std::size_t allocated_ = 0;
};

static_assert(pagefrag::MemoryProvider<UmemProvider>);

}  // namespace pagefrag::afxdp
