// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/rxbuf/rxbuf_cfg.h: what an RX buffer policy is asked, and what it answers.
//
// An RxBufRequest describes a port (page size, MTU, XDP on or off, the
// adapter's largest frame, the RX queue size and the largest page order a
// policy may use). An RxBufCfg is the answer: how big each RX buffer is, how
// many are carved from one pool block of page_size << order bytes, and what
// each really costs (truesize). The pool and the driver size themselves from
// it: a page pool of pool_size(queue_size) blocks of that order, fragments of
// alloc_size when frag_count > 1, whole blocks otherwise.
//
// Both are plain values: copy them freely, from any thread.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string_view>

#include "pagefrag/base/check.h"

namespace pagefrag {

// Valid request ranges that do not depend on the platform.
inline constexpr std::uint64_t kRxBufMinPageSize = 4096;
// The largest page size accepted: keeps page_size << kRxBufMaxOrder within
// the 32-bit sizes an RxBufCfg (like the kernel) uses.
inline constexpr std::uint64_t kRxBufMaxPageSize = std::uint64_t{1} << 20;
// The largest page order (the kernel's MAX_PAGE_ORDER).
inline constexpr std::uint32_t kRxBufMaxOrder = 10;
// The largest MTU anything can ask for (the largest IP packet). An adapter_mtu
// is valid from the platform's kMinMtu + ETH_HLEN to this + ETH_HLEN.
inline constexpr std::uint32_t kRxBufMaxMtu = 65535;

// How buffers are laid out in pool blocks.
enum class RxBufKind : std::uint8_t {
  kStandard,  // fragments: frag_count > 1 buffers of alloc_size carved from each block
  kJumbo,     // one buffer per block of order get_order(alloc_size), no headroom
  kXdp,       // one buffer per page, XDP headroom before the packet
  kFullPage,  // one buffer per block, forced (the full-page-rx switch)
};

// "standard", "jumbo", "xdp" or "full_page": the names the planner prints.
constexpr std::string_view to_string(RxBufKind kind) noexcept {
  switch (kind) {
    case RxBufKind::kStandard:
      return "standard";
    case RxBufKind::kJumbo:
      return "jumbo";
    case RxBufKind::kXdp:
      return "xdp";
    case RxBufKind::kFullPage:
      return "full_page";
  }
  return "unknown";
}

// A port's RX buffer question. Aggregate: RxBufRequest{.page_size = 4096, .mtu = 1500}.
struct RxBufRequest {
  std::uint64_t page_size = 4096;    // base page bytes: a power of two >= 4096
  std::uint32_t mtu = 1500;          // L3 MTU: kMinMtu .. adapter_mtu - ETH_HLEN
  bool xdp = false;                  // an XDP program is attached
  std::uint32_t adapter_mtu = 9216;  // the largest frame the adapter accepts
  std::uint32_t queue_size = 1024;   // RX ring entries: kMinRxBufQueueSize .. kMaxRxBufQueueSize
  std::uint32_t max_order = 4;       // the largest page order a policy may pick (min-waste)

  friend constexpr bool operator==(const RxBufRequest&, const RxBufRequest&) = default;
};

// A policy's answer. Invariants every policy guarantees (tests/rxbuf checks them):
//   frag_count >= 1, frag_count * alloc_size <= block_bytes(),
//   alloc_size is a multiple of the platform's fragment alignment and cache line,
//   headroom + datasize fits in alloc_size with the skb_shared_info trailer,
//   truesize == alloc_size when frag_count > 1, block_bytes() when frag_count == 1.
struct RxBufCfg {
  RxBufKind kind = RxBufKind::kStandard;
  std::uint32_t page_size = 0;   // base page bytes (as requested)
  std::uint32_t datasize = 0;    // bytes the device may write: mtu + ETH_HLEN
  std::uint32_t alloc_size = 0;  // bytes one buffer occupies in its block (the fragment stride)
  std::uint32_t headroom = 0;    // bytes before the packet (XDP_PACKET_HEADROOM or 0)
  std::uint32_t frag_count = 0;  // buffers carved from one block
  std::uint32_t order = 0;       // the pool's page order: a block is page_size << order
  std::uint32_t truesize = 0;    // bytes one buffer really consumes (charged to the socket)

  // Bytes of one pool block.
  constexpr std::uint64_t block_bytes() const noexcept { return std::uint64_t{page_size} << order; }
  // Whether each buffer is a whole block (no fragments).
  constexpr bool one_per_block() const noexcept { return frag_count == 1; }
  // Blocks a page pool for an RX ring of queue_size entries holds:
  // queue_size / frag_count + 1, the kernel's sizing. Precondition: a cfg a
  // policy returned (frag_count >= 1).
  constexpr std::uint32_t pool_size(std::uint32_t queue_size) const noexcept {
    PAGEFRAG_DCHECK(frag_count >= 1, "pool_size of an RxBufCfg with frag_count 0");
    return queue_size / frag_count + 1;
  }
  // Bytes that pool holds when full: pool_size(queue_size) * block_bytes().
  constexpr std::uint64_t queue_bytes(std::uint32_t queue_size) const noexcept {
    return pool_size(queue_size) * block_bytes();
  }

  friend constexpr bool operator==(const RxBufCfg&, const RxBufCfg&) = default;
};

}  // namespace pagefrag

template <>
struct fmt::formatter<pagefrag::RxBufKind> : fmt::formatter<std::string_view> {
  auto format(pagefrag::RxBufKind kind, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(pagefrag::to_string(kind), ctx);
  }
};
