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
// A device with a narrow DMA mask cannot reach VA + 2^47: constructed with an
// IovaWindow (e.g. [1 MiB, 2^32 - 1] for a 32-bit mask), CoherentDma instead
// gives each map() its own page-aligned IOVA range from the window (first
// fit), so every Iova stays inside it; there the device side finds the
// mapping under the mutex.
//
// Thread contract: map/unmap (slow paths) from any thread, serialised by a
// mutex; syncs and device accesses from any thread, lock-free (device
// accesses take the mutex with an IovaWindow).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <utility>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/base/pool_attachments.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/dma/internal/iova_allocator.h"

namespace pagefrag {

class CoherentDma {
 public:
  static constexpr DmaFeatures kFeatures{
      .needs_sync = false, .identity_iova = false, .checked_cpu_read = false};
  // The IOMMU window base: above the 47-bit user address space, so no Iova
  // ever equals a CPU address.
  static constexpr std::uint64_t kWindowBase = std::uint64_t{1} << 47;

  // The device addresses a windowed CoherentDma hands out: [first, last],
  // inclusive (a DMA mask of n bits: last = 2^n - 1).
  struct IovaWindow {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
  };
  // IOVAs are allocated in pages of this many bytes in a window.
  static constexpr std::uint64_t kWindowPage = 4096;

  CoherentDma() = default;
  // IOVAs from `window` (page-aligned ranges, one per map()); an empty or
  // inverted window makes every map() fail with ResourceExhausted.
  explicit CoherentDma(IovaWindow window) : windowed_(true), window_(window) {
    iovas_.add_range(align_up(window.first, kWindowPage), window.last);
  }
  CoherentDma(const CoherentDma&) = delete;
  CoherentDma& operator=(const CoherentDma&) = delete;

  // Maps `cpu` for `dir`. InvalidArgument for an empty region or one outside
  // the 47-bit user address space. The same bytes mapped twice share their
  // Iova (a fixed translation) and need two unmaps. Any thread.
  // With an IovaWindow: ResourceExhausted when the window has no free range
  // of the region's pages; each map() has its own Iova.
  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection dir) {
    if (windowed_) return map_windowed(cpu, dir);
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
        if (windowed_) iovas_.free(it->second.range_first, it->second.range_size);
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
    std::byte* va =
        windowed_ ? translate_windowed(iova, bytes.size()) : translate(iova, bytes.size());
    if (va == nullptr) return window_fault(iova, bytes.size());
    std::memcpy(va, bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  absl::Status device_read(Iova iova, std::span<std::byte> out) const {
    if (out.empty()) return absl::OkStatus();
    const std::byte* va =
        windowed_ ? translate_windowed(iova, out.size()) : translate(iova, out.size());
    if (va == nullptr) return window_fault(iova, out.size());
    std::memcpy(out.data(), va, out.size());
    return absl::OkStatus();
  }

  // The CPU address the device reaches at `iova` (nullptr outside the
  // window): what a simulated device writes packets through. Without an
  // IovaWindow only (a windowed backend: device_write / device_read).
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
    // With an IovaWindow: the CPU address and the IOVA pages allocated.
    std::uintptr_t va = 0;
    std::uint64_t range_first = 0;
    std::uint64_t range_size = 0;
  };

  absl::StatusOr<Iova> map_windowed(std::span<std::byte> cpu, DmaDirection dir) {
    if (cpu.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "CoherentDma::map({}): empty region; expected at least one byte", to_string(dir)));
    }
    const auto va = reinterpret_cast<std::uintptr_t>(cpu.data());
    const std::uint64_t start = va & ~(kWindowPage - 1);
    const std::uint64_t size = align_up(va + cpu.size(), kWindowPage) - start;
    std::lock_guard lock(mu_);
    const std::optional<std::uint64_t> range = iovas_.alloc(size, kWindowPage);
    if (!range) {
      return absl::ResourceExhaustedError(
          fmt::format("CoherentDma::map({}): no free IOVA range of {} bytes in the window [{:#x}, "
                      "{:#x}]; expected fewer live mappings or a wider DMA mask",
                      to_string(dir), size, window_.first, window_.last));
    }
    const Iova iova(*range + (va - start));
    live_.emplace(iova.value(), Mapping{cpu.size(), dir, va, *range, size});
    ++maps_;
    return iova;
  }

  // The mapping covering [iova, iova + len) translated, or nullptr.
  std::byte* translate_windowed(Iova iova, std::size_t len) const {
    std::lock_guard lock(mu_);
    auto it = live_.upper_bound(iova.value());
    if (it == live_.begin()) return nullptr;
    --it;
    const std::uint64_t off = iova.value() - it->first;
    if (off > it->second.len || len > it->second.len - off) return nullptr;
    return reinterpret_cast<std::byte*>(it->second.va + off);
  }

  absl::Status window_fault(Iova iova, std::size_t len) const {
    if (windowed_) {
      return absl::OutOfRangeError(
          fmt::format("CoherentDma: DMA fault: device access of {} bytes at {} not inside one "
                      "mapping of the window [{:#x}, {:#x}]",
                      len, iova, window_.first, window_.last));
    }
    return absl::OutOfRangeError(
        fmt::format("CoherentDma: DMA fault: device access of {} bytes at {} outside the window "
                    "[{:#x}, {:#x})",
                    len, iova, kWindowBase, 2 * kWindowBase));
  }

  const bool windowed_ = false;
  const IovaWindow window_{};
  mutable std::mutex mu_;
  internal::IovaAllocator iovas_;               // windowed only
  std::multimap<std::uint64_t, Mapping> live_;  // by Iova of the first byte
  std::uint64_t maps_ = 0;
  std::uint64_t unmaps_ = 0;
  PoolAttachments pool_attachments_{"CoherentDma"};
};

static_assert(DmaBackend<CoherentDma>);

}  // namespace pagefrag
