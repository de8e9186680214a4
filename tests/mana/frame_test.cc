// SPDX-License-Identifier: BSD-3-Clause
// The frame oracle (examples/mana/frame.h) that the demo and the tests judge
// frames with: a frame passes only as itself. A frame of another sequence
// number or seed (a stale buffer), any single changed byte, and a frame cut
// short or lengthened all fail.
#include "examples/mana/frame.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace mana::frame {
namespace {

TEST_CASE("a frame verifies as itself and reports its sequence number") {
  for (std::uint32_t len : {16u, 17u, 23u, 24u, 60u, 61u, 1514u, 9216u}) {
    const std::vector<std::byte> f = make_frame(7, 1234, len);
    std::uint64_t seq = 0;
    CHECK(frame_ok(f.data(), len, 7, &seq));
    CHECK(seq == 1234);
  }
}

TEST_CASE("a stale buffer (another sequence number or seed) does not pass") {
  const std::vector<std::byte> f = make_frame(7, 1234, 1514);
  std::vector<std::byte> other = make_frame(7, 1235, 1514);
  CHECK(frame_ok(other.data(), 1514, 7));  // itself: fine
  // The header of seq 1234 over the payload of seq 1235: the check word
  // matches, the payload words do not.
  std::copy(f.begin(), f.begin() + kFrameHeaderBytes, other.begin());
  CHECK_FALSE(frame_ok(other.data(), 1514, 7));
  CHECK_FALSE(frame_ok(f.data(), 1514, 8));  // same frame, another seed
}

TEST_CASE("every single changed byte is caught, and so is a wrong length") {
  for (std::uint32_t len : {16u, 29u, 64u, 100u}) {
    const std::vector<std::byte> good = make_frame(3, 99, len);
    for (std::uint32_t i = 0; i < len; ++i) {
      std::vector<std::byte> bad = good;
      bad[i] ^= std::byte{0x40};
      CHECK_MESSAGE(!frame_ok(bad.data(), len, 3), "len ", len, " byte ", i);
    }
    if (len > kFrameHeaderBytes) CHECK_FALSE(frame_ok(good.data(), len - 1, 3));
  }
  std::vector<std::byte> longer = make_frame(3, 99, 64);
  longer.push_back(std::byte{0});
  CHECK_FALSE(frame_ok(longer.data(), 65, 3));
  CHECK_FALSE(frame_ok(longer.data(), 15, 3));  // shorter than the header
}

TEST_CASE("a stale payload under a fresh header fails, for every recent sequence number") {
  // The header of frame `seq` over the payload and trailer of an earlier
  // frame that held the same buffer: what a sync that stopped early or a
  // device write into the wrong buffer leaves.
  constexpr std::uint64_t kSeq = 100000;
  const std::vector<std::byte> fresh = make_frame(5, kSeq, 1514);
  for (std::uint64_t back = 1; back < Pattern::kWindows; back += 97) {
    std::vector<std::byte> stale = make_frame(5, kSeq - back, 1514);
    std::copy(fresh.begin(), fresh.begin() + kFrameHeaderBytes, stale.begin());
    CHECK_MESSAGE(!frame_ok(stale.data(), 1514, 5), "back ", back);
    // The payload alone stale (the trailer fresh) fails too.
    std::copy(fresh.end() - 8, fresh.end(), stale.end() - 8);
    CHECK_MESSAGE(!frame_ok(stale.data(), 1514, 5), "back ", back, " (payload only)");
  }
}

TEST_CASE("payload windows of frames fewer than kWindows apart never coincide") {
  const Pattern& p = pattern_for(11);
  std::vector<const std::byte*> seen;
  for (std::uint64_t seq = 7; seq < 7 + Pattern::kWindows; ++seq) seen.push_back(p.payload(seq));
  std::sort(seen.begin(), seen.end());
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
}

}  // namespace
}  // namespace mana::frame
