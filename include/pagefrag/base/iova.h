// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/base/iova.h: the device's view of an address, as a strong type.
//
// An Iova (I/O virtual address) is what a device puts on the bus: with an
// IOMMU it is an address in the device's own address space, never the CPU's
// virtual address. Keeping it a distinct type makes "passed a pointer where
// the device needed its address" a compile error.
#pragma once

#include <fmt/format.h>

#include <compare>
#include <cstdint>

namespace pagefrag {

class Iova {
 public:
  constexpr Iova() noexcept = default;
  constexpr explicit Iova(std::uint64_t value) noexcept : value_(value) {}

  constexpr std::uint64_t value() const noexcept { return value_; }

  // Offsetting stays an Iova; the distance between two is a byte count.
  constexpr Iova operator+(std::uint64_t bytes) const noexcept { return Iova(value_ + bytes); }
  constexpr Iova& operator+=(std::uint64_t bytes) noexcept {
    value_ += bytes;
    return *this;
  }
  constexpr std::uint64_t operator-(Iova other) const noexcept { return value_ - other.value_; }

  constexpr auto operator<=>(const Iova&) const noexcept = default;

 private:
  std::uint64_t value_ = 0;
};

}  // namespace pagefrag

template <>
struct fmt::formatter<pagefrag::Iova> : fmt::formatter<std::uint64_t> {
  auto format(pagefrag::Iova iova, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "iova:{:#x}", iova.value());
  }
};
