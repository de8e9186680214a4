// SPDX-License-Identifier: BSD-3-Clause
// examples/e1000e/e1000e.h: a polled user-space driver for the Intel 82574L
// (as QEMU's e1000e emulates it) over VFIO, receiving into pagefrag
// fragments.
//
// Bring-up: BAR0 mapped, bus master on, all interrupts masked (IMC),
// CTRL.RST, interrupts masked again, CTRL.SLU and a wait for STATUS.LU;
// the MAC from RAL0/RAH0; RX and TX rings of legacy descriptors in DMA-mapped
// memory (RDBAL/RDBAH/RDLEN/RDH/RDT and the TX equivalents); RX buffers
// posted behind RDT; RCTL with EN, broadcast, promiscuous, CRC stripping and
// the buffer size of E1000eRxBufPolicy (2048 bytes at MTU 1500); TCTL EN|PSP.
//
// RX buffers are fragments of the policy's alloc_size (a power of two, the
// only sizes the device takes) cut by a FragmentAllocator from 64 KiB pool
// pages mapped once each through VfioDma. Every written-back descriptor is
// checked by parse_rx_desc() (e1000e_rx_parse.h); refused ones are counted
// per reason and their buffers replaced. TX echoes a received fragment
// without copying (one legacy descriptor, EOP|IFCS|RS) and frees it when
// the device sets DD.
//
// Thread contract: one polling thread (the pool's owner).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "examples/e1000e/e1000e_defs.h"
#include "examples/e1000e/e1000e_rx_parse.h"
#include "examples/e1000e/e1000e_rxbuf_policy.h"
#include "examples/vfio_pci/nic_api.h"
#include "examples/vfio_pci/nic_buffers.h"
#include "examples/vfio_pci/vfio_pci.h"

namespace e1000e {

using vfio_pci::Dma;
using vfio_pci::DmaMemory;
using vfio_pci::RxFrame;

class E1000e {
 public:
  using Policy = E1000eRxBufPolicy;

  static absl::StatusOr<std::unique_ptr<E1000e>> create(const vfio_pci::NicOptions& opt) {
    absl::StatusOr<pagefrag::RxBufCfg> cfg =
        Policy::configure({.page_size = vfio_pci::kPoolPageBytes,
                           .mtu = opt.mtu,
                           .adapter_mtu = 1500 + 14,  // LPE stays off
                           .queue_size = opt.queue_size,
                           .max_order = 0});
    if (!cfg.ok()) return cfg.status();
    absl::StatusOr<std::unique_ptr<vfio_pci::NicBuffers>> bufs =
        vfio_pci::NicBuffers::for_rings(opt, *cfg);
    if (!bufs.ok()) return bufs.status();
    std::unique_ptr<E1000e> nic(new E1000e(opt, *cfg, *std::move(bufs)));
    if (absl::Status st = nic->start(); !st.ok()) return st;
    return nic;
  }

  ~E1000e() {
    vfio_pci::IommuReport r;
    shutdown(r);
  }

  // The next received frame (its fragment now the caller's), or false.
  // Refills behind RDT. Owner thread.
  bool poll_rx(RxFrame& out) {
    bool got = false;
    while (!got) {
      volatile RxDesc* d = &rx_ring_[rx_next_];
      if (!posted_[rx_next_]) break;  // not posted: nothing can complete here
      RxWriteback wb{};
      wb.status = d->status;
      if ((wb.status & kRxStatusDd) == 0) break;
      vfio_pci::dma_rmb();
      wb.length = d->length;
      wb.errors = d->errors;
      const RxVerdict v = parse_rx_desc(wb, cfg_.alloc_size, opt_.mtu + 14, in_frame_);
      const pagefrag::Frag f = posted_[rx_next_];
      posted_[rx_next_] = {};
      if (v.kind == RxVerdict::Kind::kFrame) {
        out.nsegs = 1;
        out.len = v.len;
        out.segs[0] = {.page = f.page, .data = f.va, .iova = f.iova, .len = v.len, .headroom = 0};
        got = true;
      } else {
        ++drops_[static_cast<unsigned>(v.error)];
        bufs_->frags().free_frag(f.page);
      }
      rx_next_ = (rx_next_ + 1) & (size_ - 1);
    }
    refill();
    return got;
  }

  // Sends a received frame back out without copying; freed when the device
  // sets DD. False (frame untouched) when the TX ring is full. Owner thread.
  bool tx_frame(const RxFrame& f) {
    poll_tx();
    if (f.nsegs != 1 || tx_full()) return false;
    post_tx(f.segs[0].iova.value() + f.segs[0].headroom, f.len, TxEntry{.frame = f, .bounce = -1});
    return true;
  }

  // Sends a copy of frame (at most kBounceSlot bytes). Owner thread.
  bool tx_copy(std::span<const std::byte> frame) {
    poll_tx();
    if (frame.size() > kBounceSlot || tx_full()) return false;
    int slot = -1;
    for (int i = 0; i < kBounceSlots && slot < 0; ++i) {
      if (!bounce_busy_[i]) slot = i;
    }
    if (slot < 0) return false;
    std::byte* p = bounce_->data() + slot * kBounceSlot;
    std::memcpy(p, frame.data(), frame.size());
    bounce_busy_[slot] = true;
    post_tx(bounce_->iova_of(p).value(), static_cast<std::uint32_t>(frame.size()),
            TxEntry{.frame = {}, .bounce = slot});
    return true;
  }

  // Takes back the TX descriptors the device has finished. Owner thread.
  void poll_tx() {
    while (tx_clean_ != tx_tail_) {
      volatile TxDesc* d = &tx_ring_[tx_clean_];
      if ((d->status & kTxStatusDd) == 0) break;
      vfio_pci::dma_rmb();
      TxEntry& t = tx_[tx_clean_];
      if (t.bounce >= 0) bounce_busy_[t.bounce] = false;
      bufs_->free_frame(t.frame);
      t = {};
      tx_clean_ = (tx_clean_ + 1) & (size_ - 1);
      ++tx_done_;
    }
  }

  std::array<std::uint8_t, 6> mac() const { return mac_; }
  vfio_pci::NicBuffers& buffers() { return *bufs_; }
  const pagefrag::RxBufCfg& cfg() const { return cfg_; }
  std::uint64_t tx_done() const { return tx_done_; }
  bool broken() const { return false; }
  std::uint64_t posted_bytes() const { return std::uint64_t{size_ - 1} * cfg_.alloc_size; }
  std::uint32_t buffers_per_page() const { return cfg_.frag_count; }
  std::vector<vfio_pci::DropCount> drops() const {
    std::vector<vfio_pci::DropCount> out;
    for (unsigned i = 1; i < static_cast<unsigned>(RxError::kCount); ++i) {
      out.push_back({std::string(to_string(static_cast<RxError>(i))), drops_[i]});
    }
    return out;
  }
  std::string device_state() const {
    return fmt::format("STATUS {:#x}, RDH {}, RDT {}", read(reg::kStatus), read(reg::kRdh),
                       read(reg::kRdt));
  }

  // Teardown check, step 1: fills every posted RX buffer with pattern and
  // unmaps every pool page while the buffers stay posted (rings and bounce
  // stay mapped). Owner thread.
  absl::Status teardown_revoke(std::uint8_t pattern, vfio_pci::TeardownInfo& info) {
    info = {};
    info.iova_lo = ~std::uint64_t{0};
    for (const pagefrag::Frag& f : posted_) {
      if (!f) continue;
      std::memset(f.va, pattern, cfg_.alloc_size);
      info.iova_lo = std::min(info.iova_lo, f.iova.value());
      info.iova_hi = std::max(info.iova_hi, f.iova.value() + cfg_.alloc_size);
      ++info.posted;
    }
    const std::uint64_t keep[] = {rx_mem_->iova().value(), tx_mem_->iova().value(),
                                  bounce_->iova().value()};
    return bufs_->dma().revoke_all([&](pagefrag::Iova iova) {
      return std::find(std::begin(keep), std::end(keep), iova.value()) != std::end(keep);
    });
  }
  // Step 2: whether every posted buffer still holds only pattern; what the
  // device wrote back in the next RX descriptor.
  bool teardown_unchanged(std::uint8_t pattern, std::string& completion) const {
    const volatile RxDesc* d = &rx_ring_[rx_next_];
    completion = (d->status & kRxStatusDd) != 0
                     ? fmt::format("written back (DD, length {})", static_cast<unsigned>(d->length))
                     : std::string("none");
    for (const pagefrag::Frag& f : posted_) {
      if (!f) continue;
      for (std::uint32_t i = 0; i < cfg_.alloc_size; ++i) {
        if (f.va[i] != std::byte{pattern}) return false;
      }
    }
    return true;
  }

  // Resets the device (no more DMA), frees every fragment, destroys the
  // pool and the rings, fills r. Idempotent. Owner thread.
  void shutdown(vfio_pci::IommuReport& r) {
    if (!bufs_) return;
    if (bar_.base != nullptr) {
      write(reg::kRctl, 0);
      write(reg::kTctl, 0);
      write(reg::kCtrl, read(reg::kCtrl) | kCtrlRst);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    r.posted_bytes = posted_bytes();
    for (pagefrag::Frag& f : posted_) {
      if (f) bufs_->frags().free_frag(f.page);
      f = {};
    }
    for (TxEntry& t : tx_) {
      bufs_->free_frame(t.frame);
      t = {};
    }
    bufs_->shutdown(r);
    rx_mem_.reset();
    tx_mem_.reset();
    bounce_.reset();
    r.leaked_mappings = bufs_->vfio().live_mappings();
    bufs_.reset();
  }

 private:
  static constexpr std::size_t kBounceSlot = 2048;
  static constexpr int kBounceSlots = 16;

  struct TxEntry {
    RxFrame frame;
    int bounce = -1;
  };

  E1000e(const vfio_pci::NicOptions& opt, const pagefrag::RxBufCfg& cfg,
         std::unique_ptr<vfio_pci::NicBuffers> bufs)
      : opt_(opt), cfg_(cfg), size_(opt.queue_size), bufs_(std::move(bufs)) {}

  std::uint32_t read(std::uint32_t off) const { return vfio_pci::mmio_read32(bar_.base, off); }
  void write(std::uint32_t off, std::uint32_t v) const {
    vfio_pci::mmio_write32(bar_.base, off, v);
  }

  absl::Status start() {
    if (absl::Status st = bufs_->pci().enable_bus_master(); !st.ok()) return st;
    absl::StatusOr<vfio_pci::Bar> bar = bufs_->pci().map_bar(0);
    if (!bar.ok()) return bar.status();
    if (bar->size < 0x10000) {
      return absl::FailedPreconditionError(
          fmt::format("e1000e: BAR0 is {:#x} bytes; expected the 82574's 128 KiB", bar->size));
    }
    bar_ = *bar;
    write(reg::kImc, 0xffffffff);
    write(reg::kCtrl, read(reg::kCtrl) | kCtrlRst);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    write(reg::kImc, 0xffffffff);
    write(reg::kCtrl, (read(reg::kCtrl) & ~kCtrlRst) | kCtrlSlu);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while ((read(reg::kStatus) & kStatusLu) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        return absl::DeadlineExceededError(fmt::format(
            "e1000e: link not up 5 s after CTRL.SLU (STATUS {:#x})", read(reg::kStatus)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const std::uint32_t ral = read(reg::kRal0), rah = read(reg::kRah0);
    for (int i = 0; i < 4; ++i) mac_[i] = static_cast<std::uint8_t>(ral >> (8 * i));
    for (int i = 0; i < 2; ++i) mac_[4 + i] = static_cast<std::uint8_t>(rah >> (8 * i));
    if (absl::Status st = make_rings(); !st.ok()) return st;
    refill();
    if (rx_tail_ == 0) return absl::ResourceExhaustedError("e1000e: no RX buffer could be posted");
    write(reg::kRctl,
          kRctlEn | kRctlUpe | kRctlMpe | kRctlBam | kRctlSecrc | Policy::rctl_buffer_bits(cfg_));
    write(reg::kTipg, 0x00602008);
    write(reg::kTctl, kTctlEn | kTctlPsp | kTctlCt | kTctlCold);
    return absl::OkStatus();
  }

  absl::Status make_rings() {
    const std::size_t bytes = std::size_t{size_} * sizeof(RxDesc);
    for (auto* mem : {&rx_mem_, &tx_mem_}) {
      absl::StatusOr<DmaMemory<Dma>> m = DmaMemory<Dma>::create(bufs_->dma(), bytes);
      if (!m.ok()) return m.status();
      mem->emplace(*std::move(m));
    }
    absl::StatusOr<DmaMemory<Dma>> bounce =
        DmaMemory<Dma>::create(bufs_->dma(), kBounceSlot * kBounceSlots);
    if (!bounce.ok()) return bounce.status();
    bounce_.emplace(*std::move(bounce));
    bufs_->note_ring_map();
    rx_ring_ = rx_mem_->at<RxDesc>(0);
    tx_ring_ = tx_mem_->at<TxDesc>(0);
    posted_.assign(size_, pagefrag::Frag{});
    tx_.assign(size_, TxEntry{});
    const std::uint64_t rx = rx_mem_->iova().value(), tx = tx_mem_->iova().value();
    write(reg::kRdbal, static_cast<std::uint32_t>(rx));
    write(reg::kRdbah, static_cast<std::uint32_t>(rx >> 32));
    write(reg::kRdlen, static_cast<std::uint32_t>(bytes));
    write(reg::kRdh, 0);
    write(reg::kRdt, 0);
    write(reg::kTdbal, static_cast<std::uint32_t>(tx));
    write(reg::kTdbah, static_cast<std::uint32_t>(tx >> 32));
    write(reg::kTdlen, static_cast<std::uint32_t>(bytes));
    write(reg::kTdh, 0);
    write(reg::kTdt, 0);
    return absl::OkStatus();
  }

  // Posts fragments from RDT up to one slot before the next descriptor to
  // complete (the ring is full at size - 1). Owner thread.
  void refill() {
    const std::uint32_t stop = (rx_next_ + size_ - 1) & (size_ - 1);
    bool any = false;
    while (rx_tail_ != stop) {
      const pagefrag::Frag f = bufs_->frags().alloc_frag(cfg_.alloc_size);
      if (!f) break;
      posted_[rx_tail_] = f;
      rx_ring_[rx_tail_] = RxDesc{f.iova.value(), 0, 0, 0, 0, 0};
      rx_tail_ = (rx_tail_ + 1) & (size_ - 1);
      any = true;
    }
    if (any) {
      vfio_pci::dma_wmb();
      write(reg::kRdt, rx_tail_);
    }
  }

  bool tx_full() const { return ((tx_tail_ + 1) & (size_ - 1)) == tx_clean_; }

  void post_tx(std::uint64_t addr, std::uint32_t len, TxEntry entry) {
    tx_ring_[tx_tail_] = TxDesc{addr, static_cast<std::uint16_t>(len),
                                0,    static_cast<std::uint8_t>(kTxCmdEop | kTxCmdIfcs | kTxCmdRs),
                                0,    0,
                                0};
    tx_[tx_tail_] = entry;
    tx_tail_ = (tx_tail_ + 1) & (size_ - 1);
    vfio_pci::dma_wmb();
    write(reg::kTdt, tx_tail_);
  }

  vfio_pci::NicOptions opt_;
  pagefrag::RxBufCfg cfg_;
  std::uint32_t size_;
  std::unique_ptr<vfio_pci::NicBuffers> bufs_;
  vfio_pci::Bar bar_;
  std::array<std::uint8_t, 6> mac_{};
  std::optional<DmaMemory<Dma>> rx_mem_, tx_mem_, bounce_;
  RxDesc* rx_ring_ = nullptr;
  TxDesc* tx_ring_ = nullptr;
  std::vector<pagefrag::Frag> posted_;
  std::vector<TxEntry> tx_;
  std::array<bool, kBounceSlots> bounce_busy_{};
  std::uint32_t rx_next_ = 0, rx_tail_ = 0, tx_tail_ = 0, tx_clean_ = 0;
  bool in_frame_ = false;
  std::array<std::uint64_t, static_cast<unsigned>(RxError::kCount)> drops_{};
  std::uint64_t tx_done_ = 0;
};

}  // namespace e1000e
