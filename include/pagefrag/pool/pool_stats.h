// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/pool/pool_stats.h: PagePool statistics as a policy type.
//
// A PagePool counts its events through a stats policy, the third template
// parameter of PagePool. The counters carry the kernel's page_pool names
// (alloc_fast ... recycle_released_refcnt) plus alloc_fail. They are split by
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
// in-flight page count and the held-bytes gauge. fmt formats it.
#pragma once

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "pagefrag/base/compiler.h"

namespace pagefrag {

// Every counter a pool keeps. The owner counters come first.
enum class PoolCounter : unsigned {
  // --- owner thread only ---
  kAllocFast,           // pages handed out from the owner cache (PagePool derives
                        // it in stats() instead of counting it per page)
  kAllocSlow,           // slow-path provider allocations of order-0 pages (calls)
  kAllocSlowHighOrder,  // slow-path provider allocations of order > 0 pages (calls)
  kAllocEmpty,          // refills that found the ring empty
  kAllocRefill,         // refills that moved pages from the ring to the cache
  kAllocWaive,          // pages a refill skipped (kernel: wrong NUMA node); always 0
                        // here, kept for name parity: pagefrag has no NUMA nodes
  kRecycleCached,       // pages recycled into the owner cache
  kRecycleCacheFull,    // direct recycles that found the cache full
  kAllocFail,           // allocations that returned nullptr (provider exhausted)
  // --- any thread ---
  kRecycleRing,            // pages recycled into the ring
  kRecycleRingFull,        // recycles that found the ring full (page released)
  kRecycleReleasedRefcnt,  // pages returned after destroy, released to the provider
  kCount,
};

inline constexpr unsigned kPoolOwnerCounters = static_cast<unsigned>(PoolCounter::kRecycleRing);
inline constexpr unsigned kPoolRemoteCounters =
    static_cast<unsigned>(PoolCounter::kCount) - kPoolOwnerCounters;

constexpr bool is_remote_counter(PoolCounter c) noexcept {
  return static_cast<unsigned>(c) >= kPoolOwnerCounters;
}

// A consistent-enough copy of a pool's counters and gauges. Plain data.
struct PoolStatsSnapshot {
  std::uint64_t alloc_fast = 0;
  std::uint64_t alloc_slow = 0;
  std::uint64_t alloc_slow_high_order = 0;
  std::uint64_t alloc_empty = 0;
  std::uint64_t alloc_refill = 0;
  std::uint64_t alloc_waive = 0;
  std::uint64_t recycle_cached = 0;
  std::uint64_t recycle_cache_full = 0;
  std::uint64_t alloc_fail = 0;
  std::uint64_t recycle_ring = 0;
  std::uint64_t recycle_ring_full = 0;
  std::uint64_t recycle_released_refcnt = 0;
  // Pages handed out and not yet returned (page_pool_inflight()).
  std::int64_t inflight = 0;
  // Bytes the pool holds from its provider, and the most it ever held.
  std::size_t held_bytes = 0;
  std::size_t held_bytes_high_water = 0;

  // The counter c, by enum (for tests and generic printing).
  constexpr std::uint64_t get(PoolCounter c) const noexcept {
    const std::array<std::uint64_t, static_cast<unsigned>(PoolCounter::kCount)> all{
        alloc_fast,   alloc_slow,   alloc_slow_high_order, alloc_empty,
        alloc_refill, alloc_waive,  recycle_cached,        recycle_cache_full,
        alloc_fail,   recycle_ring, recycle_ring_full,     recycle_released_refcnt};
    return all[static_cast<unsigned>(c)];
  }
};

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
    s.alloc_fast = owner_[0];
    s.alloc_slow = owner_[1];
    s.alloc_slow_high_order = owner_[2];
    s.alloc_empty = owner_[3];
    s.alloc_refill = owner_[4];
    s.alloc_waive = owner_[5];
    s.recycle_cached = owner_[6];
    s.recycle_cache_full = owner_[7];
    s.alloc_fail = owner_[8];
    s.recycle_ring = remote_[0].load(std::memory_order_relaxed);
    s.recycle_ring_full = remote_[1].load(std::memory_order_relaxed);
    s.recycle_released_refcnt = remote_[2].load(std::memory_order_relaxed);
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

template <>
struct fmt::formatter<pagefrag::PoolStatsSnapshot> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  auto format(const pagefrag::PoolStatsSnapshot& s, fmt::format_context& ctx) const {
    auto out = fmt::format_to(
        ctx.out(),
        "alloc_fast={} alloc_slow={} alloc_slow_high_order={} alloc_empty={} alloc_refill={} "
        "alloc_waive={} alloc_fail={} ",
        s.alloc_fast, s.alloc_slow, s.alloc_slow_high_order, s.alloc_empty, s.alloc_refill,
        s.alloc_waive, s.alloc_fail);
    return fmt::format_to(out,
                          "recycle_cached={} recycle_cache_full={} recycle_ring={} "
                          "recycle_ring_full={} recycle_released_refcnt={} inflight={} "
                          "held_bytes={} held_bytes_high_water={}",
                          s.recycle_cached, s.recycle_cache_full, s.recycle_ring,
                          s.recycle_ring_full, s.recycle_released_refcnt, s.inflight, s.held_bytes,
                          s.held_bytes_high_water);
  }
};
