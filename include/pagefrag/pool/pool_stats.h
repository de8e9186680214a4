// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/pool/pool_stats.h: PagePool statistics as a policy type.
//
// A PagePool counts its events through a stats policy, the third template
// parameter of PagePool. A counter carrying a kernel page_pool name (alloc_fast
// ... recycle_released_refcnt) means what the kernel's does (net/core/
// page_pool.c); pagefrag's own counters have their own names (alloc_fail,
// released_after_destroy; their docs start "pagefrag:"). They are split by
// writer, as the kernel splits its per-pool alloc stats from its per-CPU
// recycle stats:
//   owner counters  written only by the pool's owner thread: plain integers,
//                   together on their own cache lines;
//   remote counters written by any thread (recycle into the ring, ring full,
//                   release after destroy): relaxed atomics on their own line.
// PoolStats is the counting model; NoPoolStats compiles every increment away
// (an empty class, stored with [[no_unique_address]], so it costs neither
// instructions nor bytes).
//
// A PoolStatsSnapshot is what PagePool::stats() returns: the counters, the
// in-flight page count (the kernel's hold - release), the pages handed out
// and the held-bytes gauges. Its members, enum, sum, fmt
// formatter and name/value table all come from the lists below
// (base/counters.h).
#pragma once

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "pagefrag/base/compiler.h"
#include "pagefrag/base/counters.h"

namespace pagefrag {

// The counter lists (base/counters.h). Owner counters are written only by
// the pool's owner thread, remote ones by any thread; gauges are computed by
// PagePool::stats().
#define PAGEFRAG_POOL_OWNER_COUNTERS(X)                                                       \
  X(kAllocFast, std::uint64_t, alloc_fast,                                                    \
    "pages served by a hit in the owner cache (derived in stats(), not counted per page)")    \
  X(kAllocSlow, std::uint64_t, alloc_slow,                                                    \
    "slow-path calls (ring and cache empty) that got order-0 pages from the provider")        \
  X(kAllocSlowHighOrder, std::uint64_t, alloc_slow_high_order,                                \
    "slow-path calls that got order > 0 pages from the provider")                             \
  X(kAllocEmpty, std::uint64_t, alloc_empty, "refills that found the ring empty")             \
  X(kAllocRefill, std::uint64_t, alloc_refill, "refills that moved pages from ring to cache") \
  X(kAllocWaive, std::uint64_t, alloc_waive,                                                  \
    "pages a refill skipped (kernel: wrong NUMA node); always 0, kept for name parity")       \
  X(kRecycleCached, std::uint64_t, recycle_cached, "pages recycled into the owner cache")     \
  X(kRecycleCacheFull, std::uint64_t, recycle_cache_full,                                     \
    "direct recycles that found the cache full (the page went on to the ring)")               \
  X(kAllocFail, std::uint64_t, alloc_fail, "pagefrag: allocations that returned no page")
#define PAGEFRAG_POOL_REMOTE_COUNTERS(X)                                                        \
  X(kRecycleRing, std::uint64_t, recycle_ring, "pages recycled into the ring")                  \
  X(kRecycleRingFull, std::uint64_t, recycle_ring_full,                                         \
    "recycles that found the ring full (page released to the provider)")                        \
  X(kRecycleReleasedRefcnt, std::uint64_t, recycle_released_refcnt,                             \
    "released, not recycled, because another reference was held (kernel: page refcount != 1); " \
    "always 0: pagefrag pages have one reference domain; kept for name parity")                 \
  X(kReleasedAfterDestroy, std::uint64_t, released_after_destroy,                               \
    "pagefrag: pages returned after destroy(), released to the provider without a DMA call")
#define PAGEFRAG_POOL_GAUGES(X)                                                                 \
  X(kInflight, std::int64_t, inflight,                                                          \
    "kernel hold - release: pages taken from the provider and not released (cache, ring, out)") \
  X(kHandedOut, std::int64_t, handed_out, "pagefrag: pages handed out and not yet returned")    \
  X(kHeldBytes, std::size_t, held_bytes, "bytes the pool holds from its provider")              \
  X(kHeldBytesHighWater, std::size_t, held_bytes_high_water, "the most held_bytes ever was")
#define PAGEFRAG_POOL_STATS(X) \
  PAGEFRAG_POOL_OWNER_COUNTERS(X) PAGEFRAG_POOL_REMOTE_COUNTERS(X) PAGEFRAG_POOL_GAUGES(X)

// Every counter a pool keeps, owner counters first.
enum class PoolCounter : unsigned {
  PAGEFRAG_COUNTER_ENUMERATORS(PAGEFRAG_POOL_OWNER_COUNTERS)
      PAGEFRAG_COUNTER_ENUMERATORS(PAGEFRAG_POOL_REMOTE_COUNTERS) kCount,
};

inline constexpr unsigned kPoolOwnerCounters = static_cast<unsigned>(PoolCounter::kRecycleRing);
inline constexpr unsigned kPoolRemoteCounters =
    static_cast<unsigned>(PoolCounter::kCount) - kPoolOwnerCounters;

constexpr bool is_remote_counter(PoolCounter c) noexcept {
  return static_cast<unsigned>(c) >= kPoolOwnerCounters;
}

// A consistent-enough copy of a pool's counters and gauges: plain data, a
// CounterStruct (counters_sum, counter_table, fmt).
struct PoolStatsSnapshot {
  PAGEFRAG_COUNTERS(PoolStatsSnapshot, PAGEFRAG_POOL_STATS)

  // The counter c, by enum (for tests and generic printing).
  constexpr std::uint64_t get(PoolCounter c) const noexcept {
    return static_cast<std::uint64_t>(counter_fields()[static_cast<unsigned>(c)].get(*this));
  }
};
static_assert(CounterStruct<PoolStatsSnapshot>);

// A stats policy: add<C>(n) counts n events of counter C (owner counters only
// from the owner thread; remote ones from any thread); fill() copies the
// counters into a snapshot (owner thread, or while quiesced); kEnabled says
// whether the policy counts at all.
template <class S>
concept PoolStatsPolicy = requires(S& s, const S& cs, PoolStatsSnapshot& snap) {
  s.template add<PoolCounter::kAllocFast>(std::uint64_t{1});
  s.template add<PoolCounter::kRecycleRing>(std::uint64_t{1});
  cs.fill(snap);
  { S::kEnabled } -> std::convertible_to<bool>;
};

// The counting policy.
class PoolStats {
 public:
  static constexpr bool kEnabled = true;

  template <PoolCounter C>
  PAGEFRAG_ALWAYS_INLINE void add(std::uint64_t n) noexcept {
    constexpr auto i = static_cast<unsigned>(C);
    if constexpr (is_remote_counter(C)) {
      remote_[i - kPoolOwnerCounters].fetch_add(n, std::memory_order_relaxed);
    } else {
      owner_[i] += n;
    }
  }

  void fill(PoolStatsSnapshot& s) const noexcept {
#define PAGEFRAG_POOL_FILL_OWNER_(E, T, name, doc) \
  s.name = owner_[static_cast<unsigned>(PoolCounter::E)];
#define PAGEFRAG_POOL_FILL_REMOTE_(E, T, name, doc)                                  \
  s.name = remote_[static_cast<unsigned>(PoolCounter::E) - kPoolOwnerCounters].load( \
      std::memory_order_relaxed);
    PAGEFRAG_POOL_OWNER_COUNTERS(PAGEFRAG_POOL_FILL_OWNER_)
    PAGEFRAG_POOL_REMOTE_COUNTERS(PAGEFRAG_POOL_FILL_REMOTE_)
#undef PAGEFRAG_POOL_FILL_OWNER_
#undef PAGEFRAG_POOL_FILL_REMOTE_
  }

 private:
  alignas(kCacheLineSize) std::array<std::uint64_t, kPoolOwnerCounters> owner_{};
  alignas(kCacheLineSize) std::array<std::atomic<std::uint64_t>, kPoolRemoteCounters> remote_{};
};

// The no-op policy: every add<C>() is empty, fill() leaves zeros.
class NoPoolStats {
 public:
  static constexpr bool kEnabled = false;

  template <PoolCounter C>
  PAGEFRAG_ALWAYS_INLINE void add(std::uint64_t /*n*/) noexcept {}
  void fill(PoolStatsSnapshot& /*s*/) const noexcept {}
};

static_assert(PoolStatsPolicy<PoolStats>);
static_assert(PoolStatsPolicy<NoPoolStats>);
static_assert(sizeof(NoPoolStats) == 1);

}  // namespace pagefrag
