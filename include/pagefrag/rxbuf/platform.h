// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/rxbuf/platform.h: the platform constants RX buffer layouts are made of.
//
// An RX buffer's size follows from a handful of numbers that belong to the
// platform, not to the policy: the cache line that SKB_DATA_ALIGN rounds to,
// the size of the skb_shared_info trailer the stack expects after the packet,
// the Ethernet header, the XDP headroom and the NIC's fragment alignment. The
// policies take them as a template parameter modelling RxBufPlatform, so a
// platform whose numbers differ (or a test) supplies its own struct instead
// of editing constants. LinuxPlatform carries the values the kernel's sizing
// rules use on x86_64 and arm64 (docs/rxbuf-policies.md). Limits of one NIC
// (ring sizes, queue counts, the adapter's MTU) are not platform constants:
// they live with that NIC's driver (examples/mana/limits.h for MANA).
//
// The page size is deliberately NOT a platform constant: it is a field of
// every request (RxBufRequest::page_size), so one binary plans and builds
// layouts for 4 KiB, 16 KiB and 64 KiB pages whatever the host uses.
#pragma once

#include <concepts>
#include <cstdint>

#include "pagefrag/base/bits.h"

namespace pagefrag {

// The frame limits every platform's request rules share, static constexpr:
//   kMinMtu        smallest MTU the port accepts (ETH_MIN_MTU).
//   kEthHeaderLen  ETH_HLEN: the device writes mtu + this many bytes.
// RxBufPlatform refines it; a platform that is not an RxBufPlatform (the
// AF_XDP example's) models it to reuse the shared request checks
// (validate_rxbuf_adapter_mtu in rxbuf_policy.h).
template <class P>
concept RxBufFrameLimits = requires {
  { P::kMinMtu } -> std::convertible_to<std::uint32_t>;
  { P::kEthHeaderLen } -> std::convertible_to<std::uint32_t>;
};

// Constants an RX buffer platform provides, all static constexpr: the
// RxBufFrameLimits (kMinMtu, kEthHeaderLen) and
//   kCacheLineSize        SMP_CACHE_BYTES: SKB_DATA_ALIGN rounds to it (power of two).
//   kSkbSharedInfoSize    sizeof(struct skb_shared_info), kept free after the data.
//   kXdpHeadroom          XDP_PACKET_HEADROOM reserved before the packet with XDP.
//   kFragAlignment        alignment of every fragment within a page (power of two).
template <class P>
concept RxBufPlatform = RxBufFrameLimits<P> && requires {
  { P::kCacheLineSize } -> std::convertible_to<std::uint32_t>;
  { P::kSkbSharedInfoSize } -> std::convertible_to<std::uint32_t>;
  { P::kXdpHeadroom } -> std::convertible_to<std::uint32_t>;
  { P::kFragAlignment } -> std::convertible_to<std::uint32_t>;
} &&(is_power_of_two(P::kCacheLineSize)) && (is_power_of_two(P::kFragAlignment));

// The numbers of Linux on x86_64 and arm64 (they agree): SMP_CACHE_BYTES,
// sizeof(struct skb_shared_info), ETH_HLEN, XDP_PACKET_HEADROOM, ETH_MIN_MTU,
// and the 64-byte RX fragment alignment MANA uses (MANA_RX_FRAG_ALIGNMENT,
// one cache line).
struct LinuxPlatform {
  static constexpr std::uint32_t kCacheLineSize = 64;
  static constexpr std::uint32_t kSkbSharedInfoSize = 320;
  static constexpr std::uint32_t kEthHeaderLen = 14;
  static constexpr std::uint32_t kXdpHeadroom = 256;
  static constexpr std::uint32_t kFragAlignment = 64;
  static constexpr std::uint32_t kMinMtu = 68;
};

static_assert(RxBufPlatform<LinuxPlatform>);

// The RX ring sizes an RxBufRequest may plan for: at least one buffer, at
// most 64 Ki (a bound that keeps the pool arithmetic far from overflow). A
// driver checks its own ring limits on top (MANA: a power of two in 128..8192).
inline constexpr std::uint32_t kMinRxBufQueueSize = 1;
inline constexpr std::uint32_t kMaxRxBufQueueSize = 1u << 16;

// SKB_DATA_ALIGN: x rounded up to the platform's cache line.
template <RxBufPlatform P>
constexpr std::uint64_t skb_data_align(std::uint64_t x) noexcept {
  return align_up(x, P::kCacheLineSize);
}

// Bytes every buffer keeps free after the frame: the skb_shared_info trailer
// rounded to the cache line (320 on LinuxPlatform). The policies' kTailroom.
template <RxBufPlatform P>
constexpr std::uint32_t rxbuf_tailroom() noexcept {
  return static_cast<std::uint32_t>(skb_data_align<P>(P::kSkbSharedInfoSize));
}

// Bytes a buffer needs beyond the MTU: the tailroom plus the Ethernet header
// (MANA_RXBUF_PAD, 334 on LinuxPlatform).
template <RxBufPlatform P>
constexpr std::uint32_t rxbuf_pad() noexcept {
  return rxbuf_tailroom<P>() + P::kEthHeaderLen;
}

// The largest MTU that still gets fragments (several buffers per page):
// mtu + pad must not exceed half a page. page_size / 2 >= pad for every page
// size the policies accept (>= 4096), so this never underflows there.
template <RxBufPlatform P>
constexpr std::uint64_t fragment_mtu_max(std::uint64_t page_size) noexcept {
  return page_size / 2 - rxbuf_pad<P>();
}

// The largest MTU with XDP: headroom, packet and trailer in one page
// (MANA_XDP_MTU_MAX, 3506 on 4 KiB pages).
template <RxBufPlatform P>
constexpr std::uint64_t xdp_mtu_max(std::uint64_t page_size) noexcept {
  return page_size - rxbuf_pad<P>() - P::kXdpHeadroom;
}

static_assert(rxbuf_tailroom<LinuxPlatform>() == 320);
static_assert(rxbuf_pad<LinuxPlatform>() == 334);
static_assert(fragment_mtu_max<LinuxPlatform>(4096) == 1714);
static_assert(xdp_mtu_max<LinuxPlatform>(4096) == 3506);

}  // namespace pagefrag
