// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/xdp.h: the driver's XDP hook: an xdp_buff-like view and the
// actions a program may return.
//
// An XDP program is any C++ callable XdpAction(XdpBuff&). It runs on the
// queue's poller thread for every received frame (after length validation
// and the sync for the CPU), may read and write the frame, may move `data`
// anywhere in [data_hard_start, data_end) (growing or shrinking the
// headroom; a frame keeps at least one byte), and for REDIRECT names the
// target queue in redirect_queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace mana {

enum class XdpAction : std::uint8_t {
  kAborted = 0,   // program error: the frame is dropped and counted
  kDrop = 1,      // drop the frame: the buffer goes back to its pool
  kPass = 2,      // hand the frame to the stack
  kTx = 3,        // send the frame back out of this queue's TX ring
  kRedirect = 4,  // send it out of queue redirect_queue's TX ring
};

constexpr std::string_view to_string(XdpAction a) noexcept {
  switch (a) {
    case XdpAction::kAborted:
      return "aborted";
    case XdpAction::kDrop:
      return "drop";
    case XdpAction::kPass:
      return "pass";
    case XdpAction::kTx:
      return "tx";
    case XdpAction::kRedirect:
      return "redirect";
  }
  return "invalid";
}

// The frame as an XDP program sees it (the kernel's struct xdp_buff).
struct XdpBuff {
  std::byte* data_hard_start = nullptr;  // first byte of the buffer (headroom starts here)
  std::byte* data = nullptr;             // first byte of the frame
  std::byte* data_end = nullptr;         // one past the frame's last byte
  std::uint32_t frame_sz = 0;            // the buffer's truesize
  std::uint32_t rx_queue = 0;            // the queue the frame arrived on
  std::uint32_t redirect_queue = 0;      // REDIRECT: the target queue (set by the program)
};

using XdpProgram = std::function<XdpAction(XdpBuff&)>;

}  // namespace mana
