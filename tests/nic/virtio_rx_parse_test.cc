// SPDX-License-Identifier: BSD-3-Clause
// virtio_net::parse_rx_frame against an honest device model and against a
// hostile device (arbitrary used elements and headers). Oracles: the
// device's rules written out here (virtio 1.2, 5.1.6.3-4), not the parser.
#include "examples/virtio_net/virtio_rx_parse.h"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "tests/support/rc_doctest.h"

namespace {

using virtio_net::parse_rx_frame;
using virtio_net::RxError;
using virtio_net::RxLimits;
using virtio_net::RxVerdict;
using virtio_net::UsedElem;

constexpr std::uint32_t kPostLen = 1526;  // 12-byte header + 1514

// A ring of q descriptors, some posted with kPostLen bytes, and the
// num_buffers each buffer's header holds.
struct Ring {
  std::uint32_t q;
  std::vector<std::uint32_t> posted;   // per id: posted length or 0
  std::vector<std::uint16_t> headers;  // per id: num_buffers in the buffer's header
};

}  // namespace

TEST_CASE("virtio-net RX: an honest device's frames are accepted whole") {
  PAGEFRAG_RC_CHECK("frames over 1..6 buffers", [] {
    const std::uint32_t q = 256;
    const std::uint32_t max_frame = *rc::gen::element<std::uint32_t>(1514, 9014);
    Ring ring{q, std::vector<std::uint32_t>(q, kPostLen), std::vector<std::uint16_t>(q, 0)};
    const auto frame = *rc::gen::inRange<std::uint32_t>(14, max_frame + 1);
    // The device fills buffers in order: header + frame, kPostLen each.
    std::vector<UsedElem> elems;
    std::uint32_t left = frame + 12, id = *rc::gen::inRange<std::uint32_t>(0, q - 8);
    while (left > 0) {
      const std::uint32_t len = std::min(left, kPostLen);
      elems.push_back({id++, len});
      left -= len;
    }
    ring.headers[elems[0].id] = static_cast<std::uint16_t>(elems.size());
    const std::size_t extra = *rc::gen::inRange<std::size_t>(0, 3);  // later frames' elements
    for (std::size_t i = 0; i < extra; ++i) elems.push_back({id++, 100});
    const RxVerdict v = parse_rx_frame(
        elems, RxLimits{.queue_size = q, .max_buffers = 16, .max_frame = max_frame},
        [&](std::uint32_t i) { return ring.posted[i]; },
        [&](std::uint32_t i) { return ring.headers[i]; });
    RC_ASSERT(v.kind == RxVerdict::Kind::kFrame);
    RC_ASSERT(v.frame_len == frame);
    RC_ASSERT(v.num_buffers == elems.size() - extra);
    RC_ASSERT(v.consumed == v.num_buffers);
  });
}

TEST_CASE("virtio-net RX: a frame whose later buffers are not published yet waits") {
  Ring ring{64, std::vector<std::uint32_t>(64, kPostLen), std::vector<std::uint16_t>(64, 0)};
  ring.headers[5] = 3;
  const std::vector<UsedElem> elems = {{5, kPostLen}, {6, kPostLen}};
  const RxVerdict v = parse_rx_frame(
      elems, RxLimits{.queue_size = 64, .max_buffers = 16, .max_frame = 9014},
      [&](std::uint32_t i) { return ring.posted[i]; },
      [&](std::uint32_t i) { return ring.headers[i]; });
  CHECK(v.kind == RxVerdict::Kind::kWait);
  CHECK(v.consumed == 0);
}

TEST_CASE("virtio-net RX: hostile used elements and headers are refused, never read past") {
  PAGEFRAG_RC_CHECK("arbitrary ids, lengths, num_buffers", [] {
    const std::uint32_t q = *rc::gen::element<std::uint32_t>(64, 256);
    Ring ring{q, {}, {}};
    for (std::uint32_t i = 0; i < q; ++i) {
      ring.posted.push_back(*rc::gen::element<std::uint32_t>(0, kPostLen, 12, 1));
      ring.headers.push_back(*rc::gen::oneOf(rc::gen::inRange<std::uint16_t>(0, 20),
                                             rc::gen::arbitrary<std::uint16_t>()));
    }
    const auto n = *rc::gen::inRange<std::size_t>(0, 17);
    std::vector<UsedElem> elems;
    for (std::size_t i = 0; i < n; ++i) {
      const auto id = *rc::gen::oneOf(rc::gen::inRange<std::uint32_t>(0, q),
                                      rc::gen::arbitrary<std::uint32_t>());
      const auto len = *rc::gen::oneOf(rc::gen::inRange<std::uint32_t>(0, 2 * kPostLen),
                                       rc::gen::arbitrary<std::uint32_t>());
      elems.push_back({id, len});
    }
    const auto max_buffers = *rc::gen::element<std::uint16_t>(1, 16);
    const std::uint32_t max_frame = 9014;
    bool bad_lookup = false, early_header = false;
    const RxVerdict v = parse_rx_frame(
        elems, RxLimits{.queue_size = q, .max_buffers = max_buffers, .max_frame = max_frame},
        [&](std::uint32_t id) {
          bad_lookup |= id >= q;
          return id < q ? ring.posted[id] : 0u;
        },
        [&](std::uint32_t id) {
          // Only the first element's buffer, once it is posted and holds the header.
          early_header |= id != elems[0].id || id >= q || ring.posted[id] == 0 ||
                          elems[0].len > ring.posted[id] || elems[0].len < 12;
          return id < q ? ring.headers[id] : std::uint16_t{0};
        });
    RC_ASSERT(!bad_lookup);
    RC_ASSERT(!early_header);
    switch (v.kind) {
      case RxVerdict::Kind::kWait:
        RC_ASSERT(v.consumed == 0u);
        if (!elems.empty()) RC_ASSERT(elems.size() < ring.headers[elems[0].id]);
        break;
      case RxVerdict::Kind::kDrop:
        RC_ASSERT(v.error != RxError::kNone);
        RC_ASSERT(v.consumed >= 1u);
        RC_ASSERT(v.consumed <= elems.size());
        break;
      case RxVerdict::Kind::kFrame: {
        // Every rule, written out.
        const std::uint16_t nb = ring.headers[elems[0].id];
        RC_ASSERT(nb >= 1u && nb <= max_buffers && nb <= elems.size());
        RC_ASSERT(v.consumed == nb && v.num_buffers == nb);
        std::set<std::uint32_t> ids;
        std::uint64_t total = 0;
        for (std::size_t i = 0; i < nb; ++i) {
          RC_ASSERT(elems[i].id < q);
          RC_ASSERT(ring.posted[elems[i].id] != 0u);
          RC_ASSERT(elems[i].len <= ring.posted[elems[i].id]);
          RC_ASSERT(ids.insert(elems[i].id).second);
          RC_ASSERT(elems[i].len >= (i == 0 ? 12u : 1u));
          total += elems[i].len;
        }
        RC_ASSERT(v.frame_len == total - 12);
        RC_ASSERT(v.frame_len >= 14u && v.frame_len <= max_frame);
        break;
      }
    }
  });
}

TEST_CASE("virtio-net RX: worked hostile cases") {
  Ring ring{64, std::vector<std::uint32_t>(64, kPostLen), std::vector<std::uint16_t>(64, 1)};
  ring.posted[9] = 0;
  ring.headers[3] = 0;
  ring.headers[4] = 2;
  const RxLimits lim{.queue_size = 64, .max_buffers = 16, .max_frame = 1514};
  const auto verdict = [&](std::vector<UsedElem> e) {
    return parse_rx_frame(
        e, lim, [&](std::uint32_t i) { return ring.posted[i]; },
        [&](std::uint32_t i) { return ring.headers[i]; });
  };
  CHECK(verdict({{64, 100}}).error == RxError::kBadId);
  CHECK(verdict({{9, 100}}).error == RxError::kNotPosted);
  CHECK(verdict({{1, kPostLen + 1}}).error == RxError::kLenTooLong);
  CHECK(verdict({{1, 11}}).error == RxError::kShortHeader);
  CHECK(verdict({{3, 100}}).error == RxError::kBadNumBuffers);
  CHECK(verdict({{4, 100}, {4, 100}}).error == RxError::kDuplicateId);
  CHECK(verdict({{4, 100}, {5, 0}}).error == RxError::kEmptyBuffer);
  CHECK(verdict({{4, 100}, {5, 0}}).consumed == 2);
  CHECK(verdict({{1, 20}}).error == RxError::kRunt);
  CHECK(verdict({{4, kPostLen}, {5, 2}}).error == RxError::kFrameTooLong);
  CHECK(verdict({{1, 12 + 60}}).kind == RxVerdict::Kind::kFrame);
}

TEST_CASE("virtio-net: a used index that moves by more than the ring is a broken ring") {
  PAGEFRAG_RC_CHECK("used_available", [] {
    const auto q = *rc::gen::element<std::uint32_t>(64, 256, 32768);
    const auto last = *rc::gen::arbitrary<std::uint16_t>();
    const auto idx = *rc::gen::arbitrary<std::uint16_t>();
    const std::uint32_t ahead = (std::uint32_t{idx} + 65536 - last) % 65536;
    const auto n = virtio_net::used_available(idx, last, q);
    RC_ASSERT(n.has_value() == (ahead <= q));
    if (n) RC_ASSERT(*n == ahead);
  });
}
