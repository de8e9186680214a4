// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dpdk/mbuf_bridge.h: pagefrag fragments inside DPDK rte_mbufs.
//
// A PMD written on pagefrag keeps DPDK's API to applications: each received
// fragment is handed up as an rte_mbuf whose data is the fragment itself,
// attached as an external buffer (rte_pktmbuf_attach_extbuf, the idiom of
// mlx5's multi-packet RQ). The rte_mbuf_ext_shared_info lives in the
// fragment's own tailroom, as the kernel puts skb_shared_info after the
// packet: DpdkRxBufPolicy (below) reserves it. Its reference count plays the
// role of the page's fragment count: rte_pktmbuf_clone() raises it, each
// rte_pktmbuf_free() of the mbuf or a clone lowers it, and the last one calls
// the bridge's free callback, which returns the fragment to its pool exactly
// once: free_frag() on the pool's owner lcore (no atomic read-modify-write),
// free_frag_remote() on any other. The mbuf headers come from a small DPDK
// mempool of zero-data-room mbufs (make_header_pool()). A packet longer than
// one fragment is a chain of mbufs, one per fragment (attach_chain()).
//
// A driver that keeps its own pool and allocator (and hands a packet up only
// for the duration of a callback, as examples/mana's sink does) lends its
// fragment instead: attach_ref() takes one more reference on the fragment
// (FragmentAllocator::ref_frag(), the kernel's page_pool_ref_page()), and
// the last mbuf referring to it returns that
// reference with FragmentAllocator<ItsPool>::free_frag_remote() from
// whichever lcore frees it; the driver returns its own as usual.
//
// Inside a DPDK process the pool's pages must be known to DPDK so that
// devices it drives can reach them and its own VFIO mappings never collide
// with them: ExtmemDma is a DmaBackend that registers memory with
// rte_extmem_register() (and maps it for a device with rte_dev_dma_map());
// map a provider's whole region with it once through PremappedRegion and
// build the pool `premapped` on that region.
//
// Only DPDK's headers (and libraries) are needed: link @pagefrag_system//:dpdk
// (Debian's DPDK 22.11; include <rte_config.h> first, build -march=corei7).
//
// Thread contract: attach*() on the pool's owner lcore (they cut nothing but
// take mbuf headers; the fragments were allocated there); the mbufs then go
// anywhere, and rte_pktmbuf_free/clone from any lcore or thread. The bridge
// and the allocator must outlive the mbufs freed on the owner lcore; frees
// elsewhere need neither (free_frag_remote()).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>
#include <rte_config.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/rxbuf/kernel_policy.h"
#include "pagefrag/rxbuf/platform.h"

namespace pagefrag::dpdk {

// What the bridge keeps after the packet data in every fragment: the shared
// info DPDK's extbuf refcount lives in, then the bridge's own two words (the
// fragment's page and its bridge), rounded up to a cache line.
struct FragTrailer {
  rte_mbuf_ext_shared_info shinfo;
  Page* page;
  const void* bridge;
};

inline constexpr std::uint32_t kTrailerBytes =
    static_cast<std::uint32_t>(align_up(sizeof(FragTrailer), RTE_CACHE_LINE_SIZE));

// The RX-buffer platform of a DPDK PMD: Linux's frame numbers, with the
// trailer above in place of skb_shared_info (kSkbSharedInfoSize is "what
// follows the data", rounded to the cache line by the policies).
struct DpdkPlatform : LinuxPlatform {
  static constexpr std::uint32_t kSkbSharedInfoSize = sizeof(FragTrailer);
};
static_assert(RxBufPlatform<DpdkPlatform>);

// The kernel's sizing rules with the bridge's trailer reserved.
using DpdkRxBufPolicy = KernelRxBufPolicy<DpdkPlatform>;
static_assert(RxBufPolicy<DpdkRxBufPolicy>);
static_assert(DpdkRxBufPolicy::kTailroom >= kTrailerBytes);

// A DPDK mempool of mbuf headers without data room, for attach(). n mbufs,
// per-lcore cache `cache`. Errors name DPDK's rte_errno text.
inline absl::StatusOr<rte_mempool*> make_header_pool(const std::string& name, unsigned n,
                                                     unsigned cache, int socket = SOCKET_ID_ANY) {
  rte_mempool* mp = rte_pktmbuf_pool_create(name.c_str(), n, cache, 0, 0, socket);
  if (mp == nullptr) {
    return absl::ResourceExhaustedError(
        fmt::format("rte_pktmbuf_pool_create('{}', {} mbufs, cache {}, data room 0): {}", name, n,
                    cache, rte_strerror(rte_errno)));
  }
  return mp;
}

template <class Pool>
class MbufBridge {
 public:
  using Allocator = FragmentAllocator<Pool>;

  // `alloc` hands out fragments of cfg.alloc_size (cfg from DpdkRxBufPolicy
  // or with at least kTrailerBytes of tailroom); `headers` is a
  // zero-data-room mbuf pool; the calling lcore (an EAL lcore, or a thread
  // registered with rte_thread_register()) is the pool's owner and stays
  // so while the bridge lives. Each attached fragment's trailer points at
  // the bridge: move it only before the first attach.
  static absl::StatusOr<MbufBridge> create(Allocator& alloc, rte_mempool* headers,
                                           std::uint32_t alloc_size, std::uint32_t headroom) {
    if (headers == nullptr) {
      return absl::InvalidArgumentError("MbufBridge: headers mempool is null");
    }
    if (rte_lcore_id() == LCORE_ID_ANY) {
      // Every unregistered thread has this id: their frees would all look
      // like the owner's.
      return absl::FailedPreconditionError(
          "MbufBridge: created on a thread with no lcore id; expected the pool's owner to be "
          "an EAL lcore or a thread registered with rte_thread_register()");
    }
    // Subtractions only: headroom + kTrailerBytes could wrap.
    if (headroom >= alloc_size || alloc_size - headroom <= kTrailerBytes ||
        alloc_size % RTE_CACHE_LINE_SIZE != 0 || alloc_size - kTrailerBytes > UINT16_MAX) {
      return absl::InvalidArgumentError(fmt::format(
          "MbufBridge: alloc_size {} with headroom {}; expected a multiple of {} above headroom + "
          "the {}-byte trailer, buffer at most 65535 bytes",
          alloc_size, headroom, RTE_CACHE_LINE_SIZE, kTrailerBytes));
    }
    return MbufBridge(alloc, headers, alloc_size, headroom);
  }

  MbufBridge(MbufBridge&&) noexcept = default;
  MbufBridge& operator=(MbufBridge&&) = delete;

  // Wraps a fragment holding a packet of len bytes at headroom into an mbuf,
  // or nullptr (and the fragment stays the caller's) when the header pool is
  // empty. Owner lcore.
  PAGEFRAG_ALWAYS_INLINE rte_mbuf* attach(const Frag& frag, std::uint16_t len) {
    rte_mbuf* m = rte_pktmbuf_alloc(headers_);
    if (PAGEFRAG_UNLIKELY(m == nullptr)) return nullptr;
    attach_to(m, frag, len);
    return m;
  }

  // n fragments into n mbufs (one rte_pktmbuf_alloc_bulk), or 0 (nothing
  // attached) when the header pool has fewer than n. Owner lcore.
  std::size_t attach_bulk(const Frag* frags, const std::uint16_t* lens, rte_mbuf** out,
                          std::size_t n) {
    if (rte_pktmbuf_alloc_bulk(headers_, out, static_cast<unsigned>(n)) != 0) return 0;
    for (std::size_t i = 0; i < n; ++i) attach_to(out[i], frags[i], lens[i]);
    return n;
  }

  // One packet over n fragments (a jumbo frame): a chain of n mbufs, each
  // segment lens[i] bytes, or nullptr (nothing attached). Owner lcore.
  rte_mbuf* attach_chain(const Frag* frags, const std::uint16_t* lens, std::size_t n) {
    if (n == 0 || n > RTE_MBUF_MAX_NB_SEGS) return nullptr;
    // Every header first, linked as it comes (n may be up to 65535: no
    // array of them on the stack); nothing is attached until all are there.
    rte_mbuf* head = nullptr;
    rte_mbuf** link = &head;
    for (std::size_t i = 0; i < n; ++i) {
      rte_mbuf* m = rte_pktmbuf_alloc(headers_);
      if (PAGEFRAG_UNLIKELY(m == nullptr)) {
        rte_pktmbuf_free(head);  // headers only (null-safe)
        return nullptr;
      }
      *link = m;
      link = &m->next;
    }
    std::uint32_t total = 0;
    std::size_t i = 0;
    for (rte_mbuf* m = head; m != nullptr; m = m->next, ++i) {
      attach_to(m, frags[i], lens[i]);
      total += lens[i];
    }
    head->nb_segs = static_cast<std::uint16_t>(n);
    head->pkt_len = total;
    return head;
  }

  // Wraps a fragment another party holds (a driver's RX buffer, lent for a
  // callback) into an mbuf without copying: takes one more reference on its
  // page (see the file comment) and places the trailer at buf + buf_len,
  // which must leave kTrailerBytes inside the fragment (a DpdkRxBufPolicy
  // buffer, or the kernel policy's skb_shared_info room: buf_len =
  // alloc_size - kTrailerBytes). The packet is len bytes at buf + data_off.
  // nullptr (no reference taken) when the header pool is empty. Any lcore
  // that holds a reference on the fragment; the reference is returned by
  // FragmentAllocator<FragPool>::free_frag_remote on the lcore of the last
  // free.
  template <class FragPool = Pool>
  PAGEFRAG_ALWAYS_INLINE rte_mbuf* attach_ref(Page* page, std::byte* buf, std::uint16_t buf_len,
                                              std::uint16_t data_off, std::uint16_t len) {
    rte_mbuf* m = rte_pktmbuf_alloc(headers_);
    if (PAGEFRAG_UNLIKELY(m == nullptr)) return nullptr;
    FragmentAllocator<FragPool>::ref_frag(page);
    auto* trailer = reinterpret_cast<FragTrailer*>(buf + buf_len);
    trailer->page = page;
    trailer->bridge = nullptr;
    trailer->shinfo.free_cb = &free_ref_cb<FragPool>;
    trailer->shinfo.fcb_opaque = trailer;
    rte_mbuf_ext_refcnt_set(&trailer->shinfo, 1);
    const Iova iova = FragPool::dma_addr(page) + static_cast<std::uint64_t>(buf - page->va);
    rte_pktmbuf_attach_extbuf(m, buf, iova.value(), buf_len, &trailer->shinfo);
    m->data_off = data_off;
    m->data_len = len;
    m->pkt_len = len;
    return m;
  }

  // Bytes of data room in each attached buffer (from the fragment's start).
  std::uint16_t buf_len() const noexcept { return buf_len_; }
  unsigned owner_lcore() const noexcept { return owner_lcore_; }
  // Fragments returned through the callback on the owner / elsewhere.
  std::uint64_t owner_frees() const noexcept { return owner_frees_; }

 private:
  MbufBridge(Allocator& alloc, rte_mempool* headers, std::uint32_t alloc_size,
             std::uint32_t headroom)
      : alloc_(&alloc),
        headers_(headers),
        buf_len_(static_cast<std::uint16_t>(alloc_size - kTrailerBytes)),
        headroom_(static_cast<std::uint16_t>(headroom)),
        owner_lcore_(rte_lcore_id()) {}

  PAGEFRAG_ALWAYS_INLINE void attach_to(rte_mbuf* m, const Frag& frag, std::uint16_t len) {
    auto* trailer = reinterpret_cast<FragTrailer*>(frag.va + buf_len_);
    trailer->page = frag.page;
    trailer->bridge = this;
    trailer->shinfo.free_cb = &free_cb;
    trailer->shinfo.fcb_opaque = trailer;
    rte_mbuf_ext_refcnt_set(&trailer->shinfo, 1);
    rte_pktmbuf_attach_extbuf(m, frag.va, frag.iova.value(), buf_len_, &trailer->shinfo);
    m->data_off = headroom_;
    m->data_len = len;
    m->pkt_len = len;
  }

  // DPDK calls this once, when the last mbuf referring to the fragment is
  // freed. The trailer is inside the fragment: read it before freeing.
  static void free_cb(void* /*addr*/, void* opaque) {
    const auto* trailer = static_cast<const FragTrailer*>(opaque);
    Page* page = trailer->page;
    auto* bridge = static_cast<MbufBridge*>(const_cast<void*>(trailer->bridge));
    if (rte_lcore_id() == bridge->owner_lcore_) {
      ++bridge->owner_frees_;
      bridge->alloc_->free_frag(page);
    } else {
      Allocator::free_frag_remote(page);
    }
  }

  // attach_ref()'s callback: the lent reference goes back by the any-thread
  // path of the fragment's own pool type.
  template <class FragPool>
  static void free_ref_cb(void* /*addr*/, void* opaque) {
    FragmentAllocator<FragPool>::free_frag_remote(static_cast<const FragTrailer*>(opaque)->page);
  }

  Allocator* alloc_;
  rte_mempool* headers_;
  std::uint16_t buf_len_;
  std::uint16_t headroom_;
  unsigned owner_lcore_;
  std::uint64_t owner_frees_ = 0;
};

// A DmaBackend that makes memory known to DPDK: map() registers the range
// with rte_extmem_register() (whole pages of page_size) and, with a device,
// maps it for the device with rte_dev_dma_map(); unmap() undoes both. The
// IOVA is the CPU address (DPDK's IOVA-as-VA mode, which --no-huge implies
// and VFIO uses by default): DPDK's own memory never has the same virtual
// addresses, so the IOVAs cannot collide. One map per provider region
// (through PremappedRegion): DPDK has a small number of memseg lists.
namespace internal {
// rte_dev_dma_map/unmap are "experimental" in DPDK 22.11 (deprecated unless
// ALLOW_EXPERIMENTAL_API): called through these two, warning silenced here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
inline int dev_dma_map(rte_device* dev, void* va, std::uint64_t iova, std::size_t len) {
  return rte_dev_dma_map(dev, va, iova, len);
}
inline int dev_dma_unmap(rte_device* dev, void* va, std::uint64_t iova, std::size_t len) {
  return rte_dev_dma_unmap(dev, va, iova, len);
}
#pragma GCC diagnostic pop
}  // namespace internal

class ExtmemDma {
 public:
  static constexpr DmaFeatures kFeatures{.needs_sync = false, .identity_iova = true};

  explicit ExtmemDma(std::size_t page_size, rte_device* device = nullptr)
      : page_size_(page_size), device_(device) {}

  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection /*dir*/) {
    const auto va = reinterpret_cast<std::uintptr_t>(cpu.data());
    if (cpu.empty() || va % page_size_ != 0 || cpu.size() % page_size_ != 0) {
      return absl::InvalidArgumentError(
          fmt::format("ExtmemDma::map: {} bytes at {}; expected whole pages of {} bytes",
                      cpu.size(), static_cast<const void*>(cpu.data()), page_size_));
    }
    if (rte_eal_iova_mode() != RTE_IOVA_VA) {
      return absl::FailedPreconditionError(
          "ExtmemDma: DPDK is not in IOVA-as-VA mode; start the EAL with --iova-mode=va");
    }
    if (rte_extmem_register(cpu.data(), cpu.size(), nullptr, 0, page_size_) != 0) {
      return absl::UnavailableError(fmt::format("rte_extmem_register of {} bytes at {}: {}",
                                                cpu.size(), static_cast<const void*>(cpu.data()),
                                                rte_strerror(rte_errno)));
    }
    if (device_ != nullptr && internal::dev_dma_map(device_, cpu.data(), va, cpu.size()) != 0) {
      const std::string why = rte_strerror(rte_errno);
      rte_extmem_unregister(cpu.data(), cpu.size());
      return absl::UnavailableError(fmt::format("rte_dev_dma_map of {} bytes at {}: {}", cpu.size(),
                                                static_cast<const void*>(cpu.data()), why));
    }
    return Iova(va);
  }

  absl::Status unmap(Iova iova, std::size_t len, DmaDirection /*dir*/) {
    void* va = reinterpret_cast<void*>(static_cast<std::uintptr_t>(iova.value()));
    if (device_ != nullptr && internal::dev_dma_unmap(device_, va, iova.value(), len) != 0) {
      return absl::UnavailableError(
          fmt::format("rte_dev_dma_unmap at {}: {}", va, rte_strerror(rte_errno)));
    }
    if (rte_extmem_unregister(va, len) != 0) {
      return absl::UnavailableError(
          fmt::format("rte_extmem_unregister at {}: {}", va, rte_strerror(rte_errno)));
    }
    return absl::OkStatus();
  }
  void sync_for_device(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) noexcept {}
  void sync_for_cpu(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) noexcept {}

 private:
  std::size_t page_size_;
  rte_device* device_;
};

static_assert(DmaBackend<ExtmemDma>);

}  // namespace pagefrag::dpdk
