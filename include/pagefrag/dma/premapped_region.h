// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/premapped_region.h: one DMA mapping of a whole memory region.
//
// Mapping each page as a pool takes it costs a map call per page and an
// IOTLB entry per page. A PremappedRegion maps a memory provider's whole
// region once, at setup; the device address of any byte in it is then
// base + (va - region start), computed without a lookup. It unmaps the region
// when destroyed, so it must outlive every user of its IOVAs (the pools built
// on it).
//
// It is not a template: a pool's parameters can point at one whatever the
// backend. The backend is remembered through a function pointer used only by
// the destructor.
//
// Thread contract: create/destroy on a setup path; iova_of/contains are
// const and may be called from any thread.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "pagefrag/base/check.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"

namespace pagefrag {

class PremappedRegion {
 public:
  // Maps `region` once through `dma` for `dir`. Errors: the backend's map
  // error, prefixed with what was being mapped.
  template <DmaBackend Dma>
  static absl::StatusOr<PremappedRegion> create(Dma& dma, std::span<std::byte> region,
                                                DmaDirection dir) {
    absl::StatusOr<Iova> base = dma.map(region, dir);
    if (!base.ok()) {
      return absl::Status(base.status().code(),
                          fmt::format("PremappedRegion: mapping {} bytes at {} for {}: {}",
                                      region.size(), static_cast<const void*>(region.data()),
                                      to_string(dir), std::string(base.status().message())));
    }
    return PremappedRegion(region, *base, dir, &dma, &unmap_with<Dma>);
  }

  // Maps a memory provider's whole region (anything with region()).
  template <DmaBackend Dma, class Provider>
  requires requires(const Provider& p) {
    { p.region() } -> std::convertible_to<std::span<std::byte>>;
  }
  static absl::StatusOr<PremappedRegion> create(Dma& dma, const Provider& provider,
                                                DmaDirection dir) {
    return create(dma, std::span<std::byte>(provider.region()), dir);
  }

  PremappedRegion(PremappedRegion&& other) noexcept
      : region_(other.region_),
        base_(other.base_),
        dir_(other.dir_),
        backend_(std::exchange(other.backend_, nullptr)),
        unmap_(std::exchange(other.unmap_, nullptr)) {}
  PremappedRegion& operator=(PremappedRegion&&) = delete;
  PremappedRegion(const PremappedRegion&) = delete;
  PremappedRegion& operator=(const PremappedRegion&) = delete;

  // Unmaps the region; a backend refusing the unmap is a broken invariant.
  ~PremappedRegion() {
    if (backend_ == nullptr) return;
    const absl::Status st = unmap_(backend_, base_, region_.size(), dir_);
    PAGEFRAG_CHECK(st.ok(), "PremappedRegion unmap failed: {}", st.ToString());
  }

  // The device address of va, which must lie inside the region.
  PAGEFRAG_ALWAYS_INLINE Iova iova_of(const void* va) const noexcept {
    const std::uintptr_t off =
        reinterpret_cast<std::uintptr_t>(va) - reinterpret_cast<std::uintptr_t>(region_.data());
    PAGEFRAG_DCHECK(off < region_.size(), "va {} outside the premapped region", va);
    return base_ + off;
  }

  bool contains(const void* va) const noexcept {
    const std::uintptr_t off =
        reinterpret_cast<std::uintptr_t>(va) - reinterpret_cast<std::uintptr_t>(region_.data());
    return off < region_.size();
  }

  std::span<std::byte> region() const noexcept { return region_; }
  Iova base() const noexcept { return base_; }
  DmaDirection direction() const noexcept { return dir_; }

 private:
  using UnmapFn = absl::Status (*)(void*, Iova, std::size_t, DmaDirection);

  template <class Dma>
  static absl::Status unmap_with(void* backend, Iova iova, std::size_t len, DmaDirection dir) {
    return static_cast<Dma*>(backend)->unmap(iova, len, dir);
  }

  PremappedRegion(std::span<std::byte> region, Iova base, DmaDirection dir, void* backend,
                  UnmapFn unmap)
      : region_(region), base_(base), dir_(dir), backend_(backend), unmap_(unmap) {}

  std::span<std::byte> region_;
  Iova base_;
  DmaDirection dir_;
  void* backend_;
  UnmapFn unmap_;
};

}  // namespace pagefrag
