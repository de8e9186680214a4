// SPDX-License-Identifier: BSD-3-Clause
// e1000e::parse_rx_desc against an honest device and a hostile one
// (arbitrary write-backs). Oracle: the 82574 legacy RX rules written out
// here (DD, EOP, errors, length against the 2048-byte buffer and the MTU).
#include "examples/e1000e/e1000e_rx_parse.h"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <cstdint>
#include <vector>

#include "tests/support/rc_doctest.h"

namespace {
using e1000e::parse_rx_desc;
using e1000e::RxError;
using e1000e::RxVerdict;
using e1000e::RxWriteback;
constexpr std::uint32_t kBuf = 2048, kMaxFrame = 1514;
}  // namespace

TEST_CASE("e1000e RX: an honest device's frames are accepted") {
  PAGEFRAG_RC_CHECK("DD|EOP, no errors, 14..1514 bytes", [] {
    const auto len = *rc::gen::inRange<std::uint16_t>(14, kMaxFrame + 1);
    bool in_frame = false;
    const RxVerdict v = parse_rx_desc({len, 0x03, 0}, kBuf, kMaxFrame, in_frame);
    RC_ASSERT(v.kind == RxVerdict::Kind::kFrame);
    RC_ASSERT(v.len == len);
    RC_ASSERT(!in_frame);
  });
}

TEST_CASE(
    "e1000e RX: hostile write-backs are refused; frames split over descriptors dropped whole") {
  PAGEFRAG_RC_CHECK("arbitrary status, errors, length sequences", [] {
    const auto wbs = *rc::gen::container<std::vector<RxWriteback>>(rc::gen::exec([] {
      return RxWriteback{
          *rc::gen::arbitrary<std::uint16_t>(),
          *rc::gen::oneOf(rc::gen::element<std::uint8_t>(0x03, 0x01, 0x02, 0x00),
                          rc::gen::arbitrary<std::uint8_t>()),
          *rc::gen::oneOf(rc::gen::just<std::uint8_t>(0), rc::gen::arbitrary<std::uint8_t>())};
    }));
    bool in_frame = false;
    bool oracle_in_frame = false;  // the model: inside a frame that has not seen EOP
    for (const RxWriteback& wb : wbs) {
      const bool before = in_frame;
      const RxVerdict v = parse_rx_desc(wb, kBuf, kMaxFrame, in_frame);
      const bool dd = wb.status & 1, eop = wb.status & 2;
      if (!dd) {
        RC_ASSERT(v.kind == RxVerdict::Kind::kNotDone);
        RC_ASSERT(in_frame == before);
        continue;
      }
      const bool continuation = oracle_in_frame;
      oracle_in_frame = !eop;
      RC_ASSERT(in_frame == oracle_in_frame);
      if (continuation || !eop) {
        RC_ASSERT(v.kind == RxVerdict::Kind::kDrop);
        continue;
      }
      const bool good = (wb.errors & 0x97) == 0 && wb.length >= 14 && wb.length <= kMaxFrame;
      RC_ASSERT((v.kind == RxVerdict::Kind::kFrame) == good);
      if (good) RC_ASSERT(v.len == wb.length);
      if (!good) RC_ASSERT(v.error != RxError::kNone);
    }
  });
}

TEST_CASE("e1000e RX: worked hostile cases") {
  bool f = false;
  CHECK(parse_rx_desc({100, 0x02, 0}, kBuf, kMaxFrame, f).kind == RxVerdict::Kind::kNotDone);
  CHECK(parse_rx_desc({0, 0x03, 0}, kBuf, kMaxFrame, f).error == RxError::kBadLength);
  CHECK(parse_rx_desc({2049, 0x03, 0}, kBuf, kMaxFrame, f).error == RxError::kBadLength);
  CHECK(parse_rx_desc({1515, 0x03, 0}, kBuf, kMaxFrame, f).error == RxError::kFrameTooLong);
  CHECK(parse_rx_desc({13, 0x03, 0}, kBuf, kMaxFrame, f).error == RxError::kRunt);
  CHECK(parse_rx_desc({100, 0x03, 0x01}, kBuf, kMaxFrame, f).error == RxError::kFrameErrors);
  CHECK(parse_rx_desc({2048, 0x01, 0}, kBuf, kMaxFrame, f).error == RxError::kNoEop);
  CHECK(f);
  CHECK(parse_rx_desc({100, 0x03, 0}, kBuf, kMaxFrame, f).error == RxError::kContinuation);
  CHECK(!f);
  CHECK(parse_rx_desc({100, 0x03, 0}, kBuf, kMaxFrame, f).kind == RxVerdict::Kind::kFrame);
}
