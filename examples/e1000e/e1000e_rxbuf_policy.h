// SPDX-License-Identifier: BSD-3-Clause
// examples/e1000e/e1000e_rxbuf_policy.h: E1000eRxBufPolicy, RX buffers for an
// 82574L as QEMU emulates it.
//
// The 82574's legacy receive path takes one buffer size for the whole ring,
// chosen in RCTL.BSIZE/BSEX from 256, 512, 1024, 2048, 4096, 8192 and 16384
// bytes (QEMU honours only these, e1000x_rxbufsize; not the 82574's flexible
// size field). The device writes the frame at the buffer's first byte, no
// header before it, and may write BSIZE bytes. So the buffer is the smallest
// of those sizes holding the largest frame and its FCS (4 bytes, kept as
// tailroom should CRC stripping be off):
//
//   headroom = 0, datasize = mtu + 14
//   alloc_size = max(256, bit_ceil(mtu + 14 + 4)),  <= 16384
//   frag_count = page_size / alloc_size, order 0
//
// At MTU 1500 that is 2048 bytes, 32 per 64 KiB page.
//
// Requests: page_size, adapter_mtu and max_order by pagefrag's shared rules;
// mtu 68 .. min(16384 - 18, page_size - 18, adapter_mtu - 14); queue_size a
// power of two in 64..4096 (RDLEN a multiple of 128 bytes). Stateless.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <string_view>

#include "examples/e1000e/e1000e_defs.h"
#include "pagefrag/base/bits.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"

namespace e1000e {

struct E1000ePlatform {
  static constexpr std::uint32_t kMinMtu = 68;
  static constexpr std::uint32_t kEthHeaderLen = 14;
  static constexpr std::uint32_t kFcsLen = 4;
  static constexpr std::uint32_t kMinBuffer = 256;
  static constexpr std::uint32_t kMaxBuffer = 16384;
  static constexpr std::uint32_t kMinQueue = 64;
  static constexpr std::uint32_t kMaxQueue = 4096;
};
static_assert(pagefrag::RxBufFrameLimits<E1000ePlatform>);

struct E1000eRxBufPolicy : pagefrag::DeviceRxBufPolicy<E1000eRxBufPolicy, E1000ePlatform> {
  using P = E1000ePlatform;
  static constexpr pagefrag::RxBufRingLimits kRing{P::kMinQueue, P::kMaxQueue,
                                                   "(RX descriptor ring)"};
  static constexpr std::string_view kName = "e1000e";
  static constexpr std::uint32_t kTailroom = P::kFcsLen;

  static constexpr std::uint32_t max_mtu(const pagefrag::RxBufRequest& req) noexcept {
    const std::uint64_t pad = P::kEthHeaderLen + P::kFcsLen;
    const std::uint64_t buffer = std::min<std::uint64_t>(P::kMaxBuffer, req.page_size) - pad;
    const std::uint64_t adapter = req.adapter_mtu - std::min(req.adapter_mtu, P::kEthHeaderLen);
    return static_cast<std::uint32_t>(std::min(buffer, adapter));
  }

  static constexpr pagefrag::RxBufCfg layout(const pagefrag::RxBufRequest& req) noexcept {
    const std::uint32_t datasize = req.mtu + P::kEthHeaderLen;
    const std::uint32_t size = std::max(P::kMinBuffer, std::bit_ceil(datasize + P::kFcsLen));
    const auto count = static_cast<std::uint32_t>(req.page_size / size);
    return pagefrag::RxBufCfg{
        .kind = count > 1 ? pagefrag::RxBufKind::kStandard : pagefrag::RxBufKind::kFullPage,
        .page_size = static_cast<std::uint32_t>(req.page_size),
        .datasize = datasize,
        .alloc_size = size,
        .headroom = 0,
        .frag_count = count,
        .order = 0,
        .truesize = count > 1 ? size : static_cast<std::uint32_t>(req.page_size)};
  }

  // Why max_mtu(req) is the bound, for the message.
  static std::string mtu_bound(const pagefrag::RxBufRequest& req) {
    return fmt::format(
        "(frame + FCS must fit one power-of-two buffer of at most {} bytes and a "
        "{}-byte page, and mtu + ETH_HLEN adapter_mtu {})",
        P::kMaxBuffer, req.page_size, req.adapter_mtu);
  }

  // RCTL's BSIZE and BSEX bits for a layout's buffer size.
  static constexpr std::uint32_t rctl_buffer_bits(const pagefrag::RxBufCfg& cfg) noexcept {
    switch (cfg.alloc_size) {
      case 256:
        return 3u << 16;
      case 512:
        return 2u << 16;
      case 1024:
        return 1u << 16;
      case 2048:
        return 0;
      case 4096:
        return kRctlBsex | 3u << 16;
      case 8192:
        return kRctlBsex | 2u << 16;
      default:
        return kRctlBsex | 1u << 16;  // 16384
    }
  }
};

static_assert(pagefrag::RxBufPolicy<E1000eRxBufPolicy>);
static_assert(E1000eRxBufPolicy::layout({.page_size = 65536, .mtu = 1500}).alloc_size == 2048);
static_assert(E1000eRxBufPolicy::layout({.page_size = 65536, .mtu = 1500}).frag_count == 32);

}  // namespace e1000e
