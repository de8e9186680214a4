// SPDX-License-Identifier: BSD-3-Clause
// examples/virtio_net/virtio_rx_parse.h: validation of everything a
// virtio-net device writes into the RX used ring, as pure functions.
//
// The device writes used elements (id, len) and, in the first buffer of a
// frame, the 12-byte header whose num_buffers says over how many buffers the
// frame is spread (MRG_RXBUF). A lying device may name a descriptor that was
// never posted, a length larger than the buffer, zero or absurd num_buffers,
// the same buffer twice, or move the used index by more than the ring holds.
// parse_rx_frame() turns the next used elements into a verdict: a frame (its
// buffers and length, every one checked), a drop (what was wrong, and how
// many used elements to consume so the ring moves on), or wait (the frame's
// later buffers are not published yet). It never reads a header before the
// element naming its buffer has been checked. tests/nic/virtio_rx_parse_test.cc
// fuzzes it with hostile values.
//
// Pure: no device, no memory but the arguments. Any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "examples/virtio_net/virtio_defs.h"

namespace virtio_net {

enum class RxError : std::uint8_t {
  kNone,
  kBadId,          // id >= queue size
  kNotPosted,      // id names a descriptor the driver does not have posted
  kDuplicateId,    // the same buffer twice in one frame
  kLenTooLong,     // len > the posted buffer length
  kShortHeader,    // first buffer shorter than the 12-byte header
  kEmptyBuffer,    // a later buffer with len 0
  kBadNumBuffers,  // num_buffers 0, > 1 without MRG_RXBUF, or > the driver's limit
  kRunt,           // frame shorter than an Ethernet header
  kFrameTooLong,   // frame longer than the largest the link allows
  kCount,
};

constexpr std::string_view to_string(RxError e) {
  constexpr std::string_view names[] = {
      "none",         "bad_id",       "not_posted",      "duplicate_id", "len_too_long",
      "short_header", "empty_buffer", "bad_num_buffers", "runt",         "frame_too_long"};
  return names[static_cast<unsigned>(e)];
}

struct RxVerdict {
  enum class Kind : std::uint8_t { kFrame, kDrop, kWait };
  Kind kind = Kind::kWait;
  RxError error = RxError::kNone;
  std::uint16_t consumed = 0;     // used elements to consume (kFrame, kDrop)
  std::uint16_t num_buffers = 0;  // buffers of the frame (kFrame)
  std::uint32_t frame_len = 0;    // Ethernet frame bytes, header excluded (kFrame)
};

struct RxLimits {
  std::uint32_t queue_size = 0;   // descriptors in the RX queue
  std::uint16_t max_buffers = 1;  // the most buffers one frame may use (1 without MRG_RXBUF)
  std::uint32_t max_frame = 0;    // the largest Ethernet frame accepted (no FCS)
};

inline constexpr std::uint32_t kMinFrame = 14;  // an Ethernet header

// How many used elements are new: used_idx - last_used (mod 2^16), or
// nullopt when that exceeds the queue size (a device that lies about its
// index: the ring is broken).
constexpr std::optional<std::uint16_t> used_available(std::uint16_t used_idx,
                                                      std::uint16_t last_used,
                                                      std::uint32_t queue_size) {
  const auto n = static_cast<std::uint16_t>(used_idx - last_used);
  if (n > queue_size) return std::nullopt;
  return n;
}

// The verdict on the next frame in elems (the published, not yet consumed
// used elements, oldest first; may be empty). posted_len(id) is the length
// of the buffer posted at descriptor id, 0 when id is not posted; it is only
// called with id < queue_size. num_buffers_of(id) reads the header's
// num_buffers from buffer id; it is only called once elems[0] is known to
// name a posted buffer holding the whole header.
template <class PostedLen, class NumBuffersOf>
RxVerdict parse_rx_frame(std::span<const UsedElem> elems, const RxLimits& lim,
                         PostedLen&& posted_len, NumBuffersOf&& num_buffers_of) {
  const auto drop = [](RxError e, std::size_t consumed) {
    return RxVerdict{.kind = RxVerdict::Kind::kDrop,
                     .error = e,
                     .consumed = static_cast<std::uint16_t>(consumed)};
  };
  // Checks element i; kNone when it names a posted buffer, distinct from
  // the frame's earlier ones, with a length that fits.
  const auto check = [&](std::size_t i) {
    const UsedElem& e = elems[i];
    if (e.id >= lim.queue_size) return RxError::kBadId;
    const std::uint32_t posted = posted_len(e.id);
    if (posted == 0) return RxError::kNotPosted;
    for (std::size_t j = 0; j < i; ++j) {
      if (elems[j].id == e.id) return RxError::kDuplicateId;
    }
    if (e.len > posted) return RxError::kLenTooLong;
    if (i == 0 && e.len < kNetHdrLen) return RxError::kShortHeader;
    if (i != 0 && e.len == 0) return RxError::kEmptyBuffer;
    return RxError::kNone;
  };

  if (elems.empty()) return {};
  if (RxError e = check(0); e != RxError::kNone) return drop(e, 1);
  const std::uint16_t n = num_buffers_of(elems[0].id);
  if (n == 0 || n > lim.max_buffers) return drop(RxError::kBadNumBuffers, 1);
  if (elems.size() < n) return {};  // the rest is not published yet
  std::uint64_t frame = elems[0].len - kNetHdrLen;
  for (std::size_t i = 1; i < n; ++i) {
    if (RxError e = check(i); e != RxError::kNone) return drop(e, i + 1);
    frame += elems[i].len;
  }
  if (frame < kMinFrame) return drop(RxError::kRunt, n);
  if (frame > lim.max_frame) return drop(RxError::kFrameTooLong, n);
  return RxVerdict{.kind = RxVerdict::Kind::kFrame,
                   .error = RxError::kNone,
                   .consumed = n,
                   .num_buffers = n,
                   .frame_len = static_cast<std::uint32_t>(frame)};
}

}  // namespace virtio_net
