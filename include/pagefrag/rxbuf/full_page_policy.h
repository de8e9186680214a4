// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/rxbuf/full_page_policy.h: FullPageRxBufPolicy, never fragments.
//
// Models the pending upstream `full-page-rx` switch, added because one ARM64
// platform with a PCIe erratum lost 15-20 % throughput with fragments: every
// buffer gets a block of its own. With XDP the layout is the kernel's XDP one
// (kind kXdp); otherwise alloc_size = SKB_DATA_ALIGN(mtu + pad) in a block of
// order get_order(alloc_size), kind kFullPage, truesize the whole block.
#pragma once

#include <string_view>

#include "pagefrag/rxbuf/kind_policies.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"

namespace pagefrag {

template <RxBufPlatform P = LinuxPlatform>
struct FullPageRxBufPolicy : rxbuf_internal::ValidatingPolicy<FullPageRxBufPolicy<P>, P> {
  static constexpr std::string_view kName = "full-page";

  // The layout for req. Precondition: validate_rxbuf_request<P>(req) is ok.
  // constexpr, any thread. configure(req) (from ValidatingPolicy) validates first.
  static constexpr RxBufCfg select(const RxBufRequest& req) noexcept {
    if (XdpRxBufPolicy<P>::accepts(req)) return XdpRxBufPolicy<P>::layout(req);
    return rxbuf_internal::unfragmented<P>(req, RxBufKind::kFullPage);
  }
};

static_assert(RxBufPolicy<FullPageRxBufPolicy<>>);

}  // namespace pagefrag
