// SPDX-License-Identifier: BSD-3-Clause
// The example NIC drivers' RX buffer policies (VirtioNetRxBufPolicy,
// E1000eRxBufPolicy) through the RxBufPolicy conformance suite, and the
// numbers particular to each device worked by hand.
#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "examples/e1000e/e1000e_rxbuf_policy.h"
#include "examples/virtio_net/virtio_net_rxbuf_policy.h"
#include "tests/rxbuf/rxbuf_conformance.h"
#include "tests/support/rc_doctest.h"

namespace {

using pagefrag::RxBufRequest;
using pagefrag::test::InvalidRequest;

// VirtioNetRxBufPolicy's domain, written out: page_size 4 KiB .. 1 MiB; mtu
// from 68 to the least of adapter_mtu - 14 and what fits a page with the
// 12-byte header and the 320-byte trailer (page_size - 320 rounded down to
// 64, minus 26); queue a power of two in 64..32768.
struct VirtioModel {
  using Policy = virtio_net::VirtioNetRxBufPolicy;
  static constexpr const char* kName = "VirtioNetRxBufPolicy";
  static constexpr std::uint32_t kTailroom = 320;  // skb_shared_info on x86_64
  static constexpr std::uint32_t kAlignment = 64;
  static rc::Gen<RxBufRequest> gen_valid() {
    return rc::gen::exec([] {
      RxBufRequest req;
      req.page_size = std::uint64_t{4096} << *rc::gen::inRange(0, 9);
      req.adapter_mtu = *rc::gen::oneOf(rc::gen::element<std::uint32_t>(1514, 9216),
                                        rc::gen::inRange<std::uint32_t>(82, 65549 + 1));
      const std::uint64_t page_room = (req.page_size - 320) / 64 * 64 - 26;
      const std::uint64_t hi = std::min<std::uint64_t>(page_room, req.adapter_mtu - 14);
      req.mtu = *rc::gen::inRange<std::uint32_t>(68, static_cast<std::uint32_t>(hi) + 1);
      req.queue_size = 1u << *rc::gen::inRange(6, 16);
      req.max_order = *rc::gen::inRange<std::uint32_t>(0, 11);
      return req;
    });
  }
  static std::vector<InvalidRequest> invalid_requests() {
    const std::string pages = "4096..1048576";
    return {
        {{.page_size = 0}, "page_size", "0", pages},
        {{.page_size = 12288}, "page_size", "12288", pages},
        {{.mtu = 67}, "mtu", "67", "68..3750"},
        {{.page_size = 4096, .mtu = 3751}, "mtu", "3751", "68..3750"},
        {{.page_size = 65536, .mtu = 1501, .adapter_mtu = 1514}, "mtu", "1501", "68..1500"},
        {{.adapter_mtu = 81}, "adapter_mtu", "81", "82..65549"},
        {{.queue_size = 1000}, "queue_size", "1000", "64..32768"},
        {{.queue_size = 65536}, "queue_size", "65536", "64..32768"},
        {{.max_order = 11}, "max_order", "11", "0..10"},
    };
  }
};

// E1000eRxBufPolicy's domain: mtu from 68 to the least of 16384 - 18 (the
// largest buffer holds frame and FCS), page_size - 18 and adapter_mtu - 14;
// queue a power of two in 64..4096.
struct E1000eModel {
  using Policy = e1000e::E1000eRxBufPolicy;
  static constexpr const char* kName = "E1000eRxBufPolicy";
  static constexpr std::uint32_t kTailroom = 4;     // the FCS
  static constexpr std::uint32_t kAlignment = 256;  // the smallest buffer size
  static rc::Gen<RxBufRequest> gen_valid() {
    return rc::gen::exec([] {
      RxBufRequest req;
      req.page_size = std::uint64_t{4096} << *rc::gen::inRange(0, 9);
      req.adapter_mtu = *rc::gen::oneOf(rc::gen::element<std::uint32_t>(1514, 9216),
                                        rc::gen::inRange<std::uint32_t>(82, 65549 + 1));
      const std::uint64_t hi =
          std::min<std::uint64_t>({16384 - 18, req.page_size - 18, req.adapter_mtu - 14});
      req.mtu = *rc::gen::inRange<std::uint32_t>(68, static_cast<std::uint32_t>(hi) + 1);
      req.queue_size = 1u << *rc::gen::inRange(6, 13);
      req.max_order = *rc::gen::inRange<std::uint32_t>(0, 11);
      return req;
    });
  }
  static std::vector<InvalidRequest> invalid_requests() {
    const std::string pages = "4096..1048576";
    return {
        {{.page_size = 0}, "page_size", "0", pages},
        {{.page_size = 3u << 12}, "page_size", "12288", pages},
        {{.mtu = 67}, "mtu", "67", "68..4078"},
        {{.page_size = 4096, .mtu = 4079}, "mtu", "4079", "68..4078"},
        {{.page_size = 65536, .mtu = 16367, .adapter_mtu = 65549}, "mtu", "16367", "68..16366"},
        {{.adapter_mtu = 81}, "adapter_mtu", "81", "82..65549"},
        {{.queue_size = 32}, "queue_size", "32", "64..4096"},
        {{.queue_size = 8192}, "queue_size", "8192", "64..4096"},
        {{.max_order = 11}, "max_order", "11", "0..10"},
    };
  }
};

}  // namespace

TEST_CASE_TEMPLATE_INVOKE(rxbuf_policy_conformance, VirtioModel, E1000eModel);

TEST_CASE("VirtioNetRxBufPolicy: MANA-sized buffers, posted for header + frame") {
  const auto cfg = *virtio_net::VirtioNetRxBufPolicy::configure({.page_size = 65536, .mtu = 1500});
  CHECK(cfg.alloc_size == 1856);  // 12 + 1514 + 320 = 1846, rounded to 64
  CHECK(cfg.frag_count == 35);    // 65536 / 1856
  CHECK(cfg.headroom == 12);
  CHECK(virtio_net::VirtioNetRxBufPolicy::post_len(cfg) == 1526);
}

TEST_CASE("E1000eRxBufPolicy: power-of-two buffers and their RCTL bits") {
  using P = e1000e::E1000eRxBufPolicy;
  const auto at = [](std::uint32_t mtu) { return *P::configure({.page_size = 65536, .mtu = mtu}); };
  CHECK(at(1500).alloc_size == 2048);
  CHECK(at(1500).frag_count == 32);
  CHECK(at(68).alloc_size == 256);     // 68 + 18 = 86 -> the smallest buffer
  CHECK(at(1006).alloc_size == 1024);  // 1006 + 18 = 1024 exactly
  CHECK(at(1007).alloc_size == 2048);
  CHECK(P::rctl_buffer_bits(at(1500)) == 0u);                         // BSIZE 00: 2048
  CHECK(P::rctl_buffer_bits(at(68)) == (3u << 16));                   // BSIZE 11: 256
  CHECK(P::rctl_buffer_bits(at(4000)) == ((1u << 25) | (3u << 16)));  // BSEX, 11: 4096
}
