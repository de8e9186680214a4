// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/afxdp/afxdp_rxbuf_policy.h: AfXdpRxBufPolicy, RX buffers for an AF_XDP UMEM.
//
// An RX-buffer policy (pagefrag/rxbuf/rxbuf_policy.h) for AF_XDP sockets in
// unaligned-chunk mode, where a fill-ring entry may be any byte offset of the
// UMEM. The kernel writes a frame at fill address + 256 (XDP_PACKET_HEADROOM)
// + the UMEM headroom, and accepts any frame up to chunk_size - 256 -
// headroom bytes: it checks the registered chunk_size, never the stride the
// driver carved. So this policy, not the kernel, guarantees that
//     headroom + datasize + tailroom <= alloc_size   (the fragment stride)
// where headroom = 256 + UMEM headroom, datasize = mtu + ETH_HLEN (the largest
// frame the link delivers) and tailroom a slack that keeps a VLAN tag and a
// guard band inside the fragment. The driver must also refuse an interface
// whose MTU exceeds the request's (examples/afxdp/afxdp_driver.h does).
//
// Buffers are fragments of alloc_size carved from order-0 pool pages of
// page_size bytes (frag_count = page_size / alloc_size); AF_XDP frames never
// exceed one host page, so no higher order is ever needed.
//
// Copy mode (XDP_COPY, what examples/afxdp binds) takes any such address.
// Zero-copy mode also rejects a fill address whose chunk crosses a host page
// boundary between pages that are not DMA-contiguous (the kernel's
// xp_check_unaligned): there back the UMEM with hugepages (contiguous), or
// fragments that straddle a 4 KiB page are dropped from the fill ring.
//
// The kernel's limits on chunk_size (2048 .. host PAGE_SIZE) bound the MTU:
// chunk_size(cfg) is the smallest legal chunk that still accepts every frame
// of datasize bytes.
//
// Requests are checked with pagefrag's shared rules for page_size,
// adapter_mtu and max_order (rxbuf_policy.h); the mtu range, xdp and the ring
// size (queue_size) follow AF_XDP's own rules.
//
// Stateless: configure() may be called from any thread.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <string_view>

#include "pagefrag/base/bits.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"

namespace pagefrag::afxdp {

// The numbers an AF_XDP layout is made of (Linux 6.x, 4 KiB host pages).
struct AfXdpPlatform {
  static constexpr std::uint32_t kXdpPacketHeadroom = 256;  // XDP_PACKET_HEADROOM
  static constexpr std::uint32_t kUmemHeadroom = 0;         // xdp_umem_reg.headroom
  static constexpr std::uint32_t kEthHeaderLen = 14;        // ETH_HLEN
  static constexpr std::uint32_t kTailroom = 64;            // VLAN tag + guard band
  static constexpr std::uint32_t kFragAlignment = 64;       // even addresses, cache lines
  static constexpr std::uint32_t kMinChunkSize = 2048;      // XDP_UMEM_MIN_CHUNK_SIZE
  static constexpr std::uint32_t kMaxChunkSize = 4096;      // the host's PAGE_SIZE
  static constexpr std::uint32_t kMinMtu = 68;              // ETH_MIN_MTU
  static constexpr std::uint32_t kMinRingSize = 64;         // fill/RX ring entries
  static constexpr std::uint32_t kMaxRingSize = 16384;
};

static_assert(pagefrag::RxBufFrameLimits<AfXdpPlatform>);

template <pagefrag::RxBufFrameLimits P = AfXdpPlatform>
struct AfXdpRxBufPolicy : pagefrag::DeviceRxBufPolicy<AfXdpRxBufPolicy<P>, P> {
  static constexpr std::string_view kName = "afxdp";
  static constexpr pagefrag::RxBufRingLimits kRing{P::kMinRingSize, P::kMaxRingSize,
                                                   "(AF_XDP rings)"};
  static constexpr std::uint32_t kHeadroom = P::kXdpPacketHeadroom + P::kUmemHeadroom;
  static constexpr std::uint32_t kTailroom = P::kTailroom;  // kept free after every frame

  // The largest MTU whose frame the kernel still accepts in the biggest chunk.
  static constexpr std::uint32_t kMaxMtu = P::kMaxChunkSize - kHeadroom - P::kEthHeaderLen;

  // The largest MTU for req: its frame after the headroom fits the largest
  // chunk, its stride (with tailroom) fits a page, and it fits the adapter.
  static constexpr std::uint32_t max_mtu(const pagefrag::RxBufRequest& req) noexcept {
    const std::uint64_t page_room = req.page_size - kHeadroom - P::kEthHeaderLen - P::kTailroom;
    const std::uint64_t adapter = req.adapter_mtu - std::min(req.adapter_mtu, P::kEthHeaderLen);
    return static_cast<std::uint32_t>(std::min<std::uint64_t>({kMaxMtu, page_room, adapter}));
  }

  // The layout for a valid request. Precondition: validate(req) is ok.
  static constexpr pagefrag::RxBufCfg layout(const pagefrag::RxBufRequest& req) noexcept {
    const std::uint32_t datasize = req.mtu + P::kEthHeaderLen;
    const auto stride = static_cast<std::uint32_t>(
        pagefrag::align_up(std::uint64_t{kHeadroom} + datasize + P::kTailroom, P::kFragAlignment));
    const auto count = static_cast<std::uint32_t>(req.page_size / stride);
    return pagefrag::RxBufCfg{
        .kind = count > 1 ? pagefrag::RxBufKind::kStandard : pagefrag::RxBufKind::kXdp,
        .page_size = static_cast<std::uint32_t>(req.page_size),
        .datasize = datasize,
        .alloc_size = stride,
        .headroom = kHeadroom,
        .frag_count = count,
        .order = 0,
        .truesize = count > 1 ? stride : static_cast<std::uint32_t>(req.page_size)};
  }

  // Why max_mtu(req) is the bound, for the message.
  static std::string mtu_bound(const pagefrag::RxBufRequest& req) {
    return fmt::format(
        "(headroom {} + frame must fit a {}-byte UMEM chunk, headroom + frame + tailroom {} a "
        "{}-byte page, and mtu + ETH_HLEN adapter_mtu {})",
        kHeadroom, P::kMaxChunkSize, P::kTailroom, req.page_size, req.adapter_mtu);
  }

  // An AF_XDP socket always receives through XDP. Setup path, any thread.
  static absl::Status validate_device(const pagefrag::RxBufRequest& req) {
    if (req.xdp) return absl::OkStatus();
    return absl::InvalidArgumentError(
        "xdp false is not supported: expected xdp true (an AF_XDP socket always receives "
        "through XDP, with XDP_PACKET_HEADROOM before the frame)");
  }

  // The chunk_size to register the UMEM with: the smallest legal chunk that
  // accepts a frame of cfg.datasize bytes after the headroom.
  static constexpr std::uint32_t chunk_size(const pagefrag::RxBufCfg& cfg) noexcept {
    return std::max<std::uint32_t>(
        P::kMinChunkSize, static_cast<std::uint32_t>(
                              pagefrag::align_up(cfg.headroom + cfg.datasize, P::kFragAlignment)));
  }

  // The largest frame the stride holds after the headroom: a received
  // descriptor longer than this overran its fragment.
  static constexpr std::uint32_t frame_room(const pagefrag::RxBufCfg& cfg) noexcept {
    return cfg.alloc_size - cfg.headroom;
  }

  // UMEM bytes an aligned-mode driver would need for one frame: the smallest
  // power-of-two chunk (aligned mode allows no other) holding headroom + frame.
  static constexpr std::uint32_t aligned_chunk_size(const pagefrag::RxBufCfg& cfg) noexcept {
    return std::max<std::uint32_t>(
        P::kMinChunkSize,
        static_cast<std::uint32_t>(std::bit_ceil(std::uint64_t{cfg.headroom} + cfg.datasize)));
  }
};

static_assert(pagefrag::RxBufPolicy<AfXdpRxBufPolicy<>>);

// MTU 1500 on 64 KiB pages: 256 + 1514 + 64 rounds to a 1856-byte stride, 35
// buffers a page; the kernel would accept frames up to 2048 - 256 = 1792.
static_assert(
    AfXdpRxBufPolicy<>::layout({.page_size = 65536, .mtu = 1500, .xdp = true}).alloc_size == 1856);
static_assert(
    AfXdpRxBufPolicy<>::layout({.page_size = 65536, .mtu = 1500, .xdp = true}).frag_count == 35);
static_assert(AfXdpRxBufPolicy<>::chunk_size(AfXdpRxBufPolicy<>::layout(
                  {.page_size = 65536, .mtu = 1500, .xdp = true})) == 2048);

}  // namespace pagefrag::afxdp
