// SPDX-License-Identifier: BSD-3-Clause
// tests/mana/recording_device.h: the smallest ManaDevice, for tests that
// play the device's side by hand: it records the RX completion queue the
// driver registers and does nothing else (a fence is ignored: a test that
// needs one answered hides fence_rq()).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>

#include "examples/mana/device.h"
#include "examples/mana/gdma.h"

namespace mana::testing {

class RecordingDevice {
 public:
  static constexpr std::uint32_t kNoObject = ~0u;
  absl::StatusOr<std::uint32_t> create_rq(WorkQueue<RxWqe>*, CompletionQueue* cq) {
    rx_cq = cq;
    return 1u;
  }
  absl::StatusOr<std::uint32_t> create_sq(WorkQueue<TxWqe>*, CompletionQueue*) { return 2u; }
  void destroy(std::uint32_t) {}
  void steer_rx(std::uint32_t, std::uint32_t) {}
  void steer_tx(std::uint32_t, std::uint32_t) {}
  void fence_rq(std::uint32_t) {}
  std::uint32_t mem_key() const { return 1; }

  CompletionQueue* rx_cq = nullptr;
};
static_assert(ManaDevice<RecordingDevice>);

}  // namespace mana::testing
