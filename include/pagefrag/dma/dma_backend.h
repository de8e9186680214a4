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
// not need (e.g. a pool skips sync calls when !needs_sync).
struct DmaFeatures {
  bool needs_sync = true;           // syncs do real work (bounce, non-coherent)
  bool identity_iova = false;       // Iova == CPU virtual address
  bool maps_whole_regions = false;  // prefers one mapping of a whole provider region
};

template <class D>
concept DmaBackend = requires(D& d, std::span<std::byte> cpu, DmaDirection dir, Iova iova,
                              std::size_t len) {
  { D::kFeatures } -> std::convertible_to<DmaFeatures>;
  { d.map(cpu, dir) } -> std::same_as<absl::StatusOr<Iova>>;
  { d.unmap(iova, len, dir) } -> std::same_as<absl::Status>;
  { d.sync_for_device(iova, len, dir) } -> std::same_as<void>;
  { d.sync_for_cpu(iova, len, dir) } -> std::same_as<void>;
};

}  // namespace pagefrag
