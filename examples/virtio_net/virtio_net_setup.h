// SPDX-License-Identifier: BSD-3-Clause
// examples/virtio_net/virtio_net_setup.h: VirtioNet's bring-up (setup path):
// the virtio PCI capabilities, feature negotiation and the queues. Included
// by virtio_net.h.
#pragma once

#include <absl/status/status.h>
#include <fmt/format.h>

#include <array>
#include <cstdint>

#include "examples/virtio_net/virtio_net.h"

namespace virtio_net {

// Walks the PCI capability list for the virtio vendor capabilities and maps
// their BAR windows; every window must lie inside its BAR.
inline absl::Status VirtioNet::find_caps() {
  vfio_pci::PciDevice& pci = bufs_->pci();
  std::array<Bar, 6> bars{};
  absl::StatusOr<std::uint8_t> ptr = pci.config_read<std::uint8_t>(0x34);
  if (!ptr.ok()) return ptr.status();
  std::uint8_t at = *ptr & 0xfc;
  for (int hops = 0; at != 0 && hops < 48; ++hops) {
    absl::StatusOr<std::uint32_t> head = pci.config_read<std::uint32_t>(at);
    absl::StatusOr<std::uint32_t> bar_word = pci.config_read<std::uint32_t>(at + 4u);
    absl::StatusOr<std::uint32_t> offset = pci.config_read<std::uint32_t>(at + 8u);
    absl::StatusOr<std::uint32_t> length = pci.config_read<std::uint32_t>(at + 12u);
    if (!head.ok() || !bar_word.ok() || !offset.ok() || !length.ok()) return head.status();
    const std::uint8_t id = *head & 0xff, next = (*head >> 8) & 0xfc, type = (*head >> 24) & 0xff;
    const std::uint8_t bar = *bar_word & 0xff;
    if (id == kPciCapVendor && type >= kCapCommonCfg && type <= kCapDeviceCfg) {
      if (bar > 5) {
        return absl::FailedPreconditionError(
            fmt::format("virtio capability type {} names BAR {}; expected 0..5", type, bar));
      }
      if (bars[bar].base == nullptr) {
        absl::StatusOr<Bar> mapped = pci.map_bar(bar);
        if (!mapped.ok()) return mapped.status();
        bars[bar] = *mapped;
      }
      if (std::uint64_t{*offset} + *length > bars[bar].size) {
        return absl::FailedPreconditionError(fmt::format(
            "virtio capability type {}: window {:#x}+{:#x} exceeds BAR{} of {:#x} bytes", type,
            *offset, *length, bar, bars[bar].size));
      }
      const Window w{bars[bar].base + *offset, *length};
      if (type == kCapCommonCfg) common_ = w;
      if (type == kCapDeviceCfg) device_ = w;
      if (type == kCapNotifyCfg) {
        notify_ = w;
        absl::StatusOr<std::uint32_t> mult = pci.config_read<std::uint32_t>(at + 16u);
        if (!mult.ok()) return mult.status();
        notify_mult_ = *mult;
      }
    }
    at = next;
  }
  if (common_.base == nullptr || notify_.base == nullptr || device_.base == nullptr ||
      common_.length < common::kSize) {
    return absl::FailedPreconditionError(
        "virtio-net: no common (>= 0x38 bytes), notify or device capability; expected a modern "
        "virtio PCI device (QEMU: disable-legacy=on)");
  }
  return absl::OkStatus();
}

inline absl::Status VirtioNet::negotiate() {
  volatile std::byte* c = common_.base;
  std::uint64_t offered = 0;
  for (std::uint32_t half = 0; half < 2; ++half) {
    vfio_pci::mmio_write32(c, common::kDeviceFeatureSelect, half);
    offered |= std::uint64_t{vfio_pci::mmio_read32(c, common::kDeviceFeature)} << (32 * half);
  }
  for (unsigned bit : {kFVersion1, kFAccessPlatform}) {
    if ((offered & feature(bit)) == 0) {
      return absl::FailedPreconditionError(fmt::format(
          "virtio-net: device does not offer feature {} ({}); expected VERSION_1 and "
          "ACCESS_PLATFORM (QEMU: disable-legacy=on,iommu_platform=on): without ACCESS_PLATFORM "
          "the device would bypass the IOMMU",
          bit, bit == kFVersion1 ? "VERSION_1" : "ACCESS_PLATFORM"));
    }
  }
  const bool needs_merge = opt_.mtu + 14 > cfg_.datasize;
  if (needs_merge && (offered & feature(kFMrgRxbuf)) == 0) {
    return absl::FailedPreconditionError(fmt::format(
        "virtio-net: MTU {} needs frames over several {}-byte buffers; expected MRG_RXBUF",
        opt_.mtu, cfg_.datasize));
  }
  features_ = feature(kFVersion1) | feature(kFAccessPlatform) |
              (offered & (feature(kFMrgRxbuf) | feature(kFMac) | feature(kFMtu)));
  for (std::uint32_t half = 0; half < 2; ++half) {
    vfio_pci::mmio_write32(c, common::kDriverFeatureSelect, half);
    vfio_pci::mmio_write32(c, common::kDriverFeature,
                           static_cast<std::uint32_t>(features_ >> (32 * half)));
  }
  vfio_pci::mmio_write8(c, common::kDeviceStatus,
                        kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  if ((vfio_pci::mmio_read8(c, common::kDeviceStatus) & kStatusFeaturesOk) == 0) {
    return absl::FailedPreconditionError(
        fmt::format("virtio-net: device refused features {:#x} (FEATURES_OK not kept)", features_));
  }
  if ((features_ & feature(kFMac)) != 0) {
    for (std::uint32_t i = 0; i < 6; ++i)
      mac_[i] = vfio_pci::mmio_read8(device_.base, netcfg::kMac + i);
  }
  if ((features_ & feature(kFMtu)) != 0) {
    const std::uint16_t dev_mtu = vfio_pci::mmio_read16(device_.base, netcfg::kMtu);
    if (opt_.mtu > dev_mtu) {
      return absl::InvalidArgumentError(fmt::format(
          "mtu {} is out of range: expected 68..{} (the device's MTU)", opt_.mtu, dev_mtu));
    }
  }
  const bool merge = (features_ & feature(kFMrgRxbuf)) != 0;
  limits_ = RxLimits{.queue_size = opt_.queue_size,
                     .max_buffers = static_cast<std::uint16_t>(merge ? vfio_pci::kMaxSegs : 1),
                     .max_frame = opt_.mtu + 14};
  return absl::OkStatus();
}

inline absl::Status VirtioNet::setup_queue(std::uint16_t index, Virtq& q) {
  volatile std::byte* c = common_.base;
  vfio_pci::mmio_write16(c, common::kQueueSelect, index);
  const std::uint16_t max = vfio_pci::mmio_read16(c, common::kQueueSize);
  if (max < opt_.queue_size) {
    return absl::FailedPreconditionError(
        fmt::format("virtio-net: queue {} holds at most {} entries; expected >= {}", index, max,
                    opt_.queue_size));
  }
  q.size = opt_.queue_size;
  const std::size_t used_off = pagefrag::align_up(desc_bytes(q.size) + avail_bytes(q.size), 4096);
  absl::StatusOr<DmaMemory<Dma>> mem =
      DmaMemory<Dma>::create(bufs_->dma(), used_off + used_bytes(q.size));
  if (!mem.ok()) return mem.status();
  q.mem.emplace(*std::move(mem));
  q.desc = q.mem->at<VirtqDesc>(0);
  q.avail = q.mem->at<std::uint16_t>(desc_bytes(q.size));
  q.used = q.mem->at<std::byte>(used_off);
  vfio_pci::mmio_write16(c, common::kQueueSize, static_cast<std::uint16_t>(q.size));
  vfio_pci::mmio_write16(c, common::kQueueMsixVector, kNoVector);
  vfio_pci::mmio_write64_split(c, common::kQueueDesc, q.mem->iova().value());
  vfio_pci::mmio_write64_split(c, common::kQueueDriver, q.mem->iova().value() + desc_bytes(q.size));
  vfio_pci::mmio_write64_split(c, common::kQueueDevice, q.mem->iova().value() + used_off);
  const std::uint64_t notify_off =
      std::uint64_t{vfio_pci::mmio_read16(c, common::kQueueNotifyOff)} * notify_mult_;
  if (notify_off + 2 > notify_.length) {
    return absl::FailedPreconditionError(fmt::format(
        "virtio-net: queue {} notify offset {:#x} lies outside the {:#x}-byte notify window", index,
        notify_off, notify_.length));
  }
  q.notify = notify_.base + notify_off;
  vfio_pci::mmio_write16(c, common::kQueueEnable, 1);
  return absl::OkStatus();
}

inline absl::Status VirtioNet::start() {
  if (absl::Status st = bufs_->pci().enable_bus_master(); !st.ok()) return st;
  if (absl::Status st = find_caps(); !st.ok()) return st;
  reset_device();
  vfio_pci::mmio_write16(common_.base, common::kMsixConfig, kNoVector);
  vfio_pci::mmio_write8(common_.base, common::kDeviceStatus, kStatusAcknowledge | kStatusDriver);
  if (absl::Status st = negotiate(); !st.ok()) return st;
  if (vfio_pci::mmio_read16(common_.base, common::kNumQueues) < 2) {
    return absl::FailedPreconditionError("virtio-net: fewer than 2 queues; expected an RX/TX pair");
  }
  if (absl::Status st = setup_queue(kRxQueue, rxq_); !st.ok()) return st;
  if (absl::Status st = setup_queue(kTxQueue, txq_); !st.ok()) return st;
  absl::StatusOr<DmaMemory<Dma>> bounce =
      DmaMemory<Dma>::create(bufs_->dma(), kBounceSlot * kBounceSlots);
  if (!bounce.ok()) return bounce.status();
  bounce_.emplace(*std::move(bounce));
  bufs_->note_ring_map();
  posted_.assign(rxq_.size, pagefrag::Frag{});
  tx_.resize(txq_.size);
  for (std::uint32_t i = rxq_.size; i-- > 0;) rx_free_.push_back(static_cast<std::uint16_t>(i));
  for (std::uint32_t i = txq_.size; i-- > 0;) tx_free_.push_back(static_cast<std::uint16_t>(i));
  vfio_pci::mmio_write8(common_.base, common::kDeviceStatus,
                        kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  refill();
  if (rx_free_.size() == rxq_.size) {
    return absl::ResourceExhaustedError("virtio-net: no RX buffer could be posted (pool empty)");
  }
  return absl::OkStatus();
}

}  // namespace virtio_net
