// SPDX-License-Identifier: BSD-3-Clause
// Stateful property test: random sequences of traffic, MTU changes, XDP
// attach/detach, the full-page switch, detach/attach and reconfigurations
// with an injected failure, checked against a model of the port.
#include <doctest/doctest.h>
#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <cstdint>
#include <memory>

#include "tests/mana/mana_rig.h"
#include "tests/support/rc_doctest.h"

namespace mana::testing {
namespace {

using namespace pagefrag;  // NOLINT: tests name the library types unqualified

// What the port should be. Limits are the kernel's (kernel-reference §1):
// MTU up to adapter_mtu - 14 = 9202; with XDP up to 4096 - 334 - 256 = 3506.
struct Model {
  bool up = false;
  std::uint32_t mtu = 1500;
  bool xdp = false;
  bool full_page = false;
};

constexpr std::uint32_t kMaxMtu = 9202;
constexpr std::uint32_t kMaxXdpMtu = 3506;

using Cmd = rc::state::Command<Model, Rig>;

void check_matches(const Model& m, const Rig& r) {
  RC_ASSERT(r.port->is_up() == m.up);
  RC_ASSERT(r.port->mtu() == m.mtu);
  RC_ASSERT(r.port->xdp_attached() == m.xdp);
  RC_ASSERT(r.port->full_page() == m.full_page);
}

// Every command checks the port against the model's next state after it ran.
struct Checked : Cmd {
  void run(const Model& m, Rig& r) const final {
    do_run(m, r);
    Model next = m;
    apply(next);
    check_matches(next, r);
  }
  virtual void do_run(const Model& m, Rig& r) const = 0;
};

XdpProgram pass_program() {
  return [](XdpBuff&) { return XdpAction::kPass; };
}

struct Traffic : Checked {
  std::uint32_t n = *rc::gen::inRange(1, 150);
  std::uint32_t size_seed = *rc::gen::arbitrary<std::uint32_t>();
  void do_run(const Model& m, Rig& r) const override {
    const std::uint64_t good = r.good.load();
    const std::uint64_t no_queue = r.dev.counters().frames_no_queue;
    const std::uint32_t max = m.mtu + 14;
    const std::uint32_t seed = size_seed;
    r.traffic(n, [max, seed](std::uint64_t seq) {
      return 60 + static_cast<std::uint32_t>((seq * 2654435761u + seed) % (max - 59));
    });
    if (m.up) {
      RC_ASSERT(r.good.load() - good == n);
    } else {
      RC_ASSERT(r.dev.counters().frames_no_queue - no_queue == n);
    }
    RC_ASSERT(r.bad.load() == 0u);
    RC_ASSERT(r.balanced());
  }
  void show(std::ostream& os) const override { os << "Traffic(" << n << ")"; }
};

struct SetMtu : Checked {
  std::uint32_t mtu =
      *rc::gen::element(576u, 1500u, 1714u, 1715u, 3000u, 3506u, 4000u, 9000u, 9202u, 9203u);
  bool valid(const Model& m) const { return mtu <= (m.xdp ? kMaxXdpMtu : kMaxMtu); }
  void apply(Model& m) const override {
    if (valid(m)) m.mtu = mtu;
  }
  void do_run(const Model& m, Rig& r) const override {
    RC_ASSERT(r.port->set_mtu(mtu).ok() == valid(m));
  }
  void show(std::ostream& os) const override { os << "SetMtu(" << mtu << ")"; }
};

struct ToggleXdp : Checked {
  bool valid(const Model& m) const { return m.xdp || m.mtu <= kMaxXdpMtu; }
  void apply(Model& m) const override {
    if (valid(m)) m.xdp = !m.xdp;
  }
  void do_run(const Model& m, Rig& r) const override {
    const absl::Status s = r.port->set_xdp(m.xdp ? XdpProgram{} : pass_program());
    RC_ASSERT(s.ok() == valid(m));
  }
  void show(std::ostream& os) const override { os << "ToggleXdp"; }
};

struct ToggleFullPage : Checked {
  void apply(Model& m) const override { m.full_page = !m.full_page; }
  void do_run(const Model& m, Rig& r) const override {
    RC_ASSERT(r.port->set_full_page(!m.full_page).ok());
  }
  void show(std::ostream& os) const override { os << "ToggleFullPage"; }
};

struct Detach : Checked {
  void apply(Model& m) const override { m.up = false; }
  void do_run(const Model&, Rig& r) const override { RC_ASSERT(r.port->detach().ok()); }
  void show(std::ostream& os) const override { os << "Detach"; }
};

struct Attach : Checked {
  void apply(Model& m) const override { m.up = true; }
  void do_run(const Model&, Rig& r) const override { RC_ASSERT(r.port->attach().ok()); }
  void show(std::ostream& os) const override { os << "Attach"; }
};

// An XDP toggle (always a new buffer layout) with a construction fault
// armed: fails when up (nothing changes), succeeds when down (nothing built).
struct FailingToggleXdp : Checked {
  FaultPoint point = *rc::gen::element(FaultPoint::kRxQueueAlloc, FaultPoint::kRxPoolCreate,
                                       FaultPoint::kRxBufferAlloc, FaultPoint::kProviderAlloc,
                                       FaultPoint::kDmaMap, FaultPoint::kRxDeviceCreate,
                                       FaultPoint::kTxQueueAlloc, FaultPoint::kTxDeviceCreate);
  std::uint32_t nth = *rc::gen::inRange(1, 3);
  void checkPreconditions(const Model& m) const override { RC_PRE(m.xdp || m.mtu <= kMaxXdpMtu); }
  void apply(Model& m) const override {
    if (!m.up) m.xdp = !m.xdp;
  }
  void do_run(const Model& m, Rig& r) const override {
    if (point == FaultPoint::kDmaMap) {
      r.injector.set_probability(FaultCategory::kDmaMap, 1.0);
    } else {
      r.injector.fail_nth(point, nth);
    }
    const absl::Status s = r.port->set_xdp(m.xdp ? XdpProgram{} : pass_program());
    r.injector.set_probability(FaultCategory::kDmaMap, 0.0);
    r.injector.fail_nth(point, 0);
    RC_ASSERT(s.ok() == !m.up);
  }
  void show(std::ostream& os) const override {
    os << "FailingToggleXdp(" << to_string(point) << ", " << nth << ")";
  }
};

TEST_CASE("ManaPort behaves like its model under random reconfiguration and traffic") {
  PAGEFRAG_RC_CHECK("port vs model", [] {
    Rig r({.queues = 2,
           .queue_size = 128,
           .dma = MockDmaMode::kBounce,
           .capacity = std::size_t{32} << 20});
    rc::state::check(Model{}, r,
                     rc::state::gen::execOneOfWithArgs<Traffic, SetMtu, ToggleXdp, ToggleFullPage,
                                                       Detach, Attach, FailingToggleXdp>());
    RC_ASSERT(r.port->detach().ok());
    RC_ASSERT(r.port->inflight_at_destroy() == 0u);
    r.port.reset();
    RC_ASSERT(r.provider.allocated_blocks() == 0u);
    RC_ASSERT(r.dma.live_mappings() == 0u);
  });
}

}  // namespace
}  // namespace mana::testing
