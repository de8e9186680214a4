// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/locked_provider.h: LockedProvider, a provider several pools
// may share, and the trait that says a provider is safe to share.
//
// A MemoryProvider is not thread-safe: each PagePool calls its provider from
// its own slow paths (refill on the owner thread, release from any thread
// that returns the last reference of a page after a full ring or after
// destroy). Pools of several queues may draw from one region only through a
// provider whose alloc_bulk/release_bulk are serialised. LockedProvider<P>
// wraps a provider P it does not own and takes one std::mutex around those
// two calls; page_size, max_order, page_of and region read state that is
// constant or owned by the caller's page, and take no lock.
//
// kShareableProvider<P> is true for a provider that declares
// `static constexpr bool kShareable = true` (LockedProvider does; a provider
// with its own internal locking may too) and false otherwise. Code that lets
// several pools use one provider static_asserts it:
//   static_assert(pagefrag::kShareableProvider<Provider>,
//                 "queues share one provider: wrap it in LockedProvider");
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <span>

#include "pagefrag/base/pool_attachments.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/memory/provider.h"

namespace pagefrag {

// Whether P may be shared by pools on different threads.
template <class P>
inline constexpr bool kShareableProvider = [] {
  if constexpr (requires { P::kShareable; }) {
    return static_cast<bool>(P::kShareable);
  } else {
    return false;
  }
}();

template <MemoryProvider P>
class LockedProvider {
 public:
  static constexpr bool kPhysicallyContiguous = P::kPhysicallyContiguous;
  static constexpr bool kShareable = true;

  // Wraps `inner`, which must outlive this wrapper. Setup path; any thread.
  explicit LockedProvider(P& inner) : inner_(&inner), mu_(std::make_unique<std::mutex>()) {}
  // Movable (while no pool uses it), not copyable.
  LockedProvider(LockedProvider&&) noexcept = default;
  LockedProvider& operator=(LockedProvider&&) noexcept = default;

  // Constant after creation: no lock. Any thread.
  std::size_t page_size() const { return inner_->page_size(); }
  unsigned max_order() const { return inner_->max_order(); }
  std::span<std::byte> region() const { return inner_->region(); }

  // P's alloc_bulk / release_bulk under the mutex. Any thread.
  std::size_t alloc_bulk(unsigned order, Page** pages, std::size_t n) {
    std::lock_guard<std::mutex> lock(*mu_);
    return inner_->alloc_bulk(order, pages, n);
  }
  void release_bulk(Page** pages, std::size_t n) {
    std::lock_guard<std::mutex> lock(*mu_);
    inner_->release_bulk(pages, n);
  }

  // P's page_of, unlocked: the caller holds the page that holds addr, so no
  // other thread releases it concurrently. Any thread.
  Page* page_of(const void* addr) const { return inner_->page_of(addr); }

  // The wrapped provider; calling it directly bypasses the lock.
  P& inner() const noexcept { return *inner_; }
  // The inner provider's pool list: the inner provider is the one that must
  // outlive the pools. Any thread.
  PoolAttachments& pool_attachments() const noexcept requires PoolAttachable<P> {
    return inner_->pool_attachments();
  }

 private:
  P* inner_;
  std::unique_ptr<std::mutex> mu_;  // heap-held so the wrapper can move
};

}  // namespace pagefrag
