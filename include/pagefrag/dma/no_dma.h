// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/no_dma.h: NoDma, the backend of pools that never DMA.
//
// map() hands back the CPU address as the Iova (identity), unmap and syncs do
// nothing. For software-only pools and for benchmarks that measure the
// allocator alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "pagefrag/dma/dma_backend.h"

namespace pagefrag {

class NoDma {
 public:
  static constexpr DmaFeatures kFeatures{.needs_sync = false, .identity_iova = true};

  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection /*dir*/) {
    return Iova(reinterpret_cast<std::uintptr_t>(cpu.data()));
  }
  absl::Status unmap(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) {
    return absl::OkStatus();
  }
  void sync_for_device(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) noexcept {}
  void sync_for_cpu(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) noexcept {}
};

static_assert(DmaBackend<NoDma>);

}  // namespace pagefrag
