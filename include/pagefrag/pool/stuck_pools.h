// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/pool/stuck_pools.h: which destroyed pools still wait for pages.
//
// A PagePool destroyed while pages are still in flight stays alive until the
// last of them comes back (from any thread); only then is its memory freed.
// Such a pool is registered here from its destruction until it is freed, so a
// driver or test can ask which pools are stuck, how many pages each still
// waits for and for how long (the kernel warns about these periodically from
// page_pool_release_retry; a library reports and lets the caller decide).
//
// Thread contract: every function is safe from any thread (one std::mutex).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace pagefrag {

// One pool waiting for its pages.
struct StuckPagePool {
  std::uint64_t pool_id = 0;            // PagePool::id()
  std::int64_t inflight = 0;            // pages still out
  std::chrono::nanoseconds waiting{0};  // since the pool was destroyed
};

namespace internal {

// The registry. Entries are type-erased: the pool's address, its id and a
// function reading its in-flight count. A pool unregisters itself (under the
// mutex) before its memory is freed, so reading an entry is safe.
class StuckPoolRegistry {
 public:
  using InflightFn = std::int64_t (*)(const void* pool);

  void add(const void* pool, std::uint64_t id, InflightFn inflight) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back({pool, id, inflight, std::chrono::steady_clock::now()});
  }

  // Runs settle() under the lock and registers the pool unless it returned
  // true (the pool needs no waiting); returns settle()'s result.
  template <class Settle>
  bool add_unless(const void* pool, std::uint64_t id, InflightFn inflight, Settle&& settle) {
    std::lock_guard<std::mutex> lock(mu_);
    if (settle()) return true;
    entries_.push_back({pool, id, inflight, std::chrono::steady_clock::now()});
    return false;
  }

  void remove(const void* pool) {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(entries_, [pool](const Entry& e) { return e.pool == pool; });
  }

  std::vector<StuckPagePool> list(std::chrono::nanoseconds min_wait) const {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    std::vector<StuckPagePool> out;
    for (const Entry& e : entries_) {
      const auto waited = std::chrono::duration_cast<std::chrono::nanoseconds>(now - e.since);
      // A count of zero means the last page just came back and the pool is
      // being freed (it waits for this lock to unregister): not stuck.
      const std::int64_t inflight = e.inflight(e.pool);
      if (waited >= min_wait && inflight > 0) out.push_back({e.id, inflight, waited});
    }
    return out;
  }

 private:
  struct Entry {
    const void* pool;
    std::uint64_t id;
    InflightFn inflight;
    std::chrono::steady_clock::time_point since;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

inline StuckPoolRegistry& stuck_pool_registry() {
  static StuckPoolRegistry registry;
  return registry;
}

}  // namespace internal

// Destroyed pools still waiting for pages, destroyed at least min_wait ago.
// Any thread.
inline std::vector<StuckPagePool> stuck_page_pools(
    std::chrono::nanoseconds min_wait = std::chrono::nanoseconds{0}) {
  return internal::stuck_pool_registry().list(min_wait);
}

// One line per stuck pool ("page_pool 7: 3 pages in flight for 61.2 s"),
// empty when none is stuck. Any thread.
inline std::string format_stuck_page_pools(
    std::chrono::nanoseconds min_wait = std::chrono::nanoseconds{0}) {
  std::string out;
  for (const StuckPagePool& p : stuck_page_pools(min_wait)) {
    out += fmt::format("page_pool {}: {} pages in flight for {:.1f} s\n", p.pool_id, p.inflight,
                       std::chrono::duration<double>(p.waiting).count());
  }
  return out;
}

}  // namespace pagefrag
