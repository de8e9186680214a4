// SPDX-License-Identifier: BSD-3-Clause
// examples/vfio_pci/vfio_pci.h: what the example PCI NIC drivers (virtio-net,
// e1000e) share on top of pagefrag's VfioDma: config space and BAR access
// through the VFIO device fd, MMIO accessors, a DmaBackend wrapper that counts
// IOMMU map calls and can revoke every mapping at once (the teardown check),
// and DMA-mapped memory for descriptor rings.
//
// Only public pagefrag headers. Setup functions return absl::Status naming
// the step; MMIO accessors are data path (no checks beyond the BAR bounds
// asserted in debug builds).
//
// Thread contract: one thread (the driver's polling thread) per object.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"

namespace vfio_pci {

// ---- MMIO ----------------------------------------------------------------

inline std::uint32_t mmio_read32(volatile std::byte* base, std::uint64_t off) noexcept {
  return *reinterpret_cast<volatile std::uint32_t*>(base + off);
}
inline void mmio_write32(volatile std::byte* base, std::uint64_t off, std::uint32_t v) noexcept {
  *reinterpret_cast<volatile std::uint32_t*>(base + off) = v;
}
inline std::uint16_t mmio_read16(volatile std::byte* base, std::uint64_t off) noexcept {
  return *reinterpret_cast<volatile std::uint16_t*>(base + off);
}
inline void mmio_write16(volatile std::byte* base, std::uint64_t off, std::uint16_t v) noexcept {
  *reinterpret_cast<volatile std::uint16_t*>(base + off) = v;
}
inline std::uint8_t mmio_read8(volatile std::byte* base, std::uint64_t off) noexcept {
  return *reinterpret_cast<volatile std::uint8_t*>(base + off);
}
inline void mmio_write8(volatile std::byte* base, std::uint64_t off, std::uint8_t v) noexcept {
  *reinterpret_cast<volatile std::uint8_t*>(base + off) = v;
}
// 64-bit registers as two 32-bit halves, low first (virtio allows it).
inline void mmio_write64_split(volatile std::byte* base, std::uint64_t off,
                               std::uint64_t v) noexcept {
  mmio_write32(base, off, static_cast<std::uint32_t>(v));
  mmio_write32(base, off + 4, static_cast<std::uint32_t>(v >> 32));
}

// Orders the driver's descriptor writes before the doorbell / index store
// the device reads (x86: a compiler barrier suffices for WB memory; a full
// fence keeps the example obviously right on any target).
inline void dma_wmb() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
// Orders the read of a device-written index/flag before reading the data it
// publishes.
inline void dma_rmb() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---- PCI device over a VFIO device fd --------------------------------------

struct Bar {
  volatile std::byte* base = nullptr;
  std::size_t size = 0;
};

class PciDevice {
 public:
  // Reads the config region's offset. Setup path.
  static absl::StatusOr<PciDevice> open(int device_fd) {
    PciDevice dev(device_fd);
    vfio_region_info cfg{};
    cfg.argsz = sizeof cfg;
    cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
    if (::ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &cfg) != 0) {
      return absl::FailedPreconditionError(
          fmt::format("VFIO_DEVICE_GET_REGION_INFO(config): {}; expected a vfio-pci device fd",
                      std::strerror(errno)));
    }
    dev.config_offset_ = cfg.offset;
    return dev;
  }

  PciDevice(PciDevice&& other) noexcept
      : fd_(other.fd_), config_offset_(other.config_offset_), bars_(std::move(other.bars_)) {
    other.bars_.clear();
  }
  PciDevice& operator=(PciDevice&&) = delete;
  PciDevice(const PciDevice&) = delete;
  ~PciDevice() {
    for (const Bar& bar : bars_) ::munmap(const_cast<std::byte*>(bar.base), bar.size);
  }

  // Config space accesses of 1, 2 or 4 bytes. Setup path.
  template <class T>
  absl::StatusOr<T> config_read(std::uint32_t off) const {
    T v{};
    if (::pread(fd_, &v, sizeof v, static_cast<off_t>(config_offset_ + off)) != sizeof v) {
      return absl::InternalError(fmt::format("reading {} bytes of PCI config space at {:#x}: {}",
                                             sizeof v, off, std::strerror(errno)));
    }
    return v;
  }
  template <class T>
  absl::Status config_write(std::uint32_t off, T v) const {
    if (::pwrite(fd_, &v, sizeof v, static_cast<off_t>(config_offset_ + off)) != sizeof v) {
      return absl::InternalError(fmt::format("writing {} bytes of PCI config space at {:#x}: {}",
                                             sizeof v, off, std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  // Sets Memory Space and Bus Master in the command register (the device
  // may then DMA, through the IOMMU). Setup path.
  absl::Status enable_bus_master() const {
    absl::StatusOr<std::uint16_t> command = config_read<std::uint16_t>(0x04);
    if (!command.ok()) return command.status();
    return config_write<std::uint16_t>(0x04, *command | 0x6);
  }

  // mmaps BAR `index` (VFIO_PCI_BAR0_REGION_INDEX + index). Setup path.
  absl::StatusOr<Bar> map_bar(unsigned index) {
    vfio_region_info info{};
    info.argsz = sizeof info;
    info.index = VFIO_PCI_BAR0_REGION_INDEX + index;
    if (::ioctl(fd_, VFIO_DEVICE_GET_REGION_INFO, &info) != 0) {
      return absl::FailedPreconditionError(
          fmt::format("VFIO_DEVICE_GET_REGION_INFO(BAR{}): {}", index, std::strerror(errno)));
    }
    if (info.size == 0 || (info.flags & VFIO_REGION_INFO_FLAG_MMAP) == 0) {
      return absl::FailedPreconditionError(
          fmt::format("BAR{} is {} bytes, flags {:#x}; expected an mmap-able memory BAR", index,
                      info.size, info.flags));
    }
    void* p = ::mmap(nullptr, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                     static_cast<off_t>(info.offset));
    if (p == MAP_FAILED) {
      return absl::InternalError(
          fmt::format("mmap of BAR{} ({} bytes): {}", index, info.size, std::strerror(errno)));
    }
    Bar bar{static_cast<volatile std::byte*>(p), info.size};
    bars_.push_back(bar);
    return bar;
  }

  int fd() const noexcept { return fd_; }

 private:
  explicit PciDevice(int fd) : fd_(fd) {}
  int fd_;
  std::uint64_t config_offset_ = 0;
  std::vector<Bar> bars_;
};

// ---- counting DMA backend ----------------------------------------------------

// Wraps a DmaBackend: forwards every call and counts IOMMU map/unmap calls
// and the bytes they pin (rounded to 4 KiB pages), so a driver can report
// map calls per pool page and in steady state. revoke_all() unmaps every live
// mapping at once, as a crashed or torn-down driver's would vanish, while the
// owners still hold their Iovas; their later unmap() then succeeds without
// an IOMMU call. Owner thread only.
template <pagefrag::DmaBackend Dma>
class CountingDma {
 public:
  static constexpr pagefrag::DmaFeatures kFeatures = Dma::kFeatures;

  explicit CountingDma(Dma& dma) : dma_(&dma) {}

  absl::StatusOr<pagefrag::Iova> map(std::span<std::byte> cpu, pagefrag::DmaDirection dir) {
    absl::StatusOr<pagefrag::Iova> iova = dma_->map(cpu, dir);
    if (!iova.ok()) return iova;
    ++map_calls_;
    live_[iova->value()] = Live{cpu.size(), dir, pinned_size(cpu)};
    pinned_ += pinned_size(cpu);
    pinned_high_water_ = std::max(pinned_high_water_, pinned_);
    return iova;
  }

  absl::Status unmap(pagefrag::Iova iova, std::size_t len, pagefrag::DmaDirection dir) {
    if (auto it = revoked_.find(iova.value()); it != revoked_.end()) {
      if (it->second.len != len || it->second.dir != dir) {
        return absl::InvalidArgumentError(fmt::format(
            "unmap({}, {} bytes) of a revoked mapping of {} bytes", iova, len, it->second.len));
      }
      revoked_.erase(it);
      return absl::OkStatus();
    }
    auto it = live_.find(iova.value());
    if (absl::Status st = dma_->unmap(iova, len, dir); !st.ok()) return st;
    ++unmap_calls_;
    if (it != live_.end()) {
      pinned_ -= it->second.pinned;
      live_.erase(it);
    }
    return absl::OkStatus();
  }

  void sync_for_device(pagefrag::Iova iova, std::size_t len, pagefrag::DmaDirection dir) noexcept {
    dma_->sync_for_device(iova, len, dir);
  }
  void sync_for_cpu(pagefrag::Iova iova, std::size_t len, pagefrag::DmaDirection dir) noexcept {
    dma_->sync_for_cpu(iova, len, dir);
  }

  // Unmaps every live mapping whose Iova satisfies keep(iova) == false now;
  // the owners' later unmap() calls succeed without touching the IOMMU.
  template <class Keep>
  absl::Status revoke_all(Keep keep) {
    for (auto it = live_.begin(); it != live_.end();) {
      if (keep(pagefrag::Iova(it->first))) {
        ++it;
        continue;
      }
      if (absl::Status st = dma_->unmap(pagefrag::Iova(it->first), it->second.len, it->second.dir);
          !st.ok()) {
        return st;
      }
      ++unmap_calls_;
      pinned_ -= it->second.pinned;
      revoked_.emplace(it->first, it->second);
      it = live_.erase(it);
    }
    return absl::OkStatus();
  }

  std::uint64_t map_calls() const noexcept { return map_calls_; }
  std::uint64_t unmap_calls() const noexcept { return unmap_calls_; }
  std::size_t live_mappings() const noexcept { return live_.size(); }
  std::size_t revoked_mappings() const noexcept { return revoked_.size(); }
  std::uint64_t pinned_bytes() const noexcept { return pinned_; }
  std::uint64_t pinned_high_water() const noexcept { return pinned_high_water_; }
  Dma& backend() const noexcept { return *dma_; }

 private:
  struct Live {
    std::size_t len;
    pagefrag::DmaDirection dir;
    std::uint64_t pinned;
  };
  static std::uint64_t pinned_size(std::span<std::byte> cpu) {
    const auto va = reinterpret_cast<std::uintptr_t>(cpu.data());
    return pagefrag::align_up(va + cpu.size(), 4096) - (va & ~std::uintptr_t{4095});
  }

  Dma* dma_;
  std::map<std::uint64_t, Live> live_;
  std::map<std::uint64_t, Live> revoked_;
  std::uint64_t map_calls_ = 0;
  std::uint64_t unmap_calls_ = 0;
  std::uint64_t pinned_ = 0;
  std::uint64_t pinned_high_water_ = 0;
};

// ---- DMA-mapped memory for rings and bounce buffers ---------------------------

// Zeroed, page-aligned anonymous memory mapped once for the device
// (bidirectional: the device reads descriptors and writes completions).
template <class Dma>
class DmaMemory {
 public:
  static absl::StatusOr<DmaMemory> create(Dma& dma, std::size_t bytes) {
    bytes = pagefrag::align_up(bytes, 4096);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      return absl::ResourceExhaustedError(
          fmt::format("mmap of {} bytes of ring memory: {}", bytes, std::strerror(errno)));
    }
    std::span<std::byte> mem(static_cast<std::byte*>(p), bytes);
    absl::StatusOr<pagefrag::Iova> iova = dma.map(mem, pagefrag::DmaDirection::kBidirectional);
    if (!iova.ok()) {
      ::munmap(p, bytes);
      return iova.status();
    }
    return DmaMemory(dma, mem, *iova);
  }
  DmaMemory(DmaMemory&& o) noexcept
      : dma_(o.dma_), mem_(std::exchange(o.mem_, {})), iova_(o.iova_) {}
  DmaMemory& operator=(DmaMemory&&) = delete;
  ~DmaMemory() {
    if (mem_.empty()) return;
    const absl::Status st = dma_->unmap(iova_, mem_.size(), pagefrag::DmaDirection::kBidirectional);
    PAGEFRAG_CHECK(st.ok(), "unmap of ring memory: {}", st.ToString());
    ::munmap(mem_.data(), mem_.size());
  }

  std::byte* data() const noexcept { return mem_.data(); }
  std::size_t size() const noexcept { return mem_.size(); }
  pagefrag::Iova iova() const noexcept { return iova_; }
  pagefrag::Iova iova_of(const void* p) const noexcept {
    return iova_ + static_cast<std::uint64_t>(static_cast<const std::byte*>(p) - mem_.data());
  }
  template <class T>
  T* at(std::size_t off) const noexcept {
    return reinterpret_cast<T*>(mem_.data() + off);
  }

 private:
  DmaMemory(Dma& dma, std::span<std::byte> mem, pagefrag::Iova iova)
      : dma_(&dma), mem_(mem), iova_(iova) {}
  Dma* dma_;
  std::span<std::byte> mem_;
  pagefrag::Iova iova_;
};

}  // namespace vfio_pci
