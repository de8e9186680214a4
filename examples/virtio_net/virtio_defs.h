// SPDX-License-Identifier: BSD-3-Clause
// examples/virtio_net/virtio_defs.h: the virtio 1.x numbers the driver uses,
// written from the OASIS virtio 1.2 specification (sections 2.7 split
// virtqueues, 4.1 PCI transport, 5.1 network device). Layouts are
// static_assert'ed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace virtio_net {

// Feature bits (5.1.3, 6).
inline constexpr unsigned kFCsum = 0;
inline constexpr unsigned kFMtu = 3;
inline constexpr unsigned kFMac = 5;
inline constexpr unsigned kFMrgRxbuf = 15;
inline constexpr unsigned kFStatus = 16;
inline constexpr unsigned kFVersion1 = 32;
inline constexpr unsigned kFAccessPlatform = 33;

inline constexpr std::uint64_t feature(unsigned bit) { return std::uint64_t{1} << bit; }

// Device status (2.1).
inline constexpr std::uint8_t kStatusAcknowledge = 1;
inline constexpr std::uint8_t kStatusDriver = 2;
inline constexpr std::uint8_t kStatusDriverOk = 4;
inline constexpr std::uint8_t kStatusFeaturesOk = 8;
inline constexpr std::uint8_t kStatusNeedsReset = 64;
inline constexpr std::uint8_t kStatusFailed = 128;

// PCI vendor capability (4.1.4): cfg_type values.
inline constexpr std::uint8_t kPciCapVendor = 0x09;
inline constexpr std::uint8_t kCapCommonCfg = 1;
inline constexpr std::uint8_t kCapNotifyCfg = 2;
inline constexpr std::uint8_t kCapIsrCfg = 3;
inline constexpr std::uint8_t kCapDeviceCfg = 4;

// Common configuration structure offsets (4.1.4.3).
namespace common {
inline constexpr std::uint32_t kDeviceFeatureSelect = 0x00;
inline constexpr std::uint32_t kDeviceFeature = 0x04;
inline constexpr std::uint32_t kDriverFeatureSelect = 0x08;
inline constexpr std::uint32_t kDriverFeature = 0x0c;
inline constexpr std::uint32_t kMsixConfig = 0x10;
inline constexpr std::uint32_t kNumQueues = 0x12;
inline constexpr std::uint32_t kDeviceStatus = 0x14;
inline constexpr std::uint32_t kQueueSelect = 0x16;
inline constexpr std::uint32_t kQueueSize = 0x18;
inline constexpr std::uint32_t kQueueMsixVector = 0x1a;
inline constexpr std::uint32_t kQueueEnable = 0x1c;
inline constexpr std::uint32_t kQueueNotifyOff = 0x1e;
inline constexpr std::uint32_t kQueueDesc = 0x20;
inline constexpr std::uint32_t kQueueDriver = 0x28;
inline constexpr std::uint32_t kQueueDevice = 0x30;
inline constexpr std::uint32_t kSize = 0x38;
}  // namespace common
inline constexpr std::uint16_t kNoVector = 0xffff;

// Network device configuration (5.1.4).
namespace netcfg {
inline constexpr std::uint32_t kMac = 0;
inline constexpr std::uint32_t kStatus = 6;
inline constexpr std::uint32_t kMtu = 10;
}  // namespace netcfg

// Split virtqueue (2.7).
inline constexpr std::uint16_t kDescFNext = 1;
inline constexpr std::uint16_t kDescFWrite = 2;

struct VirtqDesc {
  std::uint64_t addr;
  std::uint32_t len;
  std::uint16_t flags;
  std::uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

struct UsedElem {
  std::uint32_t id;
  std::uint32_t len;
};
static_assert(sizeof(UsedElem) == 8);

// Ring byte layout for q entries: descriptors, then the driver (avail)
// area, then (4-byte aligned, here page-aligned) the device (used) area.
inline constexpr std::size_t desc_bytes(std::uint32_t q) { return 16u * q; }
inline constexpr std::size_t avail_bytes(std::uint32_t q) { return 6u + 2u * q; }
inline constexpr std::size_t used_bytes(std::uint32_t q) { return 6u + 8u * q; }

// virtio_net_hdr with VERSION_1 (always 12 bytes; num_buffers meaningful
// with MRG_RXBUF) (5.1.6).
struct NetHdr {
  std::uint8_t flags;
  std::uint8_t gso_type;
  std::uint16_t hdr_len;
  std::uint16_t gso_size;
  std::uint16_t csum_start;
  std::uint16_t csum_offset;
  std::uint16_t num_buffers;
};
static_assert(sizeof(NetHdr) == 12);
inline constexpr std::uint32_t kNetHdrLen = sizeof(NetHdr);

// Queue indices of the first queue pair.
inline constexpr std::uint16_t kRxQueue = 0;
inline constexpr std::uint16_t kTxQueue = 1;

}  // namespace virtio_net
