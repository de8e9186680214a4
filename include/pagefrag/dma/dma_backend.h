// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/dma_backend.h: the DmaBackend concept.
//
// A DMA backend makes CPU memory reachable by a device: map() returns the
// Iova the device must use, sync_for_device()/sync_for_cpu() hand ownership
// of a byte range between CPU and device (on bounce-buffered or non-coherent
// systems these copy or flush; on coherent x86 with an IOMMU they do nothing).
//
// Mapping happens on setup and slow paths only (a page stays mapped while it
// stays in a pool), so map/unmap return Status; syncs are on the data path
// and cannot fail (a backend that detects misuse counts it).
//
// Syncs take any Iova inside a live mapping (dma + offset) and a length, like
// the kernel's dma_sync_single_range_for_{cpu,device}.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "pagefrag/base/iova.h"

namespace pagefrag {

enum class DmaDirection : std::uint8_t {
  kToDevice,       // device reads (TX)
  kFromDevice,     // device writes (RX)
  kBidirectional,  // both (RX buffers that XDP_TX sends back out)
};

constexpr std::string_view to_string(DmaDirection dir) noexcept {
  switch (dir) {
    case DmaDirection::kToDevice:
      return "to_device";
    case DmaDirection::kFromDevice:
      return "from_device";
    case DmaDirection::kBidirectional:
      return "bidirectional";
  }
  return "invalid";
}

// Static feature bits of a backend; code above may skip work a backend does
// not need (e.g. a pool skips sync calls when !needs_sync) or use an optional
// ability only when its bit says the backend has it (never by probing for a
// member function).
struct DmaFeatures {
  bool needs_sync = true;         // syncs do real work (bounce, non-coherent)
  bool identity_iova = false;     // Iova == CPU virtual address
  bool checked_cpu_read = false;  // offers check_cpu_read() (DmaCheckedRead)
};

// The DmaBackend concept is the conjunction of small sub-concepts, each one
// ability:

// Declares its static feature bits as D::kFeatures.
template <class D>
concept DmaFeatured = requires {
  { D::kFeatures } -> std::convertible_to<DmaFeatures>;
};

// Maps and unmaps CPU memory for a device. Setup and slow paths: they return
// Status. map(cpu, dir) gives the Iova of cpu[0]; unmap(iova, len, dir) undoes
// a map of len bytes at iova.
template <class D>
concept DmaMapping = requires(D& d, std::span<std::byte> cpu, DmaDirection dir, Iova iova,
                              std::size_t len) {
  { d.map(cpu, dir) } -> std::same_as<absl::StatusOr<Iova>>;
  { d.unmap(iova, len, dir) } -> std::same_as<absl::Status>;
};

// Hands a byte range inside a live mapping between CPU and device. Data path:
// syncs cannot fail and are noexcept (a backend that detects misuse counts it).
template <class D>
concept DmaSyncing = requires(D& d, DmaDirection dir, Iova iova, std::size_t len) {
  { d.sync_for_device(iova, len, dir) }
  noexcept->std::same_as<void>;
  { d.sync_for_cpu(iova, len, dir) }
  noexcept->std::same_as<void>;
};

// The optional checked-read ability: check_cpu_read(va, len) says whether the
// CPU may read those bytes now (false: they were not synced for the CPU since
// the device last owned them). Declared by kFeatures.checked_cpu_read.
template <class D>
concept DmaCheckedReading = requires(D& d, const void* va, std::size_t len) {
  { d.check_cpu_read(va, len) } -> std::same_as<bool>;
};

// A DMA backend: featured, mapping and syncing; a backend whose feature bits
// claim checked_cpu_read must offer it.
template <class D>
concept DmaBackend = DmaFeatured<D> && DmaMapping<D> && DmaSyncing<D> &&
    (!DmaFeatures(D::kFeatures).checked_cpu_read || DmaCheckedReading<D>);

// A backend with the checked-read ability, as its feature bits declare.
template <class D>
concept DmaCheckedRead = DmaBackend<D> && DmaFeatures(D::kFeatures)
.checked_cpu_read;

}  // namespace pagefrag
