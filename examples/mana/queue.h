// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/queue.h: ManaQueue, one RX queue and its TX queue: the
// reference MANA data path over a PagePool and a FragmentAllocator.
//
// RX: every slot of the RX work queue holds one buffer (a fragment of a pool
// page, or in one-per-page mode a whole page, also taken through the
// fragment allocator so both modes share one reference-count domain) posted
// as a 32-byte work request. poll() consumes completions up to a budget:
//  1. validate the device-reported length against the buffer's datasize
//     BEFORE any sync or read (a bad length: counted drop, buffer re-posted);
//  2. take a replacement buffer FIRST; if none can be had, count the drop and
//     re-post the old buffer (the ring never has a hole);
//  3. sync the old buffer for the CPU over the packet length (never skipped
//     for fragments: the bounce-buffer bug of the kernel before c72a0f09c57f);
//  4. run the XDP program if one is attached, else hand the packet up with
//     its truesize; drops return the buffer to its own pool.
// Pages stay DMA-mapped for as long as they stay in the pool, in both modes;
// with XDP attached the pool maps bidirectionally so XDP_TX and REDIRECT can
// send straight from the RX buffer.
//
// TX: XDP_TX and REDIRECT frames are posted on a TX ring whose producers
// (this queue's poller, other queues' pollers redirecting here) take the TX
// lock, as the kernel takes the netdev TX queue lock. Completions are
// processed by this queue's poller, which returns each buffer to its home
// pool: directly when home is this queue, through the pool's remote recycle
// path otherwise.
//
// Threads: create() and the teardown calls run on the control thread;
// poll() on the queue's owner (its poller, or the control thread while the
// poller is stopped); xmit() on any thread.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <utility>

#include "examples/mana/device.h"
#include "examples/mana/fault.h"
#include "examples/mana/gdma.h"
#include "examples/mana/poll_clock.h"
#include "examples/mana/stats.h"
#include "examples/mana/xdp.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/pool/page_pool.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"

namespace mana {

using pagefrag::DmaDirection;
using pagefrag::Frag;
using pagefrag::FragmentAllocator;
using pagefrag::Iova;
using pagefrag::kCacheLineSize;
using pagefrag::kPagePoolDmaMap;
using pagefrag::kPagePoolDmaSyncDev;
using pagefrag::PagePool;
using pagefrag::PagePoolParams;
using pagefrag::RxBufCfg;

// A received frame as the stack sees it: valid during the sink call only;
// its buffer returns to the pool when the sink returns.
struct RxPacket {
  const std::byte* data = nullptr;
  std::uint32_t len = 0;
  // Between len and truesize, which come from different places: next to
  // each other GCC 12 pairs their stores into one SSE store that costs the
  // completion scan five instructions instead of three.
  std::uint32_t queue = 0;
  std::uint32_t truesize = 0;  // bytes of memory the buffer really holds
  std::uint32_t hash = 0;
  std::uint32_t flags = 0;  // the completion's checksum and VLAN word (RxCompFlags)

  // The device verified the IP and the TCP or UDP checksum. Decoded here,
  // not per packet in the poll: a stack that never asks pays nothing.
  bool csum_ok() const noexcept {
    return (flags & RxCompFlags::kIpCsumOk) != 0 &&
           (flags & (RxCompFlags::kTcpCsumOk | RxCompFlags::kUdpCsumOk)) != 0;
  }
};
using PacketSink = std::function<void(const RxPacket&)>;
// The batched form: every packet one poll() received, in order, once per
// poll (or per kRxBatch packets); the buffers return to their pools when it
// returns.
using PacketBatchSink = std::function<void(std::span<const RxPacket>)>;
// Packets a queue hands up in one batch at most: DPDK's usual burst. The
// batch's buffers are out of the ring until the sink returns, so it adds to
// the pages a queue holds: with 32, one 1024-entry queue at MTU 1500 on
// 64 KiB pages peaks at 32 pages (2 MiB; 33 with 64).
inline constexpr std::uint32_t kRxBatch = 32;

// What a queue needs from its port: the shared provider and DMA backend,
// the device, and the rest of the port for REDIRECT.
template <class Provider, class Dma, class Device>
struct QueueEnv {
  Provider* provider = nullptr;
  Dma* dma = nullptr;
  Device* device = nullptr;
  FaultInjector* injector = nullptr;
  const PacketSink* sink = nullptr;  // per packet; used when batch_sink is null or empty
  const XdpProgram* xdp = nullptr;   // nullptr: no program attached
  bool testing_skip_sync_for_cpu = false;
  const PacketBatchSink* batch_sink = nullptr;  // once per poll; preferred over sink
  // Time every poll that finds work (rx_poll_ns: the poll minus the sink
  // call) with PollClock; off: no clock is read.
  bool time_polls = false;
};

// The shape of one queue: its buffer configuration and ring sizes.
struct QueueShape {
  RxBufCfg cfg;
  std::uint32_t rx_size = 1024;  // power of two
  std::uint32_t tx_size = 256;   // power of two
};

template <class Provider, class Dma, ManaDevice Device>
class ManaQueue {
 public:
  using Pool = PagePool<Provider, Dma>;
  using PoolHandle = typename Pool::Handle;
  using Frags = FragmentAllocator<Pool>;
  using Env = QueueEnv<Provider, Dma, Device>;
  // Resolves a queue index to a queue (REDIRECT); nullptr when none.
  using QueueLookup = std::function<ManaQueue*(std::uint32_t)>;

  ManaQueue(const ManaQueue&) = delete;
  ManaQueue& operator=(const ManaQueue&) = delete;
  ~ManaQueue() {
    release_rx();
    pool_.reset();  // page_pool_destroy: deferred by the pool while pages are out
  }

  // Control thread. Builds a complete queue: rings, pool, every RX slot
  // filled and posted, device RQ and SQ objects created (not yet steered).
  // All-or-nothing: on failure everything built so far is released and the
  // status names what failed and what was expected.
  static absl::StatusOr<std::unique_ptr<ManaQueue>> create(const Env& env, std::uint32_t index,
                                                           const QueueShape& shape,
                                                           QueueStats* stats) {
    if (inject(env.injector, FaultPoint::kRxQueueAlloc)) return alloc_error("rx queue", index);
    std::unique_ptr<ManaQueue> q(new (std::nothrow) ManaQueue(env, index, shape, stats));
    if (q == nullptr) return alloc_error("rx queue", index);
    if (absl::Status s = q->build_rx(); !s.ok()) return s;
    if (absl::Status s = q->build_tx(); !s.ok()) return s;
    if (absl::Status s = q->create_device_objects(); !s.ok()) return s;
    return q;
  }

  // ----- data path (owner thread) -----

  // Processes TX completions, then RX completions until `budget` packets
  // are done or the CQ is empty; rings both doorbells once. Returns the RX
  // work done (packets plus completions that carried none): up to budget +
  // 3, as a coalesced completion's packets are taken whole.
  //
  // Received packets reach the sink in one batch at the end of the poll
  // (kRxBatch at most per call); the per-poll counters are published once,
  // after it.
  std::uint32_t poll(std::uint32_t budget) {
    if (PAGEFRAG_UNLIKELY(env_.time_polls)) return timed_poll(budget);
    return poll_untimed(budget);
  }

  // ----- (the two poll bodies) -----
 private:
  // poll() with the clock read around it: rx_poll_ns gains the poll's time
  // minus the sink's, when the poll found work.
  std::uint32_t timed_poll(std::uint32_t budget) {
    const std::uint64_t t0 = PollClock::now();
    sink_ticks_ = 0;
    const std::uint32_t done = poll_untimed(budget);
    const std::uint64_t elapsed = PollClock::now() - t0;
    // (A poll that migrated between CPUs whose counters disagree is skipped.)
    if (done != 0 && elapsed >= sink_ticks_ && elapsed < (std::uint64_t{1} << 40)) {
      const std::uint64_t ticks = elapsed - sink_ticks_;
      stats_->rx_poll_ns.add(static_cast<std::uint64_t>(static_cast<double>(ticks) * ns_per_tick_));
    }
    return done;
  }

  std::uint32_t poll_untimed(std::uint32_t budget) {
    poll_tx();
    const bool fast = env_.xdp == nullptr && !inject_armed(env_.injector);
    std::uint32_t done = 0;
    std::uint32_t completions = 0;
    while (done < budget && PAGEFRAG_LIKELY(!rx_overrun_)) {
      if (fast) {
        const std::uint32_t n = rx_okay_run(budget - done);
        done += n;
        completions += n;
        if (n != 0) continue;  // the rest of the run (the batch was full), or the budget
      }
      const Cqe* cqe = nullptr;
      const CqeState st = cq_->peek(&cqe);
      if (st == CqeState::kEmpty) break;
      if (PAGEFRAG_UNLIKELY(st == CqeState::kOverflow)) {
        // A misbehaving device overran the ring: no later entry can be
        // trusted. Counted once; the queue receives nothing more until a
        // reconfiguration rebuilds it (the kernel stops such a CQ too).
        rx_overrun_ = true;
        stats_->rx_cqe_overflow.add();
        break;
      }
      ++completions;
      const std::uint32_t got = handle_rx_cqe(*cqe);
      cq_->advance();  // the entry is read: the device may reuse it after the doorbell
      done += std::max<std::uint32_t>(1, got);
    }
    cq_->ring_doorbell();
    wq_->post(rx_head_);
    flush_batch();
    stats_->rx_polls.add();
    stats_->rx_completions.add(completions);
    publish_tally();
    if (PAGEFRAG_UNLIKELY(unarmed_refills_ != 0)) {
      env_.injector->count_hits(FaultPoint::kRxRefill, unarmed_refills_);
      unarmed_refills_ = 0;
    }
    if (done != 0) stats_->rx_busy_polls.add();
    return done;
  }

 public:
  // Any thread. Posts a frame held in `page` (a buffer of queue `home`) on
  // this queue's TX ring; the frame is [iova, iova + len). False when the
  // ring is full (the caller still owns the buffer).
  bool xmit(ManaQueue* home, Page* page, Iova iova, std::uint32_t len) {
    std::lock_guard lock(tx_mu_);
    const std::uint32_t head = tx_head_.load(std::memory_order_relaxed);
    if (head - tx_completed_.load(std::memory_order_acquire) >= shape_.tx_size) return false;
    tx_slots_[head & (shape_.tx_size - 1)] = TxSlot{home, page};
    TxWqe wqe;
    wqe.header = GdmaWqeHeader::make(1, kInlineOobSmall);
    wqe.tx_oob[1] = head;
    wqe.sge = GdmaSge{iova.value(), env_.device->mem_key(), len};
    env_.dma->sync_for_device(iova, len, DmaDirection::kBidirectional);
    tx_wq_->write_entry(head, wqe);
    tx_head_.store(head + 1, std::memory_order_release);
    tx_wq_->post(head + 1);
    stats_->tx_posted.add();
    return true;
  }

  // Control thread, pollers stopped: the event queue the RX and the TX
  // completion queues raise when armed (each its own by default). TX
  // completions must wake the poller too: frames other queues redirect
  // here hold their buffers until poll_tx() returns them.
  void attach_events(EventQueue* eq) noexcept {
    cq_->attach(eq);
    if (tx_cq_) tx_cq_->attach(eq);
  }
  // Owner thread, when polls find nothing: arms both completion queues'
  // interrupts (CompletionQueue::arm()); false when a completion is waiting
  // on either (poll instead). An overrun RX ring is not armed: nothing on it
  // is read again. Read the event queue's seen() first, and wait on it only
  // when every queue it serves armed.
  bool arm_interrupts() noexcept {
    return (rx_overrun_ || cq_->arm()) && (!tx_cq_ || tx_overrun_ || tx_cq_->arm());
  }

  // Any thread: returns a buffer of THIS queue from another thread (a TX
  // completion of a redirected frame).
  static void free_remote(Page* page) { Frags::free_frag_remote(page); }

  // ----- control (control thread, pollers stopped) -----

  std::uint32_t index() const noexcept { return index_; }
  std::uint32_t rq_object() const noexcept { return rq_obj_; }
  std::uint32_t sq_object() const noexcept { return sq_obj_; }
  const QueueShape& shape() const noexcept { return shape_; }
  void set_lookup(QueueLookup lookup) { lookup_ = std::move(lookup); }
  void set_xdp(const XdpProgram* prog) { env_.xdp = prog; }
  bool fence_seen() const noexcept { return fence_seen_; }
  // The device overran the RX completion ring (see poll()): a fence
  // completion can no longer be found on it.
  bool rx_overrun() const noexcept { return rx_overrun_; }
  void clear_fence() noexcept { fence_seen_ = false; }
  Pool& pool() { return *pool_; }

  // Reclaims every posted-but-uncompleted TX frame (after the SQ was
  // unsteered: the device no longer reads them) and destroys the SQ object.
  void teardown_tx() {
    poll_tx();
    while (tx_tail_ != tx_head_.load(std::memory_order_acquire)) {
      return_tx_buffer(tx_slots_[tx_tail_ & (shape_.tx_size - 1)]);
      ++tx_tail_;
      stats_->tx_discarded.add();
    }
    tx_completed_.store(tx_tail_, std::memory_order_release);
    if (sq_obj_ != Device::kNoObject) env_.device->destroy(sq_obj_);
    sq_obj_ = Device::kNoObject;
  }

  // Control thread, after unsteering: destroys the device objects and
  // returns every posted RX buffer (and any TX frame still held) to its
  // pool. The pool itself lives until the queue is destroyed.
  void release_rx() {
    if (sq_obj_ != Device::kNoObject) teardown_tx();
    if (rq_obj_ != Device::kNoObject) env_.device->destroy(rq_obj_);
    rq_obj_ = Device::kNoObject;
    if (frags_ && slots_) {
      for (std::uint32_t i = 0; i < shape_.rx_size; ++i) {
        if (slots_[i].page != nullptr) frags_->free_frag(slots_[i].page);
        slots_[i] = RxSlot{};
      }
    }
    frags_.reset();
  }

  // Pages of this queue's pool not back in it (0 after a clean teardown).
  std::int64_t inflight() const { return pool_ ? pool_->handed_out() : 0; }
  std::size_t held_bytes_high_water() const { return pool_ ? pool_->held_bytes_high_water() : 0; }

 private:
  // One posted RX buffer: 16 bytes. The addresses of the packet's first
  // byte (after the buffer's headroom) are the page's plus data_offset.
  struct RxSlot {
    Page* page = nullptr;
    std::uint32_t data_offset = 0;  // of the packet's first byte, in the page
    std::uint32_t truesize = 0;

    // The slot of buffer f, whose packet starts `headroom` bytes in.
    static RxSlot of(const Frag& f, std::uint32_t headroom) noexcept {
      return RxSlot{f.page, f.offset + headroom, f.truesize};
    }
    std::byte* data_va() const noexcept { return page->va + data_offset; }
    Iova data_iova() const noexcept { return page->dma + data_offset; }
  };
  // Per-poll tallies, published to the counters once per poll.
  struct Tally {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
    std::uint64_t truesize = 0;
  };
  struct TxSlot {
    ManaQueue* home = nullptr;
    Page* page = nullptr;
  };

  ManaQueue(const Env& env, std::uint32_t index, const QueueShape& shape, QueueStats* stats)
      : env_(env),
        index_(index),
        shape_(shape),
        stats_(stats),
        mem_key_(env.device->mem_key()),
        buffer_size_(shape.cfg.one_per_block() ? static_cast<std::uint32_t>(shape.cfg.block_bytes())
                                               : shape.cfg.alloc_size),
        ns_per_tick_(env.time_polls ? PollClock::ns_per_tick() : 0.0) {
    // A batch entry's queue never changes: the fast path leaves it alone.
    for (RxPacket& p : batch_) p.queue = index;
  }

  static absl::Status alloc_error(std::string_view what, std::uint32_t index) {
    return absl::ResourceExhaustedError(fmt::format(
        "queue {}: could not allocate the {}; expected memory for the new configuration", index,
        what));
  }

  absl::Status build_rx() {
    slots_.reset(new (std::nothrow) RxSlot[shape_.rx_size]());
    wq_ = WorkQueue<RxWqe>::create(shape_.rx_size);
    cq_ = CompletionQueue::create(shape_.rx_size * 2);
    if (!slots_ || !wq_ || !cq_) return alloc_error("rx rings", index_);
    if (inject(env_.injector, FaultPoint::kRxPoolCreate)) return alloc_error("page pool", index_);
    absl::StatusOr<PoolHandle> pool = Pool::create(*env_.provider, *env_.dma, pool_params());
    if (!pool.ok()) return pool.status();
    pool_ = *std::move(pool);
    // Every posted buffer may sit in a retired page of its own: a watch set
    // the size of the ring keeps those pages on the owner's plain count
    // (a smaller one merges them, and each later free is an atomic).
    absl::StatusOr<Frags> frags =
        Frags::create(*pool_, {.watch_capacity = std::min<std::uint32_t>(shape_.rx_size, 65536)});
    if (!frags.ok()) return frags.status();
    frags_.emplace(*std::move(frags));
    for (std::uint32_t i = 0; i < shape_.rx_size; ++i) {
      if (inject(env_.injector, FaultPoint::kRxBufferAlloc) || !alloc_buffer(&slots_[i])) {
        return absl::ResourceExhaustedError(fmt::format(
            "queue {}: rx buffer {} of {} ({} bytes from order-{} pages) could not be allocated; "
            "expected the pool to provide {} buffers",
            index_, i, shape_.rx_size, buffer_size(), shape_.cfg.order, shape_.rx_size));
      }
      post_slot(i);
    }
    wq_->post(rx_head_);
    return absl::OkStatus();
  }

  absl::Status build_tx() {
    if (inject(env_.injector, FaultPoint::kTxQueueAlloc)) return alloc_error("tx queue", index_);
    tx_slots_.reset(new (std::nothrow) TxSlot[shape_.tx_size]());
    tx_wq_ = WorkQueue<TxWqe>::create(shape_.tx_size);
    tx_cq_ = CompletionQueue::create(shape_.tx_size);
    if (!tx_slots_ || !tx_wq_ || !tx_cq_) return alloc_error("tx rings", index_);
    return absl::OkStatus();
  }

  absl::Status create_device_objects() {
    if (inject(env_.injector, FaultPoint::kRxDeviceCreate)) {
      return absl::ResourceExhaustedError(
          fmt::format("queue {}: device RQ object creation failed (injected)", index_));
    }
    absl::StatusOr<std::uint32_t> rq = env_.device->create_rq(wq_.get(), cq_.get());
    if (!rq.ok()) return rq.status();
    rq_obj_ = *rq;
    if (inject(env_.injector, FaultPoint::kTxDeviceCreate)) {
      return absl::ResourceExhaustedError(
          fmt::format("queue {}: device SQ object creation failed (injected)", index_));
    }
    absl::StatusOr<std::uint32_t> sq = env_.device->create_sq(tx_wq_.get(), tx_cq_.get());
    if (!sq.ok()) return sq.status();
    sq_obj_ = *sq;
    return absl::OkStatus();
  }

  PagePoolParams pool_params() const {
    PagePoolParams p;
    p.order = shape_.cfg.order;
    p.pool_size = shape_.cfg.pool_size(shape_.rx_size);
    p.dma_dir = env_.xdp ? DmaDirection::kBidirectional : DmaDirection::kFromDevice;
    p.max_len = static_cast<std::uint32_t>(shape_.cfg.block_bytes());
    p.offset = 0;
    p.flags = kPagePoolDmaMap | kPagePoolDmaSyncDev;
    return p;
  }

  // One-per-page buffers take the whole block, so truesize is the block.
  std::uint32_t buffer_size() const noexcept { return buffer_size_; }

  // A buffer for `slot`, or false when the pool has no page even after
  // reclaiming pages whose last fragment came back from another thread.
  bool alloc_buffer(RxSlot* slot) {
    const Frag f = frags_->alloc_frag(buffer_size());
    if (!f) return false;
    *slot = RxSlot::of(f, shape_.cfg.headroom);
    return true;
  }

  // Writes slot i's work request at the ring head (slot i <-> ring entry i).
  void post_slot(std::uint32_t i) {
    const RxSlot& s = slots_[i];
    RxWqe wqe;
    wqe.header = GdmaWqeHeader::make(1, kInlineOobSmall);
    wqe.sge = GdmaSge{s.data_iova().value(), mem_key_, shape_.cfg.datasize};
    wq_->write_entry(rx_head_++, wqe);
  }

  // Returns the packets the completion carried (0 for fences and errors).
  // Reads the completion in place (the ring entry stays the driver's until
  // the CQ doorbell); the common single-packet case reads three words.
  std::uint32_t handle_rx_cqe(const Cqe& cqe) {
    const std::uint32_t header = load_word(cqe, offsetof(RxCompOob, header));
    switch (header & 0x3Fu) {
      case static_cast<std::uint32_t>(CqeType::kRxOkay): {
        RxPacketInfo ppi;
        std::memcpy(&ppi, cqe.data + offsetof(RxCompOob, ppi), sizeof(ppi));
        return rx_packet(ppi, load_word(cqe, offsetof(RxCompOob, flags))) ? 1 : 0;
      }
      case static_cast<std::uint32_t>(CqeType::kRxCoalesced4): {
        stats_->rx_coalesced_cqes.add();
        RxCompOob oob;
        std::memcpy(&oob, cqe.data, sizeof(oob));
        return rx_coalesced(oob);
      }
      case static_cast<std::uint32_t>(CqeType::kRxTruncated):
        drop_slot(DropReason::kTruncated);
        return 0;
      case static_cast<std::uint32_t>(CqeType::kRxObjectFence):
        stats_->rx_fences.add();
        fence_seen_ = true;
        return 0;
      default:
        // The device consumed a work request for it: keep the ring in step.
        drop_slot(DropReason::kUnknownCqeType);
        return 0;
    }
  }

  // A coalesced completion lists packets until the first zero length; a
  // zero first length is an error completion for one buffer.
  std::uint32_t rx_coalesced(const RxCompOob& oob) {
    if (oob.ppi[0].pkt_len() == 0) {
      drop_slot(DropReason::kZeroLength);
      return 0;
    }
    std::uint32_t n = 0;
    for (std::uint32_t i = 0; i < kRxCompMaxPackets && oob.ppi[i].pkt_len() != 0; ++i) {
      n += rx_packet(oob.ppi[i], oob.flags) ? 1 : 0;
    }
    return n;
  }

  // The fast path: a run of single-packet CQE_RX_OKAY completions with
  // valid lengths (at most `max`, and what the batch has room for), no XDP
  // program, no fault armed. Scans the run, takes a replacement buffer for
  // each packet (stopping at the first that cannot be had: the general path
  // then drops that packet), posts the replacements, queues the packets for
  // the sink and consumes their completions. Returns the packets taken.
  std::uint32_t rx_okay_run(std::uint32_t max) {
    if (batch_n_ == kRxBatch) flush_batch();
    const std::uint32_t limit = std::min(max, kRxBatch - batch_n_);
    const Cqe* const cq_ring = cq_->ring();
    const std::uint32_t cq_mask = cq_->size() - 1;
    const std::uint32_t head = cq_->head();
    const std::uint32_t datasize = shape_.cfg.datasize;
    RxPacket* const out = batch_.data() + batch_n_;
    Page** const pages = batch_pages_.data() + batch_n_;
    // Every slot is posted, so the ring head is always rx_size ahead of the
    // slot completed: one index names both the slot and its ring entry.
    PAGEFRAG_DCHECK(rx_head_ - rx_done_ == shape_.rx_size,
                    "RX ring head {} and done {} out of step", rx_head_, rx_done_);
    const std::uint32_t first = slot_index();  // the slot of the run's first packet
    const RxSlot* const bufs = slots_.get() + first;
    // Owner bits change once per lap: stop the run at the lap's end, and at
    // the slot ring's end, so that neither ring wraps within a run.
    const std::uint32_t owner = cq_->owner_for(head);
    const std::uint32_t lap_left = cq_mask + 1 - (head & cq_mask);
    const std::size_t scan = std::min({limit, lap_left, shape_.rx_size - first});
    const Cqe* const run = cq_ring + (head & cq_mask);
    std::size_t n = 0;  // 64-bit: the index needs no zero-extension, and no spill
    std::uint64_t bytes = 0;
    std::uint64_t truesize = 0;
    for (; n < scan; ++n) {
      const Cqe& e = run[n];
      const std::uint32_t info = CompletionQueue::info_acquire(e);
      if (Cqe::owner_of(info) != owner) break;
      if ((load_word(e, offsetof(RxCompOob, header)) & 0x3Fu) !=
          static_cast<std::uint32_t>(CqeType::kRxOkay)) {
        break;
      }
      const std::uint32_t len = load_word(e, offsetof(RxCompOob, ppi)) & 0xFFFFu;
      if (PAGEFRAG_UNLIKELY(len - 1 >= datasize)) break;  // 0 or above datasize
      // The packet's buffer is its slot's (not read yet: refill_run() syncs
      // it for the CPU first).
      const RxSlot& buf = bufs[n];
      RxPacket& p = out[n];
      p.data = buf.data_va();
      p.len = len;
      p.truesize = buf.truesize;
      p.hash = load_word(e, offsetof(RxCompOob, ppi) + offsetof(RxPacketInfo, hash));
      p.flags = load_word(e, offsetof(RxCompOob, flags));
      pages[n] = buf.page;
      bytes += len;
      truesize += buf.truesize;
    }
    const std::uint32_t taken = refill_run(first, out, static_cast<std::uint32_t>(n));
    for (std::uint32_t k = taken; k < n; ++k) {  // the pool ran dry: not received
      bytes -= out[k].len;
      truesize -= out[k].truesize;
    }
    tally_.bytes += bytes;
    tally_.truesize += truesize;
    cq_->advance_to(head + taken);
    if (env_.injector != nullptr) unarmed_refills_ += taken;
    return taken;
  }

  // rx_okay_run's second half: replacement buffers for the n scanned
  // packets (slots first..first + n, which do not wrap) in one alloc_frags()
  // call, each written straight into the packet's slot and its ring entry,
  // and the old buffer synced for the CPU. Returns how many got a
  // replacement (fewer than n only when the pool ran out).
  PAGEFRAG_ALWAYS_INLINE std::uint32_t refill_run(std::uint32_t first, const RxPacket* out,
                                                  std::uint32_t n) {
    RxSlot* const slots = slots_.get() + first;
    RxWqe* const wqes = wq_->ring() + first;
    const std::uint32_t headroom = shape_.cfg.headroom;
    const bool sync = !env_.testing_skip_sync_for_cpu;
    const auto got = static_cast<std::uint32_t>(
        frags_->alloc_frags(buffer_size_, n, [&](std::size_t k, const Frag& f) {
          if (PAGEFRAG_LIKELY(sync)) {
            pool_->sync_for_cpu(slots[k].page, slots[k].data_offset, out[k].len);
          }
          check_cpu_read(out[k].data, out[k].len);
          slots[k] = RxSlot::of(f, headroom);
          // Only the address changes: post_slot() wrote every entry's header,
          // key and size, which are the same for every request of this queue.
          wqes[k].sge.address = (f.iova + headroom).value();
        }));
    rx_done_ += got;
    rx_head_ += got;
    batch_n_ += got;
    tally_.packets += got;
    return got;
  }

  static bool inject_armed(const FaultInjector* inj) noexcept {
    return inj != nullptr && inj->armed();
  }

  static std::uint32_t load_word(const Cqe& cqe, std::size_t offset) noexcept {
    std::uint32_t w;
    std::memcpy(&w, cqe.data + offset, sizeof(w));
    return w;
  }

  std::uint32_t slot_index() const noexcept { return rx_done_ & (shape_.rx_size - 1); }

  // Drops the packet in the current slot: its buffer is re-posted unchanged
  // (never synced, never read).
  void drop_slot(DropReason why) {
    stats_->drop(why).add();
    post_slot(slot_index());
    ++rx_done_;
  }

  // One packet of a completion. True when it was received (not dropped).
  bool rx_packet(const RxPacketInfo& ppi, std::uint32_t flags) {
    const std::uint32_t len = ppi.pkt_len();
    if (PAGEFRAG_UNLIKELY(len == 0)) return drop_slot(DropReason::kZeroLength), false;
    if (PAGEFRAG_UNLIKELY(len > shape_.cfg.datasize)) {
      return drop_slot(DropReason::kLengthTooLarge), false;
    }
    const std::uint32_t i = slot_index();
    const RxSlot old = slots_[i];
    if (env_.injector != nullptr && !env_.injector->armed()) ++unarmed_refills_;
    if (PAGEFRAG_UNLIKELY(inject(env_.injector, FaultPoint::kRxRefill) ||
                          !alloc_buffer(&slots_[i]))) {
      return drop_slot(DropReason::kNoRefill), false;
    }
    post_slot(i);
    ++rx_done_;
    if (PAGEFRAG_LIKELY(!env_.testing_skip_sync_for_cpu)) {
      pool_->sync_for_cpu(old.page, old.data_offset, len);
    }
    return deliver(old, len, ppi.hash, flags);
  }

  bool deliver(const RxSlot& buf, std::uint32_t len, std::uint32_t hash, std::uint32_t flags) {
    std::byte* data = buf.data_va();
    check_cpu_read(data, len);
    if (env_.xdp != nullptr) return run_xdp(buf, data, len, hash, flags);
    pass_up(buf, data, len, hash, flags);
    return true;
  }

  // MockDma's checked accessor, when the backend has one: counts a read of
  // bytes the device wrote that were not synced for the CPU.
  void check_cpu_read(const std::byte* data, std::uint32_t len) {
    if constexpr (pagefrag::DmaCheckedRead<Dma>) {
      if (!env_.dma->check_cpu_read(data, len)) stats_->rx_unsynced_reads.add();
    }
  }

  // Queues the packet for the sink; its buffer returns to the pool after
  // the batch is handed up.
  void pass_up(const RxSlot& buf, const std::byte* data, std::uint32_t len, std::uint32_t hash,
               std::uint32_t flags) {
    tally(len, buf.truesize);
    if (PAGEFRAG_UNLIKELY(batch_n_ == kRxBatch)) flush_batch();
    batch_[batch_n_] = RxPacket{data, len, index_, buf.truesize, hash, flags};
    batch_pages_[batch_n_] = buf.page;
    ++batch_n_;
  }

  // Hands the queued packets up, then returns their buffers.
  void flush_batch() {
    const std::uint32_t n = batch_n_;
    if (n == 0) return;
    const std::span<const RxPacket> packets(batch_.data(), n);
    const std::uint64_t t0 = env_.time_polls ? PollClock::now() : 0;
    if (env_.batch_sink != nullptr && *env_.batch_sink) {
      (*env_.batch_sink)(packets);
    } else if (env_.sink != nullptr && *env_.sink) {
      for (const RxPacket& p : packets) (*env_.sink)(p);
    }
    if (env_.time_polls) sink_ticks_ += PollClock::now() - t0;
    frags_->free_frags(batch_pages_.data(), n);
    batch_n_ = 0;
  }

  void tally(std::uint32_t len, std::uint32_t truesize) noexcept {
    ++tally_.packets;
    tally_.bytes += len;
    tally_.truesize += truesize;
  }
  void publish_tally() noexcept {
    if (tally_.packets == 0) return;
    stats_->rx_packets.add(tally_.packets);
    stats_->rx_bytes.add(tally_.bytes);
    stats_->rx_truesize.add(tally_.truesize);
    tally_ = Tally{};
  }

  bool run_xdp(const RxSlot& buf, std::byte* data, std::uint32_t len, std::uint32_t hash,
               std::uint32_t flags) {
    std::byte* const va = buf.data_va() - shape_.cfg.headroom;  // the buffer's first byte
    XdpBuff x{va, data, data + len, buf.truesize, index_, 0};
    XdpAction act = (*env_.xdp)(x);
    // At least one byte left, inside the buffer (xdp.h).
    const bool sane = x.data >= va && x.data < x.data_end &&
                      x.data_end <= va + shape_.cfg.headroom + shape_.cfg.datasize;
    if (!sane) act = XdpAction::kAborted;
    const auto flen = static_cast<std::uint32_t>(x.data_end - x.data);
    switch (act) {
      case XdpAction::kPass:
        stats_->xdp_pass.add();
        pass_up(buf, x.data, flen, hash, flags);
        return true;
      case XdpAction::kTx:
        return xdp_send(this, buf, x, flen, DropReason::kXdpTxFull, stats_->xdp_tx);
      case XdpAction::kRedirect: {
        ManaQueue* target = lookup_ ? lookup_(x.redirect_queue) : nullptr;
        if (target == nullptr) return xdp_drop(buf, DropReason::kRedirectFailed);
        return xdp_send(target, buf, x, flen, DropReason::kRedirectFailed, stats_->xdp_redirect);
      }
      case XdpAction::kDrop:
        return xdp_drop(buf, DropReason::kXdpDrop);
      case XdpAction::kAborted:
        break;
    }
    return xdp_drop(buf, DropReason::kXdpAborted);
  }

  bool xdp_send(ManaQueue* target, const RxSlot& buf, const XdpBuff& x, std::uint32_t flen,
                DropReason full, Counter& ok) {
    const Iova iova = buf.page->dma + static_cast<std::uint64_t>(x.data - buf.page->va);
    if (!target->xmit(this, buf.page, iova, flen)) return xdp_drop(buf, full);
    ok.add();
    tally(flen, buf.truesize);
    return true;
  }

  bool xdp_drop(const RxSlot& buf, DropReason why) {
    stats_->drop(why).add();
    frags_->free_frag(buf.page);
    return false;
  }

  // Owner thread: consumes TX completions, returning each buffer home.
  // A completion must name the oldest frame still posted (the slot cookie
  // its work request carried); one that names another, or comes with
  // nothing posted, is from a misbehaving device: counted and ignored, and
  // the frame stays posted (teardown reclaims it). An overrun TX ring is
  // counted once and read no more.
  void poll_tx() {
    if (!tx_cq_ || PAGEFRAG_UNLIKELY(tx_overrun_)) return;
    Cqe cqe;
    for (;;) {
      const CqeState st = tx_cq_->read(&cqe);
      if (st == CqeState::kEmpty) break;
      if (PAGEFRAG_UNLIKELY(st == CqeState::kOverflow)) {
        tx_overrun_ = true;
        stats_->tx_bad_completions.add();
        break;
      }
      tx_cq_->advance();
      TxCompOob oob;
      std::memcpy(&oob, cqe.data, sizeof(oob));
      if (PAGEFRAG_UNLIKELY(tx_tail_ == tx_head_.load(std::memory_order_acquire) ||
                            oob.tx_data_offset != tx_tail_)) {
        stats_->tx_bad_completions.add();
        continue;
      }
      if (oob.type_bits() != static_cast<std::uint32_t>(CqeType::kTxOkay)) {
        stats_->tx_errors.add();
      }
      return_tx_buffer(tx_slots_[tx_tail_ & (shape_.tx_size - 1)]);
      ++tx_tail_;
      stats_->tx_completed.add();
    }
    tx_cq_->ring_doorbell();
    tx_completed_.store(tx_tail_, std::memory_order_release);
  }

  void return_tx_buffer(const TxSlot& s) {
    if (s.home == this) {
      frags_->free_frag(s.page);
    } else {
      s.home->free_remote(s.page);
      stats_->tx_remote_returned.add();
    }
  }

  Env env_;
  std::uint32_t index_;
  QueueShape shape_;
  QueueStats* stats_;
  QueueLookup lookup_;
  std::uint32_t mem_key_;         // the device's memory key, for every SGE
  std::uint32_t buffer_size_;     // bytes asked of the fragment allocator per buffer
  double ns_per_tick_;            // PollClock's, when env_.time_polls
  std::uint64_t sink_ticks_ = 0;  // PollClock ticks in the sink during this poll

  // RX, owner thread.
  PoolHandle pool_;
  std::optional<Frags> frags_;
  std::unique_ptr<RxSlot[]> slots_;
  std::unique_ptr<WorkQueue<RxWqe>> wq_;
  std::unique_ptr<CompletionQueue> cq_;
  std::uint32_t rx_head_ = 0;  // work requests written (free-running)
  std::uint32_t rx_done_ = 0;  // buffers the device completed (free-running)
  bool fence_seen_ = false;
  bool rx_overrun_ = false;
  std::uint32_t rq_obj_ = Device::kNoObject;
  Tally tally_;
  std::uint64_t unarmed_refills_ = 0;  // kRxRefill hits to count at the end of the poll
  std::uint32_t batch_n_ = 0;
  std::array<RxPacket, kRxBatch> batch_;
  std::array<Page*, kRxBatch> batch_pages_;

  // TX: producers under tx_mu_, completions on the owner thread.
  std::unique_ptr<TxSlot[]> tx_slots_;
  std::unique_ptr<WorkQueue<TxWqe>> tx_wq_;
  std::unique_ptr<CompletionQueue> tx_cq_;
  std::uint32_t sq_obj_ = Device::kNoObject;
  alignas(kCacheLineSize) std::mutex tx_mu_;
  std::atomic<std::uint32_t> tx_head_{0};  // written under tx_mu_
  alignas(kCacheLineSize) std::atomic<std::uint32_t> tx_completed_{0};
  std::uint32_t tx_tail_ = 0;  // owner thread
  bool tx_overrun_ = false;    // owner thread: the TX completion ring was overrun
};

}  // namespace mana
