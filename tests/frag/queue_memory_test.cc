// SPDX-License-Identifier: BSD-3-Clause
// The memory one RX queue pins (bench/queue_memory.h): 1024 live 1856-byte
// fragments on 64 KiB pages, FIFO frees, stay within 2 MiB (32 pages) whether
// the frees come from the owner, from other threads or half and half. A
// memory bound, the same on every machine.
#include "bench/queue_memory.h"

#include <doctest/doctest.h>

namespace pagefrag {
namespace {

using bench::FreeMode;

TEST_CASE("queue held bytes stay within 2 MiB for owner, remote and mixed frees") {
  // 10^5 allocations: the window reaches its steady state within the first
  // few thousand; the bench runs 10^6.
  const bench::QueueMemoryParams q{.allocs = 100'000};
  for (FreeMode m : {FreeMode::kOwner, FreeMode::kRemote, FreeMode::kMixed}) {
    CAPTURE(to_string(m));
    auto hw = bench::queue_memory_high_water(m, q);
    REQUIRE_MESSAGE(hw.ok(), hw.status().ToString());
    CHECK(*hw <= std::size_t{2} << 20);
    // The window alone needs 1024 / 35 pages: the bound is not vacuous.
    CHECK(*hw >= 30 * q.page_size);
  }
}

}  // namespace
}  // namespace pagefrag
