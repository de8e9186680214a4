// SPDX-License-Identifier: BSD-3-Clause
// Tests of HugepageProvider that need no hugepages: its argument checks and
// the Status it returns when the system has too few hugepages.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "pagefrag/memory/hugepage_provider.h"

namespace pagefrag {
namespace {

void check_invalid(const HugepageProviderParams& params, const std::string& what) {
  auto made = HugepageProvider::create(params);
  REQUIRE_FALSE(made.ok());
  CHECK(made.status().code() == absl::StatusCode::kInvalidArgument);
  CAPTURE(made.status().message());
  CHECK(std::string(made.status().message()).find(what) != std::string::npos);
}

TEST_CASE("HugepageProvider::create rejects bad geometry with the valid range") {
  check_invalid({.page_size = 4 << 20},
                "page_size 4194304 is invalid; expected a power of two in "
                "[4096, 2097152]");
  check_invalid({.page_size = 4096, .max_order = 10}, "max_order 10 is invalid; expected 0..9");
  check_invalid({.page_size = 65536, .max_order = 6}, "expected 0..5");
  check_invalid({.page_size = 4096, .max_order = 4, .capacity = 1 << 20},
                "capacity 1048576 is invalid; expected a positive multiple of the 2 MiB");
  check_invalid({.page_size = 4096, .max_order = 4, .capacity = 0}, "capacity 0");
}

// HugePages_Free read here, independently of the provider.
long free_hugepages() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    if (line.rfind("HugePages_Free:", 0) == 0) return std::stol(line.substr(15));
  }
  return -1;
}

TEST_CASE("too few free hugepages: a Status that says how to reserve them") {
  const long free = free_hugepages();
  REQUIRE(free >= 0);
  const std::size_t want = static_cast<std::size_t>(free + 1);
  auto made = HugepageProvider::create({.capacity = want << 21});
  REQUIRE_FALSE(made.ok());
  const std::string msg(made.status().message());
  CAPTURE(msg);
  CHECK((made.status().code() == absl::StatusCode::kFailedPrecondition ||
         made.status().code() == absl::StatusCode::kResourceExhausted));
  CHECK(msg.find("needs " + std::to_string(want) + " free 2 MiB hugepages") != std::string::npos);
  CHECK(msg.find("/proc/sys/vm/nr_hugepages") != std::string::npos);
}

}  // namespace
}  // namespace pagefrag
