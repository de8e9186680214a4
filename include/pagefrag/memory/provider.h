// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/provider.h: the MemoryProvider concept.
//
// A memory provider owns one reserved region and hands out naturally aligned
// blocks of page_size() << order bytes from it, each described by a Page. It
// is where a pool's memory comes from; it knows nothing about DMA (a pool or
// a PremappedRegion in dma/ maps it).
//
// Contract of every model:
//   page_size()        base page bytes: a power of two >= 4096, independent of
//                      the host's page size.
//   max_order()        the largest order alloc_bulk accepts.
//   alloc_bulk(o,p,n)  stores up to n blocks of order o in p[0..k) and returns
//                      k (0 <= k <= n; fewer than n only when the region has no
//                      more such blocks). Each block is aligned to its own size;
//                      its Page's va and order are set. The pool-layer fields
//                      are left as they are: the pool that takes the page sets
//                      every one of them.
//   release_bulk(p,n)  returns n blocks (any orders) to the provider.
//   page_of(addr)      O(1), no lookup structure: the Page of the allocated
//                      block that holds addr; nullptr if addr is outside the
//                      region (the project's models: also in a free block).
//   region()           the whole reserved region (for pre-mapping it once).
//   kPhysicallyContiguous  whether each block is physically contiguous (true
//                      only for blocks inside one hugepage).
// Single-block calls wrap the bulk ones. Providers are not thread-safe: each
// PagePool calls its provider only from its own slow paths. Pools that share
// one provider go through LockedProvider (memory/locked_provider.h), and code
// that shares one static_asserts kShareableProvider.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

#include "pagefrag/memory/page.h"

namespace pagefrag {

template <class P>
concept MemoryProvider = requires(P& p, const P& cp, Page** pages, std::size_t n, unsigned order,
                                  const void* addr) {
  { cp.page_size() } -> std::same_as<std::size_t>;
  { cp.max_order() } -> std::same_as<unsigned>;
  { p.alloc_bulk(order, pages, n) } -> std::same_as<std::size_t>;
  { p.release_bulk(pages, n) } -> std::same_as<void>;
  { cp.page_of(addr) } -> std::same_as<Page*>;
  { cp.region() } -> std::same_as<std::span<std::byte>>;
  { P::kPhysicallyContiguous } -> std::convertible_to<bool>;
};

}  // namespace pagefrag
