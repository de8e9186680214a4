// SPDX-License-Identifier: BSD-3-Clause
// tests/rxbuf/rxbuf_conformance.h: the RxBufPolicy conformance suite.
//
// One suite for every RxBufPolicy model: the MANA policies (tests/rxbuf) and
// the AF_XDP example's (tests/afxdp). It checks only the contract every model
// promises (rxbuf_policy.h, rxbuf_cfg.h); what is particular to one platform
// (MANA's headroom exactly with XDP, AF_XDP's chunk sizes) is tested next to
// the model. A test file defines "model" types
//   using Policy = ...;                       the RxBufPolicy under test
//   static constexpr const char* kName;       for failure messages
//   static constexpr std::uint32_t kTailroom; bytes kept after the frame, from
//                                             the platform's spec, not the code
//   static constexpr std::uint32_t kAlignment; every alloc_size is a multiple
//   static rc::Gen<RxBufRequest> gen_valid(); the model's valid requests, with
//                                             the domain rules written out
//   static std::vector<InvalidRequest> invalid_requests();  worked by hand
// and instantiates the suite with
//   TEST_CASE_TEMPLATE_INVOKE(rxbuf_policy_conformance, ModelA, ModelB);
//
// Oracles: the expected numbers are arithmetic written out here (block =
// page_size << order, ETH_HLEN 14, the kernel's pool sizing queue / frags + 1,
// the request ranges of rxbuf_cfg.h spelled as literals), never a library
// function.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <rapidcheck.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag {

// How rapidcheck prints a counterexample request.
inline void showValue(const RxBufRequest& req, std::ostream& os) {
  os << fmt::format("{{page_size {}, mtu {}, xdp {}, adapter_mtu {}, queue_size {}, max_order {}}}",
                    req.page_size, req.mtu, req.xdp, req.adapter_mtu, req.queue_size,
                    req.max_order);
}

}  // namespace pagefrag

namespace pagefrag::test {

// A request with exactly one bad field, and the message parts a model must
// give for it: "<field> <value> " first, then somewhere the valid range.
struct InvalidRequest {
  RxBufRequest req;
  std::string field;
  std::string value;
  std::string range;
};

// Whether s is a short lower-case name: [a-z0-9-]+.
inline bool is_policy_name(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// Whether status is InvalidArgument and its message starts "<field> <value> ".
inline bool names_field(const absl::Status& status, std::string_view field, std::uint64_t value) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         std::string(status.message()).rfind(fmt::format("{} {} ", field, value), 0) == 0;
}

// Every invariant a layout for req must keep, against literal arithmetic.
template <class Model>
void check_layout(const RxBufRequest& req, const RxBufCfg& cfg) {
  const std::uint64_t block = req.page_size << cfg.order;
  RC_ASSERT(cfg.page_size == req.page_size);
  RC_ASSERT(cfg.order <= 10u);  // MAX_PAGE_ORDER
  RC_ASSERT(cfg.frag_count >= 1u);
  RC_ASSERT(cfg.alloc_size % Model::kAlignment == 0u);
  RC_ASSERT(std::uint64_t{cfg.frag_count} * cfg.alloc_size <= block);
  RC_ASSERT(cfg.datasize == req.mtu + 14);  // the largest frame: mtu + ETH_HLEN
  RC_ASSERT(std::uint64_t{cfg.headroom} + cfg.datasize + Model::kTailroom <= cfg.alloc_size);
  RC_ASSERT(cfg.truesize == (cfg.frag_count > 1 ? cfg.alloc_size : block));
  // A lone buffer gets the smallest block that holds it.
  if (cfg.frag_count == 1) RC_ASSERT(cfg.order == 0u || cfg.alloc_size > block / 2);
  RC_ASSERT((cfg.kind == RxBufKind::kStandard) == (cfg.frag_count > 1));
}

}  // namespace pagefrag::test

TEST_CASE_TEMPLATE_DEFINE("RxBufPolicy conformance", Model, rxbuf_policy_conformance) {
  using Policy = typename Model::Policy;
  using pagefrag::RxBufCfg;
  using pagefrag::RxBufRequest;
  namespace test = pagefrag::test;
  static_assert(pagefrag::RxBufPolicy<Policy>);
  const std::string model_name = Model::kName;
  CAPTURE(model_name);

  SUBCASE("a short lower-case name; the tailroom the platform specifies") {
    CHECK(test::is_policy_name(Policy::kName));
    CHECK(Policy::kTailroom == Model::kTailroom);
  }

  SUBCASE("layouts: buffers fit their block, aligned, with room for headroom, frame, tailroom") {
    PAGEFRAG_RC_CHECK("layout invariants", [] {
      const RxBufRequest req = *Model::gen_valid();
      const absl::StatusOr<RxBufCfg> cfg = Policy::configure(req);
      RC_ASSERT(cfg.ok());
      test::check_layout<Model>(req, *cfg);
    });
  }

  SUBCASE("pool_size and queue_bytes follow the kernel's sizing for any queue") {
    PAGEFRAG_RC_CHECK("pool = queue / frags + 1 blocks", [] {
      const RxBufRequest req = *Model::gen_valid();
      const auto queue = *rc::gen::inRange<std::uint32_t>(1, (1u << 24) + 1);
      const RxBufCfg cfg = *Policy::configure(req);
      const std::uint64_t pool = queue / cfg.frag_count + 1;
      RC_ASSERT(cfg.pool_size(queue) == pool);
      RC_ASSERT(cfg.queue_bytes(queue) == pool * (req.page_size << cfg.order));
    });
  }

  SUBCASE("deterministic: the same request gets the same answer, whatever came before") {
    PAGEFRAG_RC_CHECK("configure is a pure function", [] {
      const RxBufRequest req = *Model::gen_valid();
      const RxBufRequest other = *Model::gen_valid();
      const absl::StatusOr<RxBufCfg> first = Policy::configure(req);
      (void)Policy::configure(other);
      RC_ASSERT(first.ok());
      RC_ASSERT(Policy::configure(req) == first);
    });
    for (const test::InvalidRequest& c : Model::invalid_requests()) {
      CHECK(Policy::configure(c.req).status() == Policy::configure(c.req).status());
    }
  }

  SUBCASE("invalid input is InvalidArgument naming field, value and range") {
    const std::vector<test::InvalidRequest> cases = Model::invalid_requests();
    CHECK(cases.size() >= 5u);
    for (const test::InvalidRequest& c : cases) {
      const absl::StatusOr<RxBufCfg> cfg = Policy::configure(c.req);
      const std::string message(cfg.status().message());
      CAPTURE(message);
      CHECK(cfg.status().code() == absl::StatusCode::kInvalidArgument);
      CHECK(message.rfind(c.field + " " + c.value + " ", 0) == 0);  // starts "field value "
      CHECK(message.find(c.range) != std::string::npos);
    }
  }

  SUBCASE("a bad page_size or max_order anywhere in its range is named") {
    // The request ranges every model shares (rxbuf_cfg.h): page_size a power
    // of two in 4096..1048576, max_order 0..10.
    PAGEFRAG_RC_CHECK("page_size", [] {
      RxBufRequest req = *Model::gen_valid();
      req.page_size = *rc::gen::suchThat(rc::gen::arbitrary<std::uint64_t>(), [](std::uint64_t v) {
        return v < 4096 || v > (1u << 20) || (v & (v - 1)) != 0;
      });
      RC_ASSERT(test::names_field(Policy::configure(req).status(), "page_size", req.page_size));
    });
    PAGEFRAG_RC_CHECK("max_order", [] {
      RxBufRequest req = *Model::gen_valid();
      req.max_order = *rc::gen::inRange<std::uint32_t>(11, 0xffffffffu);
      RC_ASSERT(test::names_field(Policy::configure(req).status(), "max_order", req.max_order));
    });
  }
}
