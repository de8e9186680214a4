// SPDX-License-Identifier: BSD-3-Clause
// tests/rxbuf/request_gen.h: rapidcheck generators of RX buffer requests.
//
// gen_request_of_kind(kind) draws valid requests from one of the kernel's
// three domains (standard, jumbo, xdp), with the domain rules written out
// here, not taken from the library; gen_valid_request() draws from all three,
// so each is well covered. Page sizes range over 4 KiB .. 1 MiB, weighted
// towards 4, 16 and 64 KiB.
#pragma once

#include <rapidcheck.h>

#include <algorithm>
#include <cstdint>

#include "pagefrag/rxbuf/rxbuf_cfg.h"

namespace pagefrag::test {

inline rc::Gen<std::uint64_t> gen_page_size(int min_shift, int max_shift) {
  return rc::gen::map(
      rc::gen::oneOf(rc::gen::element(12, 14, 16), rc::gen::inRange(min_shift, max_shift + 1)),
      [=](int shift) { return std::uint64_t{1} << std::clamp(shift, min_shift, max_shift); });
}

inline rc::Gen<std::uint32_t> gen_adapter_mtu(std::uint32_t min) {
  return rc::gen::oneOf(rc::gen::map(rc::gen::element<std::uint32_t>(1514, 9216),
                                     [=](std::uint32_t a) { return std::max(a, min); }),
                        rc::gen::inRange<std::uint32_t>(min, 65549 + 1));
}

inline std::uint32_t draw_mtu(std::uint64_t lo, std::uint64_t hi) {
  return *rc::gen::inRange<std::uint32_t>(static_cast<std::uint32_t>(lo),
                                          static_cast<std::uint32_t>(hi) + 1);
}

// Valid requests the kernel lays out as `kind` (kStandard, kJumbo or kXdp).
inline rc::Gen<RxBufRequest> gen_request_of_kind(RxBufKind kind) {
  return rc::gen::exec([kind] {
    RxBufRequest req;
    req.queue_size = *rc::gen::oneOf(rc::gen::just<std::uint32_t>(1024),
                                     rc::gen::inRange<std::uint32_t>(128, 8192 + 1));
    req.max_order = *rc::gen::inRange<std::uint32_t>(0, 10 + 1);
    req.xdp = kind == RxBufKind::kXdp;
    // Half a page minus the 334-byte pad: the largest MTU that gets fragments.
    if (kind == RxBufKind::kJumbo) {  // needs mtu > page / 2 - 334 (pages up to 128 KiB)
      req.page_size = *gen_page_size(12, 17);
      const std::uint64_t lo = req.page_size / 2 - 334 + 1;
      req.adapter_mtu = *gen_adapter_mtu(static_cast<std::uint32_t>(lo + 14));
      req.mtu = draw_mtu(lo, req.adapter_mtu - 14);
      return req;
    }
    req.page_size = *gen_page_size(12, 20);
    req.adapter_mtu = *gen_adapter_mtu(82);
    const std::uint64_t cap =
        kind == RxBufKind::kXdp ? req.page_size - 334 - 256 : req.page_size / 2 - 334;
    req.mtu = draw_mtu(68, std::min<std::uint64_t>(req.adapter_mtu - 14, cap));
    return req;
  });
}

inline rc::Gen<RxBufRequest> gen_valid_request() {
  return rc::gen::oneOf(gen_request_of_kind(RxBufKind::kStandard),
                        gen_request_of_kind(RxBufKind::kJumbo),
                        gen_request_of_kind(RxBufKind::kXdp));
}

}  // namespace pagefrag::test
