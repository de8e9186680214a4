// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/gdma.h: MANA (GDMA) descriptor layouts and the queue rings
// shared by the driver and the device.
//
// The MANA NIC talks to its driver through work queues (WQ: the driver posts
// 32-byte work requests, the device consumes them in order) and completion
// queues (CQ: the device writes 64-byte completions, the driver polls them).
// A completion is new when its 3 owner bits equal the CQ's current round
// (round = wraps + 1, modulo 8); the previous round's value marks an entry
// the device has not rewritten yet; any other value is an overflow.
//
// Descriptors are plain 32-bit words with accessors, never C bitfields (whose
// layout is the compiler's choice). Every size is static_asserted. The rings
// are the queue memory the driver allocates and registers with the device
// (the kernel's DMA-coherent queue memory): indices are published with
// release stores and read with acquire loads, so the driver and a device
// running on another thread agree on what is posted and what is complete.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string_view>
#include <type_traits>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"

namespace mana {

using pagefrag::is_power_of_two;
using pagefrag::kCacheLineSize;
using pagefrag::log2_exact;

// ---------------------------------------------------------------------------
// Work requests
// ---------------------------------------------------------------------------

// One scatter-gather entry: where the device may write (RX) or read (TX).
struct GdmaSge {
  std::uint64_t address = 0;  // Iova value of the first byte
  std::uint32_t mem_key = 0;  // memory key of the registered region
  std::uint32_t size = 0;     // bytes the device may access
};
static_assert(sizeof(GdmaSge) == 16);
static_assert(std::is_trivially_copyable_v<GdmaSge>);

// The 8-byte work-request header. Word 1 packs num_sge (bits 0..7),
// inline OOB size / 4 (bits 8..10) and client_data_unit (bits 16..29).
struct GdmaWqeHeader {
  std::uint32_t word0 = 0;  // reserved (bits 0..23), last_vbytes (24..31)
  std::uint32_t flags = 0;

  static constexpr GdmaWqeHeader make(std::uint32_t num_sge, std::uint32_t inline_oob_bytes) {
    GdmaWqeHeader h;
    h.flags = (num_sge & 0xFFu) | (((inline_oob_bytes / 4) & 0x7u) << 8);
    return h;
  }
  constexpr std::uint32_t num_sge() const { return flags & 0xFFu; }
  constexpr std::uint32_t inline_oob_bytes() const { return ((flags >> 8) & 0x7u) * 4; }
};
static_assert(sizeof(GdmaWqeHeader) == 8);

// Size of one work-queue basic unit; an RX work request is exactly one.
inline constexpr std::size_t kWqeBasicUnit = 32;
// The smallest inline OOB a work request carries (RX requests carry no data
// in it but still occupy it).
inline constexpr std::uint32_t kInlineOobSmall = 8;

// An RX work request: header, 8-byte inline OOB, one SGE.
struct RxWqe {
  GdmaWqeHeader header;
  std::uint8_t inline_oob[kInlineOobSmall] = {};
  GdmaSge sge;
};
static_assert(sizeof(RxWqe) == 32);
static_assert(sizeof(RxWqe) == kWqeBasicUnit);
static_assert(offsetof(RxWqe, sge) == 16);
static_assert(std::is_trivially_copyable_v<RxWqe>);

// A TX work request: same shape (one SGE: pagefrag's XDP TX never chains),
// the inline OOB carries the short TX OOB (the completion queue's id and
// the frame's slot for the completion to name).
struct TxWqe {
  GdmaWqeHeader header;
  std::uint32_t tx_oob[kInlineOobSmall / 4] = {};
  GdmaSge sge;
};
static_assert(sizeof(TxWqe) == 32);
static_assert(std::is_trivially_copyable_v<TxWqe>);

// ---------------------------------------------------------------------------
// Completions
// ---------------------------------------------------------------------------

// Completion types of the RX and TX completion OOBs (the low 6 bits of the
// first word).
enum class CqeType : std::uint8_t {
  kInvalid = 0,
  kRxOkay = 1,
  kRxCoalesced4 = 2,  // up to four packets, one per packet-info entry
  kRxObjectFence = 3,
  kRxTruncated = 4,  // the frame did not fit the SGE; the buffer is consumed
  kTxOkay = 32,
  // The kernel's CQE_TX_HDR_PROCESSING_ERROR, one of its TX error types:
  // to the driver every TX type but kTxOkay is an error (the frame is
  // consumed all the same).
  kTxHdrProcessingError = 37,
};

constexpr std::string_view to_string(CqeType t) noexcept {
  switch (t) {
    case CqeType::kInvalid:
      return "invalid";
    case CqeType::kRxOkay:
      return "rx_okay";
    case CqeType::kRxCoalesced4:
      return "rx_coalesced_4";
    case CqeType::kRxObjectFence:
      return "rx_object_fence";
    case CqeType::kRxTruncated:
      return "rx_truncated";
    case CqeType::kTxOkay:
      return "tx_okay";
    case CqeType::kTxHdrProcessingError:
      return "tx_hdr_processing_error";
  }
  return "unknown";
}

inline constexpr std::size_t kCqeSize = 64;
inline constexpr std::size_t kCqeDataSize = 60;  // the client's completion OOB
inline constexpr std::size_t kRxCompMaxPackets = 4;
inline constexpr std::uint32_t kCqeOwnerBits = 3;
inline constexpr std::uint32_t kCqeOwnerMask = (1u << kCqeOwnerBits) - 1;

// Per-packet information of an RX completion.
struct RxPacketInfo {
  std::uint32_t len_word = 0;  // bits 0..15 packet length
  std::uint32_t reserved = 0;
  std::uint32_t hash = 0;  // RSS hash of the packet

  constexpr std::uint32_t pkt_len() const { return len_word & 0xFFFFu; }
  constexpr void set_pkt_len(std::uint32_t len) { len_word = len & 0xFFFFu; }
};
static_assert(sizeof(RxPacketInfo) == 12);

// Checksum and hash bits of word 1 of the RX completion OOB.
struct RxCompFlags {
  static constexpr std::uint32_t kVlanIdMask = 0xFFFu;
  static constexpr std::uint32_t kVlanPresent = 1u << 12;
  static constexpr std::uint32_t kOuterIpCsumOk = 1u << 13;
  static constexpr std::uint32_t kOuterIpCsumFail = 1u << 14;
  static constexpr unsigned kHashTypeShift = 16;  // 9 bits
  static constexpr std::uint32_t kHashTypeMask = 0x1FFu << kHashTypeShift;
  static constexpr std::uint32_t kIpCsumOk = 1u << 25;
  static constexpr std::uint32_t kIpCsumFail = 1u << 26;
  static constexpr std::uint32_t kTcpCsumOk = 1u << 27;
  static constexpr std::uint32_t kTcpCsumFail = 1u << 28;
  static constexpr std::uint32_t kUdpCsumOk = 1u << 29;
  static constexpr std::uint32_t kUdpCsumFail = 1u << 30;
};

// The RX completion OOB: the 60 data bytes of an RX completion.
struct RxCompOob {
  std::uint32_t header = 0;  // type (bits 0..5), client type (6..7), vendor error (8..31)
  std::uint32_t flags = 0;   // RxCompFlags
  RxPacketInfo ppi[kRxCompMaxPackets];
  std::uint32_t rx_wqe_offset = 0;

  constexpr std::uint32_t type_bits() const { return header & 0x3Fu; }
  constexpr void set_type(CqeType t) { header = (header & ~0x3Fu) | static_cast<std::uint32_t>(t); }
  constexpr void set_type_bits(std::uint32_t bits) { header = (header & ~0x3Fu) | (bits & 0x3Fu); }
};
static_assert(sizeof(RxCompOob) == kCqeDataSize);
static_assert(std::is_trivially_copyable_v<RxCompOob>);

// The TX completion OOB.
struct TxCompOob {
  std::uint32_t header = 0;  // as RxCompOob::header
  std::uint32_t tx_data_offset = 0;
  std::uint32_t wqe_word = 0;  // sgl offset (bits 0..4), wqe offset (5..31)
  std::uint32_t reserved[12] = {};

  constexpr std::uint32_t type_bits() const { return header & 0x3Fu; }
  constexpr void set_type(CqeType t) { header = (header & ~0x3Fu) | static_cast<std::uint32_t>(t); }
};
static_assert(sizeof(TxCompOob) == kCqeDataSize);

// One completion-queue entry. `info` packs the work queue's number (bits
// 0..23), is_sq (bit 24) and the owner bits (29..31); the device writes it
// last, with release, so a driver that sees new owner bits sees the data.
struct alignas(kCqeSize) Cqe {
  std::uint8_t data[kCqeDataSize] = {};
  std::uint32_t info = 0;

  static constexpr unsigned kOwnerShift = 29;
  static constexpr std::uint32_t make_info(std::uint32_t wq_num, bool is_sq, std::uint32_t owner) {
    return (wq_num & 0xFFFFFFu) | (is_sq ? 1u << 24 : 0u) |
           ((owner & kCqeOwnerMask) << kOwnerShift);
  }
  static constexpr std::uint32_t owner_of(std::uint32_t info) {
    return (info >> kOwnerShift) & kCqeOwnerMask;
  }
  static constexpr std::uint32_t wq_num_of(std::uint32_t info) { return info & 0xFFFFFFu; }
};
static_assert(sizeof(Cqe) == kCqeSize);
static_assert(offsetof(Cqe, info) == kCqeDataSize);
static_assert(std::is_trivially_copyable_v<Cqe>);

// ---------------------------------------------------------------------------
// Rings
// ---------------------------------------------------------------------------

// A work queue of `size` (a power of two) entries of type Wqe. The driver is
// the only producer: it writes entries with write_entry() and publishes them
// with post() (the doorbell). The device is the only consumer: it reads
// posted_head() and entries below it, and tracks its own tail.
template <class Wqe>
class WorkQueue {
 public:
  // Allocates the ring (zeroed). `size` must be a power of two >= 2.
  // Returns nullptr when memory is short (std::nothrow).
  static std::unique_ptr<WorkQueue> create(std::uint32_t size) {
    PAGEFRAG_CHECK(is_power_of_two(size) && size >= 2, "wq size {} not a power of two", size);
    std::unique_ptr<WorkQueue> wq(new (std::nothrow) WorkQueue(size));
    if (wq == nullptr) return nullptr;
    wq->entries_.reset(new (std::nothrow) Wqe[size]());
    if (wq->entries_ == nullptr) return nullptr;
    return wq;
  }

  std::uint32_t size() const noexcept { return size_; }

  // Driver: the ring itself, for a poll loop that writes many entries
  // (entry `index` is ring()[index & (size() - 1)]).
  Wqe* ring() noexcept { return entries_.get(); }
  // Driver: writes the entry at ring position `index` (taken modulo size).
  void write_entry(std::uint32_t index, const Wqe& wqe) noexcept {
    entries_[index & (size_ - 1)] = wqe;
  }
  // Driver: makes every entry below `head` (a free-running count) visible
  // to the device.
  void post(std::uint32_t head) noexcept { posted_head_.store(head, std::memory_order_release); }
  // Driver: the last published head.
  std::uint32_t driver_head() const noexcept {
    return posted_head_.load(std::memory_order_relaxed);
  }

  // Device: the free-running count of posted entries.
  std::uint32_t posted_head() const noexcept {
    return posted_head_.load(std::memory_order_acquire);
  }
  // Device: a copy of the entry at `index` (modulo size). Only entries
  // below posted_head() hold meaningful work requests.
  Wqe read_entry(std::uint32_t index) const noexcept { return entries_[index & (size_ - 1)]; }

 private:
  explicit WorkQueue(std::uint32_t size) : size_(size) {}

  std::uint32_t size_;
  std::unique_ptr<Wqe[]> entries_;
  alignas(kCacheLineSize) std::atomic<std::uint32_t> posted_head_{0};
};

// The result of the driver reading the entry at its CQ head.
enum class CqeState : std::uint8_t {
  kEmpty,     // owner bits of the previous round: nothing new yet
  kReady,     // owner bits of the current round: a new completion
  kOverflow,  // any other owner bits: the device overran the driver
};

// An event queue: the interrupt the completion queues attached to it raise
// (MANA attaches each CQ to an EQ, one MSI-X vector). A poller that serves
// several queues sleeps on one. Any thread.
class EventQueue {
 public:
  // The count to pass to wait(): read it before arming.
  std::uint32_t seen() const noexcept { return events_.load(std::memory_order_acquire); }
  // Sleeps until an event after `seen` (at once if there was one).
  void wait(std::uint32_t seen) const noexcept { events_.wait(seen, std::memory_order_acquire); }
  // Raises an event: wakes every waiter (a device interrupt, or a stop).
  void raise() noexcept {
    events_.fetch_add(1, std::memory_order_release);
    events_.notify_all();
  }

 private:
  alignas(kCacheLineSize) std::atomic<std::uint32_t> events_{0};
};

// A completion queue of `size` (a power of two) 64-byte entries. The device
// is the only producer (device_write), the driver the only consumer
// (read/advance). The driver publishes how far it has consumed
// (consumed_head) so the device never overwrites an unread completion.
class CompletionQueue {
 public:
  static std::unique_ptr<CompletionQueue> create(std::uint32_t size) {
    PAGEFRAG_CHECK(is_power_of_two(size) && size >= 2, "cq size {} not a power of two", size);
    std::unique_ptr<CompletionQueue> cq(new (std::nothrow) CompletionQueue(size));
    if (cq == nullptr) return nullptr;
    cq->entries_.reset(new (std::nothrow) Cqe[size]());
    if (cq->entries_ == nullptr) return nullptr;
    return cq;
  }

  std::uint32_t size() const noexcept { return size_; }
  // The owner bits entries carry while the ring is on free-running index
  // `index`: round (index / size) + 1, modulo 8. Zeroed memory thus reads as
  // the previous round of round 1: empty.
  std::uint32_t owner_for(std::uint32_t index) const noexcept {
    return ((index >> log2_exact(size_)) + 1) & kCqeOwnerMask;
  }

  // --- driver side (one thread at a time) ---

  // Classifies the entry at the driver's head and, when kReady, copies it to
  // *out (acquire: the data the device wrote before its owner bits).
  CqeState read(Cqe* out) const noexcept {
    const Cqe& e = entries_[head_ & (size_ - 1)];
    const std::uint32_t info = std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(e.info))
                                   .load(std::memory_order_acquire);
    const std::uint32_t owner = Cqe::owner_of(info);
    if (owner == owner_for(head_)) {
      std::memcpy(out->data, e.data, kCqeDataSize);
      out->info = info;
      return CqeState::kReady;
    }
    if (owner == ((owner_for(head_) - 1) & kCqeOwnerMask)) return CqeState::kEmpty;
    return CqeState::kOverflow;
  }
  // Like read(), without the copy: *out points at the ring entry itself,
  // which stays the driver's (the device does not rewrite it) until
  // ring_doorbell() publishes a head past it.
  CqeState peek(const Cqe** out) const noexcept {
    const Cqe& e = entries_[head_ & (size_ - 1)];
    const std::uint32_t info = std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(e.info))
                                   .load(std::memory_order_acquire);
    const std::uint32_t owner = Cqe::owner_of(info);
    const std::uint32_t current = owner_for(head_);
    if (PAGEFRAG_LIKELY(owner == current)) {
      *out = &e;
      return CqeState::kReady;
    }
    if (owner == ((current - 1) & kCqeOwnerMask)) return CqeState::kEmpty;
    return CqeState::kOverflow;
  }
  // Consumes the entry at the head.
  void advance() noexcept { ++head_; }
  // Consumes every entry below `head` (a poll loop that walked them with
  // ring() and owner_for()).
  void advance_to(std::uint32_t head) noexcept { head_ = head; }
  // The ring, for a poll loop: entry `index` is ring()[index & (size() - 1)];
  // its info word must be read with acquire (info_acquire) before its data.
  const Cqe* ring() const noexcept { return entries_.get(); }
  static std::uint32_t info_acquire(const Cqe& e) noexcept {
    return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(e.info))
        .load(std::memory_order_acquire);
  }
  // Tells the device everything below the head is consumed (the kernel's
  // CQ doorbell).
  void ring_doorbell() noexcept { consumed_.store(head_, std::memory_order_release); }
  std::uint32_t head() const noexcept { return head_; }

  // --- the interrupt (the CQ doorbell's arm bit) ---
  //
  // A driver with nothing to do arms its CQs and sleeps on their event
  // queue; the device's next completion on an armed CQ raises the event
  // queue and wakes it (NAPI's napi_complete_done() and the IRQ). One atomic
  // word holds the arm bit and the count of completions the device wrote,
  // and both sides change it only with read-modify-writes, so no wake-up is
  // lost: the driver arms only if the count equals its head (everything
  // written is consumed), and the completion after the arm sees the bit,
  // clears it and raises the event queue.

  // Control thread, while no driver thread uses the CQ (a device may be
  // completing on it: the pointer is atomic): the event queue this CQ
  // raises (by default one of its own).
  void attach(EventQueue* eq) noexcept {
    irq_.eq.store(eq != nullptr ? eq : &irq_.own, std::memory_order_release);
  }
  EventQueue& event_queue() const noexcept { return *irq_.eq.load(std::memory_order_acquire); }
  // Driver: arms the CQ unless a completion is waiting past the head (then
  // false: poll again instead of sleeping). Read the event queue's count
  // before arming, and wait on it only when every CQ armed.
  bool arm() noexcept {
    std::uint64_t s = irq_.state.load(std::memory_order_acquire);
    if (static_cast<std::uint32_t>(s) != head_) return false;  // written, not consumed
    return (s & kArmed) != 0 ||
           irq_.state.compare_exchange_strong(s, s | kArmed, std::memory_order_acq_rel);
  }

  // --- device side (one thread at a time) ---

  // Free entries the device may write without overwriting unread ones.
  std::uint32_t device_space() const noexcept {
    return size_ - (tail_ - consumed_.load(std::memory_order_acquire));
  }
  // Writes a completion at the device's tail with the given owner bits
  // (normally owner_for(tail)); the info word is stored last, with release.
  void device_write_at_tail(const std::uint8_t (&data)[kCqeDataSize], std::uint32_t wq_num,
                            bool is_sq, std::uint32_t owner) noexcept {
    Cqe& e = entries_[tail_ & (size_ - 1)];
    std::memcpy(e.data, data, kCqeDataSize);
    std::atomic_ref<std::uint32_t>(e.info).store(Cqe::make_info(wq_num, is_sq, owner),
                                                 std::memory_order_release);
  }
  // Rewrites only the owner bits of the entry at the tail (a late owner-bit
  // write).
  void device_set_owner_at_tail(std::uint32_t owner) noexcept {
    Cqe& e = entries_[tail_ & (size_ - 1)];
    std::atomic_ref<std::uint32_t> info(e.info);
    const std::uint32_t old = info.load(std::memory_order_relaxed);
    info.store((old & ~(kCqeOwnerMask << Cqe::kOwnerShift)) |
                   ((owner & kCqeOwnerMask) << Cqe::kOwnerShift),
               std::memory_order_release);
  }
  // Completes the entry at the tail: counts it, and when the CQ is armed
  // disarms it and raises its event queue (the interrupt).
  void device_advance() noexcept {
    ++tail_;
    std::uint64_t s = irq_.state.load(std::memory_order_relaxed);
    while (!irq_.state.compare_exchange_weak(s, (s + 1) & ~kArmed, std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
    }
    if ((s & kArmed) != 0) event_queue().raise();
  }
  std::uint32_t device_tail() const noexcept { return tail_; }

  // Test/fuzz access: the raw ring bytes (size * 64). Writing them while a
  // device runs is a data race; fuzzers use it with no device.
  std::span<std::byte> raw_bytes() noexcept {
    return {reinterpret_cast<std::byte*>(entries_.get()), std::size_t{size_} * kCqeSize};
  }

 private:
  explicit CompletionQueue(std::uint32_t size) : size_(size) {}

  std::uint32_t size_;
  std::unique_ptr<Cqe[]> entries_;
  alignas(kCacheLineSize) std::uint32_t head_ = 0;  // driver
  std::atomic<std::uint32_t> consumed_{0};          // driver -> device
  alignas(kCacheLineSize) std::uint32_t tail_ = 0;  // device
  // Interrupt::state: the arm bit, and the completions written (mod 2^32;
  // the count never reaches the bit).
  static constexpr std::uint64_t kArmed = std::uint64_t{1} << 63;
  struct alignas(kCacheLineSize) Interrupt {
    std::atomic<std::uint64_t> state{0};
    std::atomic<EventQueue*> eq{&own};
    EventQueue own;
  } irq_;
};

}  // namespace mana
