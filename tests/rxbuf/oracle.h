// SPDX-License-Identifier: BSD-3-Clause
// tests/rxbuf/oracle.h: the RX buffer rules, written again for the tests.
//
// An independent restatement of mana_get_rxbuf_cfg (after 730ff06, truesize
// per f73896b) and of the min-waste search, from the kernel reference and the
// issue, deliberately NOT using any pagefrag function (rounding by division,
// orders by a loop, constants spelled out), so a bug in the library's
// arithmetic cannot hide in its own expected values.
#pragma once

#include <cstdint>
#include <string>

namespace pagefrag::test {

struct OracleCfg {
  std::string kind;
  std::uint64_t datasize = 0;
  std::uint64_t alloc_size = 0;
  std::uint64_t headroom = 0;
  std::uint64_t frag_count = 0;
  std::uint64_t order = 0;
  std::uint64_t truesize = 0;

  std::uint64_t block(std::uint64_t page_size) const { return page_size << order; }
  std::uint64_t pool_size(std::uint64_t queue_size) const { return queue_size / frag_count + 1; }
  std::uint64_t queue_bytes(std::uint64_t page_size, std::uint64_t queue_size) const {
    return pool_size(queue_size) * block(page_size);
  }
};

inline std::uint64_t oracle_round_up(std::uint64_t x, std::uint64_t to) {
  return (x + to - 1) / to * to;
}

// Smallest order whose block holds bytes.
inline std::uint64_t oracle_order(std::uint64_t bytes, std::uint64_t page_size) {
  std::uint64_t order = 0;
  while ((page_size << order) < bytes) ++order;
  return order;
}

// MANA_RXBUF_PAD: skb_shared_info (320) rounded to the cache line (64), plus ETH_HLEN (14).
inline constexpr std::uint64_t kOraclePad = 320 + 14;

inline OracleCfg oracle_kernel(std::uint64_t page_size, std::uint64_t mtu, bool xdp) {
  const std::uint64_t datasize = mtu + 14;
  if (xdp) return {"xdp", datasize, page_size, 256, 1, 0, page_size};
  if (mtu + kOraclePad > page_size / 2) {
    const std::uint64_t alloc = oracle_round_up(mtu + kOraclePad, 64);
    const std::uint64_t order = oracle_order(alloc, page_size);
    return {"jumbo", datasize, alloc, 0, 1, order, page_size << order};
  }
  const std::uint64_t buf = oracle_round_up(oracle_round_up(mtu + kOraclePad, 64), 64);
  return {"standard", datasize, buf, 0, page_size / buf, 0, buf};
}

// The least pool bytes over the kernel layout and fragments at orders 0..max_order.
inline std::uint64_t oracle_min_waste_bytes(std::uint64_t page_size, std::uint64_t mtu, bool xdp,
                                            std::uint64_t queue_size, std::uint64_t max_order) {
  std::uint64_t best = oracle_kernel(page_size, mtu, xdp).queue_bytes(page_size, queue_size);
  if (xdp) return best;
  const std::uint64_t buf = oracle_round_up(mtu + kOraclePad, 64);
  for (std::uint64_t order = 0; order <= max_order; ++order) {
    const std::uint64_t count = (page_size << order) / buf;
    if (count == 0) continue;
    const std::uint64_t bytes = (queue_size / count + 1) * (page_size << order);
    if (bytes < best) best = bytes;
  }
  return best;
}

}  // namespace pagefrag::test
