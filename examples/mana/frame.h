// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/frame.h: the frame oracle shared by the mana_driver demo and
// the tests (tests/mana/mana_rig.h), so both judge frames the same way.
//
// A frame of `len` bytes (len >= kFrameHeaderBytes) is
//   [0, 8)   sequence number        [8, 12)  length
//   [12, 16) check word of (seed, seq, len)
//   [16, len - 8)  payload: a window of the seed's Pattern (random bytes)
//                  starting at a word offset keyed by (seed, seq)
//   [len - 8, len) trailer: the word pattern_key(seed, seq) (its first bytes
//                  only when len < 24, starting at byte 16)
// Generation and verification are memcpy and memcmp against the pattern
// (word-wide, vectorised by the C library), never byte loops. A stale buffer
// cannot pass: the window offset is a bijection of seq modulo kWindows, so
// frames fewer than kWindows (16384) sequence numbers apart never share a
// payload, and the trailer is keyed by the whole sequence number and seed;
// a frame cut short or lengthened fails the length and check words.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
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

// The random bytes payloads are windows of, one per seed: kWindows word
// offsets plus room for the largest frame. Built once per seed and thread
// (pattern_for), so generating and checking a frame reads it in cache.
class Pattern {
 public:
  static constexpr std::uint32_t kWindows = 16384;  // a power of two
  static constexpr std::size_t kMaxPayload = 65536;

  explicit Pattern(std::uint64_t seed) : seed_(seed), bytes_(kWindows * 8 + kMaxPayload) {
    const std::uint64_t base = mix64(seed ^ 0x5041545445524Eull);  // "PATTERN"
    for (std::size_t i = 0; i < bytes_.size() / 8; ++i) {
      const std::uint64_t w = mix64(base + i * kStep);
      std::memcpy(bytes_.data() + 8 * i, &w, 8);
    }
  }

  std::uint64_t seed() const noexcept { return seed_; }
  // The payload of frame `seq`: kMaxPayload bytes from here are readable.
  const std::byte* payload(std::uint64_t seq) const noexcept {
    // An odd multiplier is a bijection modulo a power of two.
    const std::uint64_t w = (seq * kStep + mix64(seed_)) & (kWindows - 1);
    return bytes_.data() + 8 * w;
  }

 private:
  std::uint64_t seed_;
  std::vector<std::byte> bytes_;
};

// This thread's pattern for `seed` (rebuilt when the seed changes).
inline const Pattern& pattern_for(std::uint64_t seed) {
  thread_local std::unique_ptr<Pattern> p;
  if (p == nullptr || p->seed() != seed) p = std::make_unique<Pattern>(seed);
  return *p;
}

namespace internal {
// Where the trailer starts and how long it is.
constexpr std::uint32_t trailer_start(std::uint32_t len) noexcept {
  return len >= kFrameHeaderBytes + 8 ? len - 8 : kFrameHeaderBytes;
}
}  // namespace internal

// Writes the frame (seed, seq) into all of `out` (out.size() is its length,
// at most kFrameHeaderBytes + Pattern::kMaxPayload).
inline void write_frame(std::span<std::byte> out, std::uint64_t seed, std::uint64_t seq) noexcept {
  const auto len = static_cast<std::uint32_t>(out.size());
  if (len < kFrameHeaderBytes) return;
  const std::uint32_t check = check_word(seed, seq, len);
  std::byte* p = out.data();
  std::memcpy(p, &seq, 8);
  std::memcpy(p + 8, &len, 4);
  std::memcpy(p + 12, &check, 4);
  const std::uint32_t tail = internal::trailer_start(len);
  std::memcpy(p + kFrameHeaderBytes, pattern_for(seed).payload(seq), tail - kFrameHeaderBytes);
  const std::uint64_t key = pattern_key(seed, seq);
  std::memcpy(p + tail, &key, len - tail);
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
  if (len < kFrameHeaderBytes || len > kFrameHeaderBytes + Pattern::kMaxPayload) return false;
  std::uint64_t seq = 0;
  std::uint32_t flen = 0, check = 0;
  std::memcpy(&seq, p, 8);
  std::memcpy(&flen, p + 8, 4);
  std::memcpy(&check, p + 12, 4);
  if (flen != len || check != check_word(seed, seq, len)) return false;
  const std::uint32_t tail = internal::trailer_start(len);
  const std::uint64_t key = pattern_key(seed, seq);
  if (std::memcmp(p + tail, &key, len - tail) != 0) return false;
  if (std::memcmp(p + kFrameHeaderBytes, pattern_for(seed).payload(seq),
                  tail - kFrameHeaderBytes) != 0) {
    return false;
  }
  if (seq_out != nullptr) *seq_out = seq;
  return true;
}

}  // namespace mana::frame
