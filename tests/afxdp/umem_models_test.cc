// SPDX-License-Identifier: BSD-3-Clause
// Tests of the AF_XDP example's pagefrag models: UmemProvider through the
// MemoryProvider conformance suite, UmemDma through the DmaBackend one plus
// its offset addressing, AfXdpRxBufPolicy through the RxBufPolicy one, and
// AfXdpRxBufPolicy's own layout guarantee (headroom + largest frame + tailroom fit
// the stride; the registered chunk accepts every such frame) checked by
// properties against arithmetic written out here, plus worked examples.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "pagefrag/afxdp/afxdp_rxbuf_policy.h"
#include "pagefrag/afxdp/umem_dma.h"
#include "pagefrag/afxdp/umem_provider.h"
#include "tests/dma/dma_conformance.h"
#include "tests/memory/provider_conformance.h"
#include "tests/rxbuf/rxbuf_conformance.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag::afxdp {
namespace {

template <std::size_t PageSize>
struct UmemModel {
  using Provider = UmemProvider;
  static constexpr const char* kName = "UmemProvider";
  static absl::StatusOr<UmemProvider> make(std::size_t top_blocks) {
    return UmemProvider::create({.page_size = PageSize, .pages = top_blocks, .tail_bytes = 4096});
  }
};

TEST_CASE_TEMPLATE_INVOKE(memory_provider_conformance, UmemModel<4096>, UmemModel<65536>);

// The UMEM the UmemDma model maps; its "device" is the kernel, which reads
// and writes UMEM offsets directly.
alignas(4096) std::byte g_umem[4 * 4096];

struct UmemDmaModel {
  using Backend = UmemDma;
  static constexpr const char* kName = "UmemDma";
  static constexpr bool kTracksMappings = false;   // counts mappings, keeps no table
  static constexpr bool kFixedTranslation = true;  // Iova = offset in the UMEM
  static UmemDma& backend() {
    static UmemDma dma({g_umem, sizeof(g_umem)});
    return dma;
  }
  static std::span<std::byte> memory(std::size_t bytes) {
    REQUIRE(bytes <= sizeof(g_umem));
    std::memset(g_umem, 0, sizeof(g_umem));
    return {g_umem, sizeof(g_umem)};
  }
  static absl::Status device_write(UmemDma& d, pagefrag::Iova iova,
                                   std::span<const std::byte> bytes) {
    if (iova.value() + bytes.size() > sizeof(g_umem)) return absl::OutOfRangeError("outside UMEM");
    if (!bytes.empty()) std::memcpy(d.va_of(iova.value()), bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  static absl::Status device_read(UmemDma& d, pagefrag::Iova iova, std::span<std::byte> out) {
    if (iova.value() + out.size() > sizeof(g_umem)) return absl::OutOfRangeError("outside UMEM");
    std::memcpy(out.data(), d.va_of(iova.value()), out.size());
    return absl::OkStatus();
  }
};

TEST_CASE_TEMPLATE_INVOKE(dma_backend_conformance, UmemDmaModel);

TEST_CASE("UmemProvider: the registered area is the pages plus a tail no page owns") {
  auto made = UmemProvider::create({.page_size = 65536, .pages = 3, .tail_bytes = 8192});
  REQUIRE(made.ok());
  UmemProvider& p = *made;
  CHECK(p.umem().data() == p.region().data());
  CHECK(p.umem().size() == 3 * 65536 + 8192);
  pagefrag::Page* pages[3] = {};
  REQUIRE(p.alloc_bulk(0, pages, 3) == 3);
  CHECK(p.allocated() == 3);
  CHECK(p.page_of(p.region().data() + p.region().size()) == nullptr);  // first tail byte
  CHECK(p.alloc_bulk(1, pages, 1) == 0);                               // order 0 only
  p.release_bulk(pages, 3);
  CHECK(p.allocated() == 0);
}

TEST_CASE("UmemProvider::create rejects bad sizes, naming them") {
  auto bad_page = UmemProvider::create({.page_size = 6000, .pages = 1, .tail_bytes = 4096});
  CHECK(bad_page.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(bad_page.status().message()).find("page_size 6000") != std::string::npos);
  auto bad_tail = UmemProvider::create({.page_size = 4096, .pages = 1, .tail_bytes = 100});
  CHECK(bad_tail.status().code() == absl::StatusCode::kInvalidArgument);
  // No tail: a fill address near the end would run past the UMEM.
  auto no_tail = UmemProvider::create({.page_size = 4096, .pages = 1, .tail_bytes = 0});
  CHECK(no_tail.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(no_tail.status().message()).find("tail_bytes 0") != std::string::npos);
}

TEST_CASE("UmemDma: the Iova of a UMEM byte is its offset; outside the UMEM fails") {
  alignas(4096) static std::byte area[4 * 4096];
  UmemDma dma({area, sizeof(area)});
  auto iova = dma.map({area + 4096 + 128, 1856}, pagefrag::DmaDirection::kBidirectional);
  REQUIRE(iova.ok());
  CHECK(iova->value() == 4096 + 128);
  CHECK(dma.va_of(iova->value()) == area + 4096 + 128);
  auto whole = dma.map({area, sizeof(area)}, pagefrag::DmaDirection::kFromDevice);
  REQUIRE(whole.ok());
  CHECK(whole->value() == 0);
  CHECK(dma.live_mappings() == 2);
  std::byte outside[64];
  CHECK(dma.map({outside, sizeof(outside)}, pagefrag::DmaDirection::kFromDevice).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(dma.map({area + sizeof(area) - 10, 20}, pagefrag::DmaDirection::kFromDevice)
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  CHECK(dma.unmap(*iova, 1856, pagefrag::DmaDirection::kBidirectional).ok());
  CHECK(dma.unmap(*whole, sizeof(area), pagefrag::DmaDirection::kFromDevice).ok());
  CHECK(dma.live_mappings() == 0);
  CHECK_FALSE(dma.unmap(pagefrag::Iova(0), 64, pagefrag::DmaDirection::kFromDevice).ok());
}

using Policy = AfXdpRxBufPolicy<>;

pagefrag::RxBufRequest request(std::uint64_t page_size, std::uint32_t mtu) {
  return {.page_size = page_size, .mtu = mtu, .xdp = true, .queue_size = 2048};
}

// AfXdpRxBufPolicy as a conformance model. Its domain, written out: xdp true;
// page_size 4 KiB .. 1 MiB; mtu from 68 up to the least of 4096 - 256 - 14 =
// 3826 (the largest chunk), page_size - 256 - 14 - 64 (headroom, frame and
// the 64-byte tailroom in a page) and adapter_mtu - 14; rings a power of two
// in 64..16384.
struct AfXdpModel {
  using Policy = AfXdpRxBufPolicy<>;
  static constexpr const char* kName = "AfXdpRxBufPolicy";
  static constexpr std::uint32_t kTailroom = 64;  // VLAN tag + guard band
  static constexpr std::uint32_t kAlignment = 64;
  static rc::Gen<pagefrag::RxBufRequest> gen_valid() {
    return rc::gen::exec([] {
      pagefrag::RxBufRequest req{.xdp = true};
      req.page_size = std::uint64_t{4096} << *rc::gen::inRange(0, 9);
      req.adapter_mtu = *rc::gen::oneOf(rc::gen::element<std::uint32_t>(1514, 9216),
                                        rc::gen::inRange<std::uint32_t>(82, 65549 + 1));
      const std::uint64_t hi =
          std::min<std::uint64_t>({3826, req.page_size - 334, req.adapter_mtu - 14});
      req.mtu = *rc::gen::inRange<std::uint32_t>(68, static_cast<std::uint32_t>(hi) + 1);
      req.queue_size = 1u << *rc::gen::inRange(6, 15);
      req.max_order = *rc::gen::inRange<std::uint32_t>(0, 11);
      return req;
    });
  }
  static std::vector<pagefrag::test::InvalidRequest> invalid_requests() {
    // The defaults (4 KiB pages, MTU 1500, ring 1024) with xdp true are valid.
    const auto r = [](pagefrag::RxBufRequest req) {
      req.xdp = true;
      return req;
    };
    const std::string pages = "4096..1048576";
    return {
        {r({.page_size = 0}), "page_size", "0", pages},
        {r({.page_size = 12288}), "page_size", "12288", pages},
        {r({.page_size = 1u << 21}), "page_size", "2097152", pages},
        {r({.mtu = 67}), "mtu", "67", "68..3762"},
        {r({.page_size = 65536, .mtu = 3827}), "mtu", "3827", "68..3826"},
        {r({.page_size = 4096, .mtu = 3763}), "mtu", "3763", "68..3762"},
        {r({.page_size = 65536, .mtu = 1501, .adapter_mtu = 1514}), "mtu", "1501", "68..1500"},
        {r({.adapter_mtu = 81}), "adapter_mtu", "81", "82..65549"},
        {r({.adapter_mtu = 65550}), "adapter_mtu", "65550", "82..65549"},
        {{.xdp = false}, "xdp", "false", "expected xdp true"},
        {r({.queue_size = 1000}), "queue_size", "1000", "64..16384"},
        {r({.queue_size = 32}), "queue_size", "32", "64..16384"},
        {r({.queue_size = 32768}), "queue_size", "32768", "64..16384"},
        {r({.max_order = 11}), "max_order", "11", "0..10"},
    };
  }
};

TEST_CASE_TEMPLATE_INVOKE(rxbuf_policy_conformance, AfXdpModel);

TEST_CASE("AfXdpRxBufPolicy: worked examples") {
  // 256 + (1500 + 14) + 64 = 1834, rounded up to 64: 1856; 65536 / 1856 = 35.
  auto cfg = Policy::configure(request(65536, 1500));
  REQUIRE(cfg.ok());
  CHECK(cfg->alloc_size == 1856);
  CHECK(cfg->frag_count == 35);
  CHECK(cfg->headroom == 256);
  CHECK(cfg->datasize == 1514);
  CHECK(cfg->truesize == 1856);
  CHECK(Policy::chunk_size(*cfg) == 2048);
  CHECK(Policy::aligned_chunk_size(*cfg) == 2048);
  // MTU 3000: 256 + 3014 + 64 = 3334 -> 3392; 19 a 64 KiB page; chunk 3328 (not a
  // power of two: unaligned mode accepts it); aligned mode would need 4096.
  cfg = Policy::configure(request(65536, 3000));
  REQUIRE(cfg.ok());
  CHECK(cfg->alloc_size == 3392);
  CHECK(cfg->frag_count == 19);
  CHECK(Policy::chunk_size(*cfg) == 3328);
  CHECK(Policy::aligned_chunk_size(*cfg) == 4096);
  // 4 KiB pages, MTU 1500: two buffers a page.
  cfg = Policy::configure(request(4096, 1500));
  REQUIRE(cfg.ok());
  CHECK(cfg->frag_count == 2);
  // The largest MTUs: 4096 - 256 - 14 = 3826 for the chunk; on 4 KiB pages the
  // tailroom lowers it to 4096 - 256 - 14 - 64 = 3762.
  CHECK(Policy::configure(request(65536, 3826)).ok());
  CHECK_FALSE(Policy::configure(request(65536, 3827)).ok());
  CHECK(Policy::configure(request(4096, 3762)).ok());
  CHECK_FALSE(Policy::configure(request(4096, 3763)).ok());
  // MTU 9000 cannot fit a 4 KiB chunk.
  auto jumbo = Policy::configure(request(65536, 9000));
  CHECK(jumbo.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(jumbo.status().message()).rfind("mtu 9000", 0) == 0);
}

TEST_CASE("AfXdpRxBufPolicy: bad requests name the field") {
  auto no_xdp =
      Policy::configure({.page_size = 65536, .mtu = 1500, .xdp = false, .queue_size = 2048});
  CHECK(std::string(no_xdp.status().message()).rfind("xdp", 0) == 0);
  auto ring = Policy::configure({.page_size = 65536, .mtu = 1500, .xdp = true, .queue_size = 1000});
  CHECK(std::string(ring.status().message()).rfind("queue_size 1000", 0) == 0);
  auto page = Policy::configure({.page_size = 3000, .mtu = 1500, .xdp = true, .queue_size = 2048});
  CHECK(std::string(page.status().message()).rfind("page_size 3000", 0) == 0);
  auto small = Policy::configure(request(65536, 67));
  CHECK(std::string(small.status().message()).rfind("mtu 67", 0) == 0);
}

TEST_CASE("AfXdpRxBufPolicy: every accepted layout keeps every frame inside its fragment") {
  PAGEFRAG_RC_CHECK("stride holds 256 + frame + tailroom; chunk accepts the frame", [] {
    // Half the cases at the edges: 4 KiB pages and MTUs near the largest chunk.
    const bool edge = *rc::gen::arbitrary<bool>();
    const std::uint64_t page_size = std::uint64_t{4096} << (edge ? 0 : *rc::gen::inRange(0, 9));
    const auto mtu = edge ? *rc::gen::inRange<std::uint32_t>(3700, 3900)
                          : *rc::gen::inRange<std::uint32_t>(0, 5000);
    auto cfg = Policy::configure(request(page_size, mtu));
    const std::uint32_t frame = mtu + 14;  // Ethernet header, no FCS
    // Accepted exactly when 256 + frame fits the kernel's largest chunk (4096)
    // and 256 + frame + 64 bytes of tailroom fit one page.
    RC_ASSERT(cfg.ok() == (mtu >= 68 && 256 + frame <= 4096 && 256 + frame + 64 <= page_size));
    if (!cfg.ok()) return;
    RC_ASSERT(cfg->alloc_size % 64 == 0);
    RC_ASSERT(256 + frame + 64 <= cfg->alloc_size);      // frame + VLAN tag + guard
    RC_ASSERT(cfg->alloc_size < 256 + frame + 64 + 64);  // and no more than one line of slack
    RC_ASSERT(cfg->frag_count == page_size / cfg->alloc_size);
    RC_ASSERT(cfg->frag_count >= 1);
    RC_ASSERT(cfg->order == 0u);
    // RxBufCfg's own invariants: truesize is the stride for fragments, the
    // whole page for one buffer per page.
    RC_ASSERT(cfg->truesize == (cfg->frag_count > 1 ? cfg->alloc_size : page_size));
    RC_ASSERT(std::uint64_t{cfg->frag_count} * cfg->alloc_size <= page_size);
    const std::uint32_t chunk = Policy::chunk_size(*cfg);
    RC_ASSERT(chunk >= 2048 && chunk <= 4096);
    RC_ASSERT(chunk - 256 >= frame);  // the kernel accepts len <= chunk - 256 - headroom
    RC_ASSERT(Policy::frame_room(*cfg) >= frame);
  });
}

}  // namespace
}  // namespace pagefrag::afxdp
