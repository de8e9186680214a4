// SPDX-License-Identifier: BSD-3-Clause
// The MANA counters come from one list (examples/mana/stats.h): the table's
// names are unique, every drop reason has its counter, the live counters'
// snapshot, the sum, the ethtool-style text and mana_driver's JSON all carry
// every counter of the list with its value.
#include "examples/mana/stats.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "examples/mana/report.h"

namespace mana::testing {
namespace {

// A snapshot whose every counter holds a different value (1, 2, ...),
// set through the list itself.
QueueCounters numbered() {
  QueueCounters s;
  std::uint64_t next = 1;
#define PAGEFRAG_MANA_TEST_SET_(E, T, name, doc) s.name = next++;
  PAGEFRAG_MANA_QUEUE_COUNTERS(PAGEFRAG_MANA_TEST_SET_)
#undef PAGEFRAG_MANA_TEST_SET_
  return s;
}

TEST_CASE("the counter table's names are unique and non-empty") {
  const auto names = pagefrag::counter_names<QueueCounters>();
  const std::set<std::string_view> unique(names.begin(), names.end());
  CHECK(unique.size() == names.size());
  for (std::string_view n : names) CHECK(!n.empty());
}

TEST_CASE("every drop reason has its counter, and only drop reasons are rx_drop_") {
  const auto names = pagefrag::counter_names<QueueCounters>();
  std::size_t drop_counters = 0;
  for (std::string_view n : names) drop_counters += n.starts_with("rx_drop_") ? 1 : 0;
  CHECK(drop_counters == kDropReasonCount);
  QueueStats live;
  std::uint64_t k = 1;
  for (DropReason r : kAllDropReasons) {
    const std::string name = "rx_drop_" + std::string(to_string(r));
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
    live.drop(r).add(k++);
  }
  // Each reason's counter is its own: k is a different value per reason.
  k = 1;
  const QueueCounters s = live.snapshot();
  for (DropReason r : kAllDropReasons) CHECK(s.drops_for(r) == k++);
  CHECK(s.dropped() == kDropReasonCount * (kDropReasonCount + 1) / 2);
}

TEST_CASE("snapshot, sum and text carry every counter") {
  const QueueCounters a = numbered();
  const QueueCounters sum = pagefrag::counters_sum(a, a);
  const auto ta = pagefrag::counter_table(a);
  const auto ts = pagefrag::counter_table(sum);
  std::string text;
  format_counters(text, "q3_", a);
  for (std::size_t i = 0; i < ta.size(); ++i) {
    CHECK(ta[i].value == static_cast<std::int64_t>(i + 1));
    CHECK(ts[i].value == 2 * ta[i].value);
    const std::string line = fmt::format("q3_{}: {}\n", ta[i].name, ta[i].value);
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
  }
  QueueStats live;
  live.rx_packets.add(5);
  live.tx_posted.add(2);
  CHECK(live.snapshot().rx_packets == 5);
  CHECK(live.snapshot().tx_posted == 2);
}

TEST_CASE("mana_driver's JSON carries every counter with its value") {
  demo::RunResult r;
  r.counters = numbered();
  const std::string json = demo::json_report(demo::RunShape{}, r);
  const std::size_t at = json.find("\"counters\":{");
  REQUIRE(at != std::string::npos);
  const std::string counters = json.substr(at, json.find('}', at) - at);
  for (const pagefrag::CounterValue& v : pagefrag::counter_table(r.counters)) {
    const std::string field = fmt::format("\"{}\":{}", v.name, v.value);
    CHECK_MESSAGE(counters.find(field) != std::string::npos, field);
  }
}

}  // namespace
}  // namespace mana::testing
