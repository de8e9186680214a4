// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/base/pool_attachments.h: which pools still use a provider or a
// DMA backend, so that destroying it first aborts instead of leaving the
// pools a dangling pointer.
//
// A PagePool attaches to its provider and DMA backend when created, detaches
// from the backend when destroyed (destroy() unmaps every page; no backend
// call follows) and from the provider when freed (the last page in flight has
// come back). A provider or backend that keeps a PoolAttachments member and
// offers it as pool_attachments() (the PoolAttachable concept) aborts in its
// destructor, naming the pools still attached: the misuse "provider destroyed
// before the pool" is a message, not a use after free.
//
// Thread contract: every member from any thread (one std::mutex; setup and
// teardown paths only).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "pagefrag/base/check.h"

namespace pagefrag {

class PoolAttachments {
 public:
  // `what` names the owner in the abort message ("HeapProvider", "MockDma").
  explicit PoolAttachments(const char* what) noexcept : what_(what) {}
  // The owner moved: its pools (there should be none) move with it.
  PoolAttachments(PoolAttachments&& other) noexcept : what_(other.what_) {
    std::lock_guard<std::mutex> lock(other.mu_);
    ids_ = std::exchange(other.ids_, {});
  }
  PoolAttachments& operator=(PoolAttachments&& other) noexcept {
    if (this != &other) {
      check_none();
      std::scoped_lock lock(mu_, other.mu_);
      ids_ = std::exchange(other.ids_, {});
    }
    return *this;
  }
  ~PoolAttachments() { check_none(); }

  void attach(std::uint64_t pool_id) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(pool_id);
  }
  void detach(std::uint64_t pool_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(ids_.begin(), ids_.end(), pool_id);
    PAGEFRAG_CHECK(it != ids_.end(), "page_pool {} detaches from a {} it was not attached to",
                   pool_id, what_);
    ids_.erase(it);
  }
  std::vector<std::uint64_t> pools() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }

 private:
  void check_none() {
    std::lock_guard<std::mutex> lock(mu_);
    PAGEFRAG_CHECK(ids_.empty(),
                   "{} destroyed while page_pool(s) {} still use it; destroy each pool (and, "
                   "for a provider, get its pages back) before the {}",
                   what_, fmt::join(ids_, ", "), what_);
  }

  const char* what_;
  mutable std::mutex mu_;
  std::vector<std::uint64_t> ids_;
};

// A provider or backend that tracks the pools using it.
template <class T>
concept PoolAttachable = requires(T& t) {
  { t.pool_attachments() } -> std::same_as<PoolAttachments&>;
};

}  // namespace pagefrag
