// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/rxbuf/min_waste_policy.h: MinWasteRxBufPolicy, the least pool memory.
//
// pagefrag's own policy. Without XDP it considers the kernel's layout and, for
// every page order 0..req.max_order, fragments of the kernel's fragment stride
// carved from blocks of that order, and keeps the one whose full pool
// (pool_size(queue_size) blocks) holds the fewest bytes; ties go to the lower
// order, then to the kernel's layout. Because the kernel's layout is always a
// candidate it never holds more memory than KernelRxBufPolicy. With XDP it is
// the kernel's layout (one buffer per page).
//
// Example: MTU 9000, 4 KiB pages, 1024 buffers. The kernel uses one 16 KiB
// block per buffer: 1025 blocks, 16 793 600 bytes. Min-waste carves 7 buffers
// of 9344 bytes from each 64 KiB (order 4) block: 147 blocks, 9 633 792 bytes,
// 42.6 % less.
#pragma once

#include <cstdint>
#include <string_view>

#include "pagefrag/rxbuf/kernel_policy.h"
#include "pagefrag/rxbuf/kind_policies.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"

namespace pagefrag {

template <RxBufPlatform P = LinuxPlatform>
struct MinWasteRxBufPolicy : rxbuf_internal::ValidatingPolicy<MinWasteRxBufPolicy<P>, P> {
  static constexpr std::string_view kName = "min-waste";

  // The layout for req. Precondition: validate_rxbuf_request<P>(req) is ok.
  // constexpr, any thread. configure(req) (from ValidatingPolicy) validates first.
  static constexpr RxBufCfg select(const RxBufRequest& req) noexcept {
    RxBufCfg best = KernelRxBufPolicy<P>::select(req);
    if (req.xdp) return best;
    for (std::uint32_t order = 0; order <= req.max_order; ++order) {
      const RxBufCfg candidate = rxbuf_internal::fragments_at<P>(req, order);
      if (candidate.frag_count != 0 && fewer_bytes(candidate, best, req.queue_size)) {
        best = candidate;
      }
    }
    return best;
  }

 private:
  // Whether a's pool is smaller than b's, or as small at a lower order.
  static constexpr bool fewer_bytes(const RxBufCfg& a, const RxBufCfg& b,
                                    std::uint32_t queue_size) noexcept {
    const std::uint64_t a_bytes = a.queue_bytes(queue_size);
    const std::uint64_t b_bytes = b.queue_bytes(queue_size);
    return a_bytes < b_bytes || (a_bytes == b_bytes && a.order < b.order);
  }
};

static_assert(RxBufPolicy<MinWasteRxBufPolicy<>>);

}  // namespace pagefrag
