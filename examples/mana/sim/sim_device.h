// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/sim/sim_device.h: a simulated MANA device for tests,
// examples and benchmarks.
//
// SimDevice plays the NIC's side of the GDMA queues the driver registers:
//  - RX: offer_rx() takes the next posted RX work request of the queue's
//    active RQ object, writes the frame into its buffer ONLY through the DMA
//    backend's device-side access (device_write: an unmapped, wrong-direction
//    or out-of-range write faults and is counted), and writes a completion
//    with the current owner bits. Up to `coalesce` packets share one
//    CQE_RX_COALESCED_4 completion (flushed when full, by flush_rx(), or
//    before a fence). A frame larger than the SGE is truncated to it and
//    completed as CQE_RX_TRUNCATED.
//  - Misbehaviour on request (Options::corrupt_probability and kinds): a real
//    completion gets a length larger than its buffer, a zero length, an
//    unknown type, or is first published with stale owner bits (and garbage
//    data) and fixed by the device's next operation on that queue.
//  - TX: process_tx() reads every posted TX frame through device_read,
//    hands it to the wire callback and completes it.
//  - fence_rq(): stops the RQ consuming work requests and writes a
//    CQE_RX_OBJECT_FENCE after every earlier completion.
// Its counters are its own, independent of the driver's.
//
// Threads: each queue index may be driven by one device thread at a time
// (offer_rx / flush_rx / process_tx); object creation, steering and fences
// come from the driver's control thread. Each object has a mutex; the device
// is a simulator, not a fast path.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "examples/mana/device.h"
#include "examples/mana/gdma.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/counters.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/mock_dma.h"

namespace mana::sim {

using pagefrag::Iova;
using pagefrag::MockDma;

// A DMA backend a simulated device can use: device-side reads and writes.
template <class D>
concept DeviceAccessDma = requires(D& d, Iova iova, std::span<const std::byte> in,
                                   std::span<std::byte> out) {
  { d.device_write(iova, in) } -> std::same_as<absl::Status>;
  { d.device_read(iova, out) } -> std::same_as<absl::Status>;
};

// The memory key the device accepts in SGEs (the kernel's GPA mkey).
inline constexpr std::uint32_t kSimMemKey = 0x5EED0001u;

// Ways the device can corrupt a real completion.
enum class Corruption : std::uint8_t {
  kLengthTooLarge,  // pkt_len > the SGE's size
  kZeroLength,      // pkt_len == 0
  kUnknownType,     // a CQE type the driver does not know
  kStaleOwner,      // published late: garbage with the previous round's owner bits first
};
inline constexpr std::size_t kCorruptionKinds = 4;

inline constexpr std::string_view to_string(Corruption c) noexcept {
  switch (c) {
    case Corruption::kLengthTooLarge:
      return "length_too_large";
    case Corruption::kZeroLength:
      return "zero_length";
    case Corruption::kUnknownType:
      return "unknown_type";
    case Corruption::kStaleOwner:
      return "stale_owner";
  }
  return "unknown";
}

// What happened to one offered frame.
enum class OfferResult : std::uint8_t {
  kPlaced,    // written into a posted buffer (maybe truncated or corrupted)
  kNoQueue,   // no active RQ for the queue index (port down, fenced)
  kNoBuffer,  // no posted work request, or no room in the CQ
  kDmaFault,  // the device-side write faulted (counted, completion truncated)
};

// How the device completes TX work requests, on request.
enum class TxMisbehaviour : std::uint8_t {
  kNone,
  kErrorType,    // each completion has an error type (the frame is consumed)
  kWrongCookie,  // each completion names a slot one past the frame's
};

struct SimDeviceOptions {
  std::uint32_t max_objects = 256;  // RQ + SQ objects alive at once
  std::uint32_t coalesce = 1;       // packets per RX completion, 1..4
  double corrupt_probability = 0;   // per placed frame
  std::array<bool, kCorruptionKinds> corrupt_kinds = {true, true, true, true};
  TxMisbehaviour tx_misbehaviour = TxMisbehaviour::kNone;
  std::uint64_t seed = 1;
};

// The device's counters, one list: X(E, T, name, "what it counts").
#define MANA_SIM_DEVICE_COUNTERS(X)                                                            \
  X(kFramesOffered, std::uint64_t, frames_offered, "frames the wire offered")                  \
  X(kFramesPlaced, std::uint64_t, frames_placed, "frames written into a posted buffer")        \
  X(kFramesNoQueue, std::uint64_t, frames_no_queue, "frames for a queue with no RX object")    \
  X(kFramesNoBuffer, std::uint64_t, frames_no_buffer, "frames that found no posted buffer")    \
  X(kFramesTruncated, std::uint64_t, frames_truncated, "frames larger than the buffer's SGE")  \
  X(kDmaFaults, std::uint64_t, dma_faults, "RX writes the DMA backend refused")                \
  X(kRxCompletions, std::uint64_t, rx_completions, "RX completions written")                   \
  X(kCompletionsCorrupted, std::uint64_t, completions_corrupted, "completions corrupted")      \
  X(kCorruptedLengthTooLarge, std::uint64_t, corrupted_length_too_large,                       \
    "corrupted: a length above the SGE's size")                                                \
  X(kCorruptedZeroLength, std::uint64_t, corrupted_zero_length, "corrupted: a zero length")    \
  X(kCorruptedUnknownType, std::uint64_t, corrupted_unknown_type,                              \
    "corrupted: an unknown CQE type")                                                          \
  X(kCorruptedStaleOwner, std::uint64_t, corrupted_stale_owner, "corrupted: stale owner bits") \
  X(kFences, std::uint64_t, fences, "RX object fences completed")                              \
  X(kTxFrames, std::uint64_t, tx_frames, "frames transmitted")                                 \
  X(kTxBytes, std::uint64_t, tx_bytes, "bytes of those frames")                                \
  X(kTxFaults, std::uint64_t, tx_faults, "TX reads the DMA backend refused")

// The counter of completions corrupted in the way `kind`, in a snapshot or
// in the live counters (the members have the same names).
template <class Counters>
auto& corrupted_counter(Counters& c, Corruption kind) noexcept {
  switch (kind) {
    case Corruption::kLengthTooLarge:
      return c.corrupted_length_too_large;
    case Corruption::kZeroLength:
      return c.corrupted_zero_length;
    case Corruption::kUnknownType:
      return c.corrupted_unknown_type;
    case Corruption::kStaleOwner:
      break;
  }
  return c.corrupted_stale_owner;
}

// A snapshot of the device's counters, or their sum over its queues: a
// pagefrag::CounterStruct (fmt, counter_table(), counters_sum()).
struct SimDeviceCounters {
  PAGEFRAG_COUNTERS(SimDeviceCounters, MANA_SIM_DEVICE_COUNTERS)
};
static_assert(pagefrag::CounterStruct<SimDeviceCounters>);

// The live counters of one queue index (relaxed atomics: any thread may
// read them; written by the device threads).
struct SimDeviceLiveCounters {
#define MANA_SIM_LIVE_MEMBER_(E, T, name, doc) std::atomic<T> name{0};
  MANA_SIM_DEVICE_COUNTERS(MANA_SIM_LIVE_MEMBER_)
#undef MANA_SIM_LIVE_MEMBER_

  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  SimDeviceCounters snapshot() const noexcept {
    SimDeviceCounters s;
#define MANA_SIM_LIVE_LOAD_(E, T, name, doc) s.name = name.load(std::memory_order_relaxed);
    MANA_SIM_DEVICE_COUNTERS(MANA_SIM_LIVE_LOAD_)
#undef MANA_SIM_LIVE_LOAD_
    return s;
  }
};

template <DeviceAccessDma Dma>
class SimDevice {
 public:
  using ObjectId = std::uint32_t;
  static constexpr ObjectId kNoObject = ~ObjectId{0};
  static constexpr std::uint32_t kMaxQueues = 64;
  // Called with (queue index, frame bytes) for every transmitted frame, from
  // the device thread of that queue (so it must be thread-safe when several
  // device threads run).
  using WireFn = std::function<void(std::uint32_t, std::span<const std::byte>)>;

  SimDevice(Dma& dma, const SimDeviceOptions& opts)
      : dma_(&dma), opts_(opts), objects_(opts.max_objects) {
    PAGEFRAG_CHECK(opts.coalesce >= 1 && opts.coalesce <= kRxCompMaxPackets,
                   "coalesce {} outside 1..4", opts.coalesce);
    for (auto& s : rx_steer_) s.store(kNoObject);
    for (auto& s : tx_steer_) s.store(kNoObject);
  }
  SimDevice(const SimDevice&) = delete;
  SimDevice& operator=(const SimDevice&) = delete;

  // Control thread. Registers an RQ (the kernel's create_wq_obj). The rings
  // must outlive destroy_rq().
  absl::StatusOr<ObjectId> create_rq(WorkQueue<RxWqe>* wq, CompletionQueue* cq) {
    return create(Kind::kRq, wq, nullptr, cq);
  }
  absl::StatusOr<ObjectId> create_sq(WorkQueue<TxWqe>* wq, CompletionQueue* cq) {
    return create(Kind::kSq, nullptr, wq, cq);
  }
  // Control thread. The object must not be steered to.
  void destroy(ObjectId id) {
    Object& o = object(id);
    std::lock_guard lock(o.mu);
    PAGEFRAG_CHECK(o.f.kind != Kind::kFree, "destroying free object {}", id);
    o.f = typename Object::Fields{};
  }
  // Control thread. Routes queue index `q`'s traffic to `id` (kNoObject: none).
  void steer_rx(std::uint32_t q, ObjectId id) { steer(rx_steer_, q, id, Kind::kRq); }
  void steer_tx(std::uint32_t q, ObjectId id) { steer(tx_steer_, q, id, Kind::kSq); }

  // Control thread. Flushes pending completions, stops the RQ consuming
  // work requests, and writes a fence completion after all earlier ones.
  void fence_rq(ObjectId id) {
    Object& o = object(id);
    std::lock_guard lock(o.mu);
    PAGEFRAG_CHECK(o.f.kind == Kind::kRq, "fence of non-RQ object {}", id);
    fix_stale_owner(o);
    flush_pending(o);
    o.f.fenced = true;
    RxCompOob oob;
    oob.set_type(CqeType::kRxObjectFence);
    write_cqe(o, oob, false);
    SimDeviceLiveCounters::add(counters_for(o.f.queue).fences, 1);
  }

  // Device thread of queue `q`: delivers one frame.
  OfferResult offer_rx(std::uint32_t q, std::span<const std::byte> frame, std::uint32_t hash) {
    SimDeviceLiveCounters::add(counters_for(q).frames_offered, 1);
    const ObjectId id = q < kMaxQueues ? rx_steer_[q].load(std::memory_order_acquire) : kNoObject;
    if (id == kNoObject) return count_no_queue(q);
    Object& o = object(id);
    std::lock_guard lock(o.mu);
    if (o.f.kind != Kind::kRq || o.f.fenced || o.f.queue != q) return count_no_queue(q);
    fix_stale_owner(o);
    return place(o, frame, hash);
  }
  // Device thread of queue `q`: true when the queue is steered to a live RQ
  // that has no posted work request or no completion room right now (a
  // generator may wait instead of having the frame dropped).
  bool rx_backpressure(std::uint32_t q) {
    bool full = false;
    with_steered(rx_steer_, q, Kind::kRq, [&](Object& o) {
      full = !o.f.fenced &&
             (o.f.wq_tail == o.f.rq->posted_head() || !cq_has_room(o, o.f.pending_count ? 2 : 1));
    });
    return full;
  }
  // Device thread of queue `q`: how many frames offer_rx() can place now
  // without a drop (0 when the queue is not steered to a live RQ), counting
  // two completion entries per frame (a frame that ends a coalesced
  // completion early, truncated or corrupted, writes two). A generator asks
  // once per burst instead of checking back-pressure per frame.
  std::uint32_t rx_room(std::uint32_t q) {
    std::uint32_t room = 0;
    with_steered(rx_steer_, q, Kind::kRq, [&](Object& o) {
      if (o.f.fenced) return;
      const std::uint32_t wqes = o.f.rq->posted_head() - o.f.wq_tail;
      const std::uint32_t space = o.f.cq->device_space();
      const std::uint32_t cqes = space > 2 ? (space - 2) / 2 : 0;
      room = std::min(wqes, cqes);
    });
    return room;
  }
  // Any thread: whether queue index `q` is steered to a live, unfenced RQ.
  bool rx_steered(std::uint32_t q) {
    bool live = false;
    with_steered(rx_steer_, q, Kind::kRq, [&](Object& o) { live = !o.f.fenced; });
    return live;
  }
  // Device thread of queue `q`: writes the pending coalesced completion.
  void flush_rx(std::uint32_t q) {
    with_steered(rx_steer_, q, Kind::kRq, [&](Object& o) {
      fix_stale_owner(o);
      flush_pending(o);
    });
  }
  // Device thread of queue `q`: transmits every posted TX frame; returns how
  // many.
  std::uint32_t process_tx(std::uint32_t q) {
    std::uint32_t done = 0;
    with_steered(tx_steer_, q, Kind::kSq, [&](Object& o) { done = transmit_all(o, q); });
    return done;
  }

  // The memory key SGEs must carry.
  std::uint32_t mem_key() const { return kSimMemKey; }
  // Control thread, before traffic: installs the wire callback.
  void set_wire(WireFn fn) { wire_ = std::move(fn); }
  // The sum of every queue's counters, a snapshot. Any thread.
  SimDeviceCounters counters() const {
    SimDeviceCounters total;
    for (const Shard& sh : shards_) total = pagefrag::counters_sum(total, sh.c.snapshot());
    return total;
  }
  const SimDeviceOptions& options() const { return opts_; }

 private:
  enum class Kind : std::uint8_t { kFree, kRq, kSq };

  struct alignas(kCacheLineSize) Object {  // objects of different queues share no line
    struct Fields {
      Kind kind = Kind::kFree;
      WorkQueue<RxWqe>* rq = nullptr;
      WorkQueue<TxWqe>* sq = nullptr;
      CompletionQueue* cq = nullptr;
      std::uint32_t queue = ~0u;  // steered queue index
      std::uint32_t wq_tail = 0;  // next work request to consume
      bool fenced = false;
      RxCompOob pending;  // coalescing completion being filled
      std::uint32_t pending_count = 0;
      bool stale_pending = false;  // tail entry published with stale owner bits
      RxCompOob stale_real;        // what it should have been
      std::uint64_t rng = 0;
    };
    std::mutex mu;  // guards f and scratch
    Fields f;
    std::vector<std::byte> scratch;  // TX frame being read
  };

  absl::StatusOr<ObjectId> create(Kind kind, WorkQueue<RxWqe>* rq, WorkQueue<TxWqe>* sq,
                                  CompletionQueue* cq) {
    for (ObjectId id = 0; id < objects_.size(); ++id) {
      Object& o = objects_[id];
      std::lock_guard lock(o.mu);
      if (o.f.kind != Kind::kFree) continue;
      o.f = typename Object::Fields{};
      o.f.kind = kind;
      o.f.rq = rq;
      o.f.sq = sq;
      o.f.cq = cq;
      o.f.rng = opts_.seed * 0x9E3779B97F4A7C15ull + id + 1;
      return id;
    }
    return absl::ResourceExhaustedError(fmt::format(
        "simulated device has no free queue object: all {} in use; expected at most {} RQs+SQs",
        objects_.size(), objects_.size()));
  }

  Object& object(ObjectId id) {
    PAGEFRAG_CHECK(id < objects_.size(), "object id {} out of range", id);
    return objects_[id];
  }

  void steer(std::array<std::atomic<ObjectId>, kMaxQueues>& table, std::uint32_t q, ObjectId id,
             Kind kind) {
    PAGEFRAG_CHECK(q < kMaxQueues, "queue index {} >= {}", q, kMaxQueues);
    const ObjectId old = table[q].load();
    if (old != kNoObject) {
      Object& o = object(old);
      std::lock_guard lock(o.mu);
      o.f.queue = ~0u;
    }
    if (id != kNoObject) {
      Object& o = object(id);
      std::lock_guard lock(o.mu);
      PAGEFRAG_CHECK(o.f.kind == kind, "steering to object {} of the wrong kind", id);
      o.f.queue = q;
    }
    table[q].store(id, std::memory_order_release);
  }

  template <class Fn>
  void with_steered(std::array<std::atomic<ObjectId>, kMaxQueues>& table, std::uint32_t q,
                    Kind kind, Fn&& fn) {
    const ObjectId id = q < kMaxQueues ? table[q].load(std::memory_order_acquire) : kNoObject;
    if (id == kNoObject) return;
    Object& o = object(id);
    std::lock_guard lock(o.mu);
    if (o.f.kind != kind || o.f.queue != q) return;
    fn(o);
  }

  OfferResult count_no_queue(std::uint32_t q) {
    SimDeviceLiveCounters::add(counters_for(q).frames_no_queue, 1);
    return OfferResult::kNoQueue;
  }

  std::uint64_t next_random(Object& o) {
    o.f.rng += 0x9E3779B97F4A7C15ull;
    std::uint64_t x = o.f.rng;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }

  // Room for one more completion, keeping one entry for a fence.
  bool cq_has_room(Object& o, std::uint32_t entries) {
    return o.f.cq->device_space() >= entries + 1;
  }

  OfferResult place(Object& o, std::span<const std::byte> frame, std::uint32_t hash) {
    // A coalesced completion pending must still fit, plus this one.
    if (o.f.wq_tail == o.f.rq->posted_head() || !cq_has_room(o, o.f.pending_count ? 2 : 1)) {
      SimDeviceLiveCounters::add(counters_for(o.f.queue).frames_no_buffer, 1);
      return OfferResult::kNoBuffer;
    }
    const RxWqe wqe = o.f.rq->read_entry(o.f.wq_tail++);
    const std::uint32_t cap =
        wqe.header.num_sge() == 1 && wqe.sge.mem_key == kSimMemKey ? wqe.sge.size : 0;
    const std::size_t len = std::min<std::size_t>(frame.size(), cap);
    bool fault = cap == 0;
    if (!fault) fault = !dma_->device_write(Iova(wqe.sge.address), frame.first(len)).ok();
    if (fault || len < frame.size()) return complete_truncated(o, fault);
    SimDeviceLiveCounters::add(counters_for(o.f.queue).frames_placed, 1);
    if (opts_.corrupt_probability > 0 &&
        static_cast<double>(next_random(o) >> 11) * 0x1.0p-53 < opts_.corrupt_probability) {
      corrupt(o, static_cast<std::uint32_t>(len), cap, hash);
      return OfferResult::kPlaced;
    }
    add_packet(o, static_cast<std::uint32_t>(len), hash);
    return OfferResult::kPlaced;
  }

  OfferResult complete_truncated(Object& o, bool fault) {
    flush_pending(o);
    RxCompOob oob;
    oob.set_type(CqeType::kRxTruncated);
    write_cqe(o, oob, false);
    if (fault) {
      SimDeviceLiveCounters::add(counters_for(o.f.queue).dma_faults, 1);
      return OfferResult::kDmaFault;
    }
    SimDeviceLiveCounters::add(counters_for(o.f.queue).frames_placed, 1);
    SimDeviceLiveCounters::add(counters_for(o.f.queue).frames_truncated, 1);
    return OfferResult::kPlaced;
  }

  static void set_rx_flags(RxCompOob& oob) {
    // IPv4 + TCP with good checksums and an L4 hash (NDIS TCP_IPV4).
    oob.flags =
        RxCompFlags::kIpCsumOk | RxCompFlags::kTcpCsumOk | (2u << RxCompFlags::kHashTypeShift);
  }

  void add_packet(Object& o, std::uint32_t len, std::uint32_t hash) {
    RxCompOob& p = o.f.pending;
    if (o.f.pending_count == 0) {
      p = RxCompOob{};
      set_rx_flags(p);
    }
    p.ppi[o.f.pending_count].set_pkt_len(len);
    p.ppi[o.f.pending_count].hash = hash;
    if (++o.f.pending_count == opts_.coalesce) flush_pending(o);
  }

  void flush_pending(Object& o) {
    if (o.f.pending_count == 0) return;
    o.f.pending.set_type(opts_.coalesce > 1 ? CqeType::kRxCoalesced4 : CqeType::kRxOkay);
    o.f.pending_count = 0;
    write_cqe(o, o.f.pending, false);
  }

  void corrupt(Object& o, std::uint32_t len, std::uint32_t cap, std::uint32_t hash) {
    flush_pending(o);
    std::array<Corruption, kCorruptionKinds> enabled{};
    std::size_t n = 0;
    for (std::size_t k = 0; k < kCorruptionKinds; ++k) {
      if (opts_.corrupt_kinds[k]) enabled[n++] = static_cast<Corruption>(k);
    }
    RxCompOob oob;
    set_rx_flags(oob);
    oob.set_type(CqeType::kRxOkay);
    oob.ppi[0].set_pkt_len(len);
    oob.ppi[0].hash = hash;
    if (n == 0) return write_cqe(o, oob, false);
    const Corruption kind = enabled[next_random(o) % n];
    SimDeviceLiveCounters::add(counters_for(o.f.queue).completions_corrupted, 1);
    SimDeviceLiveCounters::add(corrupted_counter(counters_for(o.f.queue), kind));
    switch (kind) {
      case Corruption::kLengthTooLarge:
        oob.ppi[0].set_pkt_len(std::min<std::uint32_t>(0xFFFF, cap + 1 + next_random(o) % 4096));
        break;
      case Corruption::kZeroLength:
        oob.ppi[0].set_pkt_len(0);
        break;
      case Corruption::kUnknownType:
        oob.set_type_bits(5 + static_cast<std::uint32_t>(next_random(o) % 27));  // 5..31
        break;
      case Corruption::kStaleOwner:
        return write_stale(o, oob);
    }
    write_cqe(o, oob, false);
  }

  // Publishes garbage with the previous round's owner bits at the tail; the
  // real completion replaces it at the device's next operation on `o`.
  void write_stale(Object& o, const RxCompOob& real) {
    CompletionQueue& cq = *o.f.cq;
    RxCompOob garbage;
    garbage.set_type(CqeType::kRxOkay);
    garbage.ppi[0].set_pkt_len(0xFFFF);
    std::uint8_t bytes[kCqeDataSize];
    std::memcpy(bytes, &garbage, sizeof(bytes));
    cq.device_write_at_tail(bytes, 0, false, (cq.owner_for(cq.device_tail()) - 1) & kCqeOwnerMask);
    o.f.stale_pending = true;
    o.f.stale_real = real;
  }

  void fix_stale_owner(Object& o) {
    if (!o.f.stale_pending) return;
    o.f.stale_pending = false;
    write_cqe(o, o.f.stale_real, false);
  }

  void write_cqe(Object& o, const RxCompOob& oob, bool is_sq) {
    CompletionQueue& cq = *o.f.cq;
    PAGEFRAG_CHECK(cq.device_space() >= 1, "simulated device overran its CQ");
    std::uint8_t bytes[kCqeDataSize];
    std::memcpy(bytes, &oob, sizeof(bytes));
    cq.device_write_at_tail(bytes, 0, is_sq, cq.owner_for(cq.device_tail()));
    cq.device_advance();
    SimDeviceLiveCounters::add(counters_for(o.f.queue).rx_completions, is_sq ? 0 : 1);
  }

  std::uint32_t transmit_all(Object& o, std::uint32_t q) {
    std::uint32_t done = 0;
    const std::uint32_t head = o.f.sq->posted_head();
    while (o.f.wq_tail != head && o.f.cq->device_space() >= 1) {
      const TxWqe wqe = o.f.sq->read_entry(o.f.wq_tail++);
      o.scratch.resize(wqe.sge.size);
      const bool ok = wqe.header.num_sge() == 1 && wqe.sge.mem_key == kSimMemKey &&
                      dma_->device_read(Iova(wqe.sge.address), o.scratch).ok();
      if (ok) {
        SimDeviceLiveCounters::add(counters_for(q).tx_frames, 1);
        SimDeviceLiveCounters::add(counters_for(q).tx_bytes, wqe.sge.size);
        if (wire_) wire_(q, o.scratch);
      } else {
        SimDeviceLiveCounters::add(counters_for(q).tx_faults, 1);
      }
      TxCompOob oob;
      // A frame the device could not read completes with an error type.
      const bool error = !ok || opts_.tx_misbehaviour == TxMisbehaviour::kErrorType;
      oob.set_type(error ? CqeType::kTxHdrProcessingError : CqeType::kTxOkay);
      oob.tx_data_offset = wqe.tx_oob[1];  // the driver's slot cookie
      if (opts_.tx_misbehaviour == TxMisbehaviour::kWrongCookie) ++oob.tx_data_offset;
      std::uint8_t bytes[kCqeDataSize];
      std::memcpy(bytes, &oob, sizeof(bytes));
      o.f.cq->device_write_at_tail(bytes, 0, true, o.f.cq->owner_for(o.f.cq->device_tail()));
      o.f.cq->device_advance();
      ++done;
    }
    return done;
  }

  Dma* dma_;
  SimDeviceOptions opts_;
  std::vector<Object> objects_;
  std::array<std::atomic<ObjectId>, kMaxQueues> rx_steer_;
  std::array<std::atomic<ObjectId>, kMaxQueues> tx_steer_;
  // One counter set per queue index, plus one (the last) for objects not
  // steered to any queue.
  struct alignas(kCacheLineSize) Shard {
    SimDeviceLiveCounters c;
  };
  SimDeviceLiveCounters& counters_for(std::uint32_t q) noexcept {
    return shards_[std::min(q, kMaxQueues)].c;
  }
  std::array<Shard, kMaxQueues + 1> shards_;
  WireFn wire_;
};

static_assert(DeviceAccessDma<MockDma>);
static_assert(ManaDevice<SimDevice<MockDma>>);

}  // namespace mana::sim
