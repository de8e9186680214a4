// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/internal/iova_allocator.h: first-fit allocation of IOVA ranges.
//
// An IovaAllocator manages the device address space a backend may hand out:
// a set of usable ranges (an IOMMU's reported valid ranges, clipped below
// the device's DMA mask). alloc() returns an aligned range inside one of
// them, first fit from the lowest address; free() returns it and merges it
// with free neighbours. Slow path only (mapping time); not thread-safe; not
// API.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"

namespace pagefrag::internal {

class IovaAllocator {
 public:
  // Makes [first, last] (inclusive) allocatable; ranges added must not
  // overlap. Empty or inverted ranges are ignored; the very last byte of the
  // 64-bit space is never handed out (so sizes fit in 64 bits).
  void add_range(std::uint64_t first, std::uint64_t last) {
    if (last == UINT64_MAX) --last;
    if (last < first) return;
    free_.emplace(first, last - first + 1);
    merge_around(free_.find(first));
    total_ += last - first + 1;
  }

  // Drops every address above `last` (a DMA mask of n bits: last = 2^n - 1).
  void clip_above(std::uint64_t last) {
    for (auto it = free_.begin(); it != free_.end();) {
      const std::uint64_t start = it->first;
      if (start > last) {
        total_ -= it->second;
        it = free_.erase(it);
        continue;
      }
      const std::uint64_t room = last - start + 1;
      if (it->second > room) {
        total_ -= it->second - room;
        it->second = room;
      }
      ++it;
    }
  }

  // An `align`-aligned (power of two) range of `size` bytes, or nullopt.
  std::optional<std::uint64_t> alloc(std::uint64_t size, std::uint64_t align) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      const std::uint64_t start = align_up(it->first, align);
      if (start < it->first || start - it->first > it->second) continue;  // wrapped / no room
      if (it->second - (start - it->first) < size) continue;
      carve(it, start, size);
      return start;
    }
    return std::nullopt;
  }

  // Returns a range alloc() handed out.
  void free(std::uint64_t start, std::uint64_t size) {
    auto [it, inserted] = free_.emplace(start, size);
    PAGEFRAG_CHECK(inserted, "IOVA {:#x} freed twice", start);
    merge_around(it);
  }

  // Bytes in free ranges, and bytes the allocator was given (after clipping).
  std::uint64_t free_bytes() const noexcept {
    std::uint64_t sum = 0;
    for (const auto& [start, size] : free_) sum += size;
    return sum;
  }
  std::uint64_t total_bytes() const noexcept { return total_; }
  bool empty() const noexcept { return free_.empty(); }

 private:
  using Map = std::map<std::uint64_t, std::uint64_t>;  // start -> size

  void carve(Map::iterator it, std::uint64_t start, std::uint64_t size) {
    const std::uint64_t range_start = it->first;
    const std::uint64_t range_end = range_start + it->second;  // exclusive (may wrap to 0)
    free_.erase(it);
    if (start > range_start) free_.emplace(range_start, start - range_start);
    if (start + size != range_end) free_.emplace(start + size, range_end - start - size);
  }

  void merge_around(Map::iterator it) {
    if (auto next = std::next(it); next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }

  Map free_;
  std::uint64_t total_ = 0;
};

}  // namespace pagefrag::internal
