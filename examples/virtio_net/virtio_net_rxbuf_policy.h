// SPDX-License-Identifier: BSD-3-Clause
// examples/virtio_net/virtio_net_rxbuf_policy.h: VirtioNetRxBufPolicy, the
// layout of one mergeable RX buffer of a virtio-net device.
//
// A virtio-net device takes RX buffers of any length and, with
// VIRTIO_NET_F_MRG_RXBUF, spreads a frame larger than one buffer over
// several (num_buffers in the header of the first). So the buffer is sized
// for a buffer MTU, not the link's: the driver asks for min(link MTU, 1500)
// and chains buffers for anything larger, as Linux's virtio_net does with
// page fragments. The device writes the 12-byte virtio_net_hdr before the
// frame in the first buffer, so the headroom is that header; the tailroom is
// the skb_shared_info trailer a kernel driver would keep (320 bytes on
// x86_64), which makes the buffers MANA-sized: at MTU 1500, 12 + 1514 + 320
// rounds to 1856 bytes, 35 per 64 KiB page.
//
//   headroom   = 12                     (virtio_net_hdr, VERSION_1)
//   datasize   = mtu + 14               (the largest frame one buffer holds)
//   alloc_size = align_up(headroom + datasize + 320, 64)
//   frag_count = page_size / alloc_size, order 0
//
// A buffer posted to the device is headroom + datasize bytes long (the
// device may write no more); the rest of the stride is the trailer.
//
// Requests: page_size, adapter_mtu and max_order by pagefrag's shared rules;
// mtu 68 .. min(adapter_mtu - 14, page_size - 12 - 14 - 320 rounded down to
// the alignment); queue_size a power of two in 64..32768 (virtio's split
// queue limit). Stateless: configure() from any thread.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "examples/virtio_net/virtio_defs.h"
#include "pagefrag/base/bits.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"

namespace virtio_net {

struct VirtioNetPlatform {
  static constexpr std::uint32_t kMinMtu = 68;        // ETH_MIN_MTU
  static constexpr std::uint32_t kEthHeaderLen = 14;  // ETH_HLEN
  static constexpr std::uint32_t kHeadroom = kNetHdrLen;
  static constexpr std::uint32_t kTailroom = 320;  // skb_shared_info, x86_64
  static constexpr std::uint32_t kAlignment = 64;  // cache line
  static constexpr std::uint32_t kMinQueue = 64;
  static constexpr std::uint32_t kMaxQueue = 32768;
  // The buffer MTU the driver asks for when the link MTU is larger.
  static constexpr std::uint32_t kMergeableMtu = 1500;
};
static_assert(pagefrag::RxBufFrameLimits<VirtioNetPlatform>);

struct VirtioNetRxBufPolicy : pagefrag::DeviceRxBufPolicy<VirtioNetRxBufPolicy, VirtioNetPlatform> {
  using P = VirtioNetPlatform;
  static constexpr pagefrag::RxBufRingLimits kRing{P::kMinQueue, P::kMaxQueue, "(split virtqueue)"};
  static constexpr std::string_view kName = "virtio-net";
  static constexpr std::uint32_t kTailroom = P::kTailroom;

  static constexpr std::uint32_t max_mtu(const pagefrag::RxBufRequest& req) noexcept {
    const std::uint64_t page_room = (req.page_size - P::kTailroom) / P::kAlignment * P::kAlignment -
                                    P::kHeadroom - P::kEthHeaderLen;
    const std::uint64_t adapter = req.adapter_mtu - std::min(req.adapter_mtu, P::kEthHeaderLen);
    return static_cast<std::uint32_t>(std::min(page_room, adapter));
  }

  // The layout of a valid request.
  static constexpr pagefrag::RxBufCfg layout(const pagefrag::RxBufRequest& req) noexcept {
    const std::uint32_t datasize = req.mtu + P::kEthHeaderLen;
    const auto stride = static_cast<std::uint32_t>(
        pagefrag::align_up(std::uint64_t{P::kHeadroom} + datasize + P::kTailroom, P::kAlignment));
    const auto count = static_cast<std::uint32_t>(req.page_size / stride);
    return pagefrag::RxBufCfg{
        .kind = count > 1 ? pagefrag::RxBufKind::kStandard : pagefrag::RxBufKind::kFullPage,
        .page_size = static_cast<std::uint32_t>(req.page_size),
        .datasize = datasize,
        .alloc_size = stride,
        .headroom = P::kHeadroom,
        .frag_count = count,
        .order = 0,
        .truesize = count > 1 ? stride : static_cast<std::uint32_t>(req.page_size)};
  }

  // Why max_mtu(req) is the bound, for the message.
  static std::string mtu_bound(const pagefrag::RxBufRequest& req) {
    return fmt::format(
        "(header {} + frame + tailroom {} must fit a {}-byte page, and mtu + "
        "ETH_HLEN adapter_mtu {})",
        P::kHeadroom, P::kTailroom, req.page_size, req.adapter_mtu);
  }

  // Bytes of one posted descriptor: the header and the buffer's frame.
  static constexpr std::uint32_t post_len(const pagefrag::RxBufCfg& cfg) noexcept {
    return cfg.headroom + cfg.datasize;
  }
};

static_assert(pagefrag::RxBufPolicy<VirtioNetRxBufPolicy>);
static_assert(VirtioNetRxBufPolicy::layout({.page_size = 65536, .mtu = 1500}).alloc_size == 1856);
static_assert(VirtioNetRxBufPolicy::layout({.page_size = 65536, .mtu = 1500}).frag_count == 35);

}  // namespace virtio_net
