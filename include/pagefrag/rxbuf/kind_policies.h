// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/rxbuf/kind_policies.h: one constexpr policy per RX buffer kind.
//
// The kernel's mana_get_rxbuf_cfg (after 730ff06) picks one of three layouts;
// each is a policy type here, usable alone or combined by a selector:
//   StandardRxBufPolicy  fragments: buf = ALIGN(SKB_DATA_ALIGN(mtu + pad),
//                        frag alignment), frag_count = page_size / buf,
//                        order 0, truesize = buf. Only without XDP and for
//                        mtu + pad <= page_size / 2.
//   JumboRxBufPolicy     one buffer per block: alloc_size =
//                        SKB_DATA_ALIGN(mtu + pad), order get_order(alloc_size),
//                        truesize = page_size << order (fix f73896b). Only
//                        without XDP and for mtu + pad > page_size / 2.
//   XdpRxBufPolicy       one buffer per page: headroom XDP_PACKET_HEADROOM,
//                        alloc_size = truesize = page_size. Only with XDP.
// Each has kKind (the kind of its layouts), constexpr accepts(req) (is req in this kind's domain?)
// and layout(req) (precondition: req valid and accepted), usable in constant expressions, plus
// configure(req) which checks both and reports a request outside the domain as InvalidArgument. The
// domains partition the valid requests: exactly one kind accepts each.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "pagefrag/base/bits.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"

namespace pagefrag {
namespace rxbuf_internal {

// One buffer per block: the smallest block (order get_order(alloc_size)) that
// holds alloc_size; the buffer consumes the whole block.
template <RxBufPlatform P>
constexpr RxBufCfg one_per_block(const RxBufRequest& req, RxBufKind kind, std::uint64_t alloc_size,
                                 std::uint32_t headroom) noexcept {
  const unsigned order = get_order(alloc_size, req.page_size);
  return RxBufCfg{.kind = kind,
                  .page_size = static_cast<std::uint32_t>(req.page_size),
                  .datasize = req.mtu + P::kEthHeaderLen,
                  .alloc_size = static_cast<std::uint32_t>(alloc_size),
                  .headroom = headroom,
                  .frag_count = 1,
                  .order = order,
                  .truesize = static_cast<std::uint32_t>(req.page_size << order)};
}

// One buffer of SKB_DATA_ALIGN(mtu + pad) bytes per block, no headroom: the
// kernel's jumbo layout, and the full-page one without XDP.
template <RxBufPlatform P>
constexpr RxBufCfg unfragmented(const RxBufRequest& req, RxBufKind kind) noexcept {
  return one_per_block<P>(req, kind, skb_data_align<P>(std::uint64_t{req.mtu} + rxbuf_pad<P>()), 0);
}

// The fragment stride for req.mtu: ALIGN(SKB_DATA_ALIGN(mtu + pad), frag alignment).
template <RxBufPlatform P>
constexpr std::uint64_t fragment_stride(const RxBufRequest& req) noexcept {
  return align_up(skb_data_align<P>(std::uint64_t{req.mtu} + rxbuf_pad<P>()), P::kFragAlignment);
}

// Fragments of fragment_stride carved from blocks of the given order. When
// only one fits, the buffer is a whole block (kind kJumbo, truesize the
// block); when none fits, frag_count is 0 (no layout at this order).
template <RxBufPlatform P>
constexpr RxBufCfg fragments_at(const RxBufRequest& req, std::uint32_t order) noexcept {
  const std::uint64_t stride = fragment_stride<P>(req);
  const std::uint64_t block = req.page_size << order;
  const auto count = static_cast<std::uint32_t>(block / stride);
  return RxBufCfg{.kind = count > 1 ? RxBufKind::kStandard : RxBufKind::kJumbo,
                  .page_size = static_cast<std::uint32_t>(req.page_size),
                  .datasize = req.mtu + P::kEthHeaderLen,
                  .alloc_size = static_cast<std::uint32_t>(stride),
                  .headroom = 0,
                  .frag_count = count,
                  .order = order,
                  .truesize = static_cast<std::uint32_t>(count > 1 ? stride : block)};
}

// Whether req.mtu is small enough for fragments: mtu + pad <= page_size / 2.
template <RxBufPlatform P>
constexpr bool fits_half_page(const RxBufRequest& req) noexcept {
  return req.mtu <= fragment_mtu_max<P>(req.page_size);
}

// configure() of a single-kind policy K: validate, check K's domain, lay out.
template <class K, RxBufPlatform P>
absl::StatusOr<RxBufCfg> configure_kind(const RxBufRequest& req) {
  if (absl::Status valid = validate_rxbuf_request<P>(req); !valid.ok()) return valid;
  if (!K::accepts(req)) return absl::InvalidArgumentError(K::domain_error(req));
  return K::layout(req);
}

}  // namespace rxbuf_internal

template <RxBufPlatform P = LinuxPlatform>
struct StandardRxBufPolicy {
  static constexpr std::string_view kName = "standard";
  static constexpr std::uint32_t kTailroom = rxbuf_tailroom<P>();  // skb_shared_info trailer
  static constexpr RxBufKind kKind = RxBufKind::kStandard;

  static constexpr bool accepts(const RxBufRequest& req) noexcept {
    return !req.xdp && rxbuf_internal::fits_half_page<P>(req);
  }
  static constexpr RxBufCfg layout(const RxBufRequest& req) noexcept {
    return rxbuf_internal::fragments_at<P>(req, 0);
  }
  // Setup path, any thread.
  static absl::StatusOr<RxBufCfg> configure(const RxBufRequest& req) {
    return rxbuf_internal::configure_kind<StandardRxBufPolicy, P>(req);
  }
  // Why req (valid) is outside this kind's domain. Setup path, any thread.
  static std::string domain_error(const RxBufRequest& req) {
    if (req.xdp) return "xdp true is not supported: the standard layout takes xdp false";
    return fmt::format("mtu {} is out of range: the standard layout takes {}..{} on page_size {}",
                       req.mtu, P::kMinMtu, fragment_mtu_max<P>(req.page_size), req.page_size);
  }
};

template <RxBufPlatform P = LinuxPlatform>
struct JumboRxBufPolicy {
  static constexpr std::string_view kName = "jumbo";
  static constexpr std::uint32_t kTailroom = rxbuf_tailroom<P>();  // skb_shared_info trailer
  static constexpr RxBufKind kKind = RxBufKind::kJumbo;

  static constexpr bool accepts(const RxBufRequest& req) noexcept {
    return !req.xdp && !rxbuf_internal::fits_half_page<P>(req);
  }
  static constexpr RxBufCfg layout(const RxBufRequest& req) noexcept {
    return rxbuf_internal::unfragmented<P>(req, RxBufKind::kJumbo);
  }
  // Setup path, any thread.
  static absl::StatusOr<RxBufCfg> configure(const RxBufRequest& req) {
    return rxbuf_internal::configure_kind<JumboRxBufPolicy, P>(req);
  }
  // Why req (valid) is outside this kind's domain. Setup path, any thread.
  static std::string domain_error(const RxBufRequest& req) {
    if (req.xdp) return "xdp true is not supported: the jumbo layout takes xdp false";
    return fmt::format(
        "mtu {} is out of range: the jumbo layout takes {}..{} on page_size {} (adapter_mtu {})",
        req.mtu, fragment_mtu_max<P>(req.page_size) + 1, req.adapter_mtu - P::kEthHeaderLen,
        req.page_size, req.adapter_mtu);
  }
};

template <RxBufPlatform P = LinuxPlatform>
struct XdpRxBufPolicy {
  static constexpr std::string_view kName = "xdp";
  static constexpr std::uint32_t kTailroom = rxbuf_tailroom<P>();  // skb_shared_info trailer
  static constexpr RxBufKind kKind = RxBufKind::kXdp;

  static constexpr bool accepts(const RxBufRequest& req) noexcept { return req.xdp; }
  static constexpr RxBufCfg layout(const RxBufRequest& req) noexcept {
    return rxbuf_internal::one_per_block<P>(req, RxBufKind::kXdp, req.page_size, P::kXdpHeadroom);
  }
  // Setup path, any thread.
  static absl::StatusOr<RxBufCfg> configure(const RxBufRequest& req) {
    return rxbuf_internal::configure_kind<XdpRxBufPolicy, P>(req);
  }
  // Why req (valid) is outside this kind's domain. Setup path, any thread.
  static std::string domain_error(const RxBufRequest& /*req*/) {
    return "xdp false is not supported: the XDP layout takes xdp true";
  }
};

static_assert(RxBufPolicy<StandardRxBufPolicy<>>);
static_assert(RxBufPolicy<JumboRxBufPolicy<>>);
static_assert(RxBufPolicy<XdpRxBufPolicy<>>);

}  // namespace pagefrag
