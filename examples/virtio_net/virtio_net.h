// SPDX-License-Identifier: BSD-3-Clause
// examples/virtio_net/virtio_net.h: a polled user-space virtio-net driver
// (virtio 1.x modern PCI transport, split virtqueues) over VFIO, receiving
// into pagefrag fragments.
//
// Bring-up: the virtio PCI capabilities are read from config space (common,
// notify, ISR and device config, each a BAR window that must lie inside its
// BAR); reset; ACKNOWLEDGE | DRIVER; features VERSION_1 and ACCESS_PLATFORM
// are required (without ACCESS_PLATFORM the device would bypass the IOMMU and
// take our IOVAs as guest physical addresses: refused), MRG_RXBUF when the
// MTU needs more than one buffer, MAC and MTU when offered; FEATURES_OK; the
// RX and TX queues (descriptor, avail and used areas in one DMA-mapped
// region each); DRIVER_OK. No interrupts (MSI-X vectors NO_VECTOR).
//
// RX buffers are fragments of VirtioNetRxBufPolicy's alloc_size cut by a
// FragmentAllocator from 64 KiB pool pages, each page mapped once through
// VfioDma (vfio_pci::NicBuffers); each is posted as one device-writable
// descriptor of headroom + datasize bytes. Everything the device writes in
// the used ring and the header is checked by parse_rx_frame()
// (virtio_rx_parse.h); refused values are counted per reason and their
// buffers taken back.
//
// TX echoes a received frame without copying: the header is rewritten in
// the first fragment's headroom and the fragments go out as one descriptor
// chain; they are freed when the device returns the chain in the TX used
// ring. Small frames the program builds (ARP, ICMP, control) go through a
// mapped bounce area.
//
// Thread contract: one polling thread (the pool's owner).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "examples/vfio_pci/nic_api.h"
#include "examples/vfio_pci/nic_buffers.h"
#include "examples/vfio_pci/vfio_pci.h"
#include "examples/virtio_net/virtio_defs.h"
#include "examples/virtio_net/virtio_net_rxbuf_policy.h"
#include "examples/virtio_net/virtio_rx_parse.h"

namespace virtio_net {

using vfio_pci::Bar;
using vfio_pci::Dma;
using vfio_pci::DmaMemory;
using vfio_pci::RxFrame;

// A mapped BAR window (one virtio capability).
struct Window {
  volatile std::byte* base = nullptr;
  std::uint32_t length = 0;
};

// One split virtqueue in its own DMA-mapped region.
struct Virtq {
  std::uint32_t size = 0;
  std::optional<DmaMemory<Dma>> mem;
  VirtqDesc* desc = nullptr;
  volatile std::uint16_t* avail = nullptr;  // flags, idx, ring[size]
  volatile std::byte* used = nullptr;       // flags, idx, ring[size] of UsedElem
  volatile std::byte* notify = nullptr;
  std::uint16_t avail_idx = 0;
  std::uint16_t last_used = 0;

  std::uint16_t used_idx() const {
    return *reinterpret_cast<volatile const std::uint16_t*>(used + 2);
  }
  UsedElem used_elem(std::uint16_t i) const {
    const volatile std::byte* e = used + 4 + 8u * (i & (size - 1));
    return {*reinterpret_cast<volatile const std::uint32_t*>(e),
            *reinterpret_cast<volatile const std::uint32_t*>(e + 4)};
  }
  void push_avail(std::uint16_t id) { avail[2 + (avail_idx++ & (size - 1))] = id; }
  void publish_avail() {
    vfio_pci::dma_wmb();
    avail[1] = avail_idx;
  }
};

class VirtioNet {
 public:
  using Policy = VirtioNetRxBufPolicy;

  static absl::StatusOr<std::unique_ptr<VirtioNet>> create(const vfio_pci::NicOptions& opt) {
    absl::StatusOr<pagefrag::RxBufCfg> cfg =
        Policy::configure({.page_size = vfio_pci::kPoolPageBytes,
                           .mtu = std::min(opt.mtu, VirtioNetPlatform::kMergeableMtu),
                           .adapter_mtu = 65535,
                           .queue_size = opt.queue_size,
                           .max_order = 0});
    if (!cfg.ok()) return cfg.status();
    absl::StatusOr<std::unique_ptr<vfio_pci::NicBuffers>> bufs =
        vfio_pci::NicBuffers::for_rings(opt, *cfg);
    if (!bufs.ok()) return bufs.status();
    std::unique_ptr<VirtioNet> nic(new VirtioNet(opt, *cfg, *std::move(bufs)));
    if (absl::Status st = nic->start(); !st.ok()) return st;
    return nic;
  }

  ~VirtioNet() {
    if (bufs_) {
      vfio_pci::IommuReport r;
      shutdown(r);
    }
  }

  // The next received frame (its fragments now the caller's), or false.
  // Refills the RX queue. Owner thread.
  bool poll_rx(RxFrame& out) {
    bool got = false;
    while (!broken_ && !got) {
      const std::optional<std::uint16_t> n =
          used_available(rxq_.used_idx(), rxq_.last_used, rxq_.size);
      if (!n) {
        broken_ = true;
        ++drops_[kRingBroken];
        break;
      }
      if (*n == 0) break;
      vfio_pci::dma_rmb();
      std::array<UsedElem, vfio_pci::kMaxSegs> elems;
      const std::size_t k = std::min<std::size_t>(*n, elems.size());
      for (std::size_t i = 0; i < k; ++i) {
        elems[i] = rxq_.used_elem(static_cast<std::uint16_t>(rxq_.last_used + i));
      }
      const RxVerdict v = parse_rx_frame(
          std::span<const UsedElem>(elems.data(), k), limits_,
          [this](std::uint32_t id) { return posted_[id] ? post_len_ : 0u; },
          [this](std::uint32_t id) {
            NetHdr h;
            std::memcpy(&h, posted_[id].va, sizeof h);
            return h.num_buffers;
          });
      if (v.kind == RxVerdict::Kind::kWait) break;
      if (v.kind == RxVerdict::Kind::kFrame) {
        take_frame(elems.data(), v, out);
        got = true;
      } else {
        ++drops_[static_cast<unsigned>(v.error)];
        for (std::size_t i = 0; i < v.consumed; ++i) {
          const std::uint32_t id = elems[i].id;
          if (id < rxq_.size && posted_[id]) {
            bufs_->frags().free_frag(posted_[id].page);
            unpost(id);
          }
        }
      }
      rxq_.last_used = static_cast<std::uint16_t>(rxq_.last_used + v.consumed);
    }
    refill();
    return got;
  }

  // Sends a received frame back out without copying; the fragments are
  // freed when the device is done. False (frame untouched) when the TX queue
  // has too few descriptors. Owner thread.
  bool tx_frame(const RxFrame& f) {
    poll_tx();
    if (tx_free_.size() < f.nsegs) return false;
    std::memset(f.segs[0].data - kNetHdrLen, 0, kNetHdrLen);  // flags 0, no GSO
    chain(
        f.nsegs,
        [&](std::uint32_t i) {
          const vfio_pci::RxSeg& s = f.segs[i];
          return std::pair(s.iova.value() + s.headroom - (i == 0 ? kNetHdrLen : 0),
                           s.len + (i == 0 ? kNetHdrLen : 0));
        },
        TxEntry{.frame = f, .bounce = -1});
    return true;
  }

  // Sends a copy of frame (at most kBounceSlot - 12 bytes). Owner thread.
  bool tx_copy(std::span<const std::byte> frame) {
    poll_tx();
    if (frame.size() + kNetHdrLen > kBounceSlot || tx_free_.empty()) return false;
    int slot = -1;
    for (int i = 0; i < kBounceSlots; ++i) {
      if (!bounce_busy_[i]) {
        slot = i;
        break;
      }
    }
    if (slot < 0) return false;
    std::byte* p = bounce_->data() + slot * kBounceSlot;
    std::memset(p, 0, kNetHdrLen);
    std::memcpy(p + kNetHdrLen, frame.data(), frame.size());
    bounce_busy_[slot] = true;
    chain(
        1,
        [&](std::uint32_t) {
          return std::pair(bounce_->iova_of(p).value(), std::uint32_t(frame.size() + kNetHdrLen));
        },
        TxEntry{.frame = {}, .bounce = slot});
    return true;
  }

  // Takes back the TX chains the device has finished. Owner thread.
  void poll_tx() {
    const std::optional<std::uint16_t> n =
        used_available(txq_.used_idx(), txq_.last_used, txq_.size);
    if (!n) {
      broken_ = true;
      ++drops_[kRingBroken];
      return;
    }
    vfio_pci::dma_rmb();
    for (std::uint16_t i = 0; i < *n; ++i) {
      const UsedElem e = txq_.used_elem(txq_.last_used++);
      if (e.id >= txq_.size || !tx_[e.id]) {  // not a chain head in flight
        ++drops_[kBadTxId];
        continue;
      }
      TxEntry& t = *tx_[e.id];
      if (t.bounce >= 0) bounce_busy_[t.bounce] = false;
      bufs_->free_frame(t.frame);
      // The chain as the driver built it, not as the (device-writable)
      // descriptor table now says.
      for (std::uint32_t i = 0; i < t.ndesc; ++i) tx_free_.push_back(t.descs[i]);
      tx_[e.id].reset();
      ++tx_done_;
    }
  }

  std::array<std::uint8_t, 6> mac() const { return mac_; }
  vfio_pci::NicBuffers& buffers() { return *bufs_; }
  const pagefrag::RxBufCfg& cfg() const { return cfg_; }
  std::uint64_t tx_done() const { return tx_done_; }
  bool broken() const { return broken_; }
  // Bytes the posted RX buffers need (descriptors x posted length).
  std::uint64_t posted_bytes() const { return std::uint64_t{rxq_.size} * post_len_; }
  std::uint32_t buffers_per_page() const { return cfg_.frag_count; }
  std::vector<vfio_pci::DropCount> drops() const {
    std::vector<vfio_pci::DropCount> out;
    for (unsigned i = 1; i < kDropKinds; ++i) {
      const std::string_view name = i < static_cast<unsigned>(RxError::kCount)
                                        ? to_string(static_cast<RxError>(i))
                                    : i == kRingBroken ? "used_idx_jump"
                                                       : "tx_bad_id";
      out.push_back({std::string(name), drops_[i]});
    }
    return out;
  }
  std::string device_state() const {
    return fmt::format("status {:#x}", vfio_pci::mmio_read8(common_.base, common::kDeviceStatus));
  }

  // Teardown check, step 1: stops echoing, fills every posted RX buffer with
  // `pattern`, and unmaps every pool page from the IOMMU while the buffers
  // stay posted (rings and bounce stay mapped). Owner thread.
  absl::Status teardown_revoke(std::uint8_t pattern, vfio_pci::TeardownInfo& info) {
    info = {};
    info.iova_lo = ~std::uint64_t{0};
    for (std::uint32_t id = 0; id < rxq_.size; ++id) {
      if (!posted_[id]) continue;
      std::memset(posted_[id].va, pattern, post_len_);
      info.iova_lo = std::min(info.iova_lo, posted_[id].iova.value());
      info.iova_hi = std::max(info.iova_hi, posted_[id].iova.value() + post_len_);
      ++info.posted;
    }
    const std::uint64_t keep[] = {rxq_.mem->iova().value(), txq_.mem->iova().value(),
                                  bounce_->iova().value()};
    return bufs_->dma().revoke_all([&](pagefrag::Iova iova) {
      return std::find(std::begin(keep), std::end(keep), iova.value()) != std::end(keep);
    });
  }
  // Step 2: whether every posted buffer still holds only `pattern`, and
  // whether the device published any RX completion since.
  bool teardown_unchanged(std::uint8_t pattern, std::string& completion) const {
    completion = "none";
    if (rxq_.used_idx() != rxq_.last_used) {
      const UsedElem e = rxq_.used_elem(rxq_.last_used);
      completion = fmt::format("published (id {}, len {})", e.id, e.len);
    }
    for (std::uint32_t id = 0; id < rxq_.size; ++id) {
      if (!posted_[id]) continue;
      for (std::uint32_t i = 0; i < post_len_; ++i) {
        if (posted_[id].va[i] != std::byte{pattern}) return false;
      }
    }
    return true;
  }

  // Resets the device (no more DMA), frees every fragment, destroys the
  // pool and the rings, and fills r. Idempotent. Owner thread.
  void shutdown(vfio_pci::IommuReport& r) {
    if (!bufs_) return;
    reset_device();
    r.posted_bytes = posted_bytes();
    for (std::uint32_t id = 0; id < rxq_.size; ++id) {
      if (posted_[id]) bufs_->frags().free_frag(posted_[id].page);
    }
    for (auto& t : tx_) {
      if (t) bufs_->free_frame(t->frame);
    }
    bufs_->shutdown(r);
    rxq_.mem.reset();
    txq_.mem.reset();
    bounce_.reset();
    r.leaked_mappings = bufs_->vfio().live_mappings();
    bufs_.reset();
  }

 private:
  static constexpr unsigned kRingBroken = static_cast<unsigned>(RxError::kCount);
  static constexpr unsigned kBadTxId = kRingBroken + 1;
  static constexpr unsigned kDropKinds = kBadTxId + 1;
  static constexpr std::size_t kBounceSlot = 2048;
  static constexpr int kBounceSlots = 16;

  struct TxEntry {
    RxFrame frame;
    int bounce = -1;
    std::array<std::uint16_t, vfio_pci::kMaxSegs> descs{};  // the chain, head first
    std::uint32_t ndesc = 0;
  };

  VirtioNet(const vfio_pci::NicOptions& opt, const pagefrag::RxBufCfg& cfg,
            std::unique_ptr<vfio_pci::NicBuffers> bufs)
      : opt_(opt), cfg_(cfg), post_len_(Policy::post_len(cfg)), bufs_(std::move(bufs)) {}

  absl::Status start();
  absl::Status find_caps();
  absl::Status negotiate();
  absl::Status setup_queue(std::uint16_t index, Virtq& q);

  void reset_device() {
    vfio_pci::mmio_write8(common_.base, common::kDeviceStatus, 0);
    for (int i = 0; i < 1000 && vfio_pci::mmio_read8(common_.base, common::kDeviceStatus) != 0;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  void unpost(std::uint32_t id) {
    posted_[id] = {};
    rx_free_.push_back(static_cast<std::uint16_t>(id));
  }

  void take_frame(const UsedElem* elems, const RxVerdict& v, RxFrame& out) {
    out.nsegs = v.num_buffers;
    out.len = v.frame_len;
    for (std::uint32_t i = 0; i < v.num_buffers; ++i) {
      const pagefrag::Frag& f = posted_[elems[i].id];
      const std::uint32_t head = i == 0 ? kNetHdrLen : 0;
      out.segs[i] = {.page = f.page,
                     .data = f.va + head,
                     .iova = f.iova,
                     .len = elems[i].len - head,
                     .headroom = head};
      unpost(elems[i].id);
    }
  }

  // Posts fragments on every free RX descriptor. Owner thread.
  void refill() {
    if (rx_free_.empty() || broken_) return;
    bool any = false;
    while (!rx_free_.empty()) {
      const pagefrag::Frag f = bufs_->frags().alloc_frag(cfg_.alloc_size);
      if (!f) break;
      const std::uint16_t id = rx_free_.back();
      rx_free_.pop_back();
      posted_[id] = f;
      rxq_.desc[id] = {f.iova.value(), post_len_, kDescFWrite, 0};
      rxq_.push_avail(id);
      any = true;
    }
    if (any) {
      rxq_.publish_avail();
      vfio_pci::mmio_write16(rxq_.notify, 0, kRxQueue);
    }
  }

  // Builds a descriptor chain of n entries from free TX descriptors,
  // records entry (and the chain) at its head, posts it and notifies;
  // returns the head. Precondition: n free descriptors.
  template <class Seg>
  std::uint16_t chain(std::uint32_t n, Seg seg, TxEntry entry) {
    std::uint16_t head = 0, prev = 0;
    entry.ndesc = n;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint16_t d = tx_free_.back();
      tx_free_.pop_back();
      entry.descs[i] = d;
      const auto [addr, len] = seg(i);
      txq_.desc[d] = {addr, len, 0, 0};
      if (i == 0)
        head = d;
      else {
        txq_.desc[prev].flags = kDescFNext;
        txq_.desc[prev].next = d;
      }
      prev = d;
    }
    tx_[head] = entry;
    txq_.push_avail(head);
    txq_.publish_avail();
    vfio_pci::mmio_write16(txq_.notify, 0, kTxQueue);
    return head;
  }

  vfio_pci::NicOptions opt_;
  pagefrag::RxBufCfg cfg_;
  std::uint32_t post_len_;
  std::unique_ptr<vfio_pci::NicBuffers> bufs_;
  Window common_, notify_, device_;
  std::uint32_t notify_mult_ = 0;
  std::uint64_t features_ = 0;
  std::array<std::uint8_t, 6> mac_{0x52, 0x54, 0, 0x12, 0x34, 0x56};
  RxLimits limits_;
  Virtq rxq_, txq_;
  std::optional<DmaMemory<Dma>> bounce_;
  std::array<bool, kBounceSlots> bounce_busy_{};
  std::vector<pagefrag::Frag> posted_;
  std::vector<std::uint16_t> rx_free_, tx_free_;
  std::vector<std::optional<TxEntry>> tx_;
  std::array<std::uint64_t, kDropKinds> drops_{};
  std::uint64_t tx_done_ = 0;
  bool broken_ = false;
};

}  // namespace virtio_net

#include "examples/virtio_net/virtio_net_setup.h"
