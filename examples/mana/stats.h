// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/stats.h: ethtool-like counters of the MANA driver, drops by
// reason, and their fmt formatting.
//
// Every counter has one writer at a time (a queue's poller, or the control
// thread while the pollers are stopped, or a TX producer under its queue's
// TX lock), so increments are a relaxed load and store, never an atomic
// read-modify-write; any thread may read them at any time.
#pragma once

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mana {

// A single-writer monotonic counter readable from any thread.
class Counter {
 public:
  // The counter's current writer only.
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Any thread.
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Why the driver dropped a frame the device had placed in a buffer.
#define PAGEFRAG_MANA_DROP_REASONS(X)                                                          \
  X(kZeroLength, "zero_length")               /* completion with packet length 0 */            \
  X(kLengthTooLarge, "length_exceeds_buffer") /* length > the buffer's datasize */             \
  X(kTruncated, "truncated")                  /* CQE_RX_TRUNCATED: frame larger than SGE */    \
  X(kUnknownCqeType, "unknown_cqe_type")      /* a completion type the driver does not know */ \
  X(kNoRefill, "no_refill_buffer")            /* no replacement buffer: old one re-posted */   \
  X(kXdpDrop, "xdp_drop")                     /* the XDP program returned DROP */              \
  X(kXdpAborted, "xdp_aborted")               /* ABORTED, or an invalid action / data move */  \
  X(kXdpTxFull, "xdp_tx_ring_full")           /* XDP_TX with the TX ring full */               \
  X(kRedirectFailed, "xdp_redirect_failed")   /* no such queue, or its TX ring full */

enum class DropReason : std::uint8_t {
#define PAGEFRAG_MANA_DR_ENUM(e, name) e,
  PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DR_ENUM)
#undef PAGEFRAG_MANA_DR_ENUM
};

inline constexpr std::array kAllDropReasons = {
#define PAGEFRAG_MANA_DR_LIST(e, name) DropReason::e,
    PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DR_LIST)
#undef PAGEFRAG_MANA_DR_LIST
};
inline constexpr std::size_t kDropReasonCount = kAllDropReasons.size();

constexpr std::string_view to_string(DropReason r) noexcept {
  switch (r) {
#define PAGEFRAG_MANA_DR_NAME(e, name) \
  case DropReason::e:                  \
    return name;
    PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DR_NAME)
#undef PAGEFRAG_MANA_DR_NAME
  }
  return "unknown";
}

// Per-queue counters (RX side written by the queue's poller, TX producer
// side under the queue's TX lock).
struct QueueStats {
  // --- RX, poller ---
  Counter rx_packets;  // handed to the stack or consumed by XDP PASS/TX/REDIRECT
  Counter rx_bytes;
  Counter rx_truesize;        // sum of the truesize charged per rx packet
  Counter rx_completions;     // completions consumed (all types)
  Counter rx_coalesced;       // CQE_RX_COALESCED_4 completions
  Counter rx_fences;          // CQE_RX_OBJECT_FENCE completions
  Counter rx_cqe_overflow;    // owner bits neither current nor previous
  Counter rx_unsynced_reads;  // checked accessor: packet read before its sync
  Counter rx_polls;
  std::array<Counter, kDropReasonCount> drops{};
  Counter xdp_pass;
  Counter xdp_tx;
  Counter xdp_redirect;
  // --- TX completion side, poller ---
  Counter tx_completed;        // frames the device completed
  Counter tx_errors;           // completions reporting a device read error
  Counter tx_discarded;        // posted frames reclaimed at teardown
  Counter tx_remote_returned;  // buffers returned to another queue's pool
  // --- TX producer side, under the TX lock ---
  Counter tx_posted;

  std::uint64_t dropped() const noexcept {
    std::uint64_t sum = 0;
    for (const Counter& c : drops) sum += c.get();
    return sum;
  }
  std::uint64_t drops_for(DropReason r) const noexcept {
    return drops[static_cast<std::size_t>(r)].get();
  }
};

// Appends `prefix`name: value lines for every counter of `s`, ethtool -S
// style.
inline void format_queue_stats(std::string& out, std::string_view prefix, const QueueStats& s) {
  auto line = [&](std::string_view name, const Counter& c) {
    fmt::format_to(std::back_inserter(out), "{}{}: {}\n", prefix, name, c.get());
  };
  line("rx_packets", s.rx_packets);
  line("rx_bytes", s.rx_bytes);
  line("rx_truesize", s.rx_truesize);
  line("rx_completions", s.rx_completions);
  line("rx_coalesced_cqes", s.rx_coalesced);
  line("rx_fences", s.rx_fences);
  line("rx_cqe_overflow", s.rx_cqe_overflow);
  line("rx_unsynced_reads", s.rx_unsynced_reads);
  line("rx_polls", s.rx_polls);
  for (DropReason r : kAllDropReasons) {
    fmt::format_to(std::back_inserter(out), "{}rx_drop_{}: {}\n", prefix, to_string(r),
                   s.drops_for(r));
  }
  line("xdp_pass", s.xdp_pass);
  line("xdp_tx", s.xdp_tx);
  line("xdp_redirect", s.xdp_redirect);
  line("tx_posted", s.tx_posted);
  line("tx_completed", s.tx_completed);
  line("tx_errors", s.tx_errors);
  line("tx_discarded", s.tx_discarded);
  line("tx_remote_returned", s.tx_remote_returned);
}

}  // namespace mana
