// The RxBufPolicy conformance suite: every policy pagefrag ships, the same
// checks. Layout invariants as properties over the whole valid request space,
// then every kind of invalid input.
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

#define PAGEFRAG_RXBUF_POLICIES                                                             \
  KernelRxBufPolicy<>, FullPageRxBufPolicy<>, MinWasteRxBufPolicy<>, StandardRxBufPolicy<>, \
      JumboRxBufPolicy<>, XdpRxBufPolicy<>

TEST_CASE_TEMPLATE("RxBufPolicy: a name and a configure()", Policy, PAGEFRAG_RXBUF_POLICIES) {
  static_assert(RxBufPolicy<Policy>);
  CHECK_FALSE(std::string_view(Policy::kName).empty());
}

TEST_CASE_TEMPLATE("RxBufPolicy: buffers fit their block, aligned, with room for the packet",
                   Policy, PAGEFRAG_RXBUF_POLICIES) {
  PAGEFRAG_RC_CHECK("layout invariants", [] {
    const RxBufRequest req = gen_request_for<Policy>();
    const absl::StatusOr<RxBufCfg> got = Policy::configure(req);
    RC_ASSERT(got.ok());
    const RxBufCfg& cfg = *got;
    const std::uint64_t block = req.page_size << cfg.order;
    RC_ASSERT(cfg.page_size == req.page_size);
    RC_ASSERT(cfg.frag_count >= 1u);
    RC_ASSERT(std::uint64_t{cfg.frag_count} * cfg.alloc_size <= block);
    RC_ASSERT(cfg.alloc_size % 64 == 0u);  // fragment alignment and cache line
    RC_ASSERT(cfg.datasize == req.mtu + 14);
    // Headroom, packet and the 320-byte skb_shared_info trailer fit one buffer.
    RC_ASSERT(std::uint64_t{cfg.headroom} + cfg.datasize + 320 <= cfg.alloc_size);
    RC_ASSERT(cfg.truesize == (cfg.frag_count > 1 ? cfg.alloc_size : block));
    RC_ASSERT(cfg.headroom == (req.xdp ? 256u : 0u));
    RC_ASSERT((cfg.kind == RxBufKind::kXdp) == req.xdp);
    RC_ASSERT((cfg.kind == RxBufKind::kStandard) == (cfg.frag_count > 1));
    RC_ASSERT(cfg.pool_size(req.queue_size) == req.queue_size / cfg.frag_count + 1);
    RC_ASSERT(cfg.queue_bytes(req.queue_size) ==
              std::uint64_t{cfg.pool_size(req.queue_size)} * block);
  });
}

struct InvalidCase {
  RxBufRequest req;
  std::string field;
  std::string value;
  std::string range;
};

// Each invalid field, with the message parts worked out by hand.
std::vector<InvalidCase> invalid_cases() {
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
      {{.queue_size = 0}, "queue_size", "0", "128..8192"},
      {{.queue_size = 127}, "queue_size", "127", "128..8192"},
      {{.queue_size = 8193}, "queue_size", "8193", "128..8192"},
      {{.max_order = 11}, "max_order", "11", "0..10"},
      {{.max_order = 4000000000u}, "max_order", "4000000000", "0..10"},
  };
}

TEST_CASE_TEMPLATE("RxBufPolicy: invalid input is InvalidArgument naming field, value, range",
                   Policy, PAGEFRAG_RXBUF_POLICIES) {
  for (const InvalidCase& c : invalid_cases()) {
    const absl::StatusOr<RxBufCfg> cfg = Policy::configure(c.req);
    const std::string message(cfg.status().message());
    CAPTURE(message);
    CHECK(cfg.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(message.rfind(c.field + " " + c.value + " ", 0) == 0);  // starts with "field value "
    CHECK(message.find(c.range) != std::string::npos);
  }
}

TEST_CASE("invalid values anywhere in a field's range are rejected") {
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
      value = req.queue_size = *rc::gen::oneOf(rc::gen::inRange<std::uint32_t>(0, 128),
                                               rc::gen::inRange<std::uint32_t>(8193, 1u << 31));
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
