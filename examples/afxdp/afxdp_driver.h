// SPDX-License-Identifier: BSD-3-Clause
// examples/afxdp/afxdp_driver.h: an AF_XDP driver whose buffers are pagefrag fragments.
//
// The second driver on pagefrag's public headers (the first is the MANA
// reference driver). Everything an RX path needs comes from pagefrag:
//
//   UmemProvider      the UMEM, handed out as pool pages (MemoryProvider)
//   UmemDma           the UMEM registration as a DMA backend: Iova = offset
//   PagePool          pages of the UMEM, recycled; its PoolStats count events
//   FragmentAllocator RX buffers of the policy's stride carved from pool pages
//   AfXdpRxBufPolicy  the stride: 256 + headroom + largest frame + tailroom
//
// The data path, all on the one owner thread that calls run():
//   refill    alloc_frag(stride) per free fill-ring slot; the fragment's Iova
//             (its UMEM offset) is the fill-ring address (unaligned mode).
//   receive   each RX descriptor's address gives back the fragment
//             (low 48 bits) and the data offset (high 16 bits); sync_for_cpu,
//             verify the frame (wire.h), then free_frag() it, or in echo mode
//             turn it around and post the same bytes on the TX ring.
//   complete  each completion-ring address is a fragment the kernel sent:
//             free_frag() it.
// No allocation, lock or atomic read-modify-write on that path: the rings are
// single-producer/single-consumer with the kernel, the fragment allocator and
// the pool's owner cache are owner-thread structures.
//
// For the live test the driver also proves its own bookkeeping: it paints
// every fragment before posting it and checks that the kernel wrote nothing
// outside the frame (guard bytes), that every address coming back is one it
// posted, and, at shutdown, that every fragment and page went back (pool
// in-flight 0, provider pages 0).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pagefrag/afxdp/afxdp_rxbuf_policy.h"
#include "pagefrag/afxdp/umem_dma.h"
#include "pagefrag/afxdp/umem_provider.h"
#include "pagefrag/base/counters.h"
#include "pagefrag/dma/premapped_region.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/pool/page_pool.h"
#include "progress.h"
#include "xsk_port.h"

namespace afxdp {

// The reusable AF_XDP models from the library.
using pagefrag::afxdp::AfXdpPlatform;
using pagefrag::afxdp::AfXdpRxBufPolicy;
using pagefrag::afxdp::UmemDma;
using pagefrag::afxdp::UmemProvider;
using pagefrag::afxdp::UmemProviderOptions;

struct DriverOptions {
  std::string ifname;          // interface (in the caller's network namespace)
  std::uint32_t queue_id = 0;  // its RX queue
  std::uint32_t mtu = 1500;    // buffers are laid out for this MTU; the link's must not exceed it
  std::uint64_t page_size = 65536;  // pool page bytes
  std::uint32_t ring_size = 2048;   // entries of each of the four rings
  std::uint32_t batch = 64;         // descriptors handled per ring per loop
  bool echo = false;                // send every verified frame back
  std::uint16_t udp_port = 9999;    // test traffic's destination port
  std::uint64_t count = 0;          // stop after this many distinct datagrams (0: run until
                                    // stopped, duplicates not tracked)
  bool check_guards = true;         // paint fragments and check the kernel stayed inside frames
  // Test only: start even when the link's MTU exceeds `mtu`, so that frames
  // overrun their fragments and the guard checks can be seen to catch it.
  bool allow_link_mtu_above_layout = false;
};

// Driver counters, owner thread only (plain integers).
#define AFXDP_DRIVER_COUNTERS(X)                                                                  \
  X(kRxFrames, std::uint64_t, rx_frames, "RX descriptors consumed")                               \
  X(kRxBytes, std::uint64_t, rx_bytes, "frame bytes of those descriptors")                        \
  X(kVerified, std::uint64_t, verified, "distinct test datagrams verified intact")                \
  X(kVerifiedBytes, std::uint64_t, verified_bytes, "UDP payload bytes of the verified datagrams") \
  X(kDuplicates, std::uint64_t, duplicates, "test datagrams seen again")                          \
  X(kCorrupt, std::uint64_t, corrupt, "to the test port but failing verification")                \
  X(kForeign, std::uint64_t, foreign, "anything else (ARP, other ports)")                         \
  X(kOverruns, std::uint64_t, overruns, "frames longer than the stride holds")                    \
  X(kGuardChecks, std::uint64_t, guard_checks, "fragments whose guard bytes were checked")        \
  X(kGuardViolations, std::uint64_t, guard_violations,                                            \
    "fragments whose guard bytes were found written")                                             \
  X(kBadAddresses, std::uint64_t, bad_addresses, "ring addresses the driver never posted")        \
  X(kFillPosted, std::uint64_t, fill_posted, "fragments put on the fill ring")                    \
  X(kFillShort, std::uint64_t, fill_short, "refills that got fewer fragments than slots")         \
  X(kTxPosted, std::uint64_t, tx_posted, "frames put on the TX ring")                             \
  X(kTxCompleted, std::uint64_t, tx_completed, "frames returned on the completion ring")          \
  X(kTxRingFull, std::uint64_t, tx_ring_full, "echoes dropped because the TX ring was full")      \
  X(kTxKicks, std::uint64_t, tx_kicks, "sendto() wake-ups")                                       \
  X(kReclaimed, std::uint64_t, reclaimed, "fragments taken back from the kernel at shutdown")     \
  X(kFragsInFlight, std::uint64_t, frags_in_flight, "fragments out of the allocator now")         \
  X(kFragsHighWater, std::uint64_t, frags_high_water, "fragments out of the allocator, at most")  \
  X(kPagesHighWater, std::uint64_t, pages_high_water, "pool pages out carrying fragments, at most")

// What the driver counted; fmt prints it as "name=value ...", and
// pagefrag::counter_table() exports it.
struct DriverStats {
  PAGEFRAG_COUNTERS(DriverStats, AFXDP_DRIVER_COUNTERS)
};
static_assert(pagefrag::CounterStruct<DriverStats>);

// What shutdown() found.
struct LeakReport {
  std::int64_t pool_inflight = 0;     // pages the pool handed out and never got back
  std::size_t provider_pages = 0;     // UMEM pages not returned to the provider
  std::size_t dma_mappings = 0;       // UmemDma mappings not undone
  std::uint64_t frags_in_flight = 0;  // fragments the driver lost track of
  bool clean() const {
    return pool_inflight == 0 && provider_pages == 0 && dma_mappings == 0 && frags_in_flight == 0;
  }
};

class AfXdpDriver {
 public:
  using Policy = AfXdpRxBufPolicy<>;
  using Pool = pagefrag::PagePool<UmemProvider, UmemDma, pagefrag::PoolStats>;
  using Frags = pagefrag::FragmentAllocator<Pool>;

  // Lays out buffers with the policy, checks the interface MTU against it,
  // reserves and registers the UMEM and binds the socket. The calling
  // thread becomes the owner. InvalidArgument / FailedPrecondition with what
  // was wrong and what was expected.
  static absl::StatusOr<std::unique_ptr<AfXdpDriver>> create(const DriverOptions& options);
  ~AfXdpDriver();
  AfXdpDriver(const AfXdpDriver&) = delete;
  AfXdpDriver& operator=(const AfXdpDriver&) = delete;

  // Polls the rings until `count` distinct datagrams are verified (and, in
  // echo mode, every echo completed), `stop` becomes true, or `timeout`
  // passes (DeadlineExceeded). Publishes progress when given. Owner thread.
  absl::Status run(const volatile std::sig_atomic_t& stop, std::chrono::milliseconds timeout,
                   Progress* progress);

  // Closes the socket, takes back every fragment the kernel still held
  // (checking its guard bytes), returns all to the allocator and destroys
  // the pool. Idempotent. Owner thread.
  LeakReport shutdown();

  const DriverStats& stats() const { return stats_; }
  const pagefrag::RxBufCfg& cfg() const { return cfg_; }
  std::uint32_t chunk_size() const { return Policy::chunk_size(cfg_); }
  // The fragment allocator's slow-path counters (pages used, merged, ...).
  const pagefrag::FragStats& frag_stats() const { return frag_stats_; }
  // The pool's counters (kernel page_pool names) and held-bytes gauges.
  pagefrag::PoolStatsSnapshot pool_stats() const {
    return pool_stats_ ? *pool_stats_ : pool_->stats();
  }
  // The kernel's drop counters for the socket (before shutdown only).
  absl::StatusOr<xdp_statistics> kernel_stats() const { return port_->kernel_stats(); }

 private:
  enum class Slot : std::uint8_t { kFree, kInFill, kOwned, kInTx };

  AfXdpDriver(const DriverOptions& options, const pagefrag::RxBufCfg& cfg, UmemProvider provider);
  absl::Status start();

  std::uint32_t refill();
  std::uint32_t receive();
  std::uint32_t complete();
  void kick_tx();
  bool handle_frame(std::uint64_t desc_addr, std::uint32_t len);
  bool post_tx(std::uint64_t desc_addr, std::uint32_t len);
  bool take(std::uint64_t base, Slot expected);
  void free_fragment(std::uint64_t base);
  void check_guards(std::uint64_t base, std::uint32_t written_from, std::uint32_t written_to);
  bool done() const;
  void reclaim_all();

  DriverOptions options_;
  pagefrag::RxBufCfg cfg_;
  UmemProvider provider_;
  UmemDma dma_;
  std::optional<pagefrag::PremappedRegion> region_;  // the UMEM pages, mapped once
  Pool::Handle pool_;
  std::optional<Frags> frags_;
  std::unique_ptr<XskPort> port_;
  std::vector<Slot> slots_;           // per 64-byte UMEM granule: where that fragment is
  std::vector<std::uint8_t> seen_;    // per test sequence number
  std::vector<std::byte> paint_;      // the guard pattern, one stride long
  std::uint64_t max_frags_ = 0;       // fragments the pool's pages can hold, minus one page
  std::uint64_t tx_outstanding_ = 0;  // posted and not yet completed
  DriverStats stats_;
  std::optional<pagefrag::PoolStatsSnapshot> pool_stats_;  // kept when the pool is destroyed
  pagefrag::FragStats frag_stats_;                         // kept when the allocator is destroyed
  std::optional<LeakReport> leaks_;
};

}  // namespace afxdp
