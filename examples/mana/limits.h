// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/limits.h: the MANA NIC's own limits (rings, queues).
//
// These are properties of the device and its Linux driver, not of the
// platform's buffer arithmetic (that is pagefrag::LinuxPlatform): the RX ring
// holds a power of two of 128..8192 work requests (default 1024), the TX ring
// 2..8192 (default 256), a port has 1..64 queues (default 16). The driver
// validates its options against them, and the RX-buffer planner
// (examples/rxbuf_plan.cc) applies the same rule, so the two never disagree.
#pragma once

#include <absl/status/status.h>
#include <fmt/format.h>

#include <cstdint>
#include <string_view>

#include "pagefrag/rxbuf/rxbuf_policy.h"

namespace mana {

struct ManaLimits {
  static constexpr std::uint32_t kMinRxQueueSize = 128;
  static constexpr std::uint32_t kMaxRxQueueSize = 8192;
  static constexpr std::uint32_t kDefaultRxQueueSize = 1024;
  static constexpr std::uint32_t kMinTxQueueSize = 2;
  static constexpr std::uint32_t kMaxTxQueueSize = 8192;
  static constexpr std::uint32_t kDefaultTxQueueSize = 256;
  static constexpr std::uint32_t kMaxQueues = 64;
  static constexpr std::uint32_t kDefaultQueues = 16;
};

// The RX ring rule: a power of two in 128..8192 (pagefrag's one
// power-of-two rule and message). ManaPort::create() applies it;
// tests/mana:limits_test holds the tools' --queue-size range to it.
inline absl::Status validate_rx_queue_size(std::string_view what, std::uint64_t n) {
  return pagefrag::validate_power_of_two_in(what, n, ManaLimits::kMinRxQueueSize,
                                            ManaLimits::kMaxRxQueueSize);
}

// The TX ring rule: a power of two in 2..8192.
inline absl::Status validate_tx_queue_size(std::string_view what, std::uint64_t n) {
  return pagefrag::validate_power_of_two_in(what, n, ManaLimits::kMinTxQueueSize,
                                            ManaLimits::kMaxTxQueueSize);
}

// The queue-count rule: 1..64.
inline absl::Status validate_num_queues(std::string_view what, std::uint64_t n) {
  if (n >= 1 && n <= ManaLimits::kMaxQueues) return absl::OkStatus();
  return pagefrag::rxbuf_out_of_range(what, n, 1, ManaLimits::kMaxQueues);
}

}  // namespace mana
