// SPDX-License-Identifier: BSD-3-Clause
// examples/afxdp/afxdp_driver.cc: setup, data path and teardown of AfXdpDriver.
#include "afxdp_driver.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "pagefrag/base/check.h"
#include "wire.h"

namespace afxdp {
namespace {

constexpr std::uint64_t kGranule = AfXdpPlatform::kFragAlignment;  // slots_ resolution
constexpr std::uint32_t kVlanHeaderLen = 4;
constexpr std::uint32_t kIdleSpins = 256;  // empty loops before sleeping in poll()
constexpr std::uint32_t kMaxBatch = 256;

// How many pool pages the rings can need: every fill-ring slot (and in echo
// mode every TX slot) holding a fragment, one partly carved page, one spare.
std::size_t pool_pages(const pagefrag::RxBufCfg& cfg, const DriverOptions& o) {
  const std::uint32_t entries = o.ring_size * (o.echo ? 2 : 1);
  return cfg.pool_size(entries) + 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AfXdpDriver>> AfXdpDriver::create(const DriverOptions& o) {
  auto cfg = Policy::configure({.page_size = o.page_size,
                                .mtu = o.mtu,
                                .xdp = true,
                                .queue_size = o.ring_size,
                                .max_order = 0});
  if (!cfg.ok()) return cfg.status();
  auto link_mtu = interface_mtu(o.ifname);
  if (!link_mtu.ok()) return link_mtu.status();
  if (*link_mtu > o.mtu && !o.allow_link_mtu_above_layout) {
    // The kernel checks frames only against chunk_size, not our stride.
    return absl::InvalidArgumentError(fmt::format(
        "interface {} has MTU {}: expected at most {}, the MTU the RX buffers are laid out for "
        "(a larger frame would overrun its {}-byte fragment)",
        o.ifname, *link_mtu, o.mtu, cfg->alloc_size));
  }
  if (o.batch == 0 || o.batch > std::min(o.ring_size, kMaxBatch)) {
    return absl::InvalidArgumentError(
        fmt::format("batch {}: expected 1..{}", o.batch, std::min(o.ring_size, kMaxBatch)));
  }
  auto provider = UmemProvider::create(
      {.page_size = o.page_size, .pages = pool_pages(*cfg, o), .tail_bytes = 4096});
  if (!provider.ok()) return provider.status();
  std::unique_ptr<AfXdpDriver> driver(new AfXdpDriver(o, *cfg, std::move(*provider)));
  if (absl::Status s = driver->start(); !s.ok()) return s;
  return driver;
}

AfXdpDriver::AfXdpDriver(const DriverOptions& options, const pagefrag::RxBufCfg& cfg,
                         UmemProvider provider)
    : options_(options),
      cfg_(cfg),
      provider_(std::move(provider)),
      dma_(provider_.umem()),
      slots_(provider_.umem().size() / kGranule, Slot::kFree),
      seen_(options.count, 0),
      paint_(cfg.alloc_size) {
  for (std::size_t i = 0; i < paint_.size(); ++i) {
    paint_[i] = static_cast<std::byte>(0x5a ^ (i * 29));
  }
}

// Maps the UMEM pages once (PremappedRegion over UmemDma: Iova = offset),
// builds pool and fragment allocator on that mapping, then registers the
// UMEM with the kernel and binds the socket.
absl::Status AfXdpDriver::start() {
  const auto dir =
      options_.echo ? pagefrag::DmaDirection::kBidirectional : pagefrag::DmaDirection::kFromDevice;
  auto region = pagefrag::PremappedRegion::create(dma_, provider_, dir);
  if (!region.ok()) return region.status();
  region_.emplace(std::move(*region));
  const std::size_t pages = provider_.region().size() / provider_.page_size();
  auto pool = Pool::create(provider_, dma_,
                           {.order = 0,
                            .pool_size = pages,
                            .dma_dir = dir,
                            .premapped = true,
                            .premapped_iova = region_->base()});
  if (!pool.ok()) return pool.status();
  pool_ = std::move(*pool);
  auto frags = Frags::create(*pool_, {.align = AfXdpPlatform::kFragAlignment});
  if (!frags.ok()) return frags.status();
  frags_.emplace(std::move(*frags));
  max_frags_ = (pages - 1) * cfg_.frag_count;
  auto port = XskPort::open(provider_.umem(),
                            {.ifname = options_.ifname,
                             .queue_id = options_.queue_id,
                             .ring_size = options_.ring_size,
                             .chunk_size = chunk_size(),
                             .umem_headroom = cfg_.headroom - AfXdpPlatform::kXdpPacketHeadroom});
  if (!port.ok()) return port.status();
  port_ = std::move(*port);
  return absl::OkStatus();
}

AfXdpDriver::~AfXdpDriver() { shutdown(); }

// ---- data path (owner thread) ----

// Puts fresh fragments on free fill-ring slots (up to one batch).
std::uint32_t AfXdpDriver::refill() {
  xsk_ring_prod& fill = port_->fill();
  const std::uint64_t room = max_frags_ - std::min(max_frags_, stats_.frags_in_flight);
  const auto want = static_cast<std::uint32_t>(
      std::min<std::uint64_t>({xsk_prod_nb_free(&fill, options_.batch), options_.batch, room}));
  std::uint64_t addrs[kMaxBatch];
  std::uint32_t n = 0;
  for (; n < want; ++n) {
    pagefrag::Frag frag = frags_->alloc_frag(cfg_.alloc_size);
    if (!frag) break;
    const std::uint64_t base = frag.iova.value();
    PAGEFRAG_DCHECK(base % kGranule == 0 && base + chunk_size() <= provider_.umem().size(),
                    "fragment at UMEM offset {} breaks the fill-ring rules", base);
    if (options_.check_guards) std::memcpy(frag.va, paint_.data(), paint_.size());
    slots_[base / kGranule] = Slot::kInFill;
    addrs[n] = base;
  }
  if (n < want) ++stats_.fill_short;
  std::uint32_t idx = 0;
  if (n == 0 || xsk_ring_prod__reserve(&fill, n, &idx) != n) return 0;  // checked free >= n
  for (std::uint32_t i = 0; i < n; ++i) *xsk_ring_prod__fill_addr(&fill, idx + i) = addrs[i];
  xsk_ring_prod__submit(&fill, n);
  stats_.fill_posted += n;
  stats_.frags_in_flight += n;
  stats_.frags_high_water = std::max(stats_.frags_high_water, stats_.frags_in_flight);
  stats_.pages_high_water =
      std::max(stats_.pages_high_water, static_cast<std::uint64_t>(pool_->handed_out()));
  return n;
}

// Consumes up to one batch of RX descriptors.
std::uint32_t AfXdpDriver::receive() {
  xsk_ring_cons& rx = port_->rx();
  std::uint32_t idx = 0;
  const std::uint32_t n = xsk_ring_cons__peek(&rx, options_.batch, &idx);
  for (std::uint32_t i = 0; i < n; ++i) {
    const xdp_desc* desc = xsk_ring_cons__rx_desc(&rx, idx + i);
    handle_frame(desc->addr, desc->len);
  }
  if (n != 0) xsk_ring_cons__release(&rx, n);
  stats_.rx_frames += n;
  return n;
}

// One received frame: check, verify, then recycle or echo it.
bool AfXdpDriver::handle_frame(std::uint64_t desc_addr, std::uint32_t len) {
  const std::uint64_t base = xsk_umem__extract_addr(desc_addr);
  const std::uint64_t data_off = xsk_umem__extract_offset(desc_addr);
  if (!take(base, Slot::kInFill)) return false;
  stats_.rx_bytes += len;
  std::byte* va = dma_.va_of(base);
  pagefrag::Page* page = pool_->page_of(va);
  pool_->sync_for_cpu(page, static_cast<std::uint32_t>(va - page->va + data_off), len);
  if (data_off != cfg_.headroom || len > Policy::frame_room(cfg_)) ++stats_.overruns;
  if (options_.check_guards) {
    check_guards(
        base, static_cast<std::uint32_t>(data_off),
        static_cast<std::uint32_t>(std::min<std::uint64_t>(data_off + len, cfg_.alloc_size)));
  }
  std::span<std::byte> frame(va + data_off,
                             std::min<std::uint64_t>(len, cfg_.alloc_size - data_off));
  UdpFrame udp;
  std::uint32_t seq = 0;
  if (!parse_udp_frame(frame, &udp) || udp.dst_port != options_.udp_port) {
    ++stats_.foreign;
  } else if (check_payload(udp.payload, max_payload_for_mtu(options_.mtu), &seq) !=
                 PayloadVerdict::kOk ||
             (options_.count != 0 && seq >= options_.count)) {
    ++stats_.corrupt;
  } else if (options_.count != 0 && seen_[seq] != 0) {
    ++stats_.duplicates;
  } else {
    if (options_.count != 0) seen_[seq] = 1;  // without a count, sequence numbers are not tracked
    ++stats_.verified;
    stats_.verified_bytes += udp.payload.size();
    if (options_.echo) {
      reverse_udp_frame(frame, udp);
      if (post_tx(desc_addr, len)) return true;
    }
  }
  free_fragment(base);
  return true;
}

// Sends the fragment's frame back out; false (counted) when the TX ring is full.
bool AfXdpDriver::post_tx(std::uint64_t desc_addr, std::uint32_t len) {
  std::uint32_t idx = 0;
  if (xsk_ring_prod__reserve(&port_->tx(), 1, &idx) != 1) {
    ++stats_.tx_ring_full;
    return false;
  }
  xdp_desc* desc = xsk_ring_prod__tx_desc(&port_->tx(), idx);
  desc->addr = desc_addr;  // base | data offset << 48: accepted in unaligned mode
  desc->len = len;
  desc->options = 0;
  xsk_ring_prod__submit(&port_->tx(), 1);
  slots_[xsk_umem__extract_addr(desc_addr) / kGranule] = Slot::kInTx;
  ++stats_.tx_posted;
  ++tx_outstanding_;
  return true;
}

// Frees every fragment the kernel finished sending.
std::uint32_t AfXdpDriver::complete() {
  xsk_ring_cons& comp = port_->completion();
  std::uint32_t idx = 0;
  const std::uint32_t n = xsk_ring_cons__peek(&comp, options_.batch, &idx);
  for (std::uint32_t i = 0; i < n; ++i) {
    // Copy mode clears bit 0 of completion addresses; ours are 64-aligned.
    const std::uint64_t base = xsk_umem__extract_addr(*xsk_ring_cons__comp_addr(&comp, idx + i));
    if (!take(base, Slot::kInTx)) continue;
    --tx_outstanding_;
    ++stats_.tx_completed;
    free_fragment(base);
  }
  if (n != 0) xsk_ring_cons__release(&comp, n);
  return n;
}

// Copy-mode TX runs only inside sendto(), at most 32 frames a call: kick
// while the kernel has not consumed everything on the TX ring.
void AfXdpDriver::kick_tx() {
  xsk_ring_prod& tx = port_->tx();
  if (xsk_prod_nb_free(&tx, options_.ring_size) >= options_.ring_size) return;
  ++stats_.tx_kicks;
  port_->kick_tx();
}

// Moves the fragment at UMEM offset base out of state `expected`; false
// (counted) for an address the driver never posted there.
bool AfXdpDriver::take(std::uint64_t base, Slot expected) {
  if (base % kGranule != 0 || base / kGranule >= slots_.size() ||
      slots_[base / kGranule] != expected) {
    ++stats_.bad_addresses;
    return false;
  }
  slots_[base / kGranule] = Slot::kOwned;
  return true;
}

void AfXdpDriver::free_fragment(std::uint64_t base) {
  slots_[base / kGranule] = Slot::kFree;
  frags_->free_frag(pool_->page_of(dma_.va_of(base)));
  --stats_.frags_in_flight;
}

// Every byte of the fragment outside [from, to) must still hold the paint.
void AfXdpDriver::check_guards(std::uint64_t base, std::uint32_t from, std::uint32_t to) {
  const std::byte* va = dma_.va_of(base);
  ++stats_.guard_checks;
  if (std::memcmp(va, paint_.data(), from) != 0 ||
      std::memcmp(va + to, paint_.data() + to, cfg_.alloc_size - to) != 0) {
    ++stats_.guard_violations;
  }
}

bool AfXdpDriver::done() const {
  return options_.count != 0 && stats_.verified >= options_.count && tx_outstanding_ == 0;
}

absl::Status AfXdpDriver::run(const volatile std::sig_atomic_t& stop,
                              std::chrono::milliseconds timeout, Progress* progress) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (progress != nullptr) publish(progress->ready, 1);
  std::uint32_t idle = 0;
  while (!done() && stop == 0) {
    std::uint32_t work = refill() + receive();
    if (options_.echo) {
      kick_tx();
      work += complete();
    }
    if (work != 0) {
      idle = 0;
      if (progress != nullptr) publish(progress->verified, stats_.verified);
      continue;
    }
    if (++idle < kIdleSpins) continue;
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          fmt::format("{} of {} datagrams verified, {} echoes outstanding after {} ms",
                      stats_.verified, options_.count, tx_outstanding_, timeout.count()));
    }
    pollfd pfd{.fd = port_->fd(), .events = POLLIN, .revents = 0};
    ::poll(&pfd, 1, 1);  // nothing to do: sleep until a frame arrives (1 ms at most)
  }
  if (progress != nullptr) publish(progress->verified, stats_.verified);
  return absl::OkStatus();
}

// ---- teardown ----

// After the socket is closed every address on any ring is the driver's
// again: check and free each fragment still marked as the kernel's.
void AfXdpDriver::reclaim_all() {
  const std::uint32_t guard_from = cfg_.headroom;
  // A fragment still on the fill ring may have received a frame nobody read;
  // only bytes past the largest frame are guard bytes then.
  const std::uint32_t guard_to =
      std::min<std::uint32_t>(cfg_.headroom + cfg_.datasize + kVlanHeaderLen, cfg_.alloc_size);
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i] == Slot::kFree) continue;
    const std::uint64_t base = i * kGranule;
    if (options_.check_guards) check_guards(base, guard_from, guard_to);
    if (slots_[i] == Slot::kInTx) --tx_outstanding_;
    ++stats_.reclaimed;
    free_fragment(base);
  }
}

LeakReport AfXdpDriver::shutdown() {
  if (leaks_) return *leaks_;
  if (port_ != nullptr) port_->close();
  if (frags_) {
    reclaim_all();
    frag_stats_ = frags_->stats();
    frags_.reset();  // retires the page it was carving: every fragment is back, so it recycles
  }
  LeakReport report;
  report.frags_in_flight = stats_.frags_in_flight;
  if (pool_) {
    pool_stats_ = pool_->stats();
    report.pool_inflight = pool_->handed_out();
    pool_.reset();  // page_pool_destroy: releases cache and ring to the provider
  }
  region_.reset();  // unmaps the UMEM pages
  report.provider_pages = provider_.allocated();
  report.dma_mappings = dma_.live_mappings();
  port_.reset();
  leaks_ = report;
  return report;
}

}  // namespace afxdp
