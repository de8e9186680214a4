// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/internal/vfio_mappings.h: the IOVA space and the mappings of
// one VFIO type1 container, shared by VfioDma (over its own container) and
// the C API's backend (over a caller's container). Not API.
//
// IOVAs are handed out inside the valid ranges the IOMMU reports
// (VFIO_IOMMU_GET_INFO's capability chain), below the device's DMA mask,
// never at IOVA 0 (it reads as null), in units of the IOMMU's smallest page.
//
// A container may have other users: another pool on the same fd, or the
// caller's own mappings (SPDK and DPDK map their memory into the container
// they hand out). The kernel refuses a MAP_DMA that overlaps an existing
// mapping with EEXIST; map() then keeps the range it tried as taken (never
// handed out again) and tries further up, skipping twice as far after each
// refusal, so a neighbour's mapping of any size costs a number of tries
// logarithmic in its size, once.
//
// Thread-safe: one mutex, slow paths only.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/dma/internal/iova_allocator.h"
#include "pagefrag/dma/internal/vfio_setup.h"

namespace pagefrag::internal {

class VfioMappings {
 public:
  // `who` starts every error message ("VfioDma(0000:00:04.0)"); `where`
  // names the container in them (a path, or "the caller's container").
  // Touches nothing: read_info() is the first ioctl.
  VfioMappings(int container, std::string who, std::string where, unsigned mask_bits)
      : container_(container),
        who_(std::move(who)),
        where_(std::move(where)),
        mask_bits_(mask_bits) {}
  VfioMappings(const VfioMappings&) = delete;
  VfioMappings& operator=(const VfioMappings&) = delete;

  // Reads the IOMMU's page sizes and valid IOVA ranges; the IOMMU type must
  // be set. Errors: the GET_INFO errno, a malformed reply, or no IOVA room
  // below the mask. Setup path.
  absl::Status read_info() {
    std::vector<std::byte> reply(sizeof(vfio_iommu_type1_info));
    for (int attempt = 0; attempt < 2; ++attempt) {  // the second with the size asked for
      auto* info = reinterpret_cast<vfio_iommu_type1_info*>(reply.data());
      info->argsz = static_cast<std::uint32_t>(reply.size());
      if (::ioctl(container_, VFIO_IOMMU_GET_INFO, info) != 0) {
        return vfio_sys_error(who_, "VFIO_IOMMU_GET_INFO", where_, errno,
                              "is the IOMMU type set (VFIO_SET_IOMMU)?");
      }
      if (info->argsz <= reply.size()) break;
      reply.resize(info->argsz);
    }
    const auto* info = reinterpret_cast<const vfio_iommu_type1_info*>(reply.data());
    if ((info->flags & VFIO_IOMMU_INFO_PGSIZES) != 0 && info->iova_pgsizes != 0) {
      iova_page_ = std::max<std::uint64_t>(4096, info->iova_pgsizes & -info->iova_pgsizes);
    }
    absl::StatusOr<std::vector<IovaRange>> ranges = parse_iova_ranges(reply);
    if (!ranges.ok()) return ranges.status();
    std::lock_guard lock(mu_);
    ranges_ = *std::move(ranges);
    for (const IovaRange& r : ranges_) iovas_.add_range(std::max(r.first, iova_page_), r.last);
    if (mask_bits_ < 64) iovas_.clip_above((std::uint64_t{1} << mask_bits_) - 1);
    if (iovas_.empty()) return exhausted(iova_page_);
    return absl::OkStatus();
  }

  // Pins and maps the IOMMU pages holding `cpu` for `dir`; the Iova keeps
  // cpu's offset in its page. Errors: InvalidArgument (empty),
  // ResourceExhausted (RLIMIT_MEMLOCK, no IOVA room below the mask), or the
  // MAP_DMA errno.
  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection dir) {
    if (cpu.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{}::map: empty region; expected at least 1 byte", who_));
    }
    const auto va = reinterpret_cast<std::uintptr_t>(cpu.data());
    const std::uint64_t start = va & ~(iova_page_ - 1);
    const std::uint64_t size = align_up(va + cpu.size(), iova_page_) - start;
    std::lock_guard lock(mu_);
    if (absl::Status limit = check_memlock(who_, pinned_ + size, ::geteuid() == 0); !limit.ok()) {
      return limit;
    }
    const std::uint64_t device_addr_offset = va - start;
    std::uint64_t span = size;  // what a refusal keeps as taken
    for (;;) {
      std::optional<std::uint64_t> iova = iovas_.alloc(span, iova_page_);
      if (!iova && span != size) iova = iovas_.alloc(span = size, iova_page_);
      if (!iova) return exhausted(size);
      // Recorded before the ioctl: an allocation failure here (it throws)
      // leaves nothing mapped behind.
      const std::uint64_t addr = *iova + device_addr_offset;
      const auto rec = mappings_.emplace(addr, Mapping{*iova, size, cpu.size(), dir}).first;
      const int err = map_ioctl(start, *iova, size, dir);
      if (err == 0) {
        if (span != size) iovas_.free(*iova + size, span - size);
        pinned_ += size;
        return Iova(addr);
      }
      mappings_.erase(rec);
      if (err != EEXIST) {
        iovas_.free(*iova, span);
        return vfio_sys_error(who_,
                              fmt::format("VFIO_IOMMU_MAP_DMA of {} bytes at {} to iova {:#x}",
                                          size, reinterpret_cast<const void*>(start), *iova),
                              where_, err);
      }
      // Someone else's mapping overlaps [*iova, *iova + span): keep it taken.
      taken_ += span;
      span = std::min(span * 2, std::uint64_t{1} << 62);  // 1 << 62: no wrap
    }
  }

  // Unmaps what map() returned `iova` for. Errors: NotFound (no such
  // mapping), InvalidArgument (len or dir differ from map()), or the
  // UNMAP_DMA errno.
  absl::Status unmap(Iova iova, std::size_t len, DmaDirection dir) {
    std::lock_guard lock(mu_);
    auto it = mappings_.find(iova.value());
    if (it == mappings_.end()) {
      return absl::NotFoundError(
          fmt::format("{}::unmap: no mapping at {}; expected an Iova map() returned", who_, iova));
    }
    const Mapping m = it->second;
    if (m.len != len || m.dir != dir) {
      return absl::InvalidArgumentError(
          fmt::format("{}::unmap({}, {} bytes, {}): the mapping is "
                      "{} bytes, {}",
                      who_, iova, len, to_string(dir), m.len, to_string(m.dir)));
    }
    if (absl::Status st = unmap_ioctl(m.iova_start, m.size); !st.ok()) return st;
    iovas_.free(m.iova_start, m.size);
    pinned_ -= m.size;
    mappings_.erase(it);
    return absl::OkStatus();
  }

  // Unmaps everything still mapped, best effort (a destructor's way).
  void unmap_all() noexcept {
    std::lock_guard lock(mu_);
    for (const auto& [iova, m] : mappings_) unmap_ioctl(m.iova_start, m.size).IgnoreError();
    mappings_.clear();
    pinned_ = 0;
  }

  const std::vector<IovaRange>& ranges() const noexcept { return ranges_; }
  std::uint64_t pinned_bytes() const {
    std::lock_guard lock(mu_);
    return pinned_;
  }
  std::size_t live_mappings() const {
    std::lock_guard lock(mu_);
    return mappings_.size();
  }

 private:
  struct Mapping {
    std::uint64_t iova_start;  // IOMMU-page-aligned IOVA passed to MAP_DMA
    std::uint64_t size;        // IOMMU-page-aligned bytes mapped
    std::size_t len;           // bytes the caller mapped
    DmaDirection dir;
  };

  // 0 or the errno of MAP_DMA.
  int map_ioctl(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t size, DmaDirection dir) {
    std::uint32_t flags = 0;
    if (dir != DmaDirection::kFromDevice) flags |= VFIO_DMA_MAP_FLAG_READ;  // device reads
    if (dir != DmaDirection::kToDevice) flags |= VFIO_DMA_MAP_FLAG_WRITE;   // device writes
    vfio_iommu_type1_dma_map m{
        .argsz = sizeof m, .flags = flags, .vaddr = vaddr, .iova = iova, .size = size};
    return ::ioctl(container_, VFIO_IOMMU_MAP_DMA, &m) == 0 ? 0 : errno;
  }

  absl::Status unmap_ioctl(std::uint64_t iova, std::uint64_t size) {
    vfio_iommu_type1_dma_unmap u{.argsz = sizeof u, .flags = 0, .iova = iova, .size = size};
    if (::ioctl(container_, VFIO_IOMMU_UNMAP_DMA, &u) != 0) {
      return vfio_sys_error(
          who_, fmt::format("VFIO_IOMMU_UNMAP_DMA of {} bytes at iova {:#x}", size, iova), where_,
          errno);
    }
    if (u.size != size) {
      return absl::InternalError(
          fmt::format("{}: VFIO_IOMMU_UNMAP_DMA at iova {:#x} unmapped {} bytes; expected {}", who_,
                      iova, u.size, size));
    }
    return absl::OkStatus();
  }

  absl::Status exhausted(std::uint64_t size) const {
    return absl::ResourceExhaustedError(fmt::format(
        "{}: no room for {} bytes of IOVA inside the IOMMU's valid ranges below the {}-bit DMA "
        "mask ({} of {} bytes free, {} taken by other users of the container)",
        who_, size, mask_bits_, iovas_.free_bytes(), iovas_.total_bytes(), taken_));
  }

  const int container_;
  const std::string who_;
  const std::string where_;
  const unsigned mask_bits_;
  std::uint64_t iova_page_ = 4096;
  std::vector<IovaRange> ranges_;  // written once, by read_info()
  mutable std::mutex mu_;
  IovaAllocator iovas_;
  std::map<std::uint64_t, Mapping> mappings_;  // by the Iova map() returned
  std::uint64_t pinned_ = 0;
  std::uint64_t taken_ = 0;  // IOVA bytes kept as taken by other users (for messages)
};

}  // namespace pagefrag::internal
