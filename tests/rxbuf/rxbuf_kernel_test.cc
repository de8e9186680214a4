// SPDX-License-Identifier: BSD-3-Clause
// Tests of KernelRxBufPolicy and the single-kind policies against the oracle
// and against numbers worked out by hand from the kernel reference.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "pagefrag/rxbuf/rxbuf.h"
#include "tests/rxbuf/oracle.h"

namespace pagefrag {
namespace {

using Kernel = KernelRxBufPolicy<LinuxPlatform>;

// Adapter MTU 65549 (the largest) so only the page size limits the MTU.
RxBufCfg kernel_cfg(std::uint64_t page_size, std::uint32_t mtu, bool xdp = false) {
  absl::StatusOr<RxBufCfg> cfg =
      Kernel::configure({.page_size = page_size, .mtu = mtu, .xdp = xdp, .adapter_mtu = 65549});
  REQUIRE_MESSAGE(cfg.ok(), std::string(cfg.status().message()));
  return *cfg;
}

void check_matches_oracle(std::uint64_t page_size, std::uint32_t mtu, bool xdp) {
  CAPTURE(page_size);
  CAPTURE(mtu);
  CAPTURE(xdp);
  const RxBufCfg got = kernel_cfg(page_size, mtu, xdp);
  const test::OracleCfg want = test::oracle_kernel(page_size, mtu, xdp);
  CHECK(std::string(to_string(got.kind)) == want.kind);
  CHECK(got.page_size == page_size);
  CHECK(got.datasize == want.datasize);
  CHECK(got.alloc_size == want.alloc_size);
  CHECK(got.headroom == want.headroom);
  CHECK(got.frag_count == want.frag_count);
  CHECK(got.order == want.order);
  CHECK(got.truesize == want.truesize);
  CHECK(got.pool_size(1024) == want.pool_size(1024));
  CHECK(got.queue_bytes(1024) == want.queue_bytes(page_size, 1024));
}

TEST_CASE("worked example: MTU 1500 on 64 KiB pages is 35 fragments of 1856, pool 30") {
  const RxBufCfg cfg = kernel_cfg(65536, 1500);
  CHECK(cfg.kind == RxBufKind::kStandard);
  CHECK(cfg.datasize == 1514);
  CHECK(cfg.alloc_size == 1856);
  CHECK(cfg.frag_count == 35);
  CHECK(65536 - 35 * 1856 == 576);  // the bytes left at the end of each page
  CHECK(cfg.order == 0);
  CHECK(cfg.headroom == 0);
  CHECK(cfg.truesize == 1856);
  CHECK(cfg.pool_size(1024) == 30);
  CHECK(cfg.queue_bytes(1024) == 30 * 65536);  // about 1.9 MiB instead of 64 MiB
}

TEST_CASE("MTU 1500 on 4 KiB pages is 2 fragments per page") {
  const RxBufCfg cfg = kernel_cfg(4096, 1500);
  CHECK(cfg.kind == RxBufKind::kStandard);
  CHECK(cfg.frag_count == 2);
  CHECK(cfg.alloc_size == 1856);
  CHECK(cfg.pool_size(1024) == 513);
  CHECK(cfg.queue_bytes(1024) == 513 * 4096);
}

TEST_CASE("the fragment/one-per-page boundary on 4 KiB pages is MTU 1714") {
  const RxBufCfg last_fragments = kernel_cfg(4096, 1714);  // 1714 + 334 = 2048 = half a page
  CHECK(last_fragments.kind == RxBufKind::kStandard);
  CHECK(last_fragments.alloc_size == 2048);
  CHECK(last_fragments.frag_count == 2);
  CHECK(last_fragments.truesize == 2048);

  const RxBufCfg first_jumbo = kernel_cfg(4096, 1715);  // 2049 > 2048
  CHECK(first_jumbo.kind == RxBufKind::kJumbo);
  CHECK(first_jumbo.alloc_size == 2112);
  CHECK(first_jumbo.frag_count == 1);
  CHECK(first_jumbo.order == 0);
  CHECK(first_jumbo.truesize == 4096);  // f73896b: the whole page, not alloc_size
  CHECK(first_jumbo.pool_size(1024) == 1025);
}

TEST_CASE("jumbo MTU 9000 on 4 KiB pages takes an order-2 block per buffer") {
  const RxBufCfg cfg = kernel_cfg(4096, 9000);
  CHECK(cfg.kind == RxBufKind::kJumbo);
  CHECK(cfg.datasize == 9014);
  CHECK(cfg.alloc_size == 9344);  // 9334 rounded up to 64
  CHECK(cfg.order == 2);
  CHECK(cfg.truesize == 16384);
  CHECK(cfg.headroom == 0);
  CHECK(cfg.pool_size(1024) == 1025);
  CHECK(cfg.queue_bytes(1024) == 16793600);
}

TEST_CASE("XDP: one page per buffer with 256 bytes of headroom") {
  const RxBufCfg cfg = kernel_cfg(4096, 1500, true);
  CHECK(cfg.kind == RxBufKind::kXdp);
  CHECK(cfg.headroom == 256);
  CHECK(cfg.alloc_size == 4096);
  CHECK(cfg.frag_count == 1);
  CHECK(cfg.order == 0);
  CHECK(cfg.truesize == 4096);
  const RxBufCfg largest = kernel_cfg(4096, 3506, true);  // MANA_XDP_MTU_MAX on 4 KiB
  CHECK(largest.headroom + largest.datasize + 320 == 4096);
}

TEST_CASE("16 KiB pages") {
  const RxBufCfg standard = kernel_cfg(16384, 1500);
  CHECK(standard.frag_count == 8);
  CHECK(standard.pool_size(1024) == 129);
  const RxBufCfg mtu4000 = kernel_cfg(16384, 4000);  // 4334 -> 4352, still fragments
  CHECK(mtu4000.kind == RxBufKind::kStandard);
  CHECK(mtu4000.alloc_size == 4352);
  CHECK(mtu4000.frag_count == 3);
  CHECK(mtu4000.pool_size(1024) == 342);
  const RxBufCfg jumbo = kernel_cfg(16384, 9000);  // 9334 > 8192
  CHECK(jumbo.kind == RxBufKind::kJumbo);
  CHECK(jumbo.order == 0);
  CHECK(jumbo.truesize == 16384);
  CHECK(kernel_cfg(16384, 7858).kind == RxBufKind::kStandard);  // 7858 + 334 = 8192
  CHECK(kernel_cfg(16384, 7859).kind == RxBufKind::kJumbo);
  CHECK(kernel_cfg(16384, 15794, true).kind == RxBufKind::kXdp);  // 16384 - 590
}

TEST_CASE("every page size, MTU and XDP setting on a grid matches the oracle") {
  for (std::uint64_t page : {4096u, 8192u, 16384u, 32768u, 65536u}) {
    for (std::uint32_t mtu : {68u, 576u, 1280u, 1500u, 1714u, 1715u, 2000u, 3506u, 3507u, 4000u,
                              7858u, 7859u, 8000u, 9000u, 9202u}) {
      check_matches_oracle(page, mtu, false);
      if (mtu <= page - 590) check_matches_oracle(page, mtu, true);
    }
  }
}

TEST_CASE("the selector equals the single-kind policy whose domain holds the request") {
  const RxBufRequest standard{.page_size = 4096, .mtu = 1500};
  const RxBufRequest jumbo{.page_size = 4096, .mtu = 9000};
  const RxBufRequest xdp{.page_size = 4096, .mtu = 1500, .xdp = true};
  CHECK(*StandardRxBufPolicy<>::configure(standard) == *Kernel::configure(standard));
  CHECK(*JumboRxBufPolicy<>::configure(jumbo) == *Kernel::configure(jumbo));
  CHECK(*XdpRxBufPolicy<>::configure(xdp) == *Kernel::configure(xdp));
  CHECK(StandardRxBufPolicy<>::configure(jumbo).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(JumboRxBufPolicy<>::configure(standard).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(XdpRxBufPolicy<>::configure(standard).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(StandardRxBufPolicy<>::configure(xdp).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("layouts are constant expressions") {
  static_assert(Kernel::select({.page_size = 65536, .mtu = 1500}).frag_count == 35);
  static_assert(Kernel::select({.page_size = 4096, .mtu = 9000}).order == 2);
  static_assert(Kernel::select({.page_size = 4096, .mtu = 1500, .xdp = true}).headroom == 256);
  static_assert(JumboRxBufPolicy<>::accepts({.page_size = 4096, .mtu = 1715}));
  static_assert(!JumboRxBufPolicy<>::accepts({.page_size = 4096, .mtu = 1714}));
  CHECK(fmt::format("{}", RxBufKind::kFullPage) == "full_page");
}

// A platform with different numbers: the policies must follow it, not LinuxPlatform.
struct WidePlatform : LinuxPlatform {
  static constexpr std::uint32_t kCacheLineSize = 128;
  static constexpr std::uint32_t kFragAlignment = 256;
};

TEST_CASE("platform constants come from the template parameter") {
  static_assert(RxBufPlatform<WidePlatform>);
  static_assert(rxbuf_pad<WidePlatform>() == 384 + 14);  // 320 rounded up to 128
  const RxBufCfg cfg = KernelRxBufPolicy<WidePlatform>::select({.page_size = 65536, .mtu = 1500});
  CHECK(cfg.alloc_size == 2048);  // 1500 + 398 = 1898 -> 1920 (128) -> 2048 (256)
  CHECK(cfg.frag_count == 32);
}

}  // namespace
}  // namespace pagefrag
