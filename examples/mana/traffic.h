// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/traffic.h: mana_driver's traffic: the generator that offers
// frames to the simulated device, the XDP programs, the control thread's
// random reconfigurations, and the verifier that checks every frame the
// driver hands to the stack or transmits (frames from frame.h).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

// queue.h names pagefrag::MockDma without including it: include it first.
// clang-format off
#include "pagefrag/dma/coherent_dma.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "examples/mana/frame.h"
#include "examples/mana/port.h"
#include "examples/mana/sim/sim_device.h"
// clang-format on

namespace mana::demo {

// The demo runs over either DMA backend (--dma): MockDma (strict, bounce)
// checks every sync, CoherentDma is what coherent x86 hardware does. The
// generator, verifier and reports are compiled for both (traffic.cc).
template <class Dma>
using DeviceOf = sim::SimDevice<Dma>;
template <class Dma>
using PortOf = ManaPort<pagefrag::HeapProvider, Dma, DeviceOf<Dma>>;

inline constexpr std::uint32_t kMinFrame = 60;
inline constexpr std::uint32_t kXdpTagLen = 16;  // what the pass program pushes

enum class SizeMode { kFixed, kImix, kRandom };

// The demo's XDP programs. Each keys its verdict on the frame's sequence
// number (its first byte), so every verdict is taken on a known share.
enum class XdpMode { kNone, kPass, kDrop, kTx, kRedirect, kAborted };
inline constexpr std::string_view kXdpModeNames[] = {"none", "pass",     "drop",
                                                     "tx",   "redirect", "aborted"};

struct TrafficConfig {
  std::uint64_t packets = 400000;
  SizeMode size_mode = SizeMode::kImix;
  std::uint32_t fixed_size = 0;
  std::uint32_t max_frame = 1514;  // random/imix sizes stay below
  std::uint32_t queues = 4;
  XdpMode xdp = XdpMode::kNone;
  std::uint32_t reconfigure = 0;  // random MTU/XDP/full-page changes
  std::uint64_t seed = 1;
};

//   pass      pushes a 16-byte tag into the headroom (adjust_head), passes
//   drop      drops odd sequence numbers, passes even ones
//   tx        transmits even sequence numbers back out, passes odd ones
//   redirect  sends even sequence numbers out of the next queue
//   aborted   aborts odd sequence numbers (a program error), passes even
XdpProgram make_program(XdpMode mode, std::uint32_t queues);

// Checks every frame against the oracle. Its counts are kept per queue index,
// each set on its own cache lines and written by one thread (the queue's
// poller for the sink, the device thread of that queue for the wire), so the
// pollers share no line; the accessors sum them (any thread).
class Verifier {
 public:
  explicit Verifier(std::uint64_t seed) : seed_(seed) {}
  // The sink the port hands received frames to (poller threads).
  PacketSink sink();
  // Checks every frame the device puts on the wire (XDP TX / REDIRECT).
  template <class Dma>
  void watch_wire(DeviceOf<Dma>& dev);

  std::uint64_t verified_sink() const { return sum(&Counts::ok); }
  std::uint64_t tagged() const { return sum(&Counts::tagged); }
  std::uint64_t verified_wire() const { return sum(&Counts::ok, wire_); }
  std::uint64_t corrupt() const { return sum(&Counts::bad) + sum(&Counts::bad, wire_); }

 private:
  static constexpr std::uint32_t kShards = 65;  // queue indices 0..63, and the rest
  struct alignas(pagefrag::kCacheLineSize) Counts {
    Counter ok, bad, tagged;
  };
  using Shards = std::array<Counts, kShards>;
  static Counts& shard(Shards& s, std::uint32_t q) { return s[std::min(q, kShards - 1)]; }
  std::uint64_t sum(Counter Counts::*m) const { return sum(m, sink_); }
  static std::uint64_t sum(Counter Counts::*m, const Shards& s) {
    std::uint64_t n = 0;
    for (const Counts& c : s) n += (c.*m).get();
    return n;
  }

  std::uint64_t seed_;
  Shards sink_{};
  Shards wire_{};
};

// Frames offered, received and dropped (by reason), read from the port and
// the device.
struct Totals {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t dropped = 0;
  std::vector<std::pair<std::string, std::uint64_t>> drops;
  double seconds = 0;
  // CPU time of the whole process (generator, device, pollers, verifier,
  // control thread) over the same span: what the run cost, whatever else the
  // machine was running.
  double cpu_seconds = 0;
};
template <class Dma>
Totals account(const PortOf<Dma>& port, const DeviceOf<Dma>& dev);

// Runs the generator (this thread) and the control thread (reconfigurations,
// progress lines on stderr) until every offered frame is accounted for.
template <class Dma>
Totals run_traffic(PortOf<Dma>& port, DeviceOf<Dma>& dev, const TrafficConfig& c);

}  // namespace mana::demo
