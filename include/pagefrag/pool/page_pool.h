// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/pool/page_pool.h: PagePool, the kernel's page_pool in user space.
//
// A PagePool hands out DMA-mapped pages of one order to one RX queue and takes
// them back, keeping them mapped for as long as they stay in the pool:
//
//   owner cache   128 pages, LIFO, touched only by the owner thread (the one
//                 that polls the queue): alloc() is a load and a store,
//                 recycle_direct() adds one plain counter update and a check of
//                 the page's pooled state. No lock, no atomic read-modify-write.
//                 alloc_fast (the kernel's: cache hits) is not counted on the
//                 fast path but derived in stats() from the pages that left
//                 the cache minus those the refill and slow path served.
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
// kernel's page_pool_destroy(): it empties cache and ring, unmaps every page
// still in flight (the kernel since 6.15), and if pages are still in flight
// the pool's memory stays alive until the last one comes back from any
// thread, which then frees it (no use-after-free of the pool or its ring: the
// bug class of CVE-2025-38129). stuck_page_pools() lists such pools. After
// destroy() returns no call reaches the DMA backend, which may be destroyed
// at once; the provider must outlive every page. Providers and backends that
// track their pools (base/pool_attachments.h) abort, naming the pools, when
// destroyed too early. Every return checks that the page is one this pool
// handed out (another pool's page, or a second recycle or put, aborts) in
// every build.
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
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/hardened.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/base/pool_attachments.h"
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
    if (PAGEFRAG_LIKELY(count_ != 0)) return hand_out(cache_[--count_]);  // alloc_fast: derived
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
      for (std::size_t i = 0; i < take; ++i) pages[k + i] = hand_out(cache_[count_ - 1 - i]);
      count_ -= take;
      k += take;
    }
    return k;  // alloc_fast: derived
  }

  // Returns a page the caller owns outright (no other reference) into the
  // owner cache, or into the ring when the cache is full (recycle_cache_full),
  // or to the provider when the ring is full too. Syncs max_len bytes for the
  // device first when kPagePoolDmaSyncDev. Aborts, naming the page, when it
  // is not a page this pool handed out (another pool's, already recycled).
  // Owner thread; not after the pool's handle is destroyed (use recycle()).
  PAGEFRAG_ALWAYS_INLINE void recycle_direct(Page* page) {
    recycle_direct_synced(page, params_.max_len);
  }

  // ---- any thread ----

  // Returns a page the caller owns outright through the ring (or to the
  // provider when the ring is full, or once the pool is destroyed). Syncs
  // max_len bytes for the device first when kPagePoolDmaSyncDev. Aborts like
  // recycle_direct() for a page this pool did not hand out. Any thread.
  void recycle(Page* page) { recycle_remote(page, params_.max_len); }

  // The kernel's page_pool_put_page(): drops one reference on the page
  // (Page::ref) and, when it was the last, recycles it after syncing
  // min(dma_sync_size, max_len) bytes (dma_sync_size < 0: max_len). With
  // allow_direct the caller asserts it is the owner thread and the page goes
  // to the cache; otherwise through the ring. A second put of a page already
  // back in the pool aborts, naming it. Any thread.
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
  // After destroy() the page is unmapped and this does nothing. Any thread,
  // while the caller holds the page, not concurrently with destroy().
  void sync_for_cpu(const Page* page, std::uint32_t offset, std::uint32_t len) {
    sync_for_cpu_in_page(page, params_.offset + offset, len);
  }

  // Hands [page_offset, page_offset + len) of the page, measured from the
  // page's first byte (a fragment's Frag::offset), to the CPU. Like
  // sync_for_cpu(), nothing after destroy(). Any thread, while the caller
  // holds the page, not concurrently with destroy().
  void sync_for_cpu_in_page(const Page* page, std::uint32_t page_offset, std::uint32_t len) {
    if constexpr (Dma::kFeatures.needs_sync) {
      if (PAGEFRAG_UNLIKELY((gate_.load(std::memory_order_acquire) & kGateDead) != 0)) return;
      dma_->sync_for_cpu(page->dma + page_offset, len, params_.dma_dir);
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

  // The kernel's in-flight count, hold - release: pages taken from the
  // provider and not yet released to it (in the cache, in the ring or handed
  // out). After destroy() emptied cache and ring it is the pages still out.
  // Any thread.
  std::int64_t inflight() const {
    std::lock_guard<std::mutex> lock(slow_mu_);
    return static_cast<std::int64_t>(held_.size());
  }

  // Pages in the owner cache: the next cached() alloc() calls are cache
  // hits. Owner thread.
  std::size_t cached() const noexcept { return count_; }

  // Pages handed out and not returned (neither in the cache nor the ring).
  // Owner thread, or while quiesced.
  std::int64_t handed_out() const noexcept {
    return owner_pages_ - static_cast<std::int64_t>(count_) -
           remote_returned_.load(std::memory_order_acquire);
  }

  // Bytes the pool holds from its provider (cache, ring and pages in flight)
  // and the most it ever held. Any thread.
  std::size_t held_bytes() const {
    std::lock_guard<std::mutex> lock(slow_mu_);
    return held_.size() * page_bytes_;
  }
  std::size_t held_bytes_high_water() const {
    std::lock_guard<std::mutex> lock(slow_mu_);
    return held_high_water_ * page_bytes_;
  }

  // Counters and gauges. Owner thread, or while quiesced.
  PoolStatsSnapshot stats() const {
    PoolStatsSnapshot s;
    stats_.fill(s);
    if constexpr (Stats::kEnabled) s.alloc_fast = alloc_fast();
    s.handed_out = handed_out();
    std::lock_guard<std::mutex> lock(slow_mu_);
    s.inflight = static_cast<std::int64_t>(held_.size());
    s.held_bytes = held_.size() * page_bytes_;
    s.held_bytes_high_water = held_high_water_ * page_bytes_;
    return s;
  }

  // Registers fn, called once with the pool's final counters when the pool
  // is freed: at destroy() when nothing is in flight, else on whichever
  // thread returns the last page. fn must not call into the pool. Owner
  // thread, before destroy().
  void set_on_free(std::function<void(const PoolStatsSnapshot&)> fn) {
    assert_owner();
    on_free_ = std::move(fn);
  }

  // ---- fragment allocator hook ----

  // Registers the function destroy() calls first, on the owner thread, to
  // drain the fragment allocator cutting this pool's pages (the kernel's
  // page_pool_destroy() drains the fragment page itself); fn(owner) must
  // return every page it holds to the pool or merge it, and stop using the
  // pool. (nullptr, nullptr) unregisters. Owner thread.
  void set_frag_drain(void* owner, void (*fn)(void*)) noexcept {
    assert_owner();
    frag_owner_ = owner;
    frag_drain_ = fn;
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

  // Aborts in debug and hardened builds when the caller is not the owner
  // thread.
  PAGEFRAG_ALWAYS_INLINE void assert_owner() const noexcept {
    PAGEFRAG_HCHECK(owner_.load(std::memory_order_relaxed) == std::this_thread::get_id(),
                    "page_pool {}: owner-only call from another thread", id_);
  }

 private:
  friend class PagePoolHandle<PagePool>;

  // gate_: bit 0 is set by destroy(); each remote return adds kGateOne while
  // it may still call the DMA backend, so destroy() can wait for those.
  static constexpr std::uint64_t kGateDead = 1;
  static constexpr std::uint64_t kGateOne = 2;

  PagePool(Provider& provider, Dma& dma, const PagePoolParams& params)
      : page_bytes_(provider.page_size() << params.order),
        sync_dev_((params.flags & kPagePoolDmaSyncDev) != 0),
        ring_(params.pool_size),
        provider_(&provider),
        dma_(&dma),
        params_(params),
        id_(next_id()) {
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    held_.reserve(params.pool_size);
    if constexpr (PoolAttachable<Provider>) provider.pool_attachments().attach(id_);
    if constexpr (PoolAttachable<Dma>) dma.pool_attachments().attach(id_);
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

  // The kernel's alloc_fast: pages served from the cache by a fast-path hit.
  // Every page that left the cache other than at destroy was handed out;
  // each refill or slow-path call that got pages handed out one of them
  // itself (counted there, not here).
  std::uint64_t alloc_fast() const noexcept {
    PoolStatsSnapshot s;
    stats_.fill(s);
    return cache_filled_ + s.recycle_cached - count_ - dropped_at_destroy_ - s.alloc_refill -
           s.alloc_slow - s.alloc_slow_high_order;
  }

  // A page leaves the pool: it is out now, and usable (hardened ASan builds
  // poison pooled pages).
  PAGEFRAG_ALWAYS_INLINE Page* hand_out(Page* page) noexcept {
    page->pool_state.store(kPageOut, std::memory_order_relaxed);
    if constexpr (kPoisoning) unpoison_memory(page->va, page_bytes_);
    return page;
  }

  // Every return checks that the page is one this pool handed out: a page of
  // another pool, of no pool, or already back (a double recycle or put)
  // aborts in every build. One compare of two fields of the page's first
  // line, which the return path touches anyway.
  PAGEFRAG_ALWAYS_INLINE void check_owner_return(Page* page, const char* path) const {
    if (PAGEFRAG_UNLIKELY(page->pool != this ||
                          page->pool_state.load(std::memory_order_relaxed) != kPageOut)) {
      bad_return(page, path);
    }
    page->pool_state.store(kPagePooled, std::memory_order_relaxed);
  }
  // The same for a return from any thread, with an exchange: of two threads
  // returning one page at the same instant, one aborts. (An owner return
  // racing a remote one may still both pass: the owner path does no atomic
  // read-modify-write. One after the other, the second always aborts.)
  void check_remote_return(Page* page, const char* path) const {
    if (PAGEFRAG_UNLIKELY(page->pool != this)) bad_return(page, path);
    const std::uint8_t was = page->pool_state.exchange(kPagePooled, std::memory_order_relaxed);
    if (PAGEFRAG_UNLIKELY(was != kPageOut)) {
      page->pool_state.store(was, std::memory_order_relaxed);  // for bad_return's diagnosis
      bad_return(page, path);
    }
  }

  [[noreturn]] PAGEFRAG_COLD PAGEFRAG_NOINLINE void bad_return(const Page* page,
                                                               const char* path) const {
    const void* p = page;
    if (page->pool == this && page->pool_state.load(std::memory_order_relaxed) == kPagePooled) {
      PAGEFRAG_CHECK(false,
                     "{} of page {} (va {}) into page_pool {}: the page is already back in the "
                     "pool (recycled or put twice)",
                     path, p, static_cast<void*>(page->va), id_);
    }
    if (page->pool == nullptr) {
      PAGEFRAG_CHECK(false,
                     "{} of page {} (va {}) into page_pool {}: the page belongs to no pool "
                     "(never from one, or already released to its provider)",
                     path, p, static_cast<void*>(page->va), id_);
    }
    PAGEFRAG_CHECK(page->pool == this, "{} of page {} (va {}) into page_pool {}: the page is {}'s",
                   path, p, static_cast<void*>(page->va), id_, page->pool);
    PAGEFRAG_CHECK(false, "{} of page {} into page_pool {}: page state {} (expected handed out)",
                   path, p, id_, page->pool_state.load(std::memory_order_relaxed));
  }

  // Compiled out for backends that never need syncs (NoDma).
  PAGEFRAG_ALWAYS_INLINE void sync_for_device(Page* page, std::uint32_t len) {
    if constexpr (Dma::kFeatures.needs_sync) {
      if (sync_dev_ && len != 0)
        dma_->sync_for_device(page->dma + params_.offset, len, params_.dma_dir);
    }
  }

  // Syncs a returned page for the device; in hardened ASan builds the page
  // is poisoned from here until it is handed out again (unpoisoned first: a
  // bounce-buffering backend reads it to sync).
  PAGEFRAG_ALWAYS_INLINE void sync_returned(Page* page, std::uint32_t len) {
    if constexpr (kPoisoning) unpoison_memory(page->va, page_bytes_);
    sync_for_device(page, len);
    if constexpr (kPoisoning) poison_memory(page->va, page_bytes_);
  }

  PAGEFRAG_ALWAYS_INLINE void recycle_direct_synced(Page* page, std::uint32_t len) {
    assert_owner();
    PAGEFRAG_HCHECK(!destroyed_, "page_pool {}: recycle_direct after destroy; use recycle()", id_);
    check_owner_return(page, "recycle_direct");
    sync_returned(page, len);
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

  // Whether a return syncs for the device: the only backend call a remote
  // return makes outside slow_mu_.
  bool syncs_on_return() const noexcept { return Dma::kFeatures.needs_sync && sync_dev_; }

  // A return from outside the owner's bookkeeping. When it syncs for the
  // device it holds the gate open meanwhile (destroy() waits for it); without
  // a sync it only reads the gate (a push that races destroy's drain is
  // released by free_dead()). The last access to the pool is the fetch_add
  // in finish_remote_return(). Any thread.
  PAGEFRAG_NOINLINE void recycle_remote(Page* page, std::uint32_t len) {
    check_remote_return(page, "recycle");
    const bool syncs = syncs_on_return();
    const std::uint64_t gate = syncs ? gate_.fetch_add(kGateOne, std::memory_order_acq_rel)
                                     : gate_.load(std::memory_order_acquire);
    if (PAGEFRAG_UNLIKELY((gate & kGateDead) != 0)) {
      if (syncs) gate_.fetch_sub(kGateOne, std::memory_order_release);
      // Destroyed: the page was unmapped then (or is unmapped below, before
      // destroy() returns); released with no DMA call after destroy().
      stats_.template add<PoolCounter::kReleasedAfterDestroy>(1);
      release_pages(&page, 1);
    } else {
      sync_returned(page, len);
      push_or_release(page);
      if (syncs) gate_.fetch_sub(kGateOne, std::memory_order_release);
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
    return hand_out(cache_[--count_]);  // served by refill or slow: counted there
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
  // provider into out, maps them and takes them into the pool; counts
  // alloc_slow (order 0) or alloc_slow_high_order when it got a page, as the
  // kernel does. Owner thread.
  std::size_t alloc_from_provider(Page** out) {
    std::lock_guard<std::mutex> lock(slow_mu_);
    const std::size_t room =
        params_.pool_size > held_.size() ? params_.pool_size - held_.size() : 0;
    const std::size_t want = std::clamp<std::size_t>(room, 1, kPagePoolCacheRefill);
    std::size_t k = provider_->alloc_bulk(params_.order, out, want);
    k = map_new_pages(out, k);
    if (k != 0) {
      if (params_.order == 0) {
        stats_.template add<PoolCounter::kAllocSlow>(1);
      } else {
        stats_.template add<PoolCounter::kAllocSlowHighOrder>(1);
      }
    }
    held_high_water_ = std::max(held_high_water_, held_.size());
    return k;
  }

  // Gives each new page its pool-layer state and DMA address and enters it
  // in held_; a page whose mapping fails goes back to the provider. Returns
  // the pages kept, packed at the front of pages. Caller holds slow_mu_.
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
        page->pool_state.store(kPagePooled, std::memory_order_relaxed);
        page->pool_slot = static_cast<std::uint32_t>(held_.size());
        held_.push_back(page);
        sync_for_device(page, params_.max_len);
        if constexpr (kPoisoning) poison_memory(page->va, page_bytes_);
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

  // Unmaps the page (the kernel passes DMA_ATTR_SKIP_CPU_SYNC; a bounce
  // backend copies back on unmap, so the page is unpoisoned first). Caller
  // holds slow_mu_.
  void unmap_page(Page* page) {
    if constexpr (kPoisoning) unpoison_memory(page->va, page_bytes_);
    const absl::Status s = dma_->unmap(page->dma, page_bytes_, params_.dma_dir);
    PAGEFRAG_CHECK(s.ok(), "page_pool {}: unmap of its own mapping failed: {}", id_, s.ToString());
  }

  // Unmaps n pages (unless destroy() unmapped them already) and returns them
  // to the provider. Any thread.
  void release_pages(Page** pages, std::size_t n) {
    std::lock_guard<std::mutex> lock(slow_mu_);
    for (std::size_t i = 0; i < n; ++i) {
      Page* page = pages[i];
      if ((params_.flags & kPagePoolDmaMap) != 0 && !dma_detached_) unmap_page(page);
      if constexpr (kPoisoning) unpoison_memory(page->va, page_bytes_);
      // Out of held_: the last entry takes the page's slot.
      const std::uint32_t slot = page->pool_slot;
      PAGEFRAG_CHECK(slot < held_.size() && held_[slot] == page,
                     "page_pool {}: release of page {} it does not hold", id_,
                     static_cast<void*>(page));
      held_[slot] = held_.back();
      held_[slot]->pool_slot = slot;
      held_.pop_back();
      page->pool = nullptr;
      page->pool_type = nullptr;
      page->pool_state.store(kPageAtProvider, std::memory_order_relaxed);
    }
    provider_->release_bulk(pages, n);
  }

  void drain_ring() {
    Page* batch[kPagePoolCacheRefill];
    while (std::size_t k = ring_.pop_bulk(batch, kPagePoolCacheRefill)) release_pages(batch, k);
  }

  // The kernel's unmap at destroy (ee62ce7a1d90): with cache and ring empty,
  // held_ lists exactly the pages in flight; each is unmapped now, and from
  // here on no call reaches the DMA backend (release_pages skips the unmap,
  // syncs see the gate closed). Owner thread, gate closed, no remote inside.
  void unmap_inflight() {
    std::lock_guard<std::mutex> lock(slow_mu_);
    if ((params_.flags & kPagePoolDmaMap) != 0) {
      for (Page* page : held_) unmap_page(page);
    }
    dma_detached_ = true;
  }

  // page_pool_destroy(): called by the handle on the owner thread.
  static void destroy(PagePool* pool) {
    pool->assert_owner();
    if (pool->frag_drain_ != nullptr) std::exchange(pool->frag_drain_, nullptr)(pool->frag_owner_);
    pool->alloc_fast_at_destroy_ = pool->alloc_fast();
    // Close the gate and wait for remote returns still inside it (they may
    // be syncing or pushing); later ones see it closed and release.
    pool->gate_.fetch_or(kGateDead, std::memory_order_acq_rel);
    while ((pool->gate_.load(std::memory_order_acquire) & ~kGateDead) != 0) {
      std::this_thread::yield();
    }
    pool->destroyed_ = true;
    pool->release_pages(pool->cache_, pool->count_);
    pool->dropped_at_destroy_ += pool->count_;
    pool->owner_pages_ -= static_cast<std::int64_t>(std::exchange(pool->count_, 0));
    pool->drain_ring();
    pool->unmap_inflight();
    if constexpr (PoolAttachable<Dma>) pool->dma_->pool_attachments().detach(pool->id_);
    // From here handed_out() = -remote_returned_: the pages still out.
    const std::int64_t pending = std::exchange(pool->owner_pages_, 0);
    // The subtraction and the registration happen under the registry's lock,
    // so stuck_page_pools() never sees the pool before its count is settled
    // (it would read "nothing in flight", or a negative count). A concurrent
    // last return that frees the pool waits for the lock in remove().
    const bool done =
        internal::stuck_pool_registry().add_unless(pool, pool->id_, &inflight_of, [&] {
          // The last access to the pool unless this brings the count to zero.
          return pool->remote_returned_.fetch_sub(pending, std::memory_order_acq_rel) - pending ==
                 0;
        });
    if (done) free_dead(pool);
  }

  // Frees a destroyed pool once nothing is in flight. The caller is the one
  // thread that saw the count reach zero; every other party has finished
  // with the pool. Pages recycled into the ring after destroy()'s drain are
  // released here.
  static void free_dead(PagePool* pool) {
    pool->drain_ring();
    internal::stuck_pool_registry().remove(pool);
    if constexpr (PoolAttachable<Provider>) pool->provider_->pool_attachments().detach(pool->id_);
    if (pool->on_free_) {
      PoolStatsSnapshot s;
      pool->stats_.fill(s);
      if constexpr (Stats::kEnabled) s.alloc_fast = pool->alloc_fast_at_destroy_;
      s.inflight = static_cast<std::int64_t>(pool->held_.size());
      s.held_bytes_high_water = pool->held_high_water_ * pool->page_bytes_;
      pool->on_free_(s);
    }
    delete pool;
  }

  // A destroyed pool's pages still out.
  static std::int64_t inflight_of(const void* p) {
    return -static_cast<const PagePool*>(p)->remote_returned_.load(std::memory_order_acquire);
  }

  // ---- owner lines: cache, its count, read-mostly fast-path state ----
  alignas(kCacheLineSize) std::size_t count_ = 0;
  // Pages on the owner's side: in the cache or handed out and not returned
  // through the ring. Alloc and recycle_direct move pages within it, so the
  // fast paths leave it alone; handed out = owner_pages_ - count_.
  std::int64_t owner_pages_ = 0;
  const std::size_t page_bytes_;
  const bool sync_dev_;
  bool destroyed_ = false;  // owner: destroy() ran
  Page* cache_[kPagePoolCacheSize];
  [[no_unique_address]] Stats stats_;

  // ---- cross-thread state, apart from the owner lines ----
  internal::RecycleRing ring_;
  // Pages returned by recycle()/put_page(!direct); after destroy, minus the
  // pages then in flight plus later returns.
  alignas(kCacheLineSize) std::atomic<std::int64_t> remote_returned_{0};
  // kGateDead | kGateOne * (remote returns that may still call the backend).
  std::atomic<std::uint64_t> gate_{0};

  // ---- cold: setup, slow paths ----
  alignas(kCacheLineSize) Provider* provider_;
  Dma* dma_;
  const PagePoolParams params_;
  const std::uint64_t id_;
  std::atomic<std::thread::id> owner_;
  mutable std::mutex slow_mu_;  // provider, map/unmap, held_
  // Every page the pool holds from its provider (cache, ring, handed out),
  // each at its Page::pool_slot: the kernel's hold - release is its size, and
  // destroy() unmaps those still out through it. Touched only on slow paths.
  std::vector<Page*> held_;
  std::size_t held_high_water_ = 0;
  bool dma_detached_ = false;  // destroy() unmapped every page: no more DMA calls
  // Pages refill() put into the cache, and pages destroy() released from
  // it, for the derived alloc_fast. Owner.
  std::uint64_t cache_filled_ = 0;
  std::uint64_t dropped_at_destroy_ = 0;
  std::uint64_t alloc_fast_at_destroy_ = 0;
  std::function<void(const PoolStatsSnapshot&)> on_free_;
  // The fragment allocator's drain hook (set_frag_drain). Owner.
  void* frag_owner_ = nullptr;
  void (*frag_drain_)(void*) = nullptr;
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
