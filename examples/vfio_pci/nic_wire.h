// SPDX-License-Identifier: BSD-3-Clause
// examples/vfio_pci/nic_wire.h: the frames the NIC example program and the
// VM test's host peer (tests/vm/nic_peer.cc) agree on, and the ARP/ICMP
// frames of the ping against QEMU's slirp (10.0.2.2). Pure byte building and
// parsing; any thread.
//
// Control frames: EtherType 0x88b5 (IEEE local experimental), payload
// "PFNIC" and one kind byte: 'H' the driver is up (the peer starts sending),
// 'T' the driver unmapped its buffers (the peer offers one more frame).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace nic_wire {

using Mac = std::array<std::uint8_t, 6>;
inline constexpr std::uint16_t kEtherTypeTest = 0x88b5;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr char kMagic[5] = {'P', 'F', 'N', 'I', 'C'};
inline constexpr std::size_t kControlLen = 60;
inline constexpr char kHello = 'H';
inline constexpr char kTeardown = 'T';

inline void put16(std::byte* p, std::uint16_t v) {
  p[0] = std::byte(v >> 8);
  p[1] = std::byte(v & 0xff);
}
inline std::uint16_t get16(const std::byte* p) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                    std::to_integer<unsigned>(p[1]));
}
inline void put_mac(std::byte* p, const Mac& m) { std::memcpy(p, m.data(), 6); }

inline std::vector<std::byte> control_frame(const Mac& src, char kind) {
  std::vector<std::byte> f(kControlLen);
  put_mac(f.data(), Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  put_mac(f.data() + 6, src);
  put16(f.data() + 12, kEtherTypeTest);
  std::memcpy(f.data() + 14, kMagic, sizeof kMagic);
  f[19] = std::byte(kind);
  return f;
}
// The kind byte of a control frame, or 0.
inline char control_kind(std::span<const std::byte> f) {
  if (f.size() < 20 || get16(f.data() + 12) != kEtherTypeTest ||
      std::memcmp(f.data() + 14, kMagic, sizeof kMagic) != 0) {
    return 0;
  }
  return static_cast<char>(f[19]);
}

// RFC 1071 checksum.
inline std::uint16_t inet_checksum(std::span<const std::byte> b) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < b.size(); i += 2) sum += get16(b.data() + i);
  if (b.size() % 2) sum += std::to_integer<std::uint32_t>(b.back()) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

using Ip = std::array<std::uint8_t, 4>;

inline std::vector<std::byte> arp_request(const Mac& src, const Ip& sip, const Ip& tip) {
  std::vector<std::byte> f(60);
  put_mac(f.data(), Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  put_mac(f.data() + 6, src);
  put16(f.data() + 12, kEtherTypeArp);
  std::byte* a = f.data() + 14;
  put16(a, 1);           // Ethernet
  put16(a + 2, 0x0800);  // IPv4
  a[4] = std::byte{6};
  a[5] = std::byte{4};
  put16(a + 6, 1);  // request
  put_mac(a + 8, src);
  std::memcpy(a + 14, sip.data(), 4);
  std::memcpy(a + 24, tip.data(), 4);
  return f;
}

// The sender MAC of an ARP reply from ip, if f is one.
inline std::optional<Mac> arp_reply_from(std::span<const std::byte> f, const Ip& ip) {
  if (f.size() < 42 || get16(f.data() + 12) != kEtherTypeArp) return std::nullopt;
  const std::byte* a = f.data() + 14;
  if (get16(a + 6) != 2 || std::memcmp(a + 14, ip.data(), 4) != 0) return std::nullopt;
  Mac m;
  std::memcpy(m.data(), a + 8, 6);
  return m;
}

inline constexpr std::size_t kPingPayload = 56;

inline std::vector<std::byte> icmp_echo(const Mac& src, const Mac& dst, const Ip& sip,
                                        const Ip& dip, std::uint16_t id, std::uint16_t seq) {
  std::vector<std::byte> f(14 + 20 + 8 + kPingPayload);
  put_mac(f.data(), dst);
  put_mac(f.data() + 6, src);
  put16(f.data() + 12, kEtherTypeIpv4);
  std::byte* ip = f.data() + 14;
  ip[0] = std::byte{0x45};
  put16(ip + 2, static_cast<std::uint16_t>(20 + 8 + kPingPayload));
  put16(ip + 4, seq);
  ip[8] = std::byte{64};
  ip[9] = std::byte{1};  // ICMP
  std::memcpy(ip + 12, sip.data(), 4);
  std::memcpy(ip + 16, dip.data(), 4);
  put16(ip + 10, inet_checksum({ip, 20}));
  std::byte* icmp = ip + 20;
  icmp[0] = std::byte{8};  // echo request
  put16(icmp + 4, id);
  put16(icmp + 6, seq);
  for (std::size_t i = 0; i < kPingPayload; ++i) icmp[8 + i] = std::byte(0x20 + i);
  put16(icmp + 2, inet_checksum({icmp, 8 + kPingPayload}));
  return f;
}

// Whether f is the echo reply from dip to `request` (same id, seq and
// payload, valid checksums).
inline bool is_echo_reply(std::span<const std::byte> f, std::span<const std::byte> request) {
  if (f.size() < request.size() || get16(f.data() + 12) != kEtherTypeIpv4) return false;
  const std::byte* ip = f.data() + 14;
  const std::byte* req_ip = request.data() + 14;
  if (ip[9] != std::byte{1} || inet_checksum({ip, 20}) != 0) return false;
  if (std::memcmp(ip + 12, req_ip + 16, 4) != 0) return false;  // from the pinged host
  const std::byte* icmp = ip + 20;
  if (icmp[0] != std::byte{0} || inet_checksum({icmp, 8 + kPingPayload}) != 0) return false;
  return std::memcmp(icmp + 4, req_ip + 24, 4) == 0 &&  // id, seq
         std::memcmp(icmp + 8, req_ip + 28, kPingPayload) == 0;
}

}  // namespace nic_wire
