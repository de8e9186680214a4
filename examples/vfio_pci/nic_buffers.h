// SPDX-License-Identifier: BSD-3-Clause
// examples/vfio_pci/nic_buffers.h: the pagefrag side of a VFIO NIC driver.
//
// NicBuffers owns, in destruction order, everything between a driver's RX
// ring and the IOMMU: the VfioDma of the device, a CountingDma around it (map
// calls are the figure the VM test reports), a HeapProvider of 64 KiB pages,
// a PagePool that maps each page once through the IOMMU when the page first
// enters the pool (kPagePoolDmaMap; pages stay mapped while the pool keeps
// them, so a steady state makes no map calls), and a FragmentAllocator that
// cuts the RX buffers. The pool is bidirectional: the drivers echo received
// buffers back out through TX without copying.
//
// A received frame is an RxFrame: up to kMaxSegs fragments (virtio-net's
// mergeable buffers), each with the bytes the device wrote.
//
// Thread contract: everything on the thread that created it (the poll loop).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "examples/vfio_pci/vfio_pci.h"
#include "pagefrag/dma/vfio_dma.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace vfio_pci {

using Dma = CountingDma<pagefrag::VfioDma>;
using Pool = pagefrag::PagePool<pagefrag::HeapProvider, Dma>;
using Frags = pagefrag::FragmentAllocator<Pool>;

inline constexpr std::size_t kPoolPageBytes = 64 * 1024;

// One piece of a received frame: the fragment and the bytes of frame in it.
struct RxSeg {
  pagefrag::Page* page = nullptr;
  std::byte* data = nullptr;   // first frame byte in this fragment
  pagefrag::Iova iova{};       // of the fragment's first byte
  std::uint32_t len = 0;       // frame bytes at data
  std::uint32_t headroom = 0;  // bytes before data in the fragment (device header)
};

inline constexpr std::size_t kMaxSegs = 16;

struct RxFrame {
  std::array<RxSeg, kMaxSegs> segs{};
  std::uint32_t nsegs = 0;
  std::uint32_t len = 0;  // sum of segs[i].len

  // Copies up to out.size() frame bytes into out; returns the count.
  std::size_t copy_out(std::span<std::byte> out) const {
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < nsegs && n < out.size(); ++i) {
      const std::size_t k = std::min<std::size_t>(segs[i].len, out.size() - n);
      std::memcpy(out.data() + n, segs[i].data, k);
      n += k;
    }
    return n;
  }
};

struct NicBuffersParams {
  std::string bdf;
  unsigned dma_mask_bits = 39;  // QEMU 7.2's VT-d default address width
  std::size_t pool_pages = 64;  // provider capacity, in 64 KiB pages
  std::size_t pool_size = 16;   // pages the pool grows to in bulk (PagePoolParams)
  // Pages taken into the pool (mapped) at setup, so the data path finds
  // them mapped: the fragments RX and TX can hold span at most this many.
  std::size_t prefill_pages = 0;
};

// What the harness reports about IOMMU use and leaks.
struct IommuReport {
  std::uint64_t map_calls = 0;          // every map call (pool pages and rings)
  std::uint64_t pool_map_calls = 0;     // map calls for pool pages
  std::uint64_t pool_pages = 0;         // pages the pool ever held (high water)
  std::uint64_t steady_map_calls = 0;   // map calls after the warm-up mark
  std::uint64_t pinned_pool_bytes = 0;  // pool bytes pinned (high water)
  std::uint64_t posted_bytes = 0;       // bytes the posted RX buffers need
  std::uint64_t region_bytes = 0;       // what one whole-region mapping pins
  std::uint64_t leaked_pages = 0;
  std::uint64_t leaked_mappings = 0;
};

class NicBuffers {
 public:
  static absl::StatusOr<std::unique_ptr<NicBuffers>> create(const NicBuffersParams& params) {
    absl::StatusOr<std::unique_ptr<pagefrag::VfioDma>> vfio =
        pagefrag::VfioDma::create({.bdf = params.bdf, .dma_mask_bits = params.dma_mask_bits});
    if (!vfio.ok()) return vfio.status();
    absl::StatusOr<pagefrag::HeapProvider> provider =
        pagefrag::HeapProvider::create({.page_size = kPoolPageBytes,
                                        .max_order = 0,
                                        .capacity = params.pool_pages * kPoolPageBytes});
    if (!provider.ok()) return provider.status();
    std::unique_ptr<NicBuffers> b(new NicBuffers(*std::move(vfio), *std::move(provider)));
    absl::StatusOr<PciDevice> pci = PciDevice::open(b->vfio_->device_fd());
    if (!pci.ok()) return pci.status();
    b->pci_.emplace(*std::move(pci));
    absl::StatusOr<Pool::Handle> pool =
        Pool::create(b->provider_, b->dma_,
                     {.order = 0,
                      .pool_size = params.pool_size,
                      .dma_dir = pagefrag::DmaDirection::kBidirectional,
                      .flags = pagefrag::kPagePoolDmaMap});
    if (!pool.ok()) return pool.status();
    b->pool_ = *std::move(pool);
    if (absl::Status st = b->prefill(params.prefill_pages); !st.ok()) return st;
    absl::StatusOr<Frags> frags = Frags::create(*b->pool_, {.align = 64});
    if (!frags.ok()) return frags.status();
    b->frags_.emplace(*std::move(frags));
    return b;
  }

  NicBuffers(const NicBuffers&) = delete;
  NicBuffers& operator=(const NicBuffers&) = delete;

  Frags& frags() { return *frags_; }
  Pool& pool() { return *pool_; }
  Dma& dma() { return dma_; }
  PciDevice& pci() { return *pci_; }
  pagefrag::VfioDma& vfio() { return *vfio_; }
  pagefrag::HeapProvider& provider() { return provider_; }

  // Frees a frame's fragments (owner thread).
  void free_frame(const RxFrame& f) {
    for (std::uint32_t i = 0; i < f.nsegs; ++i) frags_->free_frag(f.segs[i].page);
  }
  void free_seg(const RxSeg& s) { frags_->free_frag(s.page); }

  // Counts the map calls made since the last call as ring/bounce mappings
  // (reported apart from pool pages). Call right after mapping the rings.
  void note_ring_map() {
    ring_maps_ += dma_.map_calls() - counted_;
    counted_ = dma_.map_calls();
  }
  // The warm-up is over: map calls from now on are steady-state ones.
  void mark_steady() { steady_mark_ = dma_.map_calls(); }

  // Destroys the allocator and the pool; the caller has freed every
  // fragment and stopped the device. Fills the leak figures.
  void shutdown(IommuReport& r) {
    r.map_calls = dma_.map_calls();
    r.pool_map_calls = dma_.map_calls() - ring_maps_;
    r.steady_map_calls = steady_mark_ ? dma_.map_calls() - *steady_mark_ : 0;
    r.pool_pages = pool_->stats().held_bytes_high_water / kPoolPageBytes;
    r.pinned_pool_bytes = r.pool_pages * kPoolPageBytes;  // one mapping per pool page
    r.region_bytes = provider_.region().size();
    frags_.reset();  // retires the fragment page: back to the pool when all its fragments are
    const std::int64_t inflight = pool_->handed_out();
    pool_.reset();
    r.leaked_pages = static_cast<std::uint64_t>(std::max<std::int64_t>(inflight, 0)) +
                     provider_.allocated_blocks();
  }

 private:
  NicBuffers(std::unique_ptr<pagefrag::VfioDma> vfio, pagefrag::HeapProvider provider)
      : vfio_(std::move(vfio)), dma_(*vfio_), provider_(std::move(provider)) {}

  std::unique_ptr<pagefrag::VfioDma> vfio_;
  Dma dma_;
  std::optional<PciDevice> pci_;
  pagefrag::HeapProvider provider_;
  Pool::Handle pool_;
  std::optional<Frags> frags_;
  // Takes n pages into the pool (each mapped once, now) and returns them to
  // its cache. Setup path.
  absl::Status prefill(std::size_t n) {
    std::vector<pagefrag::Page*> pages(n);
    const std::size_t got = pool_->alloc_bulk(pages.data(), n);
    for (std::size_t i = 0; i < got; ++i) pool_->recycle_direct(pages[i]);
    counted_ = dma_.map_calls();
    if (got == n) return absl::OkStatus();
    return absl::ResourceExhaustedError(fmt::format(
        "prefilling the pool: {} of {} pages; expected the provider to hold them", got, n));
  }

  std::uint64_t ring_maps_ = 0;
  std::uint64_t counted_ = 0;
  std::optional<std::uint64_t> steady_mark_;
};

}  // namespace vfio_pci
