// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/afxdp/umem_dma.h: UmemDma, a DmaBackend whose addresses are UMEM offsets.
//
// An AF_XDP "device" (the kernel's XSK code, or a NIC in zero-copy mode)
// addresses buffers by their byte offset inside the UMEM registered with
// XDP_UMEM_REG; the registration is the one and only mapping. UmemDma models
// that: map() of any span inside the UMEM succeeds without a system call and
// returns the span's offset as its Iova, so a pool's dma_addr(page) + offset
// is exactly the address the fill ring and TX ring expect. Syncs do nothing:
// in copy mode the kernel copies with the CPU, in zero-copy mode the NIC
// driver owns the real DMA mapping and its syncs.
//
// map/unmap are setup and slow-path calls of the pool thread; the syncs may
// be called from any thread (they touch no state).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"

namespace pagefrag::afxdp {

class UmemDma {
 public:
  static constexpr pagefrag::DmaFeatures kFeatures{.needs_sync = false, .identity_iova = false};

  // `umem` is the whole registered area (UmemProvider::umem()).
  explicit UmemDma(std::span<std::byte> umem) : umem_(umem) {}

  // The offset of cpu inside the UMEM; InvalidArgument when cpu is not
  // entirely inside it.
  absl::StatusOr<pagefrag::Iova> map(std::span<std::byte> cpu, pagefrag::DmaDirection /*dir*/) {
    if (!inside(cpu.data(), cpu.size())) {
      return absl::InvalidArgumentError(
          fmt::format("map of {} bytes at {}: expected a range inside the UMEM [{}, +{})",
                      cpu.size(), static_cast<const void*>(cpu.data()),
                      static_cast<const void*>(umem_.data()), umem_.size()));
    }
    ++live_mappings_;
    return pagefrag::Iova(static_cast<std::uint64_t>(cpu.data() - umem_.data()));
  }

  absl::Status unmap(pagefrag::Iova iova, std::size_t len, pagefrag::DmaDirection /*dir*/) {
    if (iova.value() > umem_.size() || len > umem_.size() - iova.value() || live_mappings_ == 0) {
      return absl::InvalidArgumentError(
          fmt::format("unmap of {} bytes at {}: expected a live mapping inside the UMEM's {} bytes",
                      len, iova, umem_.size()));
    }
    --live_mappings_;
    return absl::OkStatus();
  }

  void sync_for_device(pagefrag::Iova, std::size_t, pagefrag::DmaDirection) noexcept {}
  void sync_for_cpu(pagefrag::Iova, std::size_t, pagefrag::DmaDirection) noexcept {}

  // The CPU address of a UMEM offset (what the kernel hands back on the RX
  // and completion rings). Any thread.
  std::byte* va_of(std::uint64_t offset) const { return umem_.data() + offset; }
  // map() calls not yet undone by unmap(): 0 after the pool is gone.
  std::size_t live_mappings() const { return live_mappings_; }

 private:
  bool inside(const std::byte* p, std::size_t len) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const auto base = reinterpret_cast<std::uintptr_t>(umem_.data());
    return a >= base && len <= umem_.size() && a - base <= umem_.size() - len;
  }

  std::span<std::byte> umem_;
  std::size_t live_mappings_ = 0;
};

static_assert(pagefrag::DmaBackend<UmemDma>);

}  // namespace pagefrag::afxdp
