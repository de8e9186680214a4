// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/pool/page_pool_params.h: PagePoolParams and their validation.
//
// The kernel's struct page_pool_params, minus what user space has no use for
// (NUMA node, netdev, napi): page order, pool size, DMA direction, the
// sync-for-device window (offset, max_len) and the DMA flags. A pool whose
// provider's whole region is mapped once (PremappedRegion) passes that
// mapping's Iova instead of asking the pool to map each page.
//
// validate_page_pool_params() is the single place the rules live; it returns
// InvalidArgument naming the field, its value and the range expected.
#pragma once

#include <absl/status/status.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"

namespace pagefrag {

// Flag bits of PagePoolParams::flags (the kernel's PP_FLAG_*).
inline constexpr std::uint32_t kPagePoolDmaMap = 1u << 0;      // map pages on entry
inline constexpr std::uint32_t kPagePoolDmaSyncDev = 1u << 1;  // sync for device on recycle
inline constexpr std::uint32_t kPagePoolAllFlags = kPagePoolDmaMap | kPagePoolDmaSyncDev;

// The most pages one pool's ring is sized for (the kernel caps ptr_ring at
// 32768 entries too).
inline constexpr std::size_t kPagePoolMaxSize = 32768;

struct PagePoolParams {
  // Pages are provider.page_size() << order bytes; 0..provider.max_order().
  unsigned order = 0;
  // Pages the pool is sized for: the ring's capacity, and the bound on how
  // many pages a slow-path bulk allocation brings the pool to. 1..32768.
  std::size_t pool_size = 1024;
  // Direction of the pool's mappings: from_device (RX) or bidirectional
  // (XDP_TX) when mapping; any when the pool maps nothing.
  DmaDirection dma_dir = DmaDirection::kFromDevice;
  // Sync-for-device window: on recycle the pool syncs min(len, max_len)
  // bytes at dma + offset. Both must lie in the page when kPagePoolDmaSyncDev.
  std::uint32_t max_len = 0;
  std::uint32_t offset = 0;
  // kPagePoolDmaMap and/or kPagePoolDmaSyncDev.
  std::uint32_t flags = 0;
  // Set when the provider's whole region is already mapped (e.g. by a
  // PremappedRegion): the pool maps nothing and a page's dma is
  // premapped_iova + (va - provider.region().data()), premapped_iova being the
  // Iova of the region's first byte. Excludes kPagePoolDmaMap.
  bool premapped = false;
  Iova premapped_iova{};
};

namespace internal {
template <class... Args>
absl::Status invalid_param(fmt::format_string<Args...> format, Args&&... args) {
  return absl::InvalidArgumentError(fmt::format(format, std::forward<Args>(args)...));
}
}  // namespace internal

// Checks params against a provider of page_size bytes and max_order.
// OK, or InvalidArgument saying which field is wrong, its value and the
// valid range. Setup path; any thread.
inline absl::Status validate_page_pool_params(const PagePoolParams& p, std::size_t page_size,
                                              unsigned max_order) {
  if (p.order > max_order) {
    return internal::invalid_param(
        "PagePoolParams.order {} exceeds the provider's max_order; expected 0..{}", p.order,
        max_order);
  }
  if (p.pool_size == 0 || p.pool_size > kPagePoolMaxSize) {
    return internal::invalid_param("PagePoolParams.pool_size {}; expected 1..{}", p.pool_size,
                                   kPagePoolMaxSize);
  }
  if ((p.flags & ~kPagePoolAllFlags) != 0) {
    return internal::invalid_param(
        "PagePoolParams.flags {:#x} has unknown bits; expected a subset of {:#x}", p.flags,
        kPagePoolAllFlags);
  }
  const bool maps = (p.flags & kPagePoolDmaMap) != 0;
  if (maps && p.premapped) {
    return internal::invalid_param(
        "PagePoolParams: kPagePoolDmaMap and premapped both set; expected one of them");
  }
  if ((maps || p.premapped) && p.dma_dir != DmaDirection::kFromDevice &&
      p.dma_dir != DmaDirection::kBidirectional) {
    return internal::invalid_param(
        "PagePoolParams.dma_dir {} for a mapped pool; expected from_device or bidirectional",
        to_string(p.dma_dir));
  }
  const std::size_t page_bytes = page_size << p.order;
  if (p.offset >= page_bytes) {
    return internal::invalid_param("PagePoolParams.offset {}; expected 0..{} (page bytes - 1)",
                                   p.offset, page_bytes - 1);
  }
  if ((p.flags & kPagePoolDmaSyncDev) == 0) return absl::OkStatus();
  if (!maps && !p.premapped) {
    return internal::invalid_param(
        "PagePoolParams.flags: kPagePoolDmaSyncDev needs kPagePoolDmaMap or premapped");
  }
  if (p.max_len == 0 || p.offset + std::size_t{p.max_len} > page_bytes) {
    return internal::invalid_param(
        "PagePoolParams.max_len {} with offset {}; expected 1..{} (page bytes - offset)", p.max_len,
        p.offset, page_bytes - p.offset);
  }
  return absl::OkStatus();
}

}  // namespace pagefrag
