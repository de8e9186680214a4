// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/device.h: the ManaDevice concept, the control interface the
// driver needs from a MANA device (real or simulated).
//
// The driver allocates its queue rings and registers them as device objects
// (the kernel's create_wq_obj), routes a queue index's traffic to one object
// (RSS steering), fences an RQ (the device completes everything it took and
// then writes CQE_RX_OBJECT_FENCE), and destroys objects after which the
// device no longer touches their rings or the buffers they named. All calls
// come from the driver's control thread.
#pragma once

#include <absl/status/statusor.h>

#include <concepts>
#include <cstdint>

#include "examples/mana/gdma.h"

namespace mana {

template <class D>
concept ManaDevice = requires(D& d, WorkQueue<RxWqe>* rq, WorkQueue<TxWqe>* sq, CompletionQueue* cq,
                              std::uint32_t id, std::uint32_t q) {
  { d.create_rq(rq, cq) } -> std::same_as<absl::StatusOr<std::uint32_t>>;
  { d.create_sq(sq, cq) } -> std::same_as<absl::StatusOr<std::uint32_t>>;
  { d.destroy(id) } -> std::same_as<void>;
  { d.steer_rx(q, id) } -> std::same_as<void>;
  { d.steer_tx(q, id) } -> std::same_as<void>;
  { d.fence_rq(id) } -> std::same_as<void>;
  { d.mem_key() } -> std::convertible_to<std::uint32_t>;
  { D::kNoObject } -> std::convertible_to<std::uint32_t>;
};

}  // namespace mana
