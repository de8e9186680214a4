// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/frag/fragment_allocator.h: FragmentAllocator, page fragments from a
// PagePool with biased reference counting.
//
// alloc_frag(size) carves fragments out of the pool's pages as the kernel's
// page_pool_alloc() does: size is rounded up to the alignment (64 by
// default); a request with 2 * size > page bytes gets a whole page; otherwise
// fragments are cut from the current fragment page, and when no further
// fragment of that size would fit, the last one's truesize runs to the end of
// the page. The used-up page is retired by the next request that needs room
// (the kernel's page_pool_alloc_frag()); if all its fragments are back by
// then it goes through the pool's cache, synced for the device, and is the
// next page cut.
//
// The fast path remembers the last request size: while the same size comes
// back it is two compares (the size, the cursor against the run's last
// fragment) and a cursor bump. Rounding, fit, the last fragment's truesize and
// the count of fragments cut are worked out once per page and size in the slow
// path.
//
// Each page counts its fragments twice, split by thread (biased reference
// counting):
//   Page::ref        shared atomic, set once to kFragBias when the page
//                    becomes the fragment page; free_frag_remote() subtracts 1;
//   Page::owner_ref  owner-only plain count, kept so that owner_ref + ref is
//                    the number of fragments still out: it starts at
//                    -kFragBias, gains the fragments cut when the page is
//                    retired and loses one per owner free; kFragOpen more
//                    while the page is the fragment page.
// A page is done when owner_ref + ref reaches 0. An owner free is a plain
// decrement, one atomic *load* and a sign test, no atomic read-modify-write;
// a merged page has owner_ref = kFragMerged, which makes the sum negative, so
// the same test sends it to the slow path. Retired pages that are not done
// yet wait in a small owner-only watch set; when a remote free may be the last
// one (the page had remote frees at retirement, or the watch set is full), the
// owner merges the page once: one atomic add of owner_ref leaves ref equal to
// the fragments still out, and from then on every free (either thread) is the
// kernel's atomic decrement; the one reaching zero recycles the page. The
// argument for why exactly one party recycles each page, and never early, is
// in docs/pool-and-frag.md.
//
// Thread contract: alloc_frag(), free_frag(), reclaim(), stats() and the
// destructor on the pool's owner thread; free_frag_remote() from any thread,
// also after the allocator is gone. One FragmentAllocator per pool. Either may
// be destroyed first: destroying the pool's handle drains the allocator
// (retires its page, merges the watched ones) and detaches it; a detached
// allocator's allocations fail and its frees by Page* still return every
// page (frees by address need the pool to find the page, and abort).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/counters.h"
#include "pagefrag/base/hardened.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/frag/fragment_pool.h"
#include "pagefrag/frag/internal/frag_liveness.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/memory/locked_provider.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/pool/page_pool.h"

namespace pagefrag {

// The shared count of a fresh fragment page (the kernel's BIAS_MAX idea):
// large enough that remote frees never bring it near zero before a merge.
inline constexpr std::int64_t kFragBias = std::int64_t{1} << 62;
// Added to Page::owner_ref while the page is the fragment page, so the
// owner's done test cannot pass before retirement: above any fragment count
// (at most 2^29: pages below 4 GiB, 8-byte alignment).
inline constexpr std::int64_t kFragOpen = std::int64_t{1} << 40;
// Page::owner_ref of a merged page: frees go to the atomic count. Far below
// any unmerged value (about -kFragBias), and negative enough that
// owner_ref + ref < 0 for any ref a merged page can have.
inline constexpr std::int64_t kFragMerged = -3 * (std::int64_t{1} << 61);

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

// Owner-thread counters of one allocator (slow paths only), as a counter list
// (base/counters.h): FragStats has counters_sum, counter_table and fmt.
#define PAGEFRAG_FRAG_COUNTERS(X)                                                  \
  X(kAllocFail, std::uint64_t, alloc_fail, "null Frags returned")                  \
  X(kFullPages, std::uint64_t, full_pages, "requests served with a whole page")    \
  X(kPagesUsed, std::uint64_t, pages_used, "pages that became the fragment page")  \
  X(kPagesMerged, std::uint64_t, pages_merged, "pages handed to the atomic count") \
  X(kPagesEvicted, std::uint64_t, pages_evicted, "of those, merged because the watch set was full")

struct FragStats {
  PAGEFRAG_COUNTERS(FragStats, PAGEFRAG_FRAG_COUNTERS)
};
static_assert(CounterStruct<FragStats>);

template <FragmentPool Pool>
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
    // A recycled page is synced for the device over [offset, offset +
    // max_len) only; fragments span the whole page, so bytes outside that
    // window would go back to the device still owned by the CPU.
    if (const PagePoolParams& pp = pool.params();
        (pp.flags & kPagePoolDmaSyncDev) != 0 &&
        (pp.offset != 0 || std::uint64_t{pp.max_len} < page_bytes)) {
      return absl::InvalidArgumentError(fmt::format(
          "pool sync window [offset {}, offset + max_len {}) does not cover the {}-byte page "
          "fragments are cut from; expected offset 0 and max_len >= {} with "
          "kPagePoolDmaSyncDev",
          pp.offset, std::uint64_t{pp.offset} + pp.max_len, page_bytes, page_bytes));
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
        align_(other.align_),
        size_(other.size_),
        next_(std::exchange(other.next_, kNoPage)),
        last_(std::exchange(other.last_, 0)),
        step_(other.step_),
        page_frags_(other.page_frags_),
        current_(std::exchange(other.current_, nullptr)),
        cur_va_(other.cur_va_),
        cur_dma_(other.cur_dma_),
        run_span_(other.run_span_),
        run_start_(other.run_start_),
        cut_before_(other.cut_before_),
        watch_(std::move(other.watch_)),
        watch_capacity_(other.watch_capacity_),
        watched_(std::exchange(other.watched_, 0)),
        cursor_(other.cursor_),
        stats_(other.stats_) {
    if (pool_ != nullptr) pool_->set_frag_drain(this, &drain_for_destroy);
  }
  FragmentAllocator& operator=(FragmentAllocator&&) = delete;
  FragmentAllocator(const FragmentAllocator&) = delete;

  // Retires the current page and merges every watched page; outstanding
  // fragments must then be freed with free_frag_remote(). Owner thread.
  // Also safe after the pool's handle was destroyed: the pool drained this
  // allocator then (see detach()).
  ~FragmentAllocator() {
    if (pool_ == nullptr) return;
    pool_->set_frag_drain(nullptr, nullptr);
    detach();
  }

  // A fragment of at least size bytes (rounded up to the alignment), or a
  // null Frag, counted in alloc_fail, when size is 0 or above the page bytes
  // or the pool has no page. Owner thread.
  PAGEFRAG_ALWAYS_INLINE Frag alloc_frag(std::uint32_t size) {
    // next_ > last_ once the page is used up, and without a page.
    if (PAGEFRAG_LIKELY(size == size_ && next_ <= last_)) return cut();
    return alloc_frag_slow(size);
  }

  // Fills out[0..k) with the fragments k calls of alloc_frag(size) would
  // return, in the same order, and returns k: n, or fewer when the pool ran
  // out of pages (counted once in alloc_fail), 0 for a size alloc_frag
  // rejects. The fragments of one page are cut in one tight loop: the size
  // and room checks run once per page, not once per fragment (an RX refill
  // takes a poll's worth of buffers this way). A page whose fragments are all
  // taken by this call is retired as it is cut (cut_pages()): it never
  // becomes the fragment page. Owner thread.
  std::size_t alloc_frags(std::uint32_t size, Frag* out, std::size_t n) {
    return alloc_frags(size, n, [out](std::size_t i, const Frag& f) { out[i] = f; });
  }
  // The same fragments handed to fn(i, frag) for i = 0..k-1 in order, not
  // stored: a driver's refill writes each straight into its ring, and the
  // fields it does not use are never materialised.
  template <typename Fn>
  requires std::invocable<Fn&, std::size_t, const Frag&> PAGEFRAG_ALWAYS_INLINE std::size_t
  alloc_frags(std::uint32_t size, std::size_t n, Fn&& fn) {
    std::size_t k = 0;
    while (k < n) {
      if (PAGEFRAG_LIKELY(size == size_)) {
        if (PAGEFRAG_UNLIKELY(next_ > last_)) {
          if (n - k >= page_frags_) {  // every fragment of one fresh page or more
            const std::size_t pages = (n - k) / page_frags_;
            const std::size_t cut = cut_pages(k, pages, fn);
            k += cut;
            if (cut != pages * page_frags_) break;  // the pool ran dry
            continue;
          }
          if (!turn_page()) break;
        }
        const std::size_t room = (last_ - next_) / step_ + 1;
        const std::size_t take = std::min(n - k, room);
        cut_run(k, take, fn);
        k += take;
        continue;
      }
      const Frag f = alloc_frag_slow(size);  // a new page or size, a whole page, or a failure
      if (!f) break;
      fn(k++, f);
    }
    return k;
  }

  // Frees n fragments of this allocator's pool, named by their pages, as n
  // free_frag(Page*) calls would: one subtract and one done test per run of
  // consecutive fragments of the same page (an RX ring returns the
  // fragments of a page one after another). Owner thread.
  void free_frags(Page* const* pages, std::size_t n) {
    if (n == 0) return;
    Page* page = pages[0];
    std::int64_t run = 1;
    for (std::size_t i = 1; i < n; ++i) {
      if (pages[i] == page) {
        ++run;
        continue;
      }
      free_run(page, run);
      page = pages[i];
      run = 1;
    }
    free_run(page, run);
  }

  // Frees a fragment of this allocator's pool, named by its page. No atomic
  // read-modify-write unless the page was merged. Hardened builds abort for
  // a page of another pool, or one with no live fragment left to free.
  // Owner thread.
  PAGEFRAG_ALWAYS_INLINE void free_frag(Page* page) {
    if constexpr (kHardened) hardened_free_page(page);
    free_owner(page);
  }
  // Frees the fragment holding va. Hardened builds check that a live
  // fragment holds va (a double free aborts even within the page's count)
  // and poison it for ASan. Owner thread.
  void free_frag(const void* va) {
    Page* page = page_or_die(va);
    if constexpr (kHardened) hardened_free_va(page, va);
    free_owner(page);
  }

  // Takes one more reference on a fragment of page that the caller holds
  // (the kernel's page_pool_ref_page()): one atomic increment, valid in
  // every state of the page's biased count because the caller's own
  // reference keeps the page out. Whoever ends up with it returns it with
  // free_frag_remote(page), from any thread. Any thread.
  static void ref_frag(Page* page) {
    if constexpr (kHardened) internal::frag_liveness().on_ref_page(page);
    page->ref.fetch_add(1, std::memory_order_relaxed);
  }

  // Frees a fragment from any thread: one atomic decrement. Never touches
  // the allocator object,
  // so it stays valid after the allocator is destroyed. Any thread.
  static void free_frag_remote(Page* page) {
    if constexpr (kHardened) internal::frag_liveness().on_free_page(page);
    put_refs_remote(page, 1);
  }
  void free_frag_remote(const void* va) {
    Page* page = page_or_die(va);
    if constexpr (kHardened) hardened_free_va(page, va);
    put_refs_remote(page, 1);
  }

  // Frees n fragments from any thread, one atomic subtract per run of
  // consecutive fragments of the same page (fragments cut one after another
  // are usually freed so, as an RX ring completes in order). Like
  // free_frag_remote() it never touches the allocator. Any thread.
  static void free_frags_remote(Page* const* pages, std::size_t n) {
    for (std::size_t i = 0, end; i < n; i = end) {
      for (end = i + 1; end < n && pages[end] == pages[i];) ++end;
      if constexpr (kHardened) internal::frag_liveness().on_free_page(pages[i], end - i);
      put_refs_remote(pages[i], static_cast<std::int64_t>(end - i));
    }
  }

  // Hands the first len bytes of fragment f (len <= f.truesize) to the CPU:
  // the pool's sync_for_cpu at the fragment's own offset, so callers need not
  // know where in its page the fragment lies. Any thread, while the caller
  // holds the fragment.
  void sync_for_cpu(const Frag& f, std::uint32_t len) {
    PAGEFRAG_CHECK(len <= f.truesize, "sync_for_cpu of {} bytes of a {}-byte fragment", len,
                   f.truesize);
    PAGEFRAG_CHECK(pool_ != nullptr, "sync_for_cpu of a fragment after the pool was destroyed");
    pool_->sync_for_cpu_in_page(f.page, f.offset, len);
  }

  // Recycles every watched page whose fragments have all come back (the last
  // free having been remote). Owner thread.
  void reclaim() {
    assert_owner();
    if (pool_ == nullptr) return;
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
        align_(params.align),
        watch_(params.watch_capacity),
        watch_capacity_(params.watch_capacity) {
    pool_->set_frag_drain(this, &drain_for_destroy);
  }

  // Retires the fragment page and merges every watched page, then stops
  // using the pool: later allocations fail (alloc_fail) and frees of merged
  // pages go through the pool's any-thread path, which releases pages of a
  // destroyed pool. Owner thread.
  void detach() {
    if (current_ != nullptr) retire_current();
    while (watched_ != 0) evict(watch_[watched_ - 1]);
    pool_ = nullptr;
    next_ = kNoPage;
    last_ = 0;
    size_ = 0;
    page_frags_ = kNoPageFrags;
  }

  // The pool's destroy() drains its fragment allocator first (the kernel's
  // page_pool_destroy() drains the fragment page), whichever is destroyed
  // first.
  static void drain_for_destroy(void* self) { static_cast<FragmentAllocator*>(self)->detach(); }

  void assert_owner() const noexcept {
    if constexpr (PAGEFRAG_HCHECKS_ON) {
      if (pool_ != nullptr) pool_->assert_owner();
    }
  }

  // free_frags() of a run of n fragments of one page.
  PAGEFRAG_ALWAYS_INLINE void free_run(Page* page, std::int64_t n) {
    if constexpr (kHardened) {
      for (std::int64_t j = 0; j < n; ++j) hardened_free_page(page);
    }
    free_owner(page, n);
  }

  // The owner's free of n fragments of page once it is identified (or not):
  // one subtract, one load, a sign test.
  PAGEFRAG_ALWAYS_INLINE void free_owner(Page* page, std::int64_t n = 1) {
    assert_owner();
    // owner_ref + ref: fragments out (+ kFragOpen on the fragment page); 0
    // when done, negative when merged.
    const std::int64_t owner = page->owner_ref -= n;
    const std::int64_t ref = page->ref.load(std::memory_order_acquire);
    if (PAGEFRAG_LIKELY(owner + ref > 0)) return;
    if (PAGEFRAG_LIKELY(owner + ref == 0)) {  // done: the page's last fragment
      unwatch(page);
      recycle_done(page);
      return;
    }
    free_frag_slow(page, owner, ref, n);
  }

  // ---- hardened mode (base/hardened.h) ----

  // A free by Page*: a page of this allocator's pool (while attached) with a
  // live fragment left to free.
  PAGEFRAG_NOINLINE void hardened_free_page(const Page* page) const {
    PAGEFRAG_CHECK(pool_ == nullptr || page->pool == pool_,
                   "free_frag of page {} (va {}), which is not a page of page_pool {} (a foreign "
                   "page)",
                   static_cast<const void*>(page), static_cast<const void*>(page->va), pool_->id());
    internal::frag_liveness().on_free_page(page);
  }
  // A free by address: the live fragment holding va, poisoned from now on.
  PAGEFRAG_NOINLINE static void hardened_free_va(const Page* page, const void* va) {
    const auto [offset, truesize] = internal::frag_liveness().on_free_va(page, va);
    poison_memory(page->va + offset, truesize);
  }
  // A fragment handed out: live, and usable under ASan.
  PAGEFRAG_NOINLINE static void hardened_cut(const Frag& f) {
    internal::frag_liveness().on_cut(f.page, f.offset, f.truesize);
    unpoison_memory(f.va, f.truesize);
  }

  Page* page_or_die(const void* va) const {
    PAGEFRAG_CHECK(pool_ != nullptr,
                   "free of {} by address after the pool was destroyed; free "
                   "it by its Page*",
                   va);
    Page* page = pool_->page_of(va);
    PAGEFRAG_CHECK(page != nullptr, "free of {} which is not in a page of pool {}", va,
                   pool_->id());
    return page;
  }

  // The next fragment of the run; the run's last one on the page takes the
  // rest of the page (the kernel's page_pool_alloc() rule).
  PAGEFRAG_ALWAYS_INLINE Frag cut() {
    const std::uintptr_t va = next_;
    next_ = va + step_;
    const auto offset = static_cast<std::uint32_t>(va - cur_va_);
    const auto truesize = static_cast<std::uint32_t>(va == last_ ? page_bytes_ - offset : step_);
    const Frag f{current_, offset, truesize, reinterpret_cast<std::byte*>(va), cur_dma_ + offset};
    if constexpr (kHardened) hardened_cut(f);
    return f;
  }

  // The next `count` (>= 1) fragments of the run, all on the current page
  // (count <= the run's room), handed to fn(first + i, frag): cut()
  // unrolled.
  template <typename Fn>
  PAGEFRAG_ALWAYS_INLINE void cut_run(std::size_t first, std::size_t count, Fn& fn) {
    Page* const page = current_;
    const std::uintptr_t base = cur_va_;
    const Iova dma = cur_dma_;
    const auto step = static_cast<std::uint32_t>(step_);
    const auto last = static_cast<std::uint32_t>(last_ - base);
    auto offset = static_cast<std::uint32_t>(next_ - base);
    for (std::size_t i = 0; i < count; ++i, offset += step) {
      const Frag f{page, offset, offset == last ? page_bytes_ - offset : step,
                   reinterpret_cast<std::byte*>(base + offset), dma + offset};
      if constexpr (kHardened) hardened_cut(f);
      fn(first + i, f);
    }
    next_ = base + offset;
  }

  // Every case but "same size as last time, and the page has room": a new
  // size, a new page, full pages, errors.
  PAGEFRAG_NOINLINE Frag alloc_frag_slow(std::uint32_t size) {
    assert_owner();
    if (size == size_) return turn_page() ? cut() : Frag{};
    if (size == 0 || size > page_bytes_ || pool_ == nullptr) {
      ++stats_.alloc_fail;
      return {};
    }
    const auto rounded = static_cast<std::uint32_t>(align_up(size, align_));
    if (std::uint64_t{rounded} * 2 > page_bytes_) return alloc_full_page();
    size_ = size;
    if (rounded != step_) start_run(rounded);
    if (next_ > last_ && !next_page()) {
      ++stats_.alloc_fail;
      return {};
    }
    return cut();
  }

  // The size is unchanged and the fragment page used up (or there is none):
  // the next page. False, counted in alloc_fail, when the pool has none, or
  // when there is no size yet (size_ 0: no request, or detached).
  PAGEFRAG_NOINLINE bool turn_page() {
    if (PAGEFRAG_LIKELY(size_ != 0) && next_page()) return true;
    ++stats_.alloc_fail;
    return false;
  }

  // Fragments of `rounded` bytes from here on. On the current page the run
  // starts at next_ with as many as fit in the rest, none once a run's last
  // fragment took the rest (last_ = 0: the page is used up).
  void start_run(std::uint32_t rounded) {
    if (current_ != nullptr) {
      const std::uintptr_t fit =
          next_ > last_ ? 0 : (cur_va_ + page_bytes_ - next_) / rounded;  // used up: none
      cut_before_ += run_cuts();
      run_start_ = next_;
      last_ = fit == 0 ? 0 : next_ + (fit - 1) * rounded;  // 0: the next cut retires the page
    }
    step_ = rounded;
    page_frags_ = page_bytes_ / rounded;
    run_span_ = (page_frags_ - 1) * rounded;
  }

  // Fragments cut in the current run (they lie back to back from run_start_).
  std::uintptr_t run_cuts() const { return (next_ - run_start_) / step_; }

  // The fragment page is used up (or there is none): retire it and take the
  // next one from the pool. A retired page with every fragment back was just
  // recycled into the pool's LIFO cache, synced for the device, so it is the
  // page taken (the kernel's page_pool_drain_frag() reuses it the same way).
  // False if the pool has none.
  //
  // When the pool's cache is empty, watched pages whose last fragment came
  // back remotely are recycled first (reclaim()), so the page taken is one of
  // them when there is one rather than one from the ring or the provider:
  // memory stays bounded when frees are remote, and the pool never reports
  // failure while a finished page sits in the watch set. A cache hit costs no
  // scan: owner frees recycle finished pages themselves, so with a cached page
  // at hand the scan would mostly find nothing (O(watched pages)).
  PAGEFRAG_ALWAYS_INLINE bool next_page() {
    Page* page = take_page();
    if (page == nullptr) return false;
    page->owner_ref = kFragOpen - kFragBias;
    current_ = page;
    cur_va_ = reinterpret_cast<std::uintptr_t>(page->va);
    cur_dma_ = Pool::dma_addr(page);
    next_ = run_start_ = cur_va_;
    last_ = cur_va_ + run_span_;
    cut_before_ = 0;
    return true;
  }

  // Retires the fragment page (if any) and takes the next page, its shared
  // count at kFragBias (owner_ref is the caller's); null if the pool has none.
  PAGEFRAG_ALWAYS_INLINE Page* take_page() {
    if (current_ != nullptr) retire_current();
    Page* page = fresh_page();
    if (page != nullptr) ++stats_.pages_used;
    return page;
  }
  // take_page() without a fragment page to retire, and not counted in
  // pages_used (the caller counts).
  PAGEFRAG_ALWAYS_INLINE Page* fresh_page() {
    Page* page = pop_page();
    if (page == nullptr) return nullptr;
    if constexpr (kPoisoning) poison_memory(page->va, page_bytes_);  // cuts unpoison
    page->ref.store(kFragBias, std::memory_order_relaxed);
    return page;
  }

  // The pool's next page, its counts unset; null if the pool has none. A
  // cache hit is the pool's alloc() alone.
  PAGEFRAG_ALWAYS_INLINE Page* pop_page() {
    if (PAGEFRAG_LIKELY(pool_->cached() != 0)) {
      Page* page = pool_->alloc();
      PAGEFRAG_ASSUME(page != nullptr);  // the cache holds pages, never null
      return page;
    }
    return uncached_page();
  }

  // pop_page()'s way when the pool's cache is empty: watched pages whose
  // last fragment came back remotely go back to the pool first, so the page
  // taken is one of them when there is one.
  PAGEFRAG_NOINLINE Page* uncached_page() {
    if (watched_ != 0) reclaim();
    return pool_->alloc();
  }

  // Cuts every fragment of `pages` fresh pages, handed to fn(first + i,
  // frag) in order, as turn_page() then cut_run() would, and retires each
  // page at once: its owner count starts at the fragments cut, with no
  // kFragOpen, and it goes straight to the watch set. The fragment page's
  // state is not touched (there is none: the caller found the page used
  // up). Returns the fragments cut: fewer when the pool ran out (counted in
  // alloc_fail).
  template <typename Fn>
  PAGEFRAG_ALWAYS_INLINE std::size_t cut_pages(std::size_t first, std::size_t pages, Fn& fn) {
    // Locals: fn's stores could alias the members, which would otherwise be
    // reloaded for every fragment.
    const std::int64_t owner_start = static_cast<std::int64_t>(page_frags_) - kFragBias;
    const auto step = static_cast<std::uint32_t>(step_);
    const auto last = static_cast<std::uint32_t>(run_span_);
    const std::uint32_t rest = page_bytes_ - last;
    if (current_ != nullptr) retire_current();
    std::size_t k = first;
    std::size_t p = 0;
    for (; p < pages; ++p) {
      Page* const page = fresh_page();
      if (page == nullptr) {
        ++stats_.alloc_fail;
        break;
      }
      page->owner_ref = owner_start;
      watch(page);
      const Iova dma = Pool::dma_addr(page);
      std::byte* const va = page->va;
      for (std::uint32_t offset = 0;; offset += step) {
        const bool end = offset == last;  // the last takes the rest of the page
        const Frag f{page, offset, end ? rest : step, va + offset, dma + offset};
        if constexpr (kHardened) hardened_cut(f);
        fn(k++, f);
        if (end) break;
      }
    }
    stats_.pages_used += p;
    return k - first;
  }

  // A whole page as one fragment: merged from the start with one reference.
  Frag alloc_full_page() {
    Page* page = pool_->alloc();
    if (page == nullptr && watched_ != 0) {
      reclaim();  // a finished page exists: never fail while one does
      page = pool_->alloc();
    }
    if (page == nullptr) {
      ++stats_.alloc_fail;
      return {};
    }
    ++stats_.full_pages;
    page->ref.store(1, std::memory_order_relaxed);
    page->owner_ref = kFragMerged;
    const Frag f{page, 0, page_bytes_, page->va, Pool::dma_addr(page)};
    if constexpr (kHardened) hardened_cut(f);
    return f;
  }

  // An owner free of n fragments that brought the page's sum below zero
  // (ref: the count it read): the page is merged, or was freed too often.
  PAGEFRAG_NOINLINE void free_frag_slow(Page* page, std::int64_t owner, std::int64_t ref,
                                        std::int64_t n) {
    PAGEFRAG_CHECK(owner == kFragMerged - n, "fragment page {} freed more often than it was cut",
                   static_cast<void*>(page));
    page->owner_ref = kFragMerged;
    put_refs_owner(page, n, ref);
  }

  // The page stops being the fragment page: recycled at once if every
  // fragment is back; else merged if remote frees have begun (the last free
  // is then likely remote), or watched.
  PAGEFRAG_ALWAYS_INLINE void retire_current() {
    Page* page = std::exchange(current_, nullptr);
    page->owner_ref += static_cast<std::int64_t>(cut_before_ + run_cuts()) - kFragOpen;
    next_ = kNoPage;
    last_ = 0;
    const std::int64_t ref = page->ref.load(std::memory_order_acquire);
    PAGEFRAG_CHECK(page->owner_ref + ref >= 0, "fragment page {} freed more often than it was cut",
                   static_cast<void*>(page));
    if (page->owner_ref + ref == 0) {
      recycle_done(page);
    } else if (ref != kFragBias) {  // remote frees have begun
      merge(page);
    } else {
      watch(page);
    }
  }

  bool is_done(const Page* page) const noexcept {
    return page->owner_ref + page->ref.load(std::memory_order_acquire) == 0;
  }

  // Adds a retired page to the watch set; a full set first makes room.
  PAGEFRAG_ALWAYS_INLINE void watch(Page* page) {
    if (PAGEFRAG_UNLIKELY(watched_ == watch_capacity_)) make_room();
    page->frag_slot = static_cast<std::uint32_t>(watched_);
    watch_[watched_++] = page;
  }

  // The watched page at the cursor (round robin) leaves the set: recycled if
  // its last fragment came back remotely, else merged (evicted).
  PAGEFRAG_NOINLINE void make_room() {
    if (cursor_ >= watched_) cursor_ = 0;
    Page* victim = watch_[cursor_++];
    if (is_done(victim)) {
      unwatch(victim);
      recycle_done(victim);
    } else {
      ++stats_.pages_evicted;
      evict(victim);
    }
  }

  PAGEFRAG_ALWAYS_INLINE void unwatch(Page* page) {
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
    // ref - (-owner) = (kFragBias - remote frees) - (kFragBias - owner's
    // count) = the fragments still out.
    if (page->ref.fetch_sub(-owner, std::memory_order_acq_rel) == -owner) recycle_done(page);
  }

  // Every fragment is back and no one else can reach the page: restore the
  // pool's "ref == 1 while pooled" rule and recycle it. Owner thread.
  PAGEFRAG_ALWAYS_INLINE void recycle_done(Page* page) {
    if constexpr (kHardened) internal::frag_liveness().on_page_done(page);
    page->ref.store(1, std::memory_order_relaxed);
    pool_->recycle_direct(page);
  }

  // The owner drops n references on a merged page's shared count, which it
  // read (with acquire) as `seen`. Reading exactly n means the caller holds
  // every reference left, so nothing can change the count concurrently and
  // the read-modify-write is skipped (as the kernel does for one).
  // Detached, the page goes through the ring.
  void put_refs_owner(Page* page, std::int64_t n, std::int64_t seen) {
    if (seen == n || page->ref.fetch_sub(n, std::memory_order_acq_rel) == n) {
      recycle_last(page, pool_ != nullptr);
    }
  }

  // Any thread drops n references: one atomic subtract and no read first.
  // The page's line most likely sits in the owner's cache, and a read then a
  // subtract would fetch it twice (shared, then exclusive); a remote free of
  // an unmerged page never holds the last reference anyway.
  static void put_refs_remote(Page* page, std::int64_t n) {
    if (page->ref.fetch_sub(n, std::memory_order_acq_rel) == n) recycle_last(page, false);
  }

  // Whoever dropped the last reference recycles the page: into the owner
  // cache when direct, else through the ring.
  static void recycle_last(Page* page, bool direct) {
    Pool* pool = Pool::pool_of(page);  // aborts for a page of no pool of this type
    if constexpr (kHardened) internal::frag_liveness().on_page_done(page);
    page->ref.store(1, std::memory_order_relaxed);
    if (direct) {
      pool->recycle_direct(page);
    } else {
      pool->recycle(page);
    }
  }

  // ---- hot: alloc_frag's fast path ----
  Pool* pool_;
  const std::uint32_t page_bytes_;
  const std::uint32_t align_;
  std::uint32_t size_ = 0;  // the last request size (0: none yet)
  // Without a fragment page next_ is kNoPage and last_ 0.
  static constexpr std::uintptr_t kNoPage = std::numeric_limits<std::uintptr_t>::max();
  std::uintptr_t next_ = kNoPage;  // where the next fragment starts
  std::uintptr_t last_ = 0;        // where the run's last fragment on the page starts
  std::uintptr_t step_ = 0;        // size_ rounded up to align_
  // Fragments of step_ bytes a fresh page holds; kNoPageFrags without a size,
  // so alloc_frags() never cuts a whole page then.
  static constexpr std::size_t kNoPageFrags = std::numeric_limits<std::size_t>::max();
  std::size_t page_frags_ = kNoPageFrags;
  // ---- the fragment page ----
  Page* current_ = nullptr;
  std::uintptr_t cur_va_ = 0;
  Iova cur_dma_{};
  std::uintptr_t run_span_ = 0;    // from a fresh page's first fragment to its run's last
  std::uintptr_t run_start_ = 0;   // where the fragments of step_ bytes began
  std::uintptr_t cut_before_ = 0;  // fragments cut from current_ before the run
  // ---- watch set of retired pages ----
  std::vector<Page*> watch_;
  std::size_t watch_capacity_;  // watch_.size(), kept at hand
  std::size_t watched_ = 0;
  std::size_t cursor_ = 0;
  FragStats stats_;
};

// The library's pools are FragmentPools.
static_assert(FragmentPool<PagePool<HeapProvider, NoDma>>);
static_assert(FragmentPool<PagePool<LockedProvider<HeapProvider>, NoDma, NoPoolStats>>);

}  // namespace pagefrag
