// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/internal/geometry.h: validation of a provider's shape.
//
// Every provider is described by a base page size, a largest order and a
// capacity; check_geometry() turns a bad combination into an
// InvalidArgument naming the field, its value and the valid range. Not API.
#pragma once

#include <absl/status/status.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <string_view>

#include "pagefrag/base/bits.h"

namespace pagefrag::internal {

inline constexpr std::size_t kMinPageSize = 4096;
inline constexpr unsigned kMaxOrderLimit = 20;
inline constexpr std::size_t kMaxCapacity = std::size_t{1} << 40;  // 1 TiB

// Checks page_size (power of two in [4096, max_page_size]; max_block must be
// a power of two >= max_page_size), max_order (0..kMaxOrderLimit, and
// page_size << max_order <= max_block) and capacity
// (a positive multiple of page_size << max_order, at most kMaxCapacity).
inline absl::Status check_geometry(std::string_view who, std::size_t page_size, unsigned max_order,
                                   std::size_t capacity, std::size_t max_page_size,
                                   std::size_t max_block) {
  if (!is_power_of_two(page_size) || page_size < kMinPageSize || page_size > max_page_size) {
    return absl::InvalidArgumentError(
        fmt::format("{}: page_size {} is invalid; expected a power of two in [{}, {}]", who,
                    page_size, kMinPageSize, max_page_size));
  }
  const unsigned order_limit = std::min(kMaxOrderLimit, log2_exact(max_block / page_size));
  if (max_order > order_limit) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: max_order {} is invalid; expected 0..{} for page_size {} (largest block {} bytes)",
        who, max_order, order_limit, page_size, max_block));
  }
  const std::size_t block = page_size << max_order;
  if (capacity == 0 || capacity % block != 0 || capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: capacity {} is invalid; expected a positive multiple of page_size << max_order "
        "({} bytes) up to {} bytes",
        who, capacity, block, kMaxCapacity));
  }
  return absl::OkStatus();
}

}  // namespace pagefrag::internal
