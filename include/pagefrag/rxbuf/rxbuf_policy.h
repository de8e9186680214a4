// pagefrag/rxbuf/rxbuf_policy.h: the RxBufPolicy concept and request validation.
//
// An RX buffer policy turns an RxBufRequest into an RxBufCfg. Drivers are
// written against the concept, so the MANA driver, the AF_XDP driver and the
// planner can each be handed any policy: the kernel's own choice
// (KernelRxBufPolicy), the full-page-rx switch (FullPageRxBufPolicy), pagefrag's
// memory-minimising choice (MinWasteRxBufPolicy), or one of the single-kind
// policies (StandardRxBufPolicy, JumboRxBufPolicy, XdpRxBufPolicy).
//
// Contract of every model P:
//   P::kName            a short lower-case name ("kernel", "full-page", ...).
//   P::configure(req)   setup path, any thread, no shared state: returns the
//                       layout for req, or absl::InvalidArgument whose message
//                       starts with the offending RxBufRequest field's name and
//                       gives its value and the valid range. Never throws.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <concepts>
#include <string_view>

#include "pagefrag/base/bits.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"

namespace pagefrag {

template <class T>
concept RxBufPolicy = requires(const RxBufRequest& req) {
  { T::kName } -> std::convertible_to<std::string_view>;
  { T::configure(req) } -> std::same_as<absl::StatusOr<RxBufCfg>>;
};

namespace rxbuf_internal {

inline absl::Status out_of_range(std::string_view field, std::uint64_t value, std::uint64_t lo,
                                 std::uint64_t hi, std::string_view why = {}) {
  return absl::InvalidArgumentError(fmt::format("{} {} is out of range: expected {}..{}{}{}", field,
                                                value, lo, hi, why.empty() ? "" : " ", why));
}

template <RxBufPlatform P>
absl::Status validate_mtu(const RxBufRequest& req) {
  const std::uint64_t hi = std::uint64_t{req.adapter_mtu} - P::kEthHeaderLen;
  if (req.mtu < P::kMinMtu || req.mtu > hi) {
    return out_of_range(
        "mtu", req.mtu, P::kMinMtu, hi,
        fmt::format("(adapter_mtu {} - ETH_HLEN {})", req.adapter_mtu, P::kEthHeaderLen));
  }
  if (req.xdp && req.mtu > xdp_mtu_max<P>(req.page_size)) {
    return out_of_range("mtu", req.mtu, P::kMinMtu, xdp_mtu_max<P>(req.page_size),
                        fmt::format("with xdp (page_size {} - pad {} - XDP headroom {})",
                                    req.page_size, rxbuf_pad<P>(), P::kXdpHeadroom));
  }
  return absl::OkStatus();
}

}  // namespace rxbuf_internal

// Checks every field of req against platform P; OkStatus when all are valid,
// otherwise InvalidArgument naming the first bad field (in declaration order),
// its value and the valid range. Any thread.
template <RxBufPlatform P = ManaPlatform>
absl::Status validate_rxbuf_request(const RxBufRequest& req) {
  using rxbuf_internal::out_of_range;
  if (!is_power_of_two(req.page_size) || req.page_size < kRxBufMinPageSize ||
      req.page_size > kRxBufMaxPageSize) {
    return absl::InvalidArgumentError(
        fmt::format("page_size {} is invalid: expected a power of two in {}..{}", req.page_size,
                    kRxBufMinPageSize, kRxBufMaxPageSize));
  }
  if (req.adapter_mtu < P::kMinMtu + P::kEthHeaderLen ||
      req.adapter_mtu > kRxBufMaxMtu + P::kEthHeaderLen) {
    return out_of_range("adapter_mtu", req.adapter_mtu, P::kMinMtu + P::kEthHeaderLen,
                        kRxBufMaxMtu + P::kEthHeaderLen);
  }
  if (absl::Status mtu = rxbuf_internal::validate_mtu<P>(req); !mtu.ok()) return mtu;
  if (req.queue_size < P::kMinRxQueueSize || req.queue_size > P::kMaxRxQueueSize) {
    return out_of_range("queue_size", req.queue_size, P::kMinRxQueueSize, P::kMaxRxQueueSize);
  }
  if (req.max_order > kRxBufMaxOrder) {
    return out_of_range("max_order", req.max_order, 0, kRxBufMaxOrder);
  }
  return absl::OkStatus();
}

namespace rxbuf_internal {

// Base of the policies that lay out every valid request (a constexpr
// Derived::select(req) with a valid req as precondition): gives them their
// configure(), which validates and then selects.
template <class Derived, RxBufPlatform P>
struct ValidatingPolicy {
  // Setup path, any thread.
  static absl::StatusOr<RxBufCfg> configure(const RxBufRequest& req) {
    if (absl::Status valid = validate_rxbuf_request<P>(req); !valid.ok()) return valid;
    return Derived::select(req);
  }
};

}  // namespace rxbuf_internal
}  // namespace pagefrag
