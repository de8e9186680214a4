// SPDX-License-Identifier: BSD-3-Clause
// The DPDK bridge's RxBufPolicy (DpdkRxBufPolicy: the kernel's sizing with
// the bridge's trailer in place of skb_shared_info) through the RxBufPolicy
// conformance suite. Needs DPDK's headers only (no EAL).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pagefrag/dpdk/mbuf_bridge.h"
#include "tests/rxbuf/request_gen.h"
#include "tests/rxbuf/rxbuf_conformance.h"

namespace pagefrag {
namespace {

// Its domain is the kernel policy's with a smaller trailer: every request
// the MANA policies take is one it takes (request_gen.h draws them).
// kTailroom: DPDK 22.11's rte_mbuf_ext_shared_info (free_cb, fcb_opaque, a
// 16-bit refcnt: 24 bytes) and the bridge's two pointers are 40 bytes,
// rounded up to the 64-byte cache line.
struct DpdkModel {
  using Policy = dpdk::DpdkRxBufPolicy;
  static constexpr const char* kName = "DpdkRxBufPolicy";
  static constexpr std::uint32_t kTailroom = 64;
  static constexpr std::uint32_t kAlignment = 64;
  static rc::Gen<RxBufRequest> gen_valid() { return test::gen_valid_request(); }
  // Worked by hand: the largest XDP MTU is page_size - 256 (XDP headroom) -
  // 14 (Ethernet header) - 64 (the trailer), and the ranges of rxbuf_cfg.h.
  static std::vector<test::InvalidRequest> invalid_requests() {
    const std::string pages = "4096..1048576";
    return {
        {{.page_size = 0}, "page_size", "0", pages},
        {{.page_size = 12288}, "page_size", "12288", pages},
        {{.page_size = 1u << 21}, "page_size", "2097152", pages},
        {{.mtu = 67}, "mtu", "67", "68..9202"},
        {{.mtu = 9203}, "mtu", "9203", "68..9202"},
        {{.mtu = 1501, .adapter_mtu = 1514}, "mtu", "1501", "68..1500"},
        {{.page_size = 4096, .mtu = 3763, .xdp = true}, "mtu", "3763", "68..3762"},
        {{.page_size = 16384, .mtu = 16051, .xdp = true, .adapter_mtu = 65549},
         "mtu",
         "16051",
         "68..16050"},
        {{.adapter_mtu = 81}, "adapter_mtu", "81", "82..65549"},
        {{.adapter_mtu = 65550}, "adapter_mtu", "65550", "82..65549"},
        {{.queue_size = 0}, "queue_size", "0", "1..65536"},
        {{.queue_size = 65537}, "queue_size", "65537", "1..65536"},
        {{.max_order = 11}, "max_order", "11", "0..10"},
    };
  }
};

TEST_CASE_TEMPLATE_INVOKE(rxbuf_policy_conformance, DpdkModel);

}  // namespace
}  // namespace pagefrag
