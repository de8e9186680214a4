// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/traffic.cc: generator, XDP programs, reconfiguration loop and
// verifier of the mana_driver demo (see traffic.h).
#include "examples/mana/traffic.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <thread>

namespace mana::demo {
namespace {

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool odd_seq(const XdpBuff& x) { return (std::to_integer<unsigned>(x.data[0]) & 1) != 0; }

std::uint32_t frame_size(const TrafficConfig& c, std::mt19937_64& rng) {
  switch (c.size_mode) {
    case SizeMode::kFixed:
      return c.fixed_size;
    case SizeMode::kImix: {  // 7:4:1 of 64, 576, 1500-byte IP packets
      const std::uint64_t r = rng() % 12;
      return std::min<std::uint32_t>(c.max_frame, r < 7 ? 64 : r < 11 ? 590 : 1514);
    }
    case SizeMode::kRandom:
      return kMinFrame + static_cast<std::uint32_t>(rng() % (c.max_frame - kMinFrame + 1));
  }
  return kMinFrame;
}

// One random MTU / XDP / full-page change. Returns whether it succeeded.
template <class Port>
bool reconfigure_once(Port& port, const TrafficConfig& c, std::mt19937_64& rng) {
  static constexpr std::uint32_t kMtus[] = {576, 1280, 1500, 1700, 2000, 3000, 4000, 9000};
  switch (rng() % 4) {
    case 0:
    case 1:
      return port.set_mtu(kMtus[rng() % std::size(kMtus)]).ok();
    case 2:
      if (port.xdp_attached()) return port.set_xdp({}).ok();
      return port.set_xdp(make_program(c.xdp == XdpMode::kNone ? XdpMode::kPass : c.xdp, c.queues))
          .ok();
    default:
      return port.set_full_page(!port.full_page()).ok();
  }
}

// Waits (bounded) until queue `q` can take a frame: a posted buffer and
// completion room, or the queue back after a reconfiguration. Yields first,
// then sleeps, so the pollers get the CPU. Returns the room then (0: give up,
// the next frame is offered anyway and counted as a device drop).
template <class Device>
std::uint32_t wait_room(Device& dev, std::uint32_t q, std::uint32_t queues) {
  for (std::uint32_t spins = 0; spins < 20000; ++spins) {
    for (std::uint32_t t = 0; t < queues; ++t) dev.process_tx(t);  // XDP_TX / REDIRECT
    if (const std::uint32_t room = dev.rx_room(q); room != 0) return room;
    if (spins < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  return 0;
}

template <class Device>
void generate(Device& dev, const TrafficConfig& c, std::atomic<std::uint64_t>& progress) {
  std::mt19937_64 rng(c.seed);
  std::vector<std::byte> frame(65536);
  // Frames a queue gets in a row: enough work per wake-up of its poller
  // that switching between pollers (several us on this VM) stays small
  // beside the packets it handles.
  constexpr std::uint32_t kBurst = 256;
  for (std::uint64_t seq = 0; seq < c.packets;) {
    const auto q = static_cast<std::uint32_t>((seq / kBurst) % c.queues);
    const std::uint64_t end = std::min<std::uint64_t>(c.packets, seq + kBurst);
    // Back-pressure: asked once per burst while there is room, and waited
    // for (bounded) when there is none, rather than dropping at once.
    std::uint32_t room = dev.rx_room(q);
    for (; seq < end; ++seq) {
      const std::span<std::byte> f(frame.data(), frame_size(c, rng));
      frame::write_frame(f, c.seed, seq);
      if (room == 0) room = wait_room(dev, q, c.queues);
      dev.offer_rx(q, f, static_cast<std::uint32_t>(frame::pattern_key(c.seed, seq)));
      room -= room != 0 ? 1 : 0;
    }
    dev.flush_rx(q);
    for (std::uint32_t t = 0; t < c.queues; ++t) dev.process_tx(t);  // XDP_TX / REDIRECT
    progress.store(seq, std::memory_order_relaxed);
  }
  for (std::uint32_t q = 0; q < c.queues; ++q) dev.flush_rx(q);
}

template <class Dma>
void wait_accounted(PortOf<Dma>& port, DeviceOf<Dma>& dev, const TrafficConfig& c) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    for (std::uint32_t q = 0; q < c.queues; ++q) {
      dev.flush_rx(q);
      dev.process_tx(q);
    }
    const Totals t = account<Dma>(port, dev);
    if (t.received + t.dropped >= t.sent) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

template <class Dma>
void control_loop(PortOf<Dma>& port, const TrafficConfig& c,
                  const std::atomic<std::uint64_t>& progress, const std::atomic<bool>& done,
                  DeviceOf<Dma>& dev) {
  std::mt19937_64 rng(c.seed ^ 0xC0FFEEull);
  std::uint32_t next = 1;
  auto last_print = std::chrono::steady_clock::now();
  const auto start = last_print;
  while (!done.load(std::memory_order_acquire) || next <= c.reconfigure) {
    const std::uint64_t sent = progress.load(std::memory_order_relaxed);
    if (next <= c.reconfigure && sent >= c.packets * next / (c.reconfigure + 1)) {
      reconfigure_once(port, c, rng);
      ++next;
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_print >= std::chrono::seconds(2)) {
      const double secs = std::chrono::duration<double>(now - start).count();
      const Totals t = account<Dma>(port, dev);
      std::fprintf(stderr, "progress: %llu/%llu offered, %llu received, %.2f Mpps\n",
                   static_cast<unsigned long long>(t.sent),
                   static_cast<unsigned long long>(c.packets),
                   static_cast<unsigned long long>(t.received), t.received / secs / 1e6);
      last_print = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

XdpProgram make_program(XdpMode mode, std::uint32_t queues) {
  switch (mode) {
    case XdpMode::kNone:
      return {};
    case XdpMode::kPass:
      return [](XdpBuff& x) {
        if (x.data - x.data_hard_start < static_cast<std::ptrdiff_t>(kXdpTagLen)) {
          return XdpAction::kAborted;
        }
        x.data -= kXdpTagLen;
        std::memset(x.data, 0xA5, kXdpTagLen);
        return XdpAction::kPass;
      };
    case XdpMode::kDrop:
      return [](XdpBuff& x) { return odd_seq(x) ? XdpAction::kDrop : XdpAction::kPass; };
    case XdpMode::kTx:
      return [](XdpBuff& x) { return odd_seq(x) ? XdpAction::kPass : XdpAction::kTx; };
    case XdpMode::kRedirect:
      return [queues](XdpBuff& x) {
        if (odd_seq(x)) return XdpAction::kPass;
        x.redirect_queue = (x.rx_queue + 1) % queues;
        return XdpAction::kRedirect;
      };
    case XdpMode::kAborted:
      return [](XdpBuff& x) { return odd_seq(x) ? XdpAction::kAborted : XdpAction::kPass; };
  }
  return {};
}

PacketSink Verifier::sink() {
  return [this](const RxPacket& p) {
    Counts& c = shard(sink_, p.queue);
    if (frame::frame_ok(p.data, p.len, seed_)) {
      c.ok.add();
      return;
    }
    // The pass program pushed a tag into the headroom.
    static const std::array<std::byte, kXdpTagLen> kTag = [] {
      std::array<std::byte, kXdpTagLen> t;
      t.fill(std::byte{0xA5});
      return t;
    }();
    if (p.len > kXdpTagLen && std::memcmp(p.data, kTag.data(), kXdpTagLen) == 0 &&
        frame::frame_ok(p.data + kXdpTagLen, p.len - kXdpTagLen, seed_)) {
      c.ok.add();
      c.tagged.add();
      return;
    }
    c.bad.add();
  };
}

template <class Dma>
void Verifier::watch_wire(DeviceOf<Dma>& dev) {
  dev.set_wire([this](std::uint32_t q, std::span<const std::byte> f) {
    const bool ok = frame::frame_ok(f.data(), static_cast<std::uint32_t>(f.size()), seed_);
    Counts& c = shard(wire_, q);
    (ok ? c.ok : c.bad).add();
  });
}

template <class Dma>
Totals account(const PortOf<Dma>& port, const DeviceOf<Dma>& dev) {
  Totals t;
  const PortTotals pt = port.totals();
  const std::uint64_t no_queue = dev.counters().frames_no_queue;
  const std::uint64_t no_buffer = dev.counters().frames_no_buffer;
  t.sent = dev.counters().frames_offered;
  t.received = pt.rx_packets;
  t.dropped = pt.dropped() + no_queue + no_buffer;
  for (DropReason r : kAllDropReasons)
    t.drops.emplace_back(std::string(to_string(r)), pt.drops_for(r));
  t.drops.emplace_back("device_no_queue", no_queue);
  t.drops.emplace_back("device_no_buffer", no_buffer);
  return t;
}

template <class Dma>
Totals run_traffic(PortOf<Dma>& port, DeviceOf<Dma>& dev, const TrafficConfig& c) {
  std::atomic<std::uint64_t> progress{0};
  std::atomic<bool> done{false};
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = process_cpu_seconds();
  std::thread control([&] { control_loop<Dma>(port, c, progress, done, dev); });
  generate(dev, c, progress);
  progress.store(c.packets);
  wait_accounted<Dma>(port, dev, c);
  done.store(true, std::memory_order_release);
  control.join();
  wait_accounted<Dma>(port, dev, c);
  Totals t = account<Dma>(port, dev);
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t.cpu_seconds = process_cpu_seconds() - cpu_start;
  return t;
}

// The two backends the demo runs over.
#define PAGEFRAG_MANA_DEMO_INSTANTIATE_(Dma)                              \
  template void Verifier::watch_wire<Dma>(DeviceOf<Dma>&);                \
  template Totals account<Dma>(const PortOf<Dma>&, const DeviceOf<Dma>&); \
  template Totals run_traffic<Dma>(PortOf<Dma>&, DeviceOf<Dma>&, const TrafficConfig&);
PAGEFRAG_MANA_DEMO_INSTANTIATE_(pagefrag::MockDma)
PAGEFRAG_MANA_DEMO_INSTANTIATE_(pagefrag::CoherentDma)
#undef PAGEFRAG_MANA_DEMO_INSTANTIATE_

}  // namespace mana::demo
