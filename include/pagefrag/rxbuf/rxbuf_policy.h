// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/rxbuf/rxbuf_policy.h: the RxBufPolicy concept and request validation.
//
// An RX buffer policy turns an RxBufRequest into an RxBufCfg. Drivers are
// written against the concept, so the MANA driver, the AF_XDP driver and the
// planner can each be handed any policy: the kernel's own choice
// (KernelRxBufPolicy), the full-page-rx switch (FullPageRxBufPolicy), pagefrag's
// memory-minimising choice (MinWasteRxBufPolicy), or one of the single-kind
// policies (StandardRxBufPolicy, JumboRxBufPolicy, XdpRxBufPolicy).
//
// Contract of every model P (tests/rxbuf/rxbuf_conformance.h checks it for
// every model, the AF_XDP example's included):
//   P::kName            a short lower-case name ("kernel", "full-page", ...).
//   P::kTailroom        bytes every buffer keeps free after the largest frame
//                       (MANA: the skb_shared_info trailer; AF_XDP: VLAN tag
//                       and guard band).
//   P::configure(req)   setup path, any thread, no shared state (the same req
//                       always gets the same answer): returns the layout for
//                       req, or absl::InvalidArgument whose message starts
//                       with the offending RxBufRequest field's name and gives
//                       its value and the valid range. Never throws.
// Every layout it returns keeps RxBufCfg's invariants (rxbuf_cfg.h) and
//   headroom + datasize + kTailroom <= alloc_size.
//
// The request checks that do not depend on the platform's buffer rules
// (page_size, adapter_mtu, max_order) are public here, so a model for another
// platform reuses them; validate_rxbuf_request<P> is the whole check for an
// RxBufPlatform. A device's own policy (AF_XDP, e1000e, virtio-net) derives
// from DeviceRxBufPolicy, which gives it the same checks in the same order.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>

#include "pagefrag/base/bits.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"

namespace pagefrag {

template <class T>
concept RxBufPolicy = requires(const RxBufRequest& req) {
  { T::kName } -> std::convertible_to<std::string_view>;
  { T::kTailroom } -> std::convertible_to<std::uint32_t>;
  { T::configure(req) } -> std::same_as<absl::StatusOr<RxBufCfg>>;
};

// InvalidArgument "<field> <value> is out of range: expected <lo>..<hi>[ <why>]",
// the message shape of every range error. Any thread.
inline absl::Status rxbuf_out_of_range(std::string_view field, std::uint64_t value,
                                       std::uint64_t lo, std::uint64_t hi,
                                       std::string_view why = {}) {
  return absl::InvalidArgumentError(fmt::format("{} {} is out of range: expected {}..{}{}{}", field,
                                                value, lo, hi, why.empty() ? "" : " ", why));
}

// OkStatus when value is a power of two in lo..hi, else InvalidArgument
// "<field> <value> is invalid: expected a power of two in <lo>..<hi>[ <why>]",
// the one rule and message for page sizes and ring sizes (every driver's
// queue_size check uses it). Any thread.
inline absl::Status validate_power_of_two_in(std::string_view field, std::uint64_t value,
                                             std::uint64_t lo, std::uint64_t hi,
                                             std::string_view why = {}) {
  if (is_power_of_two(value) && value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("{} {} is invalid: expected a power of two in {}..{}{}{}", field, value, lo, hi,
                  why.empty() ? "" : " ", why));
}

// OkStatus when req.page_size is a power of two in kRxBufMinPageSize ..
// kRxBufMaxPageSize, else InvalidArgument starting "page_size <value>". Any thread.
inline absl::Status validate_rxbuf_page_size(const RxBufRequest& req) {
  return validate_power_of_two_in("page_size", req.page_size, kRxBufMinPageSize, kRxBufMaxPageSize);
}

// OkStatus when req.adapter_mtu is in P::kMinMtu + ETH_HLEN .. kRxBufMaxMtu +
// ETH_HLEN, else InvalidArgument starting "adapter_mtu <value>". Any thread.
template <RxBufFrameLimits P>
absl::Status validate_rxbuf_adapter_mtu(const RxBufRequest& req) {
  const std::uint64_t lo = std::uint64_t{P::kMinMtu} + P::kEthHeaderLen;
  const std::uint64_t hi = std::uint64_t{kRxBufMaxMtu} + P::kEthHeaderLen;
  if (req.adapter_mtu >= lo && req.adapter_mtu <= hi) return absl::OkStatus();
  return rxbuf_out_of_range("adapter_mtu", req.adapter_mtu, lo, hi);
}

// OkStatus when req.max_order <= kRxBufMaxOrder, else InvalidArgument
// starting "max_order <value>". Any thread.
inline absl::Status validate_rxbuf_max_order(const RxBufRequest& req) {
  if (req.max_order <= kRxBufMaxOrder) return absl::OkStatus();
  return rxbuf_out_of_range("max_order", req.max_order, 0, kRxBufMaxOrder);
}

namespace rxbuf_internal {

template <RxBufPlatform P>
absl::Status validate_mtu(const RxBufRequest& req) {
  const std::uint64_t hi = std::uint64_t{req.adapter_mtu} - P::kEthHeaderLen;
  if (req.mtu < P::kMinMtu || req.mtu > hi) {
    return rxbuf_out_of_range(
        "mtu", req.mtu, P::kMinMtu, hi,
        fmt::format("(adapter_mtu {} - ETH_HLEN {})", req.adapter_mtu, P::kEthHeaderLen));
  }
  if (req.xdp && req.mtu > xdp_mtu_max<P>(req.page_size)) {
    return rxbuf_out_of_range("mtu", req.mtu, P::kMinMtu, xdp_mtu_max<P>(req.page_size),
                              fmt::format("with xdp (page_size {} - pad {} - XDP headroom {})",
                                          req.page_size, rxbuf_pad<P>(), P::kXdpHeadroom));
  }
  return absl::OkStatus();
}

}  // namespace rxbuf_internal

// Checks every field of req against platform P; OkStatus when all are valid,
// otherwise InvalidArgument naming the first bad field (checked in the order
// page_size, adapter_mtu, mtu (its range depends on adapter_mtu), queue_size,
// max_order), its value and the valid range. Any thread.
template <RxBufPlatform P = LinuxPlatform>
absl::Status validate_rxbuf_request(const RxBufRequest& req) {
  if (absl::Status page = validate_rxbuf_page_size(req); !page.ok()) return page;
  if (absl::Status adapter = validate_rxbuf_adapter_mtu<P>(req); !adapter.ok()) return adapter;
  if (absl::Status mtu = rxbuf_internal::validate_mtu<P>(req); !mtu.ok()) return mtu;
  if (req.queue_size < kMinRxBufQueueSize || req.queue_size > kMaxRxBufQueueSize) {
    return rxbuf_out_of_range("queue_size", req.queue_size, kMinRxBufQueueSize, kMaxRxBufQueueSize);
  }
  return validate_rxbuf_max_order(req);
}

namespace rxbuf_internal {

// Base of the policies that lay out every valid request (a constexpr
// Derived::select(req) with a valid req as precondition): gives them their
// configure(), which validates and then selects, and their kTailroom.
template <class Derived, RxBufPlatform P>
struct ValidatingPolicy {
  // The skb_shared_info trailer kept free after every frame.
  static constexpr std::uint32_t kTailroom = rxbuf_tailroom<P>();

  // Setup path, any thread.
  static absl::StatusOr<RxBufCfg> configure(const RxBufRequest& req) {
    if (absl::Status valid = validate_rxbuf_request<P>(req); !valid.ok()) return valid;
    return Derived::select(req);
  }
};

}  // namespace rxbuf_internal
// A device ring's queue_size rule: a power of two in min..max; `name` says
// which ring, in parentheses, for the message ("(split virtqueue)").
struct RxBufRingLimits {
  std::uint32_t min;
  std::uint32_t max;
  std::string_view name;
};

// Base of a device's own RX-buffer policy (CRTP). Derived states
//   kRing                       its RxBufRingLimits,
//   max_mtu(req)                the largest MTU the device and page allow,
//   mtu_bound(req)              why (a std::string for the message),
//   layout(req)                 the layout of a valid request,
// and may hide validate_device(req) with a device rule checked after the MTU.
// validate() checks page_size, adapter_mtu, mtu in P::kMinMtu..max_mtu,
// the device rule, queue_size and max_order, in that order, and names the
// first bad field; configure() validates, then lays out. Any thread.
template <class Derived, RxBufFrameLimits P>
struct DeviceRxBufPolicy {
  static absl::Status validate(const RxBufRequest& req) {
    if (absl::Status page = validate_rxbuf_page_size(req); !page.ok()) return page;
    if (absl::Status adapter = validate_rxbuf_adapter_mtu<P>(req); !adapter.ok()) return adapter;
    const std::uint32_t mtu_hi = Derived::max_mtu(req);
    if (req.mtu < P::kMinMtu || req.mtu > mtu_hi) {
      return rxbuf_out_of_range("mtu", req.mtu, P::kMinMtu, mtu_hi, Derived::mtu_bound(req));
    }
    if (absl::Status device = Derived::validate_device(req); !device.ok()) return device;
    if (absl::Status ring =
            validate_power_of_two_in("queue_size", req.queue_size, Derived::kRing.min,
                                     Derived::kRing.max, Derived::kRing.name);
        !ring.ok()) {
      return ring;
    }
    return validate_rxbuf_max_order(req);
  }

  static absl::StatusOr<RxBufCfg> configure(const RxBufRequest& req) {
    if (absl::Status valid = validate(req); !valid.ok()) return valid;
    return Derived::layout(req);
  }

  // No device rule beyond the shared ones.
  static absl::Status validate_device(const RxBufRequest& /*req*/) { return absl::OkStatus(); }
};

}  // namespace pagefrag
