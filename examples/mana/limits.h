// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/limits.h: the MANA driver's RX queue-size rule, one
// definition for the tools that ask for a queue size (mana_driver,
// rxbuf_plan). ManaPort::create() applies the same rule to
// ManaPortOptions::rx_queue_size; tests/mana:limits_test checks that it
// accepts exactly the sizes this header accepts.
#pragma once

#include <cstdint>

namespace mana {

inline constexpr std::uint32_t kMinRxQueueSize = 128;
inline constexpr std::uint32_t kMaxRxQueueSize = 8192;

// The driver accepts a power of two in kMinRxQueueSize..kMaxRxQueueSize.
constexpr bool valid_rx_queue_size(std::uint64_t n) noexcept {
  return n >= kMinRxQueueSize && n <= kMaxRxQueueSize && (n & (n - 1)) == 0;
}

}  // namespace mana
