// SPDX-License-Identifier: BSD-3-Clause
// examples/afxdp/wire.h: the live test's traffic, as seen on the wire.
//
// The sender (afxdp_peer) and the driver (afxdp_driver) agree on nothing but
// this file: an Ethernet + IPv4 + UDP frame whose payload starts with a
// TestHeader and continues with pattern bytes that are a pure function of the
// datagram's sequence number and the byte's position. A receiver therefore
// checks a datagram without any state from the sender: the length must be
// payload_size(seq), every pattern byte must equal pattern_byte(seq, i), and
// the IPv4 and UDP checksums must hold. Sizes cycle through the smallest
// payload, the largest the MTU allows and many in between.
//
// Pure functions, no I/O; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace afxdp {

inline constexpr std::size_t kEthHeaderBytes = 14;
inline constexpr std::size_t kIpv4HeaderBytes = 20;  // the sender never sets IP options
inline constexpr std::size_t kUdpHeaderBytes = 8;
inline constexpr std::size_t kFrameOverhead = kEthHeaderBytes + kIpv4HeaderBytes + kUdpHeaderBytes;
inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::uint32_t kTestMagic = 0x70667867;  // "pfxg"

// First bytes of every test payload (network byte order on the wire).
struct TestHeader {
  std::uint32_t magic;
  std::uint32_t seq;
  std::uint32_t len;   // whole UDP payload, header included
  std::uint32_t salt;  // ~seq: a second, independent check of seq
};
static_assert(sizeof(TestHeader) == 16);

inline constexpr std::size_t kMinPayload = sizeof(TestHeader);

// The largest UDP payload whose IPv4 packet fits the MTU (1472 for MTU 1500).
constexpr std::size_t max_payload_for_mtu(std::size_t mtu) {
  return mtu - kIpv4HeaderBytes - kUdpHeaderBytes;
}

// Payload size of datagram `seq`: every 8th is the largest, every 8th (offset
// 1) the smallest, the rest spread over the whole range by a multiplicative
// hash so that sizes do not repeat in a short cycle.
constexpr std::size_t payload_size(std::uint32_t seq, std::size_t max_payload) {
  if (seq % 8 == 0) return max_payload;
  if (seq % 8 == 1) return kMinPayload;
  const std::uint32_t h = seq * 2654435761u;
  return kMinPayload + (h >> 8) % (max_payload - kMinPayload + 1);
}

constexpr std::byte pattern_byte(std::uint32_t seq, std::size_t i) {
  const std::uint32_t v =
      seq * 167u + static_cast<std::uint32_t>(i) * 31u + static_cast<std::uint32_t>(i >> 8) * 7u;
  return static_cast<std::byte>(v ^ (v >> 8));
}

inline std::uint16_t load_be16(const std::byte* p) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                    std::to_integer<unsigned>(p[1]));
}
inline std::uint32_t load_be32(const std::byte* p) {
  return (std::uint32_t{load_be16(p)} << 16) | load_be16(p + 2);
}
inline void store_be16(std::byte* p, std::uint16_t v) {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
inline void store_be32(std::byte* p, std::uint32_t v) {
  store_be16(p, static_cast<std::uint16_t>(v >> 16));
  store_be16(p + 2, static_cast<std::uint16_t>(v));
}

// Fills a payload buffer of payload_size(seq, ...) bytes.
inline void fill_payload(std::uint32_t seq, std::span<std::byte> payload) {
  store_be32(payload.data() + 0, kTestMagic);
  store_be32(payload.data() + 4, seq);
  store_be32(payload.data() + 8, static_cast<std::uint32_t>(payload.size()));
  store_be32(payload.data() + 12, ~seq);
  for (std::size_t i = kMinPayload; i < payload.size(); ++i) payload[i] = pattern_byte(seq, i);
}

enum class PayloadVerdict { kOk, kShort, kBadMagic, kBadLength, kBadPattern };

// Checks a payload against the pattern; on kOk stores its sequence number.
inline PayloadVerdict check_payload(std::span<const std::byte> payload, std::size_t max_payload,
                                    std::uint32_t* seq_out) {
  if (payload.size() < kMinPayload) return PayloadVerdict::kShort;
  const std::uint32_t seq = load_be32(payload.data() + 4);
  if (load_be32(payload.data()) != kTestMagic || load_be32(payload.data() + 12) != ~seq) {
    return PayloadVerdict::kBadMagic;
  }
  if (load_be32(payload.data() + 8) != payload.size() ||
      payload.size() != payload_size(seq, max_payload)) {
    return PayloadVerdict::kBadLength;
  }
  for (std::size_t i = kMinPayload; i < payload.size(); ++i) {
    if (payload[i] != pattern_byte(seq, i)) return PayloadVerdict::kBadPattern;
  }
  *seq_out = seq;
  return PayloadVerdict::kOk;
}

// One's-complement sum of 16-bit big-endian words (RFC 1071), not folded.
inline std::uint64_t ones_sum(std::span<const std::byte> bytes, std::uint64_t sum = 0) {
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += load_be16(bytes.data() + i);
  if (i < bytes.size()) sum += std::to_integer<unsigned>(bytes[i]) << 8;
  return sum;
}
inline std::uint16_t fold_checksum(std::uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

// Where the parts of a received IPv4/UDP frame are. parse_udp_frame fills it
// and returns false for anything that is not a well-formed, checksum-correct
// IPv4/UDP frame (ARP, IPv6, truncated, corrupted).
struct UdpFrame {
  std::byte* ip = nullptr;
  std::byte* udp = nullptr;
  std::span<std::byte> payload;
  std::uint16_t dst_port = 0;
};

inline std::uint64_t udp_pseudo_sum(const std::byte* ip, std::size_t udp_len) {
  std::uint64_t sum = ones_sum({ip + 12, 8});  // source and destination address
  return sum + kIpProtoUdp + udp_len;
}

inline bool parse_udp_frame(std::span<std::byte> frame, UdpFrame* out) {
  if (frame.size() < kFrameOverhead) return false;
  if (load_be16(frame.data() + 12) != kEtherTypeIpv4) return false;
  std::byte* ip = frame.data() + kEthHeaderBytes;
  const std::size_t ihl = (std::to_integer<unsigned>(ip[0]) & 0xf) * 4u;
  const std::size_t ip_len = load_be16(ip + 2);
  if ((std::to_integer<unsigned>(ip[0]) >> 4) != 4 || ihl < kIpv4HeaderBytes ||
      ip_len < ihl + kUdpHeaderBytes || kEthHeaderBytes + ip_len > frame.size() ||
      std::to_integer<unsigned>(ip[9]) != kIpProtoUdp || fold_checksum(ones_sum({ip, ihl})) != 0) {
    return false;
  }
  std::byte* udp = ip + ihl;
  const std::size_t udp_len = load_be16(udp + 4);
  if (udp_len != ip_len - ihl) return false;
  // A zero UDP checksum means "none" in IPv4; the sender's veth sends full ones.
  if (load_be16(udp + 6) != 0 &&
      fold_checksum(ones_sum({udp, udp_len}, udp_pseudo_sum(ip, udp_len))) != 0) {
    return false;
  }
  *out = UdpFrame{.ip = ip,
                  .udp = udp,
                  .payload = {udp + kUdpHeaderBytes, udp_len - kUdpHeaderBytes},
                  .dst_port = load_be16(udp + 2)};
  return true;
}

// Turns a received frame around in place: swaps MAC addresses, IPv4
// addresses and UDP ports, then recomputes both checksums.
inline void reverse_udp_frame(std::span<std::byte> frame, const UdpFrame& f) {
  std::byte tmp[6];
  std::memcpy(tmp, frame.data(), 6);
  std::memmove(frame.data(), frame.data() + 6, 6);
  std::memcpy(frame.data() + 6, tmp, 6);
  std::memcpy(tmp, f.ip + 12, 4);
  std::memmove(f.ip + 12, f.ip + 16, 4);
  std::memcpy(f.ip + 16, tmp, 4);
  std::memcpy(tmp, f.udp, 2);
  std::memmove(f.udp, f.udp + 2, 2);
  std::memcpy(f.udp + 2, tmp, 2);
  const std::size_t ihl = static_cast<std::size_t>(f.udp - f.ip);
  store_be16(f.ip + 10, 0);
  store_be16(f.ip + 10, fold_checksum(ones_sum({f.ip, ihl})));
  const std::size_t udp_len = load_be16(f.udp + 4);
  store_be16(f.udp + 6, 0);
  std::uint16_t csum = fold_checksum(ones_sum({f.udp, udp_len}, udp_pseudo_sum(f.ip, udp_len)));
  store_be16(f.udp + 6, csum == 0 ? 0xffff : csum);  // 0 would mean "no checksum"
}

}  // namespace afxdp
