// SPDX-License-Identifier: BSD-3-Clause
// Tests of MinWasteRxBufPolicy and FullPageRxBufPolicy: hand-computed
// examples, then properties against KernelRxBufPolicy and the oracle.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "pagefrag/rxbuf/rxbuf.h"
#include "tests/rxbuf/oracle.h"
#include "tests/rxbuf/request_gen.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag {
namespace {

using Kernel = KernelRxBufPolicy<>;
using MinWaste = MinWasteRxBufPolicy<>;
using FullPage = FullPageRxBufPolicy<>;

template <class Policy>
RxBufCfg cfg_of(const RxBufRequest& req) {
  absl::StatusOr<RxBufCfg> cfg = Policy::configure(req);
  REQUIRE_MESSAGE(cfg.ok(), std::string(cfg.status().message()));
  return *cfg;
}

TEST_CASE("min-waste: MTU 9000, 4 KiB pages, 1024 buffers uses >= 40 % less than the kernel") {
  const RxBufRequest req{.page_size = 4096, .mtu = 9000, .queue_size = 1024};
  // By hand: the kernel gives each buffer an order-2 block (9344 > 8192):
  // 1024 + 1 = 1025 blocks of 16384 = 16 793 600 bytes. Order 4 (65536) holds
  // 65536 / 9344 = 7 buffers: 1024 / 7 + 1 = 147 blocks = 9 633 792 bytes
  // (order 3: 3 buffers, 342 x 32768 = 11 206 656 bytes).
  const RxBufCfg kernel = cfg_of<Kernel>(req);
  const RxBufCfg min = cfg_of<MinWaste>(req);
  CHECK(kernel.queue_bytes(1024) == 16793600);
  CHECK(min.kind == RxBufKind::kStandard);
  CHECK(min.order == 4);
  CHECK(min.alloc_size == 9344);
  CHECK(min.frag_count == 7);
  CHECK(min.truesize == 9344);
  CHECK(min.pool_size(1024) == 147);
  CHECK(min.queue_bytes(1024) == 9633792);
  // 9633792 / 16793600 = 0.5737: 42.6 % less.
  CHECK(min.queue_bytes(1024) * 100 <= kernel.queue_bytes(1024) * 60);
}

TEST_CASE("min-waste: MTU 1500 on 4 KiB pages prefers 64 KiB blocks") {
  // order 0: 513 x 4096 = 2 101 248; order 3: 17 per block, 61 x 32768 =
  // 1 998 848; order 4: 35 per block, 30 x 65536 = 1 966 080.
  const RxBufCfg min = cfg_of<MinWaste>({.page_size = 4096, .mtu = 1500});
  CHECK(min.order == 4);
  CHECK(min.frag_count == 35);
  CHECK(min.queue_bytes(1024) == 1966080);
  // Capped at order 3, the best is order 3.
  const RxBufCfg capped = cfg_of<MinWaste>({.page_size = 4096, .mtu = 1500, .max_order = 3});
  CHECK(capped.order == 3);
  CHECK(capped.queue_bytes(1024) == 1998848);
}

TEST_CASE("min-waste: ties go to the lower order (MTU 1500 on 64 KiB pages)") {
  // order 0: 30 x 65536 = 1 966 080; order 1: 70 per block, 15 x 131072 = 1 966 080.
  const RxBufRequest req{.page_size = 65536, .mtu = 1500};
  CHECK(cfg_of<MinWaste>(req) == cfg_of<Kernel>(req));
}

TEST_CASE("min-waste: with XDP it is the kernel policy") {
  const RxBufRequest req{.page_size = 4096, .mtu = 1500, .xdp = true};
  CHECK(cfg_of<MinWaste>(req) == cfg_of<Kernel>(req));
}

TEST_CASE("full-page: one buffer per block, kind full_page, or xdp with XDP") {
  const RxBufCfg small = cfg_of<FullPage>({.page_size = 65536, .mtu = 1500});
  CHECK(small.kind == RxBufKind::kFullPage);
  CHECK(small.frag_count == 1);
  CHECK(small.alloc_size == 1856);
  CHECK(small.truesize == 65536);
  CHECK(small.queue_bytes(1024) == 1025ull * 65536);  // the 64 MiB the seed compares against
  const RxBufCfg jumbo = cfg_of<FullPage>({.page_size = 4096, .mtu = 9000});
  CHECK(jumbo.kind == RxBufKind::kFullPage);
  CHECK(jumbo.order == 2);
  CHECK(jumbo.truesize == 16384);
  const RxBufRequest xdp{.page_size = 4096, .mtu = 1500, .xdp = true};
  CHECK(cfg_of<FullPage>(xdp) == cfg_of<Kernel>(xdp));
}

TEST_CASE("min-waste never holds more than the kernel and finds the oracle's minimum") {
  PAGEFRAG_RC_CHECK("min-waste bytes == oracle minimum <= kernel bytes", [] {
    const RxBufRequest req = *test::gen_valid_request();
    const RxBufCfg kernel = *Kernel::configure(req);
    const RxBufCfg min = *MinWaste::configure(req);
    RC_ASSERT(min.queue_bytes(req.queue_size) <= kernel.queue_bytes(req.queue_size));
    RC_ASSERT(min.queue_bytes(req.queue_size) ==
              test::oracle_min_waste_bytes(req.page_size, req.mtu, req.xdp, req.queue_size,
                                           req.max_order));
    if (req.xdp) RC_ASSERT(min == kernel);
  });
}

TEST_CASE("full-page always gives each buffer its own block") {
  PAGEFRAG_RC_CHECK("frag_count 1, truesize the block", [] {
    const RxBufRequest req = *test::gen_valid_request();
    const RxBufCfg cfg = *FullPage::configure(req);
    RC_ASSERT(cfg.frag_count == 1u);
    RC_ASSERT(cfg.truesize == cfg.block_bytes());
    RC_ASSERT(cfg.kind == (req.xdp ? RxBufKind::kXdp : RxBufKind::kFullPage));
    RC_ASSERT(cfg.queue_bytes(req.queue_size) >=
              Kernel::configure(req)->queue_bytes(req.queue_size));
  });
}

}  // namespace
}  // namespace pagefrag
