// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/frame.h: the frame oracle shared by the mana_driver demo and
// the tests (tests/mana/mana_rig.h), so both judge frames the same way.
//
// A frame of `len` bytes (len >= kFrameHeaderBytes) is
//   [0, 8)   sequence number        [8, 12)  length
//   [12, 16) check word of (seed, seq, len)
//   [16, len) pattern words keyed by (seed, seq): word k = key ^ (k * kStep)
// Every payload word depends on the sequence number, so a stale buffer (a
// frame of another sequence number, or of the same one sent under another
// seed) cannot pass, and a frame cut short or lengthened fails the length and
// check words. Generation and verification go a 64-bit word at a time
// (memcpy in, compare words), not byte by byte.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace mana::frame {

inline constexpr std::uint32_t kFrameHeaderBytes = 16;

// splitmix64's finaliser: a bijection that spreads every input bit.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline constexpr std::uint64_t kStep = 0x9E3779B97F4A7C15ull;

constexpr std::uint64_t pattern_key(std::uint64_t seed, std::uint64_t seq) noexcept {
  return mix64(mix64(seed) ^ (seq * kStep));
}

constexpr std::uint32_t check_word(std::uint64_t seed, std::uint64_t seq,
                                   std::uint32_t len) noexcept {
  return static_cast<std::uint32_t>(mix64(pattern_key(seed, seq) ^ len) >> 32);
}

// Writes the frame (seed, seq) into all of `out` (out.size() is its length).
inline void write_frame(std::span<std::byte> out, std::uint64_t seed, std::uint64_t seq) noexcept {
  const auto len = static_cast<std::uint32_t>(out.size());
  if (len < kFrameHeaderBytes) return;
  const std::uint32_t check = check_word(seed, seq, len);
  std::byte* p = out.data();
  std::memcpy(p, &seq, 8);
  std::memcpy(p + 8, &len, 4);
  std::memcpy(p + 12, &check, 4);
  const std::uint64_t key = pattern_key(seed, seq);
  std::uint32_t off = kFrameHeaderBytes;
  std::uint64_t k = 0;
  for (; off + 8 <= len; off += 8, ++k) {
    const std::uint64_t w = key ^ (k * kStep);
    std::memcpy(p + off, &w, 8);
  }
  if (off < len) {
    const std::uint64_t w = key ^ (k * kStep);
    std::memcpy(p + off, &w, len - off);
  }
}

inline std::vector<std::byte> make_frame(std::uint64_t seed, std::uint64_t seq, std::uint32_t len) {
  std::vector<std::byte> f(len);
  write_frame(f, seed, seq);
  return f;
}

// True when [p, p + len) is exactly the frame the generator wrote under
// `seed`; its sequence number goes to *seq_out.
inline bool frame_ok(const std::byte* p, std::uint32_t len, std::uint64_t seed,
                     std::uint64_t* seq_out = nullptr) noexcept {
  if (len < kFrameHeaderBytes) return false;
  std::uint64_t seq = 0;
  std::uint32_t flen = 0, check = 0;
  std::memcpy(&seq, p, 8);
  std::memcpy(&flen, p + 8, 4);
  std::memcpy(&check, p + 12, 4);
  if (flen != len || check != check_word(seed, seq, len)) return false;
  const std::uint64_t key = pattern_key(seed, seq);
  std::uint32_t off = kFrameHeaderBytes;
  std::uint64_t k = 0, diff = 0;
  for (; off + 8 <= len; off += 8, ++k) {
    std::uint64_t got = 0;
    std::memcpy(&got, p + off, 8);
    diff |= got ^ (key ^ (k * kStep));
  }
  if (off < len) {
    const std::uint64_t want = key ^ (k * kStep);
    diff |= static_cast<std::uint64_t>(std::memcmp(p + off, &want, len - off) != 0);
  }
  if (diff != 0) return false;
  if (seq_out != nullptr) *seq_out = seq;
  return true;
}

}  // namespace mana::frame
