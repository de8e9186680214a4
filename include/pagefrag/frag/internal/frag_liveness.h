// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/frag/internal/frag_liveness.h: hardened mode's record of which
// fragments are live.
//
// Not API; used only when PAGEFRAG_HARDENED (base/hardened.h). Every
// fragment a FragmentAllocator cuts is entered under its page; a free by
// address must name a byte of a live fragment (else: freed twice, or never
// handed out), a free by Page* must find a page with more live fragments (and
// extra references, ref_frag()) than anonymous frees (else: a foreign page,
// or one freed more often than cut and referenced).
// A page's entry is dropped when its last fragment comes back. One process-
// wide table behind one std::mutex: frees come from any thread and reach no
// allocator, and hardened mode trades speed for the checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "pagefrag/base/check.h"
#include "pagefrag/memory/page.h"

namespace pagefrag::internal {

class FragLiveness {
 public:
  // A fragment [offset, offset + truesize) of page was handed out.
  void on_cut(const Page* page, std::uint32_t offset, std::uint32_t truesize) {
    std::lock_guard<std::mutex> lock(mu_);
    PageFrags& frags = pages_[page];
    // Neither the first live fragment at or after offset nor the last one
    // before it may reach into [offset, offset + truesize).
    auto next = frags.live.lower_bound(offset);
    PAGEFRAG_CHECK(next == frags.live.end() || next->first >= offset + truesize,
                   "fragment at offset {} of page {} overlaps a live fragment at offset {}", offset,
                   static_cast<const void*>(page), next->first);
    if (next != frags.live.begin()) {
      const auto prev = std::prev(next);
      PAGEFRAG_CHECK(prev->first + prev->second <= offset,
                     "fragment at offset {} of page {} overlaps a live fragment at offset {}",
                     offset, static_cast<const void*>(page), prev->first);
    }
    frags.live.emplace(offset, truesize);
  }

  // A free naming the address va (a byte of the fragment) on page. Returns
  // the fragment's {offset, truesize}; aborts, naming va, when no live
  // fragment holds it.
  std::pair<std::uint32_t, std::uint32_t> on_free_va(const Page* page, const void* va) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto offset = static_cast<std::uint64_t>(static_cast<const std::byte*>(va) - page->va);
    auto it = pages_.find(page);
    PAGEFRAG_CHECK(it != pages_.end(),
                   "free of {}: page {} has no live fragment (freed twice, never handed out, or "
                   "a page of another allocator)",
                   va, static_cast<const void*>(page));
    PageFrags& frags = it->second;
    auto f = frags.live.upper_bound(static_cast<std::uint32_t>(offset));
    PAGEFRAG_CHECK(f != frags.live.begin() && offset < std::prev(f)->first + std::prev(f)->second,
                   "free of {} (offset {} in page {}): no live fragment holds it (a double free, "
                   "or never handed out)",
                   va, offset, static_cast<const void*>(page));
    --f;
    const std::pair<std::uint32_t, std::uint32_t> out = *f;
    frags.live.erase(f);
    PAGEFRAG_CHECK(frags.live.size() + frags.extra >= frags.anonymous,
                   "free of {} (offset {} in page {}): more frees than fragments handed out (a "
                   "double free)",
                   va, offset, static_cast<const void*>(page));
    return out;
  }

  // A free naming only the page: it must have a live fragment not yet
  // accounted for by another such free.
  void on_free_page(const Page* page, std::size_t n = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pages_.find(page);
    PAGEFRAG_CHECK(
        it != pages_.end() && it->second.live.size() + it->second.extra >= it->second.anonymous + n,
        "free of page {} (va {}): it has {} live fragments not yet freed (a double "
        "free, a page of another pool or allocator, or a fragment never handed out)",
        static_cast<const void*>(page), static_cast<const void*>(page->va),
        it == pages_.end() ? 0 : it->second.live.size() + it->second.extra - it->second.anonymous);
    it->second.anonymous += n;
  }

  // One more reference on a fragment of page (ref_frag()): the caller must
  // hold a fragment of it not yet freed; the reference is freed by Page*.
  void on_ref_page(const Page* page) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pages_.find(page);
    PAGEFRAG_CHECK(
        it != pages_.end() && it->second.live.size() + it->second.extra > it->second.anonymous,
        "ref_frag of page {} (va {}), which has no live fragment (freed, never handed "
        "out, or a page of another allocator)",
        static_cast<const void*>(page), static_cast<const void*>(page->va));
    ++it->second.extra;
  }

  // Every fragment of page is back: forget it.
  void on_page_done(const Page* page) {
    std::lock_guard<std::mutex> lock(mu_);
    pages_.erase(page);
  }

 private:
  struct PageFrags {
    std::map<std::uint32_t, std::uint32_t> live;  // offset -> truesize
    std::size_t anonymous = 0;                    // frees by Page* not yet matched
    std::size_t extra = 0;                        // references taken by ref_frag()
  };
  std::mutex mu_;
  std::unordered_map<const Page*, PageFrags> pages_;
};

inline FragLiveness& frag_liveness() {
  static FragLiveness table;
  return table;
}

}  // namespace pagefrag::internal
