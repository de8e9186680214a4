// SPDX-License-Identifier: BSD-3-Clause
// examples/e1000e/e1000e_rx_parse.h: validation of what an 82574L writes
// back into a legacy RX descriptor, as a pure function.
//
// The device sets DD when it is done with a descriptor, EOP on the last
// descriptor of a frame, the length of the bytes it wrote and an errors
// byte. The driver sizes every buffer for the largest frame, so a frame
// without EOP (spread over descriptors) is not one it asked for: it and its
// continuation descriptors are dropped. A length of 0, above the buffer or
// above the largest frame, a runt, or a frame error is counted and dropped.
// tests/nic/e1000e_rx_parse_test.cc fuzzes it.
//
// Pure. Any thread.
#pragma once

#include <cstdint>
#include <string_view>

#include "examples/e1000e/e1000e_defs.h"

namespace e1000e {

enum class RxError : std::uint8_t {
  kNone,
  kNoEop,         // a frame spread over several descriptors (not configured)
  kContinuation,  // a later descriptor of such a frame
  kFrameErrors,   // the errors byte reports a bad frame
  kBadLength,     // length 0 or larger than the buffer
  kRunt,          // shorter than an Ethernet header
  kFrameTooLong,  // longer than the MTU allows
  kCount,
};

constexpr std::string_view to_string(RxError e) {
  constexpr std::string_view names[] = {"none",       "no_eop", "continuation",  "frame_errors",
                                        "bad_length", "runt",   "frame_too_long"};
  return names[static_cast<unsigned>(e)];
}

struct RxVerdict {
  enum class Kind : std::uint8_t { kNotDone, kFrame, kDrop };
  Kind kind = Kind::kNotDone;
  RxError error = RxError::kNone;
  std::uint32_t len = 0;  // frame bytes (kFrame)
};

// The written-back fields of one descriptor.
struct RxWriteback {
  std::uint16_t length;
  std::uint8_t status;
  std::uint8_t errors;
};

// The verdict on one descriptor. in_frame carries "inside a multi-descriptor
// frame" from one descriptor to the next (false at start).
constexpr RxVerdict parse_rx_desc(const RxWriteback& wb, std::uint32_t buf_len,
                                  std::uint32_t max_frame, bool& in_frame) {
  const auto drop = [](RxError e) { return RxVerdict{RxVerdict::Kind::kDrop, e, 0}; };
  if ((wb.status & kRxStatusDd) == 0) return {};
  const bool eop = (wb.status & kRxStatusEop) != 0;
  if (in_frame) {
    in_frame = !eop;
    return drop(RxError::kContinuation);
  }
  if (!eop) {
    in_frame = true;
    return drop(RxError::kNoEop);
  }
  if ((wb.errors & kRxErrFrame) != 0) return drop(RxError::kFrameErrors);
  if (wb.length == 0 || wb.length > buf_len) return drop(RxError::kBadLength);
  if (wb.length < 14) return drop(RxError::kRunt);
  if (wb.length > max_frame) return drop(RxError::kFrameTooLong);
  return {RxVerdict::Kind::kFrame, RxError::kNone, wb.length};
}

}  // namespace e1000e
