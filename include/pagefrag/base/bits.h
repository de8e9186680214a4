// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/base/bits.h: power-of-two and alignment arithmetic, all constexpr.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace pagefrag {

constexpr bool is_power_of_two(std::uint64_t x) noexcept { return std::has_single_bit(x); }

// Rounds x up to a multiple of align, which must be a power of two.
constexpr std::uint64_t align_up(std::uint64_t x, std::uint64_t align) noexcept {
  return (x + align - 1) & ~(align - 1);
}

constexpr bool is_aligned(std::uint64_t x, std::uint64_t align) noexcept {
  return (x & (align - 1)) == 0;
}

// log2 of a power of two.
constexpr unsigned log2_exact(std::uint64_t pow2) noexcept {
  return static_cast<unsigned>(std::countr_zero(pow2));
}

// The kernel's get_order(): the smallest order such that page_size << order
// holds size bytes (order 0 for size <= page_size, also for size 0).
constexpr unsigned get_order(std::uint64_t size, std::uint64_t page_size) noexcept {
  if (size <= page_size) return 0;
  return log2_exact(std::bit_ceil((size + page_size - 1) / page_size));
}

}  // namespace pagefrag
