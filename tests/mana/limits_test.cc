// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/limits.h states the driver's RX queue-size rule for the tools
// (mana_driver, rxbuf_plan). This test holds it equal to what ManaPort
// itself accepts, for every size from 0 to 16384 and around every power of
// two up to 2^31, so the tools can neither refuse a size the driver takes nor
// accept one it refuses.
#include "examples/mana/limits.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <set>

#include "tests/mana/mana_rig.h"

namespace mana::testing {
namespace {

bool driver_accepts(Rig& rig, std::uint32_t rx_queue_size) {
  ManaPortOptions o;
  o.num_queues = 1;
  o.rx_queue_size = rx_queue_size;
  o.tx_queue_size = 64;
  // A size the driver accepts is validated before anything is allocated;
  // only validation is asked of it here (no attach).
  return Port::create(rig.provider, rig.dma, rig.dev, o).ok();
}

TEST_CASE("limits.h accepts exactly the RX queue sizes ManaPort::create accepts") {
  Rig rig({.queues = 1});
  std::set<std::uint64_t> sizes;
  for (std::uint64_t n = 0; n <= 16384; n += (n < 1024 ? 1 : 7)) sizes.insert(n);
  for (std::uint64_t p = 1; p <= (std::uint64_t{1} << 31); p <<= 1) {
    sizes.insert(p - 1);
    sizes.insert(p);
    sizes.insert(p + 1);
  }
  std::uint64_t accepted = 0;
  for (std::uint64_t n : sizes) {
    const auto n32 = static_cast<std::uint32_t>(n);
    const bool ours = validate_rx_queue_size("rx_queue_size", n32).ok();
    accepted += ours ? 1 : 0;
    CHECK_MESSAGE(ours == driver_accepts(rig, n32), "rx_queue_size ", n);
  }
  CHECK(accepted == 7);  // 128, 256, ..., 8192
}

}  // namespace
}  // namespace mana::testing
