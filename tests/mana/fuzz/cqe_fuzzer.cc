// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: the device is untrusted (as in a confidential VM). The
// input is written over the RX completion queue byte for byte (owner bits,
// types, lengths, all of it) and the RX queue is polled. Any crash,
// sanitizer report, leaked page or leaked mapping is a failure.
//
// Built with clang++ -fsanitize=fuzzer,address (tagged manual: the default
// g++ build skips it); .ci/steps/70-mana-fuzz.sh runs it for 60 s from the
// seed corpus of valid completions in tests/mana/fuzz/corpus/.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "examples/mana/port.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "tests/mana/recording_device.h"

namespace {

using namespace pagefrag;  // NOLINT
using namespace mana;      // NOLINT

// The recording device, whose fence answers at once: the ring is wiped and
// a fence completion is written at the driver's head.
class FuzzDevice : public mana::testing::RecordingDevice {
 public:
  void fence_rq(std::uint32_t) {
    std::span<std::byte> raw = rx_cq->raw_bytes();
    std::memset(raw.data(), 0, raw.size());
    while (rx_cq->device_tail() != rx_cq->head()) rx_cq->device_advance();
    RxCompOob oob;
    oob.set_type(CqeType::kRxObjectFence);
    std::uint8_t bytes[kCqeDataSize];
    std::memcpy(bytes, &oob, sizeof(bytes));
    rx_cq->device_write_at_tail(bytes, 0, false, rx_cq->owner_for(rx_cq->device_tail()));
  }
};
static_assert(ManaDevice<FuzzDevice>);

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "cqe_fuzzer: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static HeapProvider* provider = new HeapProvider(
      *HeapProvider::create({.page_size = 4096, .max_order = 2, .capacity = std::size_t{8} << 20}));
  static MockDma* dma = new MockDma(MockDmaOptions{});
  FuzzDevice dev;
  std::uint64_t touched = 0;
  {
    ManaPortOptions o;
    o.num_queues = 1;
    o.rx_queue_size = 128;
    o.tx_queue_size = 16;
    o.threaded = false;
    o.sink = [&touched](const RxPacket& p) {
      for (std::uint32_t i = 0; i < p.len; ++i) touched += std::to_integer<unsigned>(p.data[i]);
    };
    auto port = ManaPort<HeapProvider, MockDma, FuzzDevice>::create(*provider, *dma, dev, o);
    if (!port.ok() || !(*port)->attach().ok()) fail("port setup failed");
    std::span<std::byte> raw = dev.rx_cq->raw_bytes();
    std::memcpy(raw.data(), data, std::min(size, raw.size()));
    for (int i = 0; i < 8; ++i) (*port)->poll(0, 64);
    if (!(*port)->detach().ok()) fail("detach failed");
    if ((*port)->inflight_at_destroy() != 0) fail("pages in flight after teardown");
  }
  if (provider->allocated_blocks() != 0) fail("leaked pages");
  if (dma->live_mappings() != 0) fail("leaked DMA mappings");
  return touched == 0xFFFFFFFFFFFFFFFFull;  // keep the reads alive
}
