// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/pool/internal/recycle_ring.h: the bounded multi-producer,
// single-consumer ring a PagePool's remote recycles go through.
//
// Not API. Any thread may push(); only the pool's owner pops (or, once the
// pool is destroyed, the one thread that frees it). Each slot carries a
// sequence number (the bounded-queue scheme of per-slot tickets): a producer
// claims a position with one compare-and-swap on the tail, writes the page,
// then publishes it with a release store of the slot's sequence; the consumer
// acquires that sequence before reading the page and releases the slot for
// the next lap with another store. Producers never wait for one another
// beyond the CAS and never take a lock; a full ring makes push() fail at once.
// All synchronisation is std::atomic, so ThreadSanitizer sees it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/memory/page.h"

namespace pagefrag::internal {

class RecycleRing {
 public:
  // A ring of at least `min_capacity` slots (rounded up to a power of two).
  explicit RecycleRing(std::size_t min_capacity)
      : capacity_(std::bit_ceil(min_capacity < 2 ? std::size_t{2} : min_capacity)),
        mask_(capacity_ - 1),
        slots_(std::make_unique<Slot[]>(capacity_)) {
    for (std::size_t i = 0; i < capacity_; ++i) {
      slots_[i].seq.store(i, std::memory_order_relaxed);
    }
  }

  RecycleRing(const RecycleRing&) = delete;
  RecycleRing& operator=(const RecycleRing&) = delete;

  std::size_t capacity() const noexcept { return capacity_; }

  // Appends page; false (and nothing changed) when the ring is full. Any thread.
  bool push(Page* page) noexcept {
    std::uint64_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      const std::uint64_t seq = slot.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>(seq - pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          slot.page = page;
          slot.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // the slot of this lap is still occupied: full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // Moves up to n pages into out[0..k) and returns k. Consumer only.
  std::size_t pop_bulk(Page** out, std::size_t n) noexcept {
    std::size_t k = 0;
    while (k < n) {
      Slot& slot = slots_[head_ & mask_];
      if (slot.seq.load(std::memory_order_acquire) != head_ + 1) break;
      out[k++] = slot.page;
      slot.seq.store(head_ + capacity_, std::memory_order_release);
      ++head_;
    }
    return k;
  }

 private:
  struct Slot {
    std::atomic<std::uint64_t> seq{0};
    Page* page = nullptr;
  };

  // Consumer line: read-mostly geometry and the consumer's head.
  alignas(kCacheLineSize) const std::size_t capacity_;
  const std::size_t mask_;
  std::unique_ptr<Slot[]> slots_;
  std::uint64_t head_ = 0;
  // Producer line.
  alignas(kCacheLineSize) std::atomic<std::uint64_t> tail_{0};
};

}  // namespace pagefrag::internal
