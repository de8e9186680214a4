// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/rxbuf/kernel_policy.h: KernelRxBufPolicy, the MANA driver's own choice.
//
// Selects exactly as mana_get_rxbuf_cfg does after upstream 730ff06: with XDP
// attached one buffer per page with XDP headroom; else, when mtu + pad exceeds
// half a page, one buffer per block of order get_order(alloc_size) (jumbo);
// otherwise fragments of ALIGN(SKB_DATA_ALIGN(mtu + pad), 64) from order-0
// pages. truesize follows fix f73896b: the whole block for one-per-page
// layouts. This is the policy the others are measured against.
#pragma once

#include <string_view>

#include "pagefrag/rxbuf/kind_policies.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"

namespace pagefrag {

template <RxBufPlatform P = LinuxPlatform>
struct KernelRxBufPolicy : rxbuf_internal::ValidatingPolicy<KernelRxBufPolicy<P>, P> {
  static constexpr std::string_view kName = "kernel";

  // The layout for req. Precondition: validate_rxbuf_request<P>(req) is ok.
  // constexpr, any thread. configure(req) (from ValidatingPolicy) validates first.
  static constexpr RxBufCfg select(const RxBufRequest& req) noexcept {
    if (XdpRxBufPolicy<P>::accepts(req)) return XdpRxBufPolicy<P>::layout(req);
    if (JumboRxBufPolicy<P>::accepts(req)) return JumboRxBufPolicy<P>::layout(req);
    return StandardRxBufPolicy<P>::layout(req);
  }
};

static_assert(RxBufPolicy<KernelRxBufPolicy<>>);

// The seed's worked example: MTU 1500 on 64 KiB pages, 35 buffers of 1856 bytes, pool 30.
static_assert(KernelRxBufPolicy<>::select({.page_size = 65536, .mtu = 1500}).frag_count == 35);
static_assert(KernelRxBufPolicy<>::select({.page_size = 65536, .mtu = 1500}).alloc_size == 1856);
static_assert(KernelRxBufPolicy<>::select({.page_size = 65536, .mtu = 1500}).pool_size(1024) == 30);

}  // namespace pagefrag
