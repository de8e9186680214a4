// SPDX-License-Identifier: BSD-3-Clause
// Descriptor layouts, the owner-bit protocol of the shared rings and the
// completion queue's interrupt (arm bit and event queue).
#include "examples/mana/gdma.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace mana {
namespace {

using namespace pagefrag;  // NOLINT: tests name the library types unqualified
using namespace std::chrono_literals;

TEST_CASE("descriptor sizes match the hardware") {
  CHECK(sizeof(RxWqe) == 32);
  CHECK(sizeof(GdmaWqeHeader) == 8);
  CHECK(sizeof(GdmaSge) == 16);
  CHECK(sizeof(Cqe) == 64);
  CHECK(sizeof(RxCompOob) == 60);
  CHECK(sizeof(RxPacketInfo) == 12);
}

TEST_CASE("CQE type values are the hardware's") {
  CHECK(static_cast<int>(CqeType::kRxOkay) == 1);
  CHECK(static_cast<int>(CqeType::kRxCoalesced4) == 2);
  CHECK(static_cast<int>(CqeType::kRxObjectFence) == 3);
  CHECK(static_cast<int>(CqeType::kRxTruncated) == 4);
}

TEST_CASE("work request header packs num_sge and the inline OOB size") {
  const GdmaWqeHeader h = GdmaWqeHeader::make(1, 8);
  // Oracle: num_sge in bits 0..7, inline_oob_size / 4 = 2 in bits 8..10.
  CHECK(h.flags == (1u | (2u << 8)));
  CHECK(h.num_sge() == 1);
  CHECK(h.inline_oob_bytes() == 8);
}

TEST_CASE("CQE info word: wq number, is_sq, owner bits in the top three bits") {
  const std::uint32_t info = Cqe::make_info(0x123456, true, 5);
  CHECK(info == (0x123456u | (1u << 24) | (5u << 29)));
  CHECK(Cqe::owner_of(info) == 5);
  CHECK(Cqe::wq_num_of(info) == 0x123456u);
}

void write_one(CompletionQueue& cq, std::uint8_t tag) {
  std::uint8_t data[kCqeDataSize] = {};
  data[0] = tag;
  cq.device_write_at_tail(data, 7, false, cq.owner_for(cq.device_tail()));
  cq.device_advance();
}

TEST_CASE("completion queue: zeroed ring is empty; entries appear in order across wraps") {
  auto cq = CompletionQueue::create(4);
  REQUIRE(cq != nullptr);
  Cqe e;
  CHECK(cq->read(&e) == CqeState::kEmpty);
  // 8 rounds of 4 entries: the owner value cycles 1,2,...,7,0 and back.
  for (int i = 0; i < 40; ++i) {
    REQUIRE(cq->device_space() >= 1);
    write_one(*cq, static_cast<std::uint8_t>(i));
    REQUIRE(cq->read(&e) == CqeState::kReady);
    CHECK(e.data[0] == static_cast<std::uint8_t>(i));
    CHECK(Cqe::owner_of(e.info) == static_cast<std::uint32_t>((i / 4 + 1) % 8));
    cq->advance();
    cq->ring_doorbell();
    CHECK(cq->read(&e) == CqeState::kEmpty);  // previous round's bits
  }
}

TEST_CASE("completion queue: device space honours the consumer doorbell") {
  auto cq = CompletionQueue::create(4);
  for (int i = 0; i < 4; ++i) write_one(*cq, 0);
  CHECK(cq->device_space() == 0);
  Cqe e;
  REQUIRE(cq->read(&e) == CqeState::kReady);
  cq->advance();
  CHECK(cq->device_space() == 0);  // not consumed until the doorbell
  cq->ring_doorbell();
  CHECK(cq->device_space() == 1);
}

TEST_CASE("completion queue: owner bits that are neither round are an overflow") {
  auto cq = CompletionQueue::create(4);
  std::uint8_t data[kCqeDataSize] = {};
  cq->device_write_at_tail(data, 0, false, 3);  // round 1 expects 1; 0 is empty
  Cqe e;
  CHECK(cq->read(&e) == CqeState::kOverflow);
  cq->device_set_owner_at_tail(0);
  CHECK(cq->read(&e) == CqeState::kEmpty);
  cq->device_set_owner_at_tail(1);
  CHECK(cq->read(&e) == CqeState::kReady);
}

// The interrupt: an arm succeeds only with every written completion
// consumed; the first completion after it raises the event queue once and
// disarms; completions on an unarmed CQ raise nothing.
TEST_CASE("completion queue interrupt: arm, raise once, no lost or spurious events") {
  auto cq = CompletionQueue::create(8);
  REQUIRE(cq != nullptr);
  EventQueue& eq = cq->event_queue();
  const std::uint32_t e0 = eq.seen();
  write_one(*cq, 1);  // unarmed: no event
  CHECK(eq.seen() == e0);
  CHECK_FALSE(cq->arm());  // a completion past the head: poll, do not sleep
  Cqe e;
  REQUIRE(cq->read(&e) == CqeState::kReady);
  cq->advance();
  CHECK(cq->arm());  // everything consumed
  CHECK(cq->arm());  // arming twice is harmless
  write_one(*cq, 2);
  CHECK(eq.seen() == e0 + 1);  // raised once...
  write_one(*cq, 3);
  CHECK(eq.seen() == e0 + 1);  // ...and disarmed
}

TEST_CASE("completion queues attached to one event queue wake one waiter") {
  auto a = CompletionQueue::create(4);
  auto b = CompletionQueue::create(4);
  REQUIRE((a != nullptr && b != nullptr));
  EventQueue eq;
  a->attach(&eq);
  b->attach(&eq);
  CHECK(&a->event_queue() == &eq);
  const std::uint32_t seen = eq.seen();
  REQUIRE(a->arm());
  REQUIRE(b->arm());
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    eq.wait(seen);
    woke.store(true);
  });
  write_one(*b, 1);  // b's completion raises the shared event queue
  CHECK(eq.seen() == seen + 1);
  for (int i = 0; i < 10000 && !woke.load(); ++i) std::this_thread::sleep_for(1ms);
  CHECK(woke.load());
  if (!woke.load()) eq.raise();  // a failed raise: release the waiter instead of hanging
  waiter.join();
  write_one(*a, 2);  // a is still armed: raises again
  CHECK(eq.seen() == seen + 2);
  a->attach(nullptr);  // back to its own event queue
  CHECK(&a->event_queue() != &eq);
}

TEST_CASE("work queue: device sees only posted entries") {
  auto wq = WorkQueue<RxWqe>::create(8);
  REQUIRE(wq != nullptr);
  RxWqe w;
  w.sge.size = 1234;
  wq->write_entry(0, w);
  CHECK(wq->posted_head() == 0);
  wq->post(1);
  CHECK(wq->posted_head() == 1);
  CHECK(wq->read_entry(0).sge.size == 1234);
  CHECK(wq->read_entry(8).sge.size == 1234);  // index taken modulo the size
}

}  // namespace
}  // namespace mana
