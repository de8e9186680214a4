// SPDX-License-Identifier: BSD-3-Clause
// The reference MANA driver end to end over the simulated device: payloads,
// bounce buffering, malicious completions, and every fault point.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <utility>

#include "tests/mana/mana_rig.h"

namespace mana::testing {
namespace {

using namespace pagefrag;  // NOLINT: tests name the library types unqualified

std::uint64_t drops(const Rig& r, DropReason why) { return r.port->totals().drops_for(why); }

TEST_CASE("bounce mode: every random-size frame arrives intact, nothing leaks") {
  Rig r({.queues = 2, .queue_size = 256, .dma = MockDmaMode::kBounce});
  REQUIRE(r.port->attach().ok());
  const std::uint64_t n = r.traffic(20000);
  CHECK(r.good.load() == n);
  CHECK(r.bad.load() == 0);
  CHECK(r.port->totals().rx_packets == n);
  CHECK(r.balanced());
  CHECK(r.port->totals().rx_unsynced_reads == 0);
  r.teardown_and_check_leaks();
}

TEST_CASE("coalesced completions deliver up to four packets each, in order") {
  RigOptions o{.queues = 1, .dma = MockDmaMode::kBounce};
  o.device.coalesce = 4;
  Rig r(o);
  REQUIRE(r.port->attach().ok());
  const std::uint64_t n = r.traffic(4000);
  CHECK(r.good.load() == n);
  CHECK(r.port->queue_stats(0).rx_coalesced_cqes.get() >= n / 4);
  CHECK(r.balanced());
  r.teardown_and_check_leaks();
}

TEST_CASE("an XDP program that leaves an empty or inverted frame is aborted, not passed") {
  const std::pair<const char*, XdpProgram> programs[] = {
      {"empty",
       [](XdpBuff& x) {
         x.data = x.data_end;
         return XdpAction::kPass;
       }},
      {"empty, transmitted",
       [](XdpBuff& x) {
         x.data = x.data_end;
         return XdpAction::kTx;
       }},
      {"inverted",
       [](XdpBuff& x) {
         x.data_end = x.data;
         x.data += 1;
         return XdpAction::kPass;
       }},
  };
  for (const auto& entry : programs) {  // no structured binding: clang 14 cannot capture one
    const std::string name = entry.first;
    CAPTURE(name);
    Rig r({.queues = 1});
    REQUIRE(r.port->set_xdp(entry.second).ok());
    REQUIRE(r.port->attach().ok());
    const std::uint64_t n = r.traffic(40);
    CHECK(drops(r, DropReason::kXdpAborted) == n);
    CHECK(r.port->totals().xdp_pass == 0);
    CHECK(r.port->totals().xdp_tx == 0);
    CHECK(r.good.load() + r.bad.load() == 0);
    CHECK(r.dev.counters().tx_frames == 0);
    CHECK(r.balanced());
    r.teardown_and_check_leaks();
  }
}

TEST_CASE("hostile TX completions: error types counted, wrong slots ignored, nothing lost") {
  auto run = [](sim::TxMisbehaviour how) {
    RigOptions o{.queues = 1};
    o.device.tx_misbehaviour = how;
    Rig r(o);
    REQUIRE(r.port->set_xdp([](XdpBuff&) { return XdpAction::kTx; }).ok());
    REQUIRE(r.port->attach().ok());
    const std::uint64_t n = r.traffic(40);  // fewer than the rig's 64 TX slots
    CHECK(r.port->totals().xdp_tx == n);
    CHECK(r.dev.counters().tx_frames == n);  // the device read every frame
    CHECK(r.balanced());
    REQUIRE(r.port->detach().ok());  // teardown reclaims what is still posted
    const PortTotals t = r.port->totals();
    r.teardown_and_check_leaks();
    return t;
  };
  SUBCASE("an error type: the frame is consumed, and counted as an error") {
    const PortTotals t = run(sim::TxMisbehaviour::kErrorType);
    CHECK(t.tx_completed == 40);
    CHECK(t.tx_errors == 40);
    CHECK(t.tx_bad_completions == 0);
    CHECK(t.tx_discarded == 0);
  }
  SUBCASE("a completion naming another slot: ignored, the frame stays posted until teardown") {
    const PortTotals t = run(sim::TxMisbehaviour::kWrongCookie);
    CHECK(t.tx_completed == 0);
    CHECK(t.tx_bad_completions == 40);
    CHECK(t.tx_discarded == 40);
  }
}

TEST_CASE("skipping the sync for the CPU is detected (the test can fail)") {
  SUBCASE("bounce mode: stale payloads") {
    Rig r({.queues = 1, .dma = MockDmaMode::kBounce, .skip_sync = true});
    REQUIRE(r.port->attach().ok());
    r.traffic(2000);
    CHECK(r.bad.load() > 0);
    r.teardown_and_check_leaks();
  }
  SUBCASE("strict mode: the checked accessor counts unsynced reads") {
    Rig r({.queues = 1, .dma = MockDmaMode::kStrict, .skip_sync = true});
    REQUIRE(r.port->attach().ok());
    r.traffic(2000);
    CHECK(r.port->totals().rx_unsynced_reads > 0);
    r.teardown_and_check_leaks();
  }
}

TEST_CASE("oversize frames are truncated by the device and dropped by the driver") {
  Rig r({.queues = 1, .mtu = 1500, .dma = MockDmaMode::kBounce});
  REQUIRE(r.port->attach().ok());
  r.traffic(1000, [](std::uint64_t seq) { return seq % 2 ? 2000u : 1000u; });
  CHECK(drops(r, DropReason::kTruncated) == 500);
  CHECK(r.dev.counters().frames_truncated == 500);
  CHECK(r.port->format_stats().find("q0_rx_drop_truncated: 500\n") != std::string::npos);
  CHECK(r.good.load() == 500);
  CHECK(r.balanced());
  r.teardown_and_check_leaks();
}

void malicious_case(sim::Corruption kind, DropReason expected) {
  RigOptions o{.queues = 2, .queue_size = 128, .dma = MockDmaMode::kBounce};
  o.device.corrupt_probability = 0.2;
  o.device.corrupt_kinds = {false, false, false, false};
  o.device.corrupt_kinds[static_cast<std::size_t>(kind)] = true;
  Rig r(o);
  REQUIRE(r.port->attach().ok());
  const std::uint64_t n = r.traffic(5000);
  const std::uint64_t corrupted = r.dev.counters().completions_corrupted;
  CHECK(corrupted > 500);
  CHECK(r.bad.load() == 0);
  CHECK(r.balanced());
  if (kind == sim::Corruption::kStaleOwner) {
    CHECK(r.good.load() == n);  // published late, processed once fixed
  } else {
    CHECK(drops(r, expected) == corrupted);
    CHECK(r.good.load() == n - corrupted);
  }
  // Every buffer was re-posted: the ring still takes a full queue of frames.
  const std::uint64_t before = r.dev.counters().frames_no_buffer;
  for (std::uint32_t i = 0; i < 128; ++i) r.dev.offer_rx(0, make_frame(i, 100), 0);
  CHECK(r.dev.counters().frames_no_buffer == before);
  r.pump();
  r.teardown_and_check_leaks();
}

TEST_CASE("malicious completions: counted drops, buffer re-posted, nothing read out of bounds") {
  SUBCASE("length larger than the buffer") {
    malicious_case(sim::Corruption::kLengthTooLarge, DropReason::kLengthTooLarge);
  }
  SUBCASE("zero length") { malicious_case(sim::Corruption::kZeroLength, DropReason::kZeroLength); }
  SUBCASE("unknown type") {
    malicious_case(sim::Corruption::kUnknownType, DropReason::kUnknownCqeType);
  }
  SUBCASE("stale owner bits") {
    malicious_case(sim::Corruption::kStaleOwner, DropReason::kZeroLength);
  }
}

TEST_CASE("refill failure drops the packet and re-posts the old buffer") {
  Rig r({.queues = 1, .dma = MockDmaMode::kBounce});
  REQUIRE(r.port->attach().ok());
  r.injector.fail_nth(FaultPoint::kRxRefill, 10);
  const std::uint64_t n = r.traffic(100);
  CHECK(drops(r, DropReason::kNoRefill) == 1);
  CHECK(r.good.load() == n - 1);
  CHECK(r.balanced());
  r.teardown_and_check_leaks();
}

// Arms one failure at `p`. The pool absorbs a single failed DMA map (it
// returns that page and maps others), so dma_map fails every map instead.
void arm(FaultInjector& inj, FaultPoint p) {
  if (p == FaultPoint::kDmaMap) {
    inj.set_probability(FaultCategory::kDmaMap, 1.0);
  } else {
    inj.fail_nth(p, 1);
  }
}
void disarm(FaultInjector& inj, FaultPoint p) {
  inj.set_probability(FaultCategory::kDmaMap, 0.0);
  inj.fail_nth(p, 0);
}

// Reconfigurations that reach a fault point: the one-per-page XDP layout is
// a different layout from fragments, so every queue is rebuilt.
absl::Status reconfigure(Rig& r, int which) {
  switch (which % 3) {
    case 0:
      return r.port->set_mtu(r.port->mtu() == 1500 ? 3000 : 1500);
    case 1:
      return r.port->set_xdp(r.port->xdp_attached() ? XdpProgram{} : XdpProgram([](XdpBuff&) {
        return XdpAction::kPass;
      }));
    default:
      return r.port->set_full_page(!r.port->full_page());
  }
}

TEST_CASE("every declared fault point, one at a time: old configuration keeps working, no leak") {
  for (FaultPoint p : kAllFaultPoints) {
    for (int op = 0; op < 3; ++op) {
      CAPTURE(std::string(to_string(p)));
      CAPTURE(op);
      Rig r({.queues = 2, .queue_size = 128, .dma = MockDmaMode::kBounce});
      REQUIRE(r.port->attach().ok());
      r.traffic(300);
      const std::uint32_t mtu = r.port->mtu();
      const bool xdp = r.port->xdp_attached();
      const bool full = r.port->full_page();
      const RxBufCfg cfg = r.port->rxbuf_cfg();
      arm(r.injector, p);
      const absl::Status s = reconfigure(r, op);
      disarm(r.injector, p);
      CHECK(r.injector.hits(p) > 0);  // the point was reached
      if (p == FaultPoint::kRxRefill) {
        CHECK(s.ok());  // a data-path point: reconfigurations never refill
      } else {
        CHECK_FALSE(s.ok());
        CHECK(r.injector.failures(p) >= 1);
        CHECK(r.port->failed_reconfigurations() == 1);
        CHECK(r.port->mtu() == mtu);
        CHECK(r.port->xdp_attached() == xdp);
        CHECK(r.port->full_page() == full);
        CHECK(r.port->rxbuf_cfg() == cfg);
      }
      const std::uint64_t before = r.good.load();
      r.traffic(300);
      CHECK(r.good.load() - before + drops(r, DropReason::kNoRefill) >= 300);
      CHECK(r.bad.load() == 0);
      CHECK(r.balanced());
      r.teardown_and_check_leaks();
    }
  }
}

TEST_CASE("attach fails cleanly at each construction fault point and works after") {
  for (FaultPoint p : kAllFaultPoints) {
    if (p == FaultPoint::kRxRefill) continue;
    CAPTURE(std::string(to_string(p)));
    Rig r({.queues = 2, .queue_size = 128, .dma = MockDmaMode::kStrict});
    arm(r.injector, p);
    CHECK_FALSE(r.port->attach().ok());
    disarm(r.injector, p);
    CHECK_FALSE(r.port->is_up());
    CHECK(r.provider.allocated_blocks() == 0);
    CHECK(r.dma.live_mappings() == 0);
    REQUIRE(r.port->attach().ok());
    r.traffic(200);
    CHECK(r.good.load() == 200);
    r.teardown_and_check_leaks();
  }
}

TEST_CASE("buffers per page, pool bytes and truesize follow the policy") {
  SUBCASE("64 KiB pages, MTU 1500: 35 fragments per page") {
    Rig r({.page_size = 65536, .queues = 1, .queue_size = 1024, .capacity = 256u << 20});
    REQUIRE(r.port->attach().ok());
    CHECK(r.port->rxbuf_cfg().frag_count == 35);
    // 1024 buffers / 35 per page: 30 pages of 64 KiB at most (kernel pool size).
    CHECK(r.port->queue_bytes_high_water() <= 30u * 65536);
    r.traffic(3000, [](std::uint64_t) { return 1000u; });
    // 34 fragments of 1856 B and the last one to the page end: mean 65536/35.
    const double truesize = static_cast<double>(r.port->totals().rx_truesize) /
                            static_cast<double>(r.port->totals().rx_packets);
    CHECK(truesize == doctest::Approx(65536.0 / 35).epsilon(0.02));
    r.teardown_and_check_leaks();
  }
  SUBCASE("the full-page switch charges the whole page") {
    Rig r({.page_size = 65536, .queues = 1, .queue_size = 128, .capacity = 256u << 20});
    REQUIRE(r.port->set_full_page(true).ok());
    REQUIRE(r.port->attach().ok());
    CHECK(r.port->rxbuf_cfg().frag_count == 1);
    r.traffic(500, [](std::uint64_t) { return 1000u; });
    CHECK(r.port->totals().rx_truesize == 500u * 65536);
    r.teardown_and_check_leaks();
  }
}

TEST_CASE("more poller threads than queues is rejected, naming the field and the range") {
  HeapProvider provider =
      *HeapProvider::create({.page_size = 4096, .max_order = 4, .capacity = std::size_t{16} << 20});
  MockDma dma(MockDmaOptions{.mode = MockDmaMode::kStrict});
  Device dev(dma, {});
  ManaPortOptions o;
  o.num_queues = 2;
  o.pollers = 3;
  const absl::StatusOr<std::unique_ptr<Port>> port = Port::create(provider, dma, dev, o);
  REQUIRE_FALSE(port.ok());
  CHECK(absl::IsInvalidArgument(port.status()));
  CHECK(std::string(port.status().message()) ==
        "ManaPortOptions.pollers = 3; expected 0 (one per queue) or 1..num_queues (2)");
}

TEST_CASE("invalid settings are rejected with the valid range and change nothing") {
  Rig r({.queues = 1});
  REQUIRE(r.port->attach().ok());
  const absl::Status s = r.port->set_mtu(20000);
  CHECK(absl::IsInvalidArgument(s));
  CHECK(std::string(s.message()).find("expected") != std::string::npos);
  CHECK(r.port->mtu() == 1500);
  REQUIRE(r.port->set_mtu(9000).ok());
  // XDP needs one buffer per page: MTU 9000 is too large for 4 KiB pages.
  CHECK_FALSE(r.port->set_xdp([](XdpBuff&) { return XdpAction::kPass; }).ok());
  CHECK_FALSE(r.port->xdp_attached());
  r.traffic(100, [](std::uint64_t) { return 8000u; });
  CHECK(r.good.load() == 100);
  r.teardown_and_check_leaks();
}

}  // namespace
}  // namespace mana::testing
