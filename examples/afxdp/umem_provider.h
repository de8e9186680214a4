// examples/afxdp/umem_provider.h: UmemProvider, a MemoryProvider over an AF_XDP UMEM.
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

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/memory/provider.h"

namespace afxdp {

struct UmemProviderOptions {
  std::size_t page_size = 65536;  // pool page bytes: a power of two >= 4096
  std::size_t pages = 64;         // pages in the area
  std::size_t tail_bytes = 4096;  // registered bytes after the last page (>= chunk_size)
};

class UmemProvider {
 public:
  static constexpr bool kPhysicallyContiguous = false;

  // Reserves page_size * pages + tail_bytes bytes aligned to page_size.
  // InvalidArgument for a bad size, ResourceExhausted when mmap fails.
  static absl::StatusOr<std::unique_ptr<UmemProvider>> create(const UmemProviderOptions& o) {
    if (o.page_size < 4096 || !pagefrag::is_power_of_two(o.page_size) || o.pages == 0 ||
        !pagefrag::is_aligned(o.tail_bytes, 4096)) {
      return absl::InvalidArgumentError(fmt::format(
          "UMEM page_size {} / pages {} / tail_bytes {}: expected a power of two >= 4096, at "
          "least one page and a tail that is a multiple of 4096",
          o.page_size, o.pages, o.tail_bytes));
    }
    const std::size_t bytes = o.page_size * o.pages + o.tail_bytes;
    // Over-map by one page so the area can start on a page_size boundary.
    const std::size_t mapped = bytes + o.page_size;
    void* raw = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (raw == MAP_FAILED) {
      return absl::ResourceExhaustedError(
          fmt::format("mmap of {} bytes for the UMEM failed; expected that much free memory", mapped));
    }
    return std::unique_ptr<UmemProvider>(new UmemProvider(o, raw, mapped));
  }

  ~UmemProvider() { ::munmap(mapping_, mapping_bytes_); }
  UmemProvider(const UmemProvider&) = delete;
  UmemProvider& operator=(const UmemProvider&) = delete;

  std::size_t page_size() const { return options_.page_size; }
  unsigned max_order() const { return 0; }

  // Up to n free pages (order 0 only). Slow path, pool thread.
  std::size_t alloc_bulk(unsigned order, pagefrag::Page** pages, std::size_t n) {
    if (order != 0) return 0;
    std::size_t k = 0;
    for (; k < n && !free_.empty(); ++k) {
      pagefrag::Page* page = free_.back();
      free_.pop_back();
      page->pool = nullptr;
      page->dma = pagefrag::Iova{};
      page->ref.store(0, std::memory_order_relaxed);
      page->owner_ref = 0;
      pages[k] = page;
    }
    allocated_ += k;
    return k;
  }

  // Takes back n pages this provider handed out. Slow path, pool thread.
  void release_bulk(pagefrag::Page** pages, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      PAGEFRAG_CHECK(page_of(pages[i]->va) == pages[i] && allocated_ > 0,
                     "page {} was not handed out by this UMEM",
                     static_cast<const void*>(pages[i]->va));
      free_.push_back(pages[i]);
      --allocated_;
    }
  }

  // O(1): the page holding addr, or nullptr outside the pages (the tail too).
  pagefrag::Page* page_of(const void* addr) const {
    const auto a = reinterpret_cast<std::uintptr_t>(addr);
    const auto base = reinterpret_cast<std::uintptr_t>(region_.data());
    if (a < base || a - base >= region_.size()) return nullptr;
    return const_cast<pagefrag::Page*>(&pages_[(a - base) >> page_shift_]);
  }

  // The pages (what a pool may hold).
  std::span<std::byte> region() const { return region_; }
  // What to register with the kernel: region() plus the tail.
  std::span<std::byte> umem() const { return {region_.data(), region_.size() + options_.tail_bytes}; }
  // Pages currently handed out (0 again once every pool gave its pages back).
  std::size_t allocated() const { return allocated_; }

 private:
  UmemProvider(const UmemProviderOptions& o, void* mapping, std::size_t mapping_bytes)
      : options_(o),
        mapping_(mapping),
        mapping_bytes_(mapping_bytes),
        page_shift_(pagefrag::log2_exact(o.page_size)),
        pages_(o.pages) {
    auto* start = reinterpret_cast<std::byte*>(
        pagefrag::align_up(reinterpret_cast<std::uintptr_t>(mapping), o.page_size));
    region_ = {start, o.page_size * o.pages};
    free_.reserve(o.pages);
    for (std::size_t i = o.pages; i-- > 0;) {  // lowest address handed out first
      pages_[i].va = start + i * o.page_size;
      free_.push_back(&pages_[i]);
    }
  }

  UmemProviderOptions options_;
  void* mapping_;
  std::size_t mapping_bytes_;
  unsigned page_shift_;
  std::span<std::byte> region_;
  std::vector<pagefrag::Page> pages_;
  std::vector<pagefrag::Page*> free_;
  std::size_t allocated_ = 0;
};

static_assert(pagefrag::MemoryProvider<UmemProvider>);

}  // namespace afxdp
