// SPDX-License-Identifier: BSD-3-Clause
// Tests of pagefrag/base: bit arithmetic against values worked out by hand,
// and the Iova strong type.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <type_traits>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/counters.h"
#include "pagefrag/base/iova.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag {
namespace {

#define TEST_COUNTERS(X)                                \
  X(kRx, std::uint64_t, rx_packets, "packets received") \
  X(kDrops, std::uint64_t, drops, "packets dropped")    \
  X(kInflight, std::int64_t, inflight, "buffers out")

struct TestStats {
  PAGEFRAG_COUNTERS(TestStats, TEST_COUNTERS)
};

enum class TestCounter : unsigned { PAGEFRAG_COUNTER_ENUMERATORS(TEST_COUNTERS) kCount };

TEST_CASE("a counter list generates members, sum, table, names and fmt") {
  static_assert(CounterStruct<TestStats>);
  static_assert(counter_count<TestStats>() == 3);
  static_assert(static_cast<unsigned>(TestCounter::kCount) == 3);
  static_assert(std::is_same_v<decltype(TestStats::inflight), std::int64_t>);
  TestStats a;
  CHECK(a.rx_packets == 0);
  CHECK(a.inflight == 0);
  a.rx_packets = 5;
  a.drops = 1;
  a.inflight = -2;
  TestStats b;
  b.rx_packets = 7;
  b.inflight = 3;
  const TestStats sum = counters_sum(a, b);
  CHECK(sum.rx_packets == 12);
  CHECK(sum.drops == 1);
  CHECK(sum.inflight == 1);
  const auto table = counter_table(a);
  CHECK(table[0].name == "rx_packets");
  CHECK(table[0].value == 5);
  CHECK(table[1].name == "drops");
  CHECK(table[2].value == -2);
  CHECK(counter_names<TestStats>()[2] == "inflight");
  CHECK(TestStats::counter_fields()[1].doc == "packets dropped");
  CHECK(fmt::format("{}", a) == "rx_packets=5 drops=1 inflight=-2");
}

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
