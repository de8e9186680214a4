// SPDX-License-Identifier: BSD-3-Clause
// The MANA policies through the RxBufPolicy conformance suite
// (tests/rxbuf/rxbuf_conformance.h, also run on the AF_XDP example's policy),
// then what only the MANA policies promise: XDP headroom exactly with XDP,
// every field's error with MANA's ranges, monotonic fragment counts, and the
// kinds partitioning the valid requests.
#include "tests/rxbuf/rxbuf_conformance.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pagefrag/rxbuf/rxbuf.h"
#include "tests/rxbuf/request_gen.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag {
namespace {

// A valid request this policy is defined for: single-kind policies take only
// their own kind's domain.
template <class Policy>
RxBufRequest gen_request_for() {
  if constexpr (requires { Policy::kKind; }) {
    const RxBufRequest req = *test::gen_request_of_kind(Policy::kKind);
    RC_ASSERT(Policy::accepts(req));
    return req;
  } else {
    return *test::gen_valid_request();
  }
}

// Each invalid field, with the message parts worked out by hand.
std::vector<test::InvalidRequest> mana_invalid_requests() {
  const std::string pages = "4096..1048576";
  return {
      {{.page_size = 0}, "page_size", "0", pages},
      {{.page_size = 2048}, "page_size", "2048", pages},
      {{.page_size = 4095}, "page_size", "4095", pages},
      {{.page_size = 12288}, "page_size", "12288", pages},
      {{.page_size = 65537}, "page_size", "65537", pages},
      {{.page_size = 1u << 21}, "page_size", "2097152", pages},
      {{.mtu = 0}, "mtu", "0", "68..9202"},
      {{.mtu = 67}, "mtu", "67", "68..9202"},
      {{.mtu = 9203}, "mtu", "9203", "68..9202"},
      {{.mtu = 1501, .adapter_mtu = 1514}, "mtu", "1501", "68..1500"},
      {{.page_size = 4096, .mtu = 3507, .xdp = true}, "mtu", "3507", "68..3506"},
      {{.page_size = 16384, .mtu = 15795, .xdp = true, .adapter_mtu = 65549},
       "mtu",
       "15795",
       "68..15794"},
      {{.adapter_mtu = 0}, "adapter_mtu", "0", "82..65549"},
      {{.adapter_mtu = 81}, "adapter_mtu", "81", "82..65549"},
      {{.adapter_mtu = 65550}, "adapter_mtu", "65550", "82..65549"},
      {{.queue_size = 0}, "queue_size", "0", "1..65536"},
      {{.queue_size = 65537}, "queue_size", "65537", "1..65536"},
      {{.max_order = 11}, "max_order", "11", "0..10"},
      {{.max_order = 4000000000u}, "max_order", "4000000000", "0..10"},
  };
}

// The MANA policies as conformance models: the skb_shared_info trailer is 320
// bytes (sizeof on x86_64/arm64, already a multiple of the 64-byte cache line);
// fragments are 64-byte aligned.
template <class P>
struct ManaModel {
  using Policy = P;
  static constexpr const char* kName = P::kName.data();
  static constexpr std::uint32_t kTailroom = 320;
  static constexpr std::uint32_t kAlignment = 64;
  static rc::Gen<RxBufRequest> gen_valid() { return rc::gen::exec(gen_request_for<P>); }
  // Validation comes before a single-kind policy's domain check, so every
  // MANA policy gives the same errors.
  static std::vector<test::InvalidRequest> invalid_requests() { return mana_invalid_requests(); }
};

TEST_CASE_TEMPLATE_INVOKE(rxbuf_policy_conformance, ManaModel<KernelRxBufPolicy<>>,
                          ManaModel<FullPageRxBufPolicy<>>, ManaModel<MinWasteRxBufPolicy<>>,
                          ManaModel<StandardRxBufPolicy<>>, ManaModel<JumboRxBufPolicy<>>,
                          ManaModel<XdpRxBufPolicy<>>);

// What follows is particular to the MANA policies.

TEST_CASE_TEMPLATE("MANA policies: XDP headroom and the kXdp kind exactly when XDP is asked for",
                   Policy, KernelRxBufPolicy<>, FullPageRxBufPolicy<>, MinWasteRxBufPolicy<>,
                   StandardRxBufPolicy<>, JumboRxBufPolicy<>, XdpRxBufPolicy<>) {
  PAGEFRAG_RC_CHECK("headroom 256 and kind kXdp iff xdp", [] {
    const RxBufRequest req = gen_request_for<Policy>();
    const RxBufCfg cfg = *Policy::configure(req);
    RC_ASSERT(cfg.headroom == (req.xdp ? 256u : 0u));
    RC_ASSERT((cfg.kind == RxBufKind::kXdp) == req.xdp);
  });
}

TEST_CASE("MANA policies: invalid values anywhere in a field's range are rejected") {
  PAGEFRAG_RC_CHECK("a bad field is InvalidArgument naming it", [] {
    RxBufRequest req = *test::gen_valid_request();
    const int field = *rc::gen::inRange(0, 4);
    std::string name;
    std::uint64_t value = 0;
    if (field == 0) {  // not a power of two, or too small, or too large
      value = *rc::gen::suchThat(rc::gen::arbitrary<std::uint64_t>(), [](std::uint64_t v) {
        return v < 4096 || v > (1u << 20) || (v & (v - 1)) != 0;
      });
      req.page_size = value;
      name = "page_size";
    } else if (field == 1) {
      value = req.mtu =
          *rc::gen::oneOf(rc::gen::inRange<std::uint32_t>(0, 68),
                          rc::gen::inRange<std::uint32_t>(req.adapter_mtu - 13, 1u << 31));
      name = "mtu";
    } else if (field == 2) {
      value = req.queue_size = *rc::gen::oneOf(rc::gen::just<std::uint32_t>(0),
                                               rc::gen::inRange<std::uint32_t>(65537, 1u << 31));
      name = "queue_size";
    } else {
      value = req.max_order = *rc::gen::inRange<std::uint32_t>(11, 1u << 31);
      name = "max_order";
    }
    const absl::Status status = KernelRxBufPolicy<>::configure(req).status();
    RC_ASSERT(status.code() == absl::StatusCode::kInvalidArgument);
    RC_ASSERT(std::string(status.message()).rfind(fmt::format("{} {} ", name, value), 0) == 0u);
    RC_ASSERT(MinWasteRxBufPolicy<>::configure(req).status() == status);
    RC_ASSERT(FullPageRxBufPolicy<>::configure(req).status() == status);
  });
}

TEST_CASE("kernel policy: frag_count never increases with the MTU") {
  PAGEFRAG_RC_CHECK("mtu a < mtu b => frags(a) >= frags(b)", [] {
    RxBufRequest a = *test::gen_valid_request();
    RxBufRequest b = a;
    b.mtu = *rc::gen::inRange<std::uint32_t>(a.mtu, a.adapter_mtu - 14 + 1);
    if (b.xdp)
      b.mtu = std::min<std::uint32_t>(b.mtu, static_cast<std::uint32_t>(b.page_size - 590));
    RC_ASSERT(KernelRxBufPolicy<>::configure(a)->frag_count >=
              KernelRxBufPolicy<>::configure(b)->frag_count);
  });
}

TEST_CASE("kernel policy: exactly one single-kind policy takes each request, and agrees") {
  PAGEFRAG_RC_CHECK("the kinds partition the valid requests", [] {
    const RxBufRequest req = *test::gen_valid_request();
    const int takers = int{StandardRxBufPolicy<>::accepts(req)} +
                       int{JumboRxBufPolicy<>::accepts(req)} + int{XdpRxBufPolicy<>::accepts(req)};
    RC_ASSERT(takers == 1);
    const RxBufCfg kernel = *KernelRxBufPolicy<>::configure(req);
    for (const absl::StatusOr<RxBufCfg>& single :
         {StandardRxBufPolicy<>::configure(req), JumboRxBufPolicy<>::configure(req),
          XdpRxBufPolicy<>::configure(req)}) {
      if (single.ok()) {
        RC_ASSERT(*single == kernel);
      } else {
        RC_ASSERT(single.status().code() == absl::StatusCode::kInvalidArgument);
      }
    }
  });
}

}  // namespace
}  // namespace pagefrag
