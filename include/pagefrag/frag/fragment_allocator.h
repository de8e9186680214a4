// pagefrag/frag/fragment_allocator.h: FragmentAllocator, page fragments from a
// PagePool with biased reference counting.
//
// alloc_frag(size) carves fragments out of the pool's pages as the kernel's
// page_pool_alloc() does: size is rounded up to the alignment (64 by
// default); a request with 2 * size > page bytes gets a whole page; otherwise
// fragments are cut from the current fragment page, and when no further
// fragment of that size would fit, the last one's truesize runs to the end of
// the page and the page is retired.
//
// Each page counts its fragments twice, split by thread (biased reference
// counting):
//   Page::owner_ref  owner-only plain count: fragments handed out minus
//                    fragments the owner freed;
//   Page::ref        shared atomic, set once to kFragBias when the page
//                    becomes the fragment page; free_frag_remote() subtracts 1.
// A page is done when owner_ref == kFragBias - ref (every fragment freed by
// one side or the other) and it is retired. The owner checks that with one
// atomic *load*: an owner free is a plain decrement and a load, no atomic
// read-modify-write. Retired pages that are not done yet wait in a small
// owner-only watch set; when a remote free may be the last one (the page had
// remote frees at retirement, or the watch set is full), the owner merges the
// page once: one atomic subtract of (kFragBias - owner_ref) leaves ref equal to
// the fragments still out, and from then on every free (either thread) is the
// kernel's atomic decrement; the one reaching zero recycles the page. The
// argument for why exactly one party recycles each page, and never early, is
// in docs/pool-and-frag.md.
//
// Thread contract: alloc_frag(), free_frag(), reclaim(), stats() and the
// destructor on the pool's owner thread; free_frag_remote() from any thread,
// also after the allocator is gone. One FragmentAllocator per pool; destroy it
// before the pool's handle.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/memory/page.h"

namespace pagefrag {

// The shared count of a fresh fragment page (the kernel's BIAS_MAX idea):
// large enough that remote frees never bring it near zero before a merge.
inline constexpr std::int64_t kFragBias = std::int64_t{1} << 62;
// Page::owner_ref of a merged page: frees go to the atomic count.
inline constexpr std::int64_t kFragMerged = std::numeric_limits<std::int64_t>::min();

// One fragment. A null Frag (page == nullptr) means the allocation failed.
struct Frag {
  Page* page = nullptr;
  std::uint32_t offset = 0;    // from the page's first byte
  std::uint32_t truesize = 0;  // bytes charged: size rounded, or to page end
  std::byte* va = nullptr;     // page->va + offset
  Iova iova{};                 // page's dma + offset

  explicit operator bool() const noexcept { return page != nullptr; }
};

struct FragmentAllocatorParams {
  // Fragment sizes round up to this: a power of two, 8..page bytes.
  std::uint32_t align = 64;
  // Retired pages the owner keeps watching before merging one: 1..65536.
  std::uint32_t watch_capacity = 128;
};

// Owner-thread counters of one allocator (slow paths only).
struct FragStats {
  std::uint64_t alloc_fail = 0;     // null Frags returned
  std::uint64_t full_pages = 0;     // requests served with a whole page
  std::uint64_t pages_used = 0;     // pages that became the fragment page
  std::uint64_t pages_merged = 0;   // pages handed to the atomic count
  std::uint64_t pages_evicted = 0;  // of those, merged because the watch set was full
};

template <class Pool>
class FragmentAllocator {
 public:
  // Validates params against the pool (InvalidArgument naming the field).
  // Setup path; owner thread.
  static absl::StatusOr<FragmentAllocator> create(Pool& pool,
                                                  const FragmentAllocatorParams& params = {}) {
    const std::size_t page_bytes = pool.page_bytes();
    if (params.align < 8 || !is_power_of_two(params.align) || params.align > page_bytes) {
      return absl::InvalidArgumentError(
          fmt::format("FragmentAllocatorParams.align {}; expected a power of two in 8..{}",
                      params.align, page_bytes));
    }
    if (params.watch_capacity == 0 || params.watch_capacity > 65536) {
      return absl::InvalidArgumentError(fmt::format(
          "FragmentAllocatorParams.watch_capacity {}; expected 1..65536", params.watch_capacity));
    }
    if (page_bytes > std::numeric_limits<std::uint32_t>::max()) {
      return absl::InvalidArgumentError(
          fmt::format("pool page bytes {}; fragments need pages of at most 4 GiB - 1", page_bytes));
    }
    return FragmentAllocator(pool, params);
  }

  FragmentAllocator(FragmentAllocator&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)),
        page_bytes_(other.page_bytes_),
        half_page_(other.half_page_),
        align_(other.align_),
        current_(std::exchange(other.current_, nullptr)),
        offset_(other.offset_),
        users_(std::exchange(other.users_, 0)),
        cur_va_(other.cur_va_),
        cur_dma_(other.cur_dma_),
        watch_(std::move(other.watch_)),
        watched_(std::exchange(other.watched_, 0)),
        cursor_(other.cursor_),
        stats_(other.stats_) {}
  FragmentAllocator& operator=(FragmentAllocator&&) = delete;
  FragmentAllocator(const FragmentAllocator&) = delete;

  // Retires the current page and merges every watched page; outstanding
  // fragments must then be freed with free_frag_remote(). Owner thread.
  ~FragmentAllocator() {
    if (pool_ == nullptr) return;
    if (current_ != nullptr) retire_current();
    while (watched_ != 0) evict(watch_[watched_ - 1]);
  }

  // A fragment of at least size bytes (rounded up to the alignment), or a
  // null Frag, counted in alloc_fail, when size is 0 or above the page bytes
  // or the pool has no page. Owner thread.
  PAGEFRAG_ALWAYS_INLINE Frag alloc_frag(std::uint32_t size) {
    const std::uint64_t rounded = align_up(size, align_);
    // rounded - 1 wraps for size 0; offset_ is page_bytes_ without a
    // fragment page, so one test covers "no page" and "does not fit".
    if (PAGEFRAG_LIKELY(rounded - 1 < half_page_ && offset_ + rounded <= page_bytes_)) {
      return carve(static_cast<std::uint32_t>(rounded));
    }
    return alloc_frag_slow(size, rounded);
  }

  // Frees a fragment of this allocator's pool. No atomic read-modify-write
  // unless the page was merged. Owner thread.
  PAGEFRAG_ALWAYS_INLINE void free_frag(Page* page) {
    pool_->assert_owner();
    if (PAGEFRAG_UNLIKELY(page->owner_ref == kFragMerged)) {
      put_merged(page, true);
      return;
    }
    // On the fragment page owner_ref is minus the owner's frees (< 0) while
    // kFragBias - ref counts remote frees (>= 0): never equal, never done.
    const std::int64_t left = --page->owner_ref;
    if (left != kFragBias - page->ref.load(std::memory_order_acquire)) return;
    unwatch(page);
    recycle_done(page);
  }
  void free_frag(const void* va) { free_frag(page_or_die(va)); }

  // Frees a fragment from any thread: one atomic decrement (none when it is
  // the last reference of a merged page). Never touches the allocator object,
  // so it stays valid after the allocator is destroyed. Any thread.
  static void free_frag_remote(Page* page) { put_merged(page, false); }
  void free_frag_remote(const void* va) { free_frag_remote(page_or_die(va)); }

  // Recycles every watched page whose fragments have all come back (the last
  // free having been remote). Owner thread.
  void reclaim() {
    pool_->assert_owner();
    for (std::size_t i = watched_; i-- > 0;) {
      Page* page = watch_[i];
      if (is_done(page)) {
        unwatch(page);
        recycle_done(page);
      }
    }
  }

  // ---- introspection: owner thread ----
  Page* current_page() const noexcept { return current_; }
  // Retired pages waiting for fragments (or for reclaim()).
  std::size_t watched_pages() const noexcept { return watched_; }
  bool is_watched(const Page* page) const noexcept {
    return page->frag_slot < watched_ && watch_[page->frag_slot] == page;
  }
  const FragStats& stats() const noexcept { return stats_; }
  std::uint32_t align() const noexcept { return align_; }
  Pool& pool() const noexcept { return *pool_; }

 private:
  FragmentAllocator(Pool& pool, const FragmentAllocatorParams& params)
      : pool_(&pool),
        page_bytes_(static_cast<std::uint32_t>(pool.page_bytes())),
        half_page_(page_bytes_ / 2),
        align_(params.align),
        offset_(page_bytes_),
        watch_(params.watch_capacity) {}

  Page* page_or_die(const void* va) const {
    Page* page = pool_->page_of(va);
    PAGEFRAG_CHECK(page != nullptr, "free of {} which is not in a page of pool {}", va,
                   pool_->id());
    return page;
  }

  // Cuts [offset_, offset_ + size) from the current page. The last fragment
  // that fits takes the rest of the page, which is then retired.
  PAGEFRAG_ALWAYS_INLINE Frag carve(std::uint32_t size) {
    const std::uint32_t off = offset_;
    Frag frag{current_, off, size, cur_va_ + off, cur_dma_ + off};
    ++users_;
    offset_ = off + size;
    if (std::uint64_t{offset_} + size > page_bytes_) {
      frag.truesize = page_bytes_ - off;
      retire_current();
    }
    return frag;
  }

  PAGEFRAG_NOINLINE Frag alloc_frag_slow(std::uint32_t size, std::uint64_t rounded) {
    pool_->assert_owner();
    if (size == 0 || rounded > page_bytes_) {
      ++stats_.alloc_fail;
      return {};
    }
    if (2 * rounded > page_bytes_) return alloc_full_page();
    if (current_ != nullptr) retire_current();  // this size does not fit any more
    Page* page = pool_->alloc();
    if (page == nullptr) {
      ++stats_.alloc_fail;
      return {};
    }
    ++stats_.pages_used;
    page->ref.store(kFragBias, std::memory_order_relaxed);
    page->owner_ref = 0;
    current_ = page;
    offset_ = 0;
    users_ = 0;
    cur_va_ = page->va;
    cur_dma_ = Pool::dma_addr(page);
    return carve(static_cast<std::uint32_t>(rounded));
  }

  // A whole page as one fragment: merged from the start with one reference.
  Frag alloc_full_page() {
    Page* page = pool_->alloc();
    if (page == nullptr) {
      ++stats_.alloc_fail;
      return {};
    }
    ++stats_.full_pages;
    page->ref.store(1, std::memory_order_relaxed);
    page->owner_ref = kFragMerged;
    return Frag{page, 0, page_bytes_, page->va, Pool::dma_addr(page)};
  }

  // The page stops being the fragment page: recycle it at once if every
  // fragment is back, merge it if remote frees have begun (the last free is
  // then likely remote), else watch it.
  void retire_current() {
    Page* page = std::exchange(current_, nullptr);
    offset_ = page_bytes_;
    page->owner_ref += std::exchange(users_, 0);
    const std::int64_t remote = kFragBias - page->ref.load(std::memory_order_acquire);
    if (page->owner_ref == remote) {
      recycle_done(page);
    } else if (remote != 0) {
      merge(page);
    } else {
      watch(page);
    }
  }

  bool is_done(const Page* page) const noexcept {
    return page->owner_ref == kFragBias - page->ref.load(std::memory_order_acquire);
  }

  // Adds a retired page to the watch set. First looks at one watched page
  // (round robin): recycles it if its last free was remote, or merges it if
  // the set is full. So pages finished by remote frees come back at the rate
  // pages retire, and the set never blocks.
  void watch(Page* page) {
    if (watched_ != 0) {
      Page* victim = watch_[cursor_++ % watched_];
      if (is_done(victim)) {
        unwatch(victim);
        recycle_done(victim);
      } else if (watched_ == watch_.size()) {
        ++stats_.pages_evicted;
        evict(victim);
      }
    }
    page->frag_slot = static_cast<std::uint32_t>(watched_);
    watch_[watched_++] = page;
  }

  void unwatch(Page* page) {
    const std::uint32_t slot = page->frag_slot;
    PAGEFRAG_DCHECK(slot < watched_ && watch_[slot] == page, "unwatch of an unwatched page");
    Page* last = watch_[--watched_];
    watch_[slot] = last;
    last->frag_slot = slot;
  }

  void evict(Page* page) {
    unwatch(page);
    merge(page);
  }

  // Hands the page's owner count to the shared count: one atomic subtract
  // leaves ref == fragments still out. The page must not be touched after
  // the subtract unless it reached zero here. Owner thread.
  void merge(Page* page) {
    ++stats_.pages_merged;
    const std::int64_t owner = std::exchange(page->owner_ref, kFragMerged);
    const std::int64_t drop = kFragBias - owner;
    if (page->ref.fetch_sub(drop, std::memory_order_acq_rel) == drop) recycle_done(page);
  }

  // Every fragment is back and no one else can reach the page: restore the
  // pool's "ref == 1 while pooled" rule and recycle it. Owner thread.
  void recycle_done(Page* page) {
    page->ref.store(1, std::memory_order_relaxed);
    pool_->recycle_direct(page);
  }

  // A free on the shared count (merged page, or a remote free): the party
  // that drops the last reference recycles the page, into the owner cache
  // when direct, else through the ring.
  static void put_merged(Page* page, bool direct) {
    if (page->ref.load(std::memory_order_acquire) != 1 &&
        page->ref.fetch_sub(1, std::memory_order_acq_rel) != 1) {
      return;
    }
    page->ref.store(1, std::memory_order_relaxed);
    Pool* pool = static_cast<Pool*>(page->pool);
    if (direct) {
      pool->recycle_direct(page);
    } else {
      pool->recycle(page);
    }
  }

  // ---- hot: the fragment page ----
  Pool* pool_;
  const std::uint32_t page_bytes_;
  const std::uint32_t half_page_;  // largest rounded size cut as a fragment
  const std::uint32_t align_;
  Page* current_ = nullptr;
  std::uint32_t offset_;    // next free byte; page_bytes_ when current_ is null
  std::int64_t users_ = 0;  // fragments cut from current_ (added to owner_ref at retirement)
  std::byte* cur_va_ = nullptr;
  Iova cur_dma_{};
  // ---- watch set of retired pages ----
  std::vector<Page*> watch_;
  std::size_t watched_ = 0;
  std::size_t cursor_ = 0;
  FragStats stats_;
};

}  // namespace pagefrag
