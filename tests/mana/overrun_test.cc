// SPDX-License-Identifier: BSD-3-Clause
// A device that overruns the RX completion ring (an entry whose owner bits
// are neither the current round's nor the previous one's): the queue counts
// it once, stops receiving, can still sleep, and tears down without
// waiting for a fence the ring can no longer carry.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "examples/mana/port.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "tests/mana/recording_device.h"

namespace mana::testing {
namespace {

using namespace pagefrag;  // NOLINT: tests name the library types unqualified

// A broken device: it overruns on request and never answers a fence.
class OverrunDevice : public RecordingDevice {
 public:
  // Publishes one entry two rounds ahead of the driver's head.
  void overrun() {
    const std::uint8_t data[kCqeDataSize] = {};
    const std::uint32_t owner = (rx_cq->owner_for(rx_cq->head()) + 1) & kCqeOwnerMask;
    rx_cq->device_write_at_tail(data, 0, false, owner);
    rx_cq->device_advance();
  }
};
static_assert(ManaDevice<OverrunDevice>);

TEST_CASE("an overrun RX ring is counted once, stops receiving, and tears down at once") {
  HeapProvider provider(
      *HeapProvider::create({.page_size = 4096, .max_order = 2, .capacity = std::size_t{8} << 20}));
  MockDma dma(MockDmaOptions{});
  OverrunDevice dev;
  {
    ManaPortOptions o;
    o.num_queues = 1;
    o.rx_queue_size = 128;
    o.tx_queue_size = 16;
    o.threaded = false;
    o.sink = [](const RxPacket&) { FAIL("no packet can be received"); };
    auto port = ManaPort<HeapProvider, MockDma, OverrunDevice>::create(provider, dma, dev, o);
    REQUIRE(port.ok());
    REQUIRE((*port)->attach().ok());
    dev.overrun();
    for (int i = 0; i < 10; ++i) CHECK((*port)->poll(0, 64) == 0);
    const QueueStats& s = (*port)->queue_stats(0);
    CHECK(s.rx_cqe_overflow.get() == 1);
    CHECK(s.rx_polls.get() == 10);
    REQUIRE((*port)->detach().ok());
    // Teardown polls until the fence shows, or the ring is known overrun:
    // without the latter it would poll about a million times.
    CHECK((*port)->totals().rx_polls < 20);
    CHECK((*port)->inflight_at_destroy() == 0);
  }
  CHECK(provider.allocated_blocks() == 0);
  CHECK(dma.live_mappings() == 0);
}

}  // namespace
}  // namespace mana::testing
