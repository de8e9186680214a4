// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/pool/page_pool.h: PagePool, the kernel's page_pool in user space.
//
// A PagePool hands out DMA-mapped pages of one order to one RX queue and takes
// them back, keeping them mapped for as long as they stay in the pool:
//
//   owner cache   128 pages, LIFO, touched only by the owner thread (the one
//                 that polls the queue): alloc() is a load and a store,
//                 recycle_direct() adds one plain counter update. No lock, no
//                 atomic read-modify-write. alloc_fast is not counted on the
//                 fast path but derived in stats(): every page that leaves the
//                 cache is handed out, so alloc_fast = pages put into the cache
//                 (refills + recycle_cached) - pages in it now.
//   ring          bounded multi-producer ring (pool_size slots, rounded up to
//                 a power of two) that recycle() from any thread pushes into;
//                 the owner refills its cache from it, 64 pages at a time.
//   provider      when cache and ring are both empty, the owner allocates in
//                 bulk from the MemoryProvider, but only up to pool_size pages
//                 held (at least one), and maps each new page once.
//
// Recycling syncs min(len, max_len) bytes at dma + offset for the device when
// kPagePoolDmaSyncDev is set; a full ring releases the page (unmap + return to
// the provider). Every page's pool-layer fields (Page::pool, Page::dma) are set
// while the pool holds it; Page::ref is 1 while it sits in cache or ring.
//
// Lifetime: create() returns a PagePoolHandle; destroying the handle is the
// kernel's page_pool_destroy(): it empties cache and ring, and if pages are
// still in flight the pool's memory stays alive until the last one comes back
// from any thread, which then frees it (no use-after-free of the pool or its
// ring: the bug class of CVE-2025-38129). stuck_page_pools() lists such pools.
// The provider and the DMA backend must outlive every page of the pool.
//
// Thread contract, per member below: "owner" members only from the owner
// thread (asserted in debug builds); "any thread" members from anywhere. The
// owner can change only while the pool is quiesced, by release_owner() on the
// old thread and claim_owner() on the new one.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/memory/provider.h"
#include "pagefrag/pool/internal/recycle_ring.h"
#include "pagefrag/pool/page_pool_params.h"
#include "pagefrag/pool/pool_stats.h"
#include "pagefrag/pool/stuck_pools.h"

namespace pagefrag {

namespace internal {
// The last PagePool id handed out, for pools of every type.
inline std::atomic<std::uint64_t> next_page_pool_id{0};
}  // namespace internal

// Owner cache geometry (the kernel's PP_ALLOC_CACHE_SIZE / _REFILL).
inline constexpr std::size_t kPagePoolCacheSize = 128;
inline constexpr std::size_t kPagePoolCacheRefill = 64;

template <class Pool>
class PagePoolHandle;

template <MemoryProvider Provider, DmaBackend Dma, PoolStatsPolicy Stats = PoolStats>
class PagePool {
 public:
  using ProviderType = Provider;
  using DmaType = Dma;
  using StatsType = Stats;
  using Handle = PagePoolHandle<PagePool>;

  // Validates params against the provider (InvalidArgument naming the field,
  // value and valid range) and creates a pool owned by the calling thread.
  // Allocates nothing from the provider yet. Setup path; any thread.
  static absl::StatusOr<Handle> create(Provider& provider, Dma& dma, const PagePoolParams& params) {
    if (absl::Status s =
            validate_page_pool_params(params, provider.page_size(), provider.max_order());
        !s.ok()) {
      return s;
    }
    return Handle(new PagePool(provider, dma, params));
  }

  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  // ---- owner thread ----

  // One page, or nullptr (counted in alloc_fail) when cache and ring are
  // empty and the provider has no page. Owner thread.
  PAGEFRAG_ALWAYS_INLINE Page* alloc() {
    assert_owner();
    if (PAGEFRAG_LIKELY(count_ != 0)) return cache_[--count_];  // alloc_fast: derived
    return alloc_slow();
  }

  // Up to n pages into pages[0..k); returns k. k < n only when cache, ring
  // and provider together had fewer pages (counted once in alloc_fail).
  // Owner thread.
  std::size_t alloc_bulk(Page** pages, std::size_t n) {
    assert_owner();
    std::size_t k = 0;
    while (k < n) {
      if (count_ == 0 && refill() == 0) {
        stats_.template add<PoolCounter::kAllocFail>(1);
        break;
      }
      const std::size_t take = std::min(n - k, count_);
      for (std::size_t i = 0; i < take; ++i) pages[k + i] = cache_[count_ - 1 - i];
      count_ -= take;
      k += take;
    }
    return k;  // alloc_fast: derived
  }

  // Returns a page the caller owns outright (no other reference) into the
  // owner cache, or into the ring when the cache is full (recycle_cache_full),
  // or to the provider when the ring is full too. Syncs max_len bytes for the
  // device first when kPagePoolDmaSyncDev. Owner thread.
  PAGEFRAG_ALWAYS_INLINE void recycle_direct(Page* page) {
    recycle_direct_synced(page, params_.max_len);
  }

  // ---- any thread ----

  // Returns a page the caller owns outright through the ring (or to the
  // provider when the ring is full, or once the pool is destroyed). Syncs
  // max_len bytes for the device first when kPagePoolDmaSyncDev. Any thread.
  void recycle(Page* page) { recycle_remote(page, params_.max_len); }

  // The kernel's page_pool_put_page(): drops one reference on the page
  // (Page::ref) and, when it was the last, recycles it after syncing
  // min(dma_sync_size, max_len) bytes (dma_sync_size < 0: max_len). With
  // allow_direct the caller asserts it is the owner thread and the page goes
  // to the cache; otherwise through the ring. Any thread.
  void put_page(Page* page, std::int64_t dma_sync_size, bool allow_direct) {
    if (page->ref.load(std::memory_order_acquire) != 1 &&
        page->ref.fetch_sub(1, std::memory_order_acq_rel) != 1) {
      return;  // other references remain
    }
    page->ref.store(1, std::memory_order_relaxed);
    const std::uint32_t len = sync_len(dma_sync_size);
    if (allow_direct) {
      recycle_direct_synced(page, len);
    } else {
      recycle_remote(page, len);
    }
  }

  // Adds one reference to a page the caller holds (page_pool_ref_page). Any
  // thread.
  static void ref_page(Page* page) { page->ref.fetch_add(1, std::memory_order_relaxed); }

  // The pool of this type a page belongs to. Aborts, naming the page, when
  // the page belongs to no pool of this type (a foreign or released page):
  // the only way from a Page back to its pool. Any thread, while the caller
  // holds the page.
  static PagePool* pool_of(Page* page) {
    PAGEFRAG_CHECK(page->pool_type == &type_tag_,
                   "page {} (va {}) belongs to no page_pool of this type", static_cast<void*>(page),
                   static_cast<void*>(page->va));
    return static_cast<PagePool*>(page->pool);
  }

  // The page's device address (its first byte; add offsets yourself). Any
  // thread, while the caller holds the page.
  static Iova dma_addr(const Page* page) noexcept { return page->dma; }

  // Hands [offset, offset + len) of the page, measured from the pool's
  // params.offset like the kernel's page_pool_dma_sync_for_cpu(), to the CPU.
  // Any thread, while the caller holds the page.
  void sync_for_cpu(const Page* page, std::uint32_t offset, std::uint32_t len) {
    if constexpr (Dma::kFeatures.needs_sync) {
      dma_->sync_for_cpu(page->dma + params_.offset + offset, len, params_.dma_dir);
    }
  }

  // The pool page holding va, or nullptr if va is not in one of this pool's
  // pages. Any thread, while the caller holds that page.
  Page* page_of(const void* va) const noexcept {
    Page* page = provider_->page_of(va);
    return page != nullptr && page->pool == this ? page : nullptr;
  }

  // Bytes per page: provider page size << order. Any thread.
  std::size_t page_bytes() const noexcept { return page_bytes_; }
  const PagePoolParams& params() const noexcept { return params_; }
  // A process-unique id (names the pool in stuck_page_pools()). Any thread.
  std::uint64_t id() const noexcept { return id_; }

  // Pages handed out and not returned. Owner thread, or while quiesced.
  std::int64_t inflight() const noexcept {
    return owner_pages_ - static_cast<std::int64_t>(count_) -
           remote_returned_.load(std::memory_order_acquire);
  }

  // Bytes the pool holds from its provider (cache, ring and pages in flight)
  // and the most it ever held. Any thread.
  std::size_t held_bytes() const {
    std::lock_guard<std::mutex> lock(slow_mu_);
    return held_pages_ * page_bytes_;
  }
  std::size_t held_bytes_high_water() const {
    std::lock_guard<std::mutex> lock(slow_mu_);
    return held_high_water_ * page_bytes_;
  }

  // Counters, in-flight count and gauge. Owner thread, or while quiesced.
  PoolStatsSnapshot stats() const {
    PoolStatsSnapshot s;
    stats_.fill(s);
    if constexpr (Stats::kEnabled) {
      s.alloc_fast = cache_filled_ + s.recycle_cached - static_cast<std::uint64_t>(count_);
    }
    s.inflight = inflight();
    std::lock_guard<std::mutex> lock(slow_mu_);
    s.held_bytes = held_pages_ * page_bytes_;
    s.held_bytes_high_water = held_high_water_ * page_bytes_;
    return s;
  }

  // ---- owner hand-off (quiesced) ----

  // The owner gives the pool up; no owner call may run until claim_owner().
  // Owner thread.
  void release_owner() {
    assert_owner();
    owner_.store(std::thread::id{}, std::memory_order_release);
  }

  // The calling thread becomes the owner of a released pool (aborts if the
  // pool still has an owner). The release/acquire pair orders everything the
  // old owner did before everything the new one does. Any thread.
  void claim_owner() {
    std::thread::id none{};
    PAGEFRAG_CHECK(
        owner_.compare_exchange_strong(none, std::this_thread::get_id(), std::memory_order_acq_rel),
        "claim_owner() on page_pool {} that still has an owner", id_);
  }

  // Aborts in debug builds when the caller is not the owner thread.
  PAGEFRAG_ALWAYS_INLINE void assert_owner() const noexcept {
    PAGEFRAG_DCHECK(owner_.load(std::memory_order_relaxed) == std::this_thread::get_id(),
                    "page_pool {}: owner-only call from another thread", id_);
  }

 private:
  friend class PagePoolHandle<PagePool>;

  PagePool(Provider& provider, Dma& dma, const PagePoolParams& params)
      : page_bytes_(provider.page_size() << params.order),
        sync_dev_((params.flags & kPagePoolDmaSyncDev) != 0),
        ring_(params.pool_size),
        provider_(&provider),
        dma_(&dma),
        params_(params),
        id_(next_id()) {
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }

  // One counter for every pool type in the process (an inline variable, not
  // a static of this template, which would count per instantiation).
  static std::uint64_t next_id() {
    return internal::next_page_pool_id.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  std::uint32_t sync_len(std::int64_t dma_sync_size) const noexcept {
    if (dma_sync_size < 0 || dma_sync_size > std::int64_t{params_.max_len}) return params_.max_len;
    return static_cast<std::uint32_t>(dma_sync_size);
  }

  // Compiled out for backends that never need syncs (NoDma).
  PAGEFRAG_ALWAYS_INLINE void sync_for_device(Page* page, std::uint32_t len) {
    if constexpr (Dma::kFeatures.needs_sync) {
      if (sync_dev_ && len != 0)
        dma_->sync_for_device(page->dma + params_.offset, len, params_.dma_dir);
    }
  }

  PAGEFRAG_ALWAYS_INLINE void recycle_direct_synced(Page* page, std::uint32_t len) {
    assert_owner();
    PAGEFRAG_DCHECK(page->pool == this, "recycle_direct of a page of another pool");
    sync_for_device(page, len);
    if (PAGEFRAG_LIKELY(count_ < kPagePoolCacheSize)) {
      stats_.template add<PoolCounter::kRecycleCached>(1);
      cache_[count_++] = page;
      return;
    }
    stats_.template add<PoolCounter::kRecycleCacheFull>(1);
    --owner_pages_;  // leaves the owner's side
    push_or_release(page);
  }

  // Into the ring, or to the provider when it is full. Any thread.
  PAGEFRAG_NOINLINE void push_or_release(Page* page) {
    if (ring_.push(page)) {
      stats_.template add<PoolCounter::kRecycleRing>(1);
      return;
    }
    stats_.template add<PoolCounter::kRecycleRingFull>(1);
    release_pages(&page, 1);
  }

  // A return from outside the owner's bookkeeping. The last access to the
  // pool is the fetch_add in finish_remote_return(). Any thread.
  PAGEFRAG_NOINLINE void recycle_remote(Page* page, std::uint32_t len) {
    PAGEFRAG_DCHECK(page->pool == this, "recycle of a page of another pool");
    if (PAGEFRAG_UNLIKELY(dead_.load(std::memory_order_acquire))) {
      stats_.template add<PoolCounter::kRecycleReleasedRefcnt>(1);
      release_pages(&page, 1);
    } else {
      sync_for_device(page, len);
      push_or_release(page);
    }
    finish_remote_return();
  }

  // Counts one remote return. After destroy the count runs from minus the
  // pages then in flight up to zero; whoever brings it to zero frees the pool.
  void finish_remote_return() {
    if (remote_returned_.fetch_add(1, std::memory_order_acq_rel) + 1 == 0) free_dead(this);
  }

  PAGEFRAG_NOINLINE Page* alloc_slow() {
    if (refill() == 0) {
      stats_.template add<PoolCounter::kAllocFail>(1);
      return nullptr;
    }
    return cache_[--count_];  // alloc_fast: derived
  }

  // Refills the empty cache from the ring, else from the provider. Returns
  // the pages now cached. Owner thread.
  std::size_t refill() {
    count_ = ring_.pop_bulk(cache_, kPagePoolCacheRefill);
    if (count_ != 0) {
      stats_.template add<PoolCounter::kAllocRefill>(1);
    } else {
      stats_.template add<PoolCounter::kAllocEmpty>(1);
      count_ = alloc_from_provider(cache_);
    }
    owner_pages_ += static_cast<std::int64_t>(count_);
    cache_filled_ += count_;
    return count_;
  }

  // Allocates min(64, pool_size - held) pages (at least one) from the
  // provider into out, maps them and takes them into the pool. Owner thread.
  std::size_t alloc_from_provider(Page** out) {
    std::lock_guard<std::mutex> lock(slow_mu_);
    const std::size_t room = params_.pool_size > held_pages_ ? params_.pool_size - held_pages_ : 0;
    const std::size_t want = std::clamp<std::size_t>(room, 1, kPagePoolCacheRefill);
    std::size_t k = provider_->alloc_bulk(params_.order, out, want);
    if (params_.order == 0) {
      stats_.template add<PoolCounter::kAllocSlow>(1);
    } else {
      stats_.template add<PoolCounter::kAllocSlowHighOrder>(1);
    }
    k = map_new_pages(out, k);
    held_pages_ += k;
    held_high_water_ = std::max(held_high_water_, held_pages_);
    return k;
  }

  // Gives each new page its pool-layer state and DMA address; a page whose
  // mapping fails goes back to the provider. Returns the pages kept, packed
  // at the front of pages. Caller holds slow_mu_.
  std::size_t map_new_pages(Page** pages, std::size_t n) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
      Page* page = pages[i];
      if (absl::StatusOr<Iova> dma = dma_address_of(page); dma.ok()) {
        page->pool = this;
        page->pool_type = &type_tag_;
        page->dma = *dma;
        page->ref.store(1, std::memory_order_relaxed);
        page->owner_ref = 0;
        sync_for_device(page, params_.max_len);
        pages[kept++] = page;
      } else {
        provider_->release_bulk(&page, 1);
      }
    }
    return kept;
  }

  absl::StatusOr<Iova> dma_address_of(const Page* page) {
    if (params_.premapped) {
      return params_.premapped_iova +
             static_cast<std::uint64_t>(page->va - provider_->region().data());
    }
    if ((params_.flags & kPagePoolDmaMap) == 0) return Iova{};
    return dma_->map({page->va, page_bytes_}, params_.dma_dir);
  }

  // Unmaps n pages and returns them to the provider. Any thread.
  void release_pages(Page** pages, std::size_t n) {
    std::lock_guard<std::mutex> lock(slow_mu_);
    for (std::size_t i = 0; i < n; ++i) {
      if ((params_.flags & kPagePoolDmaMap) != 0) {
        const absl::Status s = dma_->unmap(pages[i]->dma, page_bytes_, params_.dma_dir);
        PAGEFRAG_CHECK(s.ok(), "page_pool {}: unmap of its own mapping failed: {}", id_,
                       s.ToString());
      }
      pages[i]->pool = nullptr;
      pages[i]->pool_type = nullptr;
    }
    provider_->release_bulk(pages, n);
    held_pages_ -= n;
  }

  void drain_ring() {
    Page* batch[kPagePoolCacheRefill];
    while (std::size_t k = ring_.pop_bulk(batch, kPagePoolCacheRefill)) release_pages(batch, k);
  }

  // page_pool_destroy(): called by the handle on the owner thread.
  static void destroy(PagePool* pool) {
    pool->assert_owner();
    pool->dead_.store(true, std::memory_order_seq_cst);
    pool->release_pages(pool->cache_, pool->count_);
    pool->owner_pages_ -= static_cast<std::int64_t>(std::exchange(pool->count_, 0));
    pool->drain_ring();
    // From here inflight() = -remote_returned_: the pages still out.
    const std::int64_t pending = std::exchange(pool->owner_pages_, 0);
    internal::stuck_pool_registry().add(pool, pool->id_, &inflight_of);
    // The last access to the pool unless this brings the count to zero.
    if (pool->remote_returned_.fetch_sub(pending, std::memory_order_acq_rel) - pending == 0) {
      free_dead(pool);
    }
  }

  // Frees a destroyed pool once nothing is in flight. The caller is the one
  // thread that saw the count reach zero; every other party has finished
  // with the pool. Pages recycled into the ring after destroy()'s drain are
  // released here.
  static void free_dead(PagePool* pool) {
    pool->drain_ring();
    internal::stuck_pool_registry().remove(pool);
    delete pool;
  }

  static std::int64_t inflight_of(const void* p) {
    return static_cast<const PagePool*>(p)->inflight();
  }

  // ---- owner lines: cache, its count, read-mostly fast-path state ----
  alignas(kCacheLineSize) std::size_t count_ = 0;
  // Pages on the owner's side: in the cache or handed out and not returned
  // through the ring. Alloc and recycle_direct move pages within it, so the
  // fast paths leave it alone; handed out = owner_pages_ - count_.
  std::int64_t owner_pages_ = 0;
  const std::size_t page_bytes_;
  const bool sync_dev_;
  Page* cache_[kPagePoolCacheSize];
  [[no_unique_address]] Stats stats_;

  // ---- cross-thread state, apart from the owner lines ----
  internal::RecycleRing ring_;
  // Pages returned by recycle()/put_page(!direct); after destroy, minus the
  // pages then in flight plus later returns.
  alignas(kCacheLineSize) std::atomic<std::int64_t> remote_returned_{0};
  std::atomic<bool> dead_{false};

  // ---- cold: setup, slow paths ----
  alignas(kCacheLineSize) Provider* provider_;
  Dma* dma_;
  const PagePoolParams params_;
  const std::uint64_t id_;
  std::atomic<std::thread::id> owner_;
  mutable std::mutex slow_mu_;  // provider, map/unmap, held gauge
  std::size_t held_pages_ = 0;
  std::size_t held_high_water_ = 0;
  // Pages refill() put into the cache, for the derived alloc_fast. Owner.
  std::uint64_t cache_filled_ = 0;
  // Its address tags the pages of every pool of this type (Page::pool_type).
  static inline char type_tag_ = 0;
};

// Owns a PagePool: destroying (or reset()ting) the handle destroys the pool
// (page_pool_destroy), which frees itself once no page is in flight. Movable,
// not copyable. Owner thread for destruction.
template <class Pool>
class PagePoolHandle {
 public:
  PagePoolHandle() = default;
  PagePoolHandle(PagePoolHandle&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
  PagePoolHandle& operator=(PagePoolHandle&& other) noexcept {
    if (this != &other) {
      reset();
      pool_ = std::exchange(other.pool_, nullptr);
    }
    return *this;
  }
  ~PagePoolHandle() { reset(); }

  // Destroys the pool now (owner thread); the handle becomes empty.
  void reset() {
    if (pool_ != nullptr) Pool::destroy(std::exchange(pool_, nullptr));
  }

  Pool* get() const noexcept { return pool_; }
  Pool& operator*() const noexcept { return *pool_; }
  Pool* operator->() const noexcept { return pool_; }
  explicit operator bool() const noexcept { return pool_ != nullptr; }

 private:
  friend Pool;
  explicit PagePoolHandle(Pool* pool) noexcept : pool_(pool) {}
  Pool* pool_ = nullptr;
};

}  // namespace pagefrag
