// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/coherent_dma.h: CoherentDma, what a cache-coherent x86 system
// with an IOMMU looks like to a driver.
//
// The device sees memory through an IOMMU window: a mapping's Iova is its CPU
// address plus a fixed window base (so Iova != VA, and handing a device a raw
// pointer is still wrong), map() and unmap() are tracked (an unmap of an Iova
// no map() returned, or with another length or direction, fails), and the
// syncs are no-ops (kFeatures.needs_sync = false): on coherent hardware the
// device's writes are visible to the CPU at once, as on real x86 servers.
// This is the backend the RX throughput figures are measured on; MockDma
// (strict or bounce) is the one that checks the driver's syncs.
//
// The device side (device_write / device_read, for simulated devices and the
// conformance suite) translates an Iova back by subtracting the window base;
// it checks the address lies in the window, not that a mapping covers it
// (MockDma checks that). It takes no lock and touches no shared line.
//
// Thread contract: map/unmap (slow paths) from any thread, serialised by a
// mutex; syncs and device accesses from any thread, lock-free.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <span>
#include <utility>

#include "pagefrag/base/iova.h"
#include "pagefrag/base/pool_attachments.h"
#include "pagefrag/dma/dma_backend.h"

namespace pagefrag {

class CoherentDma {
 public:
  static constexpr DmaFeatures kFeatures{
      .needs_sync = false, .identity_iova = false, .checked_cpu_read = false};
  // The IOMMU window base: above the 47-bit user address space, so no Iova
  // ever equals a CPU address.
  static constexpr std::uint64_t kWindowBase = std::uint64_t{1} << 47;

  CoherentDma() = default;
  CoherentDma(const CoherentDma&) = delete;
  CoherentDma& operator=(const CoherentDma&) = delete;

  // Maps `cpu` for `dir`. InvalidArgument for an empty region or one outside
  // the 47-bit user address space. The same bytes mapped twice share their
  // Iova (a fixed translation) and need two unmaps. Any thread.
  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection dir) {
    const auto va = reinterpret_cast<std::uintptr_t>(cpu.data());
    if (cpu.empty() || va + cpu.size() > kWindowBase) {
      return absl::InvalidArgumentError(fmt::format(
          "CoherentDma::map({}): region at {} of {} bytes; expected a non-empty region below {:#x}",
          to_string(dir), static_cast<const void*>(cpu.data()), cpu.size(), kWindowBase));
    }
    const Iova iova(va + kWindowBase);
    std::lock_guard lock(mu_);
    live_.emplace(iova.value(), Mapping{cpu.size(), dir});
    ++maps_;
    return iova;
  }

  // Unmaps what map() returned `iova` for. NotFound when no live mapping
  // starts there; InvalidArgument when len or dir differ from map(). Any
  // thread.
  absl::Status unmap(Iova iova, std::size_t len, DmaDirection dir) {
    std::lock_guard lock(mu_);
    auto [first, last] = live_.equal_range(iova.value());
    if (first == last) {
      return absl::NotFoundError(fmt::format(
          "CoherentDma::unmap: no mapping starts at {}; expected an Iova map() returned", iova));
    }
    for (auto it = first; it != last; ++it) {
      if (it->second.len == len && it->second.dir == dir) {
        live_.erase(it);
        ++unmaps_;
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(fmt::format(
        "CoherentDma::unmap({}, {} bytes, {}): the mapping is {} bytes, {}; expected the same "
        "length and direction as map()",
        iova, len, to_string(dir), first->second.len, to_string(first->second.dir)));
  }

  // Coherent: nothing to do.
  void sync_for_device(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) noexcept {}
  void sync_for_cpu(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) noexcept {}

  // Device side: the device writes / reads memory at `iova`. OutOfRange for
  // an Iova outside the window. Any thread, no lock.
  absl::Status device_write(Iova iova, std::span<const std::byte> bytes) const {
    if (bytes.empty()) return absl::OkStatus();
    std::byte* va = translate(iova, bytes.size());
    if (va == nullptr) return window_fault(iova, bytes.size());
    std::memcpy(va, bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  absl::Status device_read(Iova iova, std::span<std::byte> out) const {
    if (out.empty()) return absl::OkStatus();
    const std::byte* va = translate(iova, out.size());
    if (va == nullptr) return window_fault(iova, out.size());
    std::memcpy(out.data(), va, out.size());
    return absl::OkStatus();
  }

  // The CPU address the device reaches at `iova` (nullptr outside the
  // window): what a simulated device writes packets through.
  static std::byte* translate(Iova iova, std::size_t len) noexcept {
    const std::uint64_t v = iova.value();
    if (v < kWindowBase || v - kWindowBase + len > kWindowBase) return nullptr;
    return reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(v - kWindowBase));
  }

  // Live mappings and map/unmap counts. Any thread.
  std::size_t live_mappings() const {
    std::lock_guard lock(mu_);
    return live_.size();
  }
  std::uint64_t maps() const {
    std::lock_guard lock(mu_);
    return maps_;
  }
  std::uint64_t unmaps() const {
    std::lock_guard lock(mu_);
    return unmaps_;
  }

  // The pools using this backend (base/pool_attachments.h): destroying it while
  // one is attached aborts, naming the pools. Any thread.
  PoolAttachments& pool_attachments() noexcept { return pool_attachments_; }

 private:
  struct Mapping {
    std::size_t len;
    DmaDirection dir;
  };

  static absl::Status window_fault(Iova iova, std::size_t len) {
    return absl::OutOfRangeError(
        fmt::format("CoherentDma: DMA fault: device access of {} bytes at {} outside the window "
                    "[{:#x}, {:#x})",
                    len, iova, kWindowBase, 2 * kWindowBase));
  }

  mutable std::mutex mu_;
  std::multimap<std::uint64_t, Mapping> live_;  // by Iova of the first byte
  std::uint64_t maps_ = 0;
  std::uint64_t unmaps_ = 0;
  PoolAttachments pool_attachments_{"CoherentDma"};
};

static_assert(DmaBackend<CoherentDma>);

}  // namespace pagefrag
