// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/sim/scripted_rq.h: ScriptedRqDevice, a ManaDevice with one
// RQ and no thread of its own, for single-thread harnesses (the driver-only
// RX benchmark, the fast-path tests).
//
// The harness calls place() to play the NIC: it takes posted RX work
// requests in order, writes each frame into its buffer and one CQE_RX_OKAY
// completion per frame; then it polls the queue itself. Buffers are reached
// through CoherentDma's translation (the queue must use CoherentDma). Every
// other device call is a no-op: no steering, no fences, no TX.
#pragma once

#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "examples/mana/gdma.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/coherent_dma.h"

namespace mana::sim {

class ScriptedRqDevice {
 public:
  static constexpr std::uint32_t kNoObject = ~std::uint32_t{0};

  absl::StatusOr<std::uint32_t> create_rq(WorkQueue<RxWqe>* wq, CompletionQueue* cq) {
    rq_ = wq;
    cq_ = cq;
    return 0;
  }
  absl::StatusOr<std::uint32_t> create_sq(WorkQueue<TxWqe>*, CompletionQueue*) { return 1; }
  void destroy(std::uint32_t) {}
  void steer_rx(std::uint32_t, std::uint32_t) {}
  void steer_tx(std::uint32_t, std::uint32_t) {}
  void fence_rq(std::uint32_t) {}
  std::uint32_t mem_key() const { return 0x5EED0001u; }

  // Places up to n frames of len bytes (at most each request's size) into
  // posted buffers, in order, and returns how many: fewer when no request
  // is left posted or the CQ is full. write(va, len, seq) fills frame seq's
  // bytes (seq counts frames from 0 over the device's life). Each
  // completion: CQE_RX_OKAY, IP and UDP checksums good, the hash = seq.
  template <class Write>
  std::uint32_t place(std::uint32_t n, std::uint32_t len, Write&& write) {
    const std::uint32_t posted = rq_->posted_head();
    std::uint32_t room = cq_->device_space();
    std::uint32_t placed = 0;
    RxCompOob oob;
    oob.set_type(CqeType::kRxOkay);
    oob.flags = RxCompFlags::kIpCsumOk | RxCompFlags::kUdpCsumOk;
    oob.ppi[0].set_pkt_len(len);
    std::uint8_t data[kCqeDataSize];
    while (placed < n && tail_ != posted && room != 0) {
      const RxWqe wqe = rq_->read_entry(tail_++);
      PAGEFRAG_CHECK(len <= wqe.sge.size, "ScriptedRqDevice: a {}-byte frame for a {}-byte buffer",
                     len, wqe.sge.size);
      write(pagefrag::CoherentDma::translate(pagefrag::Iova(wqe.sge.address), len), len, seq_);
      oob.ppi[0].hash = seq_++;
      std::memcpy(data, &oob, sizeof(data));
      cq_->device_write_at_tail(data, 0, false, cq_->owner_for(cq_->device_tail()));
      cq_->device_advance();
      --room;
      ++placed;
    }
    return placed;
  }

 private:
  WorkQueue<RxWqe>* rq_ = nullptr;
  CompletionQueue* cq_ = nullptr;
  std::uint32_t tail_ = 0;  // the next request to take
  std::uint32_t seq_ = 0;   // frames placed
};

}  // namespace mana::sim
