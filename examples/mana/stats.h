// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/stats.h: ethtool-like counters of the MANA driver, drops by
// reason, and their export.
//
// Every counter is written once, in one X-macro list (pagefrag/base/
// counters.h): PAGEFRAG_MANA_QUEUE_COUNTERS, whose drop counters come from
// the one list of drop reasons, PAGEFRAG_MANA_DROP_REASONS. From them:
//  - DropReason, its names and kAllDropReasons;
//  - QueueStats, the live per-queue counters (single-writer Counters);
//  - QueueCounters, a plain snapshot that is a pagefrag::CounterStruct: the
//    port's totals are the counters_sum of every queue's snapshot, and
//    fmt, counter_table() and counter_names() export it.
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
#include <iterator>
#include <string>
#include <string_view>

#include "pagefrag/base/counters.h"

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

// Why the driver dropped a frame the device had placed in a buffer:
// M(X, Enumerator, name, "what it means") per reason. M adapts an entry to
// what its user needs (an enumerator, a name, a counter of list X); the
// exported counter of reason `name` is rx_drop_<name>.
#define PAGEFRAG_MANA_DROP_REASONS(M, X)                                                \
  M(X, kZeroLength, zero_length, "completion with packet length 0")                     \
  M(X, kLengthTooLarge, length_exceeds_buffer, "length > the buffer's datasize")        \
  M(X, kTruncated, truncated, "CQE_RX_TRUNCATED: frame larger than the SGE")            \
  M(X, kUnknownCqeType, unknown_cqe_type, "a completion type the driver does not know") \
  M(X, kNoRefill, no_refill_buffer, "no replacement buffer: the old one re-posted")     \
  M(X, kXdpDrop, xdp_drop, "the XDP program returned DROP")                             \
  M(X, kXdpAborted, xdp_aborted, "ABORTED, or an invalid action or data move")          \
  M(X, kXdpTxFull, xdp_tx_ring_full, "XDP_TX with the TX ring full")                    \
  M(X, kRedirectFailed, xdp_redirect_failed, "REDIRECT to no such queue, or its TX ring full")

// One drop reason as an entry X(E, T, name, doc) of a counter list.
#define PAGEFRAG_MANA_DROP_COUNTER_(X, E, name, doc) X(E, std::uint64_t, rx_drop_##name, doc)

// The counters of one queue (and, summed, of a port): X(E, T, name, doc).
#define PAGEFRAG_MANA_QUEUE_COUNTERS(X)                                                        \
  /* --- RX, poller --- */                                                                     \
  X(kRxPackets, std::uint64_t, rx_packets,                                                     \
    "handed to the stack or consumed by XDP PASS/TX/REDIRECT")                                 \
  X(kRxBytes, std::uint64_t, rx_bytes, "bytes of those packets")                               \
  X(kRxTruesize, std::uint64_t, rx_truesize, "sum of the truesize charged per rx packet")      \
  X(kRxCompletions, std::uint64_t, rx_completions, "completions consumed (all types)")         \
  X(kRxCoalesced, std::uint64_t, rx_coalesced_cqes, "CQE_RX_COALESCED_4 completions")          \
  X(kRxFences, std::uint64_t, rx_fences, "CQE_RX_OBJECT_FENCE completions")                    \
  X(kRxCqeOverflow, std::uint64_t, rx_cqe_overflow,                                            \
    "ring overruns (owner bits neither current nor previous); the queue then stops receiving") \
  X(kRxUnsyncedReads, std::uint64_t, rx_unsynced_reads,                                        \
    "checked accessor: packet read before its sync")                                           \
  X(kRxPolls, std::uint64_t, rx_polls, "poll() calls")                                         \
  X(kRxBusyPolls, std::uint64_t, rx_busy_polls, "poll() calls that found work")                \
  X(kRxPollNs, std::uint64_t, rx_poll_ns,                                                      \
    "ns inside busy polls, sink excluded (only with ManaPortOptions.time_polls)")              \
  PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DROP_COUNTER_, X)                                   \
  X(kXdpPass, std::uint64_t, xdp_pass, "XDP PASS verdicts")                                    \
  X(kXdpTx, std::uint64_t, xdp_tx, "XDP TX frames posted")                                     \
  X(kXdpRedirect, std::uint64_t, xdp_redirect, "XDP REDIRECT frames posted")                   \
  /* --- TX completion side, poller --- */                                                     \
  X(kTxCompleted, std::uint64_t, tx_completed, "frames the device completed")                  \
  X(kTxErrors, std::uint64_t, tx_errors, "completions of an error type (not CQE_TX_OKAY)")     \
  X(kTxBadCompletions, std::uint64_t, tx_bad_completions,                                      \
    "TX completions naming no frame posted, or a TX ring overrun: ignored")                    \
  X(kTxDiscarded, std::uint64_t, tx_discarded, "posted frames reclaimed at teardown")          \
  X(kTxRemoteReturned, std::uint64_t, tx_remote_returned,                                      \
    "buffers returned to another queue's pool")                                                \
  /* --- TX producer side, under the TX lock --- */                                            \
  X(kTxPosted, std::uint64_t, tx_posted, "frames posted on the TX ring")

#define PAGEFRAG_MANA_DR_ENUM_(X, E, name, doc) E,
enum class DropReason : std::uint8_t { PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DR_ENUM_, _) };
#undef PAGEFRAG_MANA_DR_ENUM_

#define PAGEFRAG_MANA_DR_LIST_(X, E, name, doc) DropReason::E,
inline constexpr std::array kAllDropReasons = {
    PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DR_LIST_, _)};
#undef PAGEFRAG_MANA_DR_LIST_
inline constexpr std::size_t kDropReasonCount = kAllDropReasons.size();

constexpr std::string_view to_string(DropReason r) noexcept {
  switch (r) {
#define PAGEFRAG_MANA_DR_NAME_(X, E, name, doc) \
  case DropReason::E:                           \
    return #name;
    PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DR_NAME_, _)
#undef PAGEFRAG_MANA_DR_NAME_
  }
  return "unknown";
}

// A snapshot of one queue's counters, or their sum over a port's queues.
struct QueueCounters {
  PAGEFRAG_COUNTERS(QueueCounters, PAGEFRAG_MANA_QUEUE_COUNTERS)

  std::uint64_t drops_for(DropReason r) const noexcept {
    switch (r) {
#define PAGEFRAG_MANA_DR_GET_(X, E, name, doc) \
  case DropReason::E:                          \
    return rx_drop_##name;
      PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DR_GET_, _)
#undef PAGEFRAG_MANA_DR_GET_
    }
    return 0;
  }
  // Every drop, whatever the reason.
  std::uint64_t dropped() const noexcept {
    std::uint64_t sum = 0;
    for (DropReason r : kAllDropReasons) sum += drops_for(r);
    return sum;
  }
};
static_assert(pagefrag::CounterStruct<QueueCounters>);

// Sums over every queue of a port.
using PortTotals = QueueCounters;

// The live counters of one queue (RX side written by the queue's poller, TX
// producer side under the queue's TX lock).
struct QueueStats {
#define PAGEFRAG_MANA_LIVE_MEMBER_(E, T, name, doc) Counter name;
  PAGEFRAG_MANA_QUEUE_COUNTERS(PAGEFRAG_MANA_LIVE_MEMBER_)
#undef PAGEFRAG_MANA_LIVE_MEMBER_

  // Any thread: every counter now (each read relaxed; a running poller may
  // move some between the reads).
  QueueCounters snapshot() const noexcept {
    QueueCounters s;
#define PAGEFRAG_MANA_LIVE_READ_(E, T, name, doc) s.name = name.get();
    PAGEFRAG_MANA_QUEUE_COUNTERS(PAGEFRAG_MANA_LIVE_READ_)
#undef PAGEFRAG_MANA_LIVE_READ_
    return s;
  }
  // The counter of drops for `r` (its writer only).
  Counter& drop(DropReason r) noexcept {
    switch (r) {
#define PAGEFRAG_MANA_DR_LIVE_(X, E, name, doc) \
  case DropReason::E:                           \
    return rx_drop_##name;
      PAGEFRAG_MANA_DROP_REASONS(PAGEFRAG_MANA_DR_LIVE_, _)
#undef PAGEFRAG_MANA_DR_LIVE_
    }
    return rx_drop_unknown_cqe_type;
  }
  std::uint64_t dropped() const noexcept { return snapshot().dropped(); }
  std::uint64_t drops_for(DropReason r) const noexcept { return snapshot().drops_for(r); }
};

// Appends `prefix`name: value lines for every counter of `s`, ethtool -S
// style.
inline void format_counters(std::string& out, std::string_view prefix, const QueueCounters& s) {
  for (const pagefrag::CounterValue& v : pagefrag::counter_table(s)) {
    fmt::format_to(std::back_inserter(out), "{}{}: {}\n", prefix, v.name, v.value);
  }
}

}  // namespace mana
