// SPDX-License-Identifier: BSD-3-Clause
// Tests of pagefrag/base: bit arithmetic against values worked out by hand,
// and the Iova strong type.
#include <doctest/doctest.h>

#include <type_traits>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/iova.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag {
namespace {

TEST_CASE("get_order matches the kernel's definition on worked values") {
  CHECK(get_order(0, 4096) == 0);
  CHECK(get_order(1, 4096) == 0);
  CHECK(get_order(4096, 4096) == 0);
  CHECK(get_order(4097, 4096) == 1);
  CHECK(get_order(8192, 4096) == 1);
  CHECK(get_order(8193, 4096) == 2);
  CHECK(get_order(9600, 4096) == 2);  // MTU 9000 + 334 rounded: 9344 -> order 2
  CHECK(get_order(65536, 65536) == 0);
  CHECK(get_order(65537, 65536) == 1);
}

TEST_CASE("get_order is the least order whose block holds size") {
  PAGEFRAG_RC_CHECK("page_size << order >= size > page_size << (order - 1)", [] {
    const unsigned shift = *rc::gen::inRange(12u, 17u);
    const std::uint64_t page = std::uint64_t{1} << shift;
    const std::uint64_t size = *rc::gen::inRange<std::uint64_t>(1, page * 64);
    const unsigned order = get_order(size, page);
    RC_ASSERT((page << order) >= size);
    if (order > 0) RC_ASSERT((page << (order - 1)) < size);
  });
}

TEST_CASE("align_up and is_aligned") {
  CHECK(align_up(1834, 64) == 1856);
  CHECK(align_up(1856, 64) == 1856);
  CHECK(align_up(0, 64) == 0);
  CHECK(is_aligned(1856, 64));
  CHECK_FALSE(is_aligned(1834, 64));
  CHECK(is_power_of_two(65536));
  CHECK_FALSE(is_power_of_two(0));
  CHECK_FALSE(is_power_of_two(12288));
}

TEST_CASE("Iova is a strong type") {
  static_assert(!std::is_convertible_v<void*, Iova>);
  static_assert(!std::is_convertible_v<std::uint64_t, Iova>);
  static_assert(!std::is_convertible_v<Iova, std::uint64_t>);
  const Iova base(0x10000);
  CHECK((base + 0x40).value() == 0x10040);
  CHECK((base + 0x40) - base == 0x40);
  CHECK(base < base + 1);
  CHECK(fmt::format("{}", base) == "iova:0x10000");
}

}  // namespace
}  // namespace pagefrag
