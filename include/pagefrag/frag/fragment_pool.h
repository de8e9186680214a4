// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/frag/fragment_pool.h: the FragmentPool concept, what a
// FragmentAllocator needs from the pool it cuts pages of.
//
// PagePool (pool/page_pool.h) is the model; the concept names the seam so
// that a FragmentAllocator over anything else fails at its declaration, not
// deep inside a member, and so that the way back from a Page to its pool is
// the pool's own checked pool_of(), never a cast of Page::pool.
//
// Contract of every model, by member:
//   alloc()              owner: one page with Page::ref == 1, or nullptr.
//   cached()             owner: pages the next alloc() calls take from the
//                        owner cache (0: the next one refills or fails).
//   recycle_direct(p)    owner: takes back a page the caller owns outright.
//   recycle(p)           any thread: the same through the pool's ring.
//   pool_of(p)           static, any thread: the pool of this type that holds
//                        p; aborts naming p if p belongs to no pool of this
//                        type (a foreign or released page).
//   dma_addr(p)          static: p's device address.
//   sync_for_cpu_in_page(p, off, len)  any thread: hands bytes [off, off +
//                        len) of p, from its first byte, to the CPU.
//   params()             the pool's PagePoolParams (the sync window).
//   page_bytes()         bytes per page.
//   page_of(va)          the pool's page holding va, or nullptr.
//   id()                 the pool's process-unique id (for messages).
//   assert_owner()       aborts off the owner thread where the pool checks.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

#include "pagefrag/base/iova.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/pool/page_pool_params.h"

namespace pagefrag {

template <class P>
concept FragmentPool = requires(P& p, const P& cp, Page* page, const Page* cpage, const void* va,
                                std::uint32_t off) {
  { p.alloc() } -> std::same_as<Page*>;
  { cp.cached() } -> std::same_as<std::size_t>;
  { p.recycle_direct(page) } -> std::same_as<void>;
  { p.recycle(page) } -> std::same_as<void>;
  { P::pool_of(page) } -> std::same_as<P*>;
  { P::dma_addr(cpage) } -> std::same_as<Iova>;
  { p.sync_for_cpu_in_page(cpage, off, off) } -> std::same_as<void>;
  { cp.params() } -> std::convertible_to<const PagePoolParams&>;
  { cp.page_bytes() } -> std::same_as<std::size_t>;
  { cp.page_of(va) } -> std::same_as<Page*>;
  { cp.id() } -> std::same_as<std::uint64_t>;
  { cp.assert_owner() } -> std::same_as<void>;
};

}  // namespace pagefrag
