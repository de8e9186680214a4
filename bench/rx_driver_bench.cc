// SPDX-License-Identifier: BSD-3-Clause
// bench/rx_driver_bench.cc: the MANA reference driver's RX path alone.
//
// One ManaQueue (examples/mana/queue.h) over CoherentDma (syncs are no-ops,
// as on coherent x86) and a HeapProvider, a 1024-entry RX ring, budget 64.
// A minimal device (mana::sim::ScriptedRqDevice) runs on the same thread but OUTSIDE
// the timed region: before each timed chunk it takes every posted work
// request, writes the frame's first 64 bytes into the buffer and one
// CQE_RX_OKAY completion per frame. The timed region is then the driver's
// own work on those frames: poll(64) until the chunk is consumed (completion
// parsing, a replacement buffer per slot and its work request, the packet
// handed to the sink in one batch per poll, the old buffer back to its pool,
// the doorbells), and the sink's read of each packet's first cache line.
//
// That is the per-buffer work of DPDK's own RX loop on a net_null vdev
// (bench/dpdk_baseline.cc, BM_DpdkNullRxBurst): rte_eth_rx_burst(32) hands
// out mbufs, the loop reads each packet's first cache line, and
// rte_pktmbuf_free_bulk returns them.
//
// Times are this thread's CPU time inside the timed chunks (as Google
// Benchmark's CPU time on the DPDK side): preemption by other processes on a
// shared machine does not count, cache misses and stalls do.
//
// Benchmarks (per packet: items_per_second counts packets):
//   BM_RxDriver/mode:{frag,fullpage}/size:{64,1500}/page:{4096,65536}
//   BM_RxDriverScaling/queues:{1,2}: one queue per thread, threads pinned to
//     CPUs 0 and 1, each with its own provider, DMA backend, device and
//     queue; the time is the slowest thread's CPU time inside its polls, the
//     items all threads' packets (so 2 queues that share nothing report
//     twice the packets/s of one).
//
// Instructions: `valgrind --tool=callgrind --collect-atstart=no
// --toggle-collect=pagefrag_rx_timed_chunk` counts exactly the timed
// chunks (the warm-up chunks, which grow the pool to its working size, run
// through pagefrag_rx_warm_chunk and are not counted); the binary prints
// `rx_driver_bench: timed_packets N` (every packet of every timed chunk) to
// stderr at exit, so instructions per packet = the collected Ir / N.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "examples/mana/gdma.h"
#include "examples/mana/queue.h"
#include "examples/mana/sim/scripted_rq.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/dma/coherent_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/rxbuf/full_page_policy.h"
#include "pagefrag/rxbuf/kernel_policy.h"

namespace {

using pagefrag::CoherentDma;
using pagefrag::HeapProvider;

constexpr std::uint32_t kRing = 1024;
constexpr std::uint32_t kBudget = 64;

// The device: one RQ, driven from the benchmark thread between timed chunks.
using BenchDevice = mana::sim::ScriptedRqDevice;

// Writes a frame's first 64 bytes (what the sink reads), its first byte
// from the sequence number.
void write_header(std::byte* va, std::uint32_t len, std::uint32_t seq) {
  std::array<std::byte, 64> header{};
  header[0] = static_cast<std::byte>(seq);
  std::memcpy(va, header.data(), std::min<std::size_t>(header.size(), len));
}

using Queue = mana::ManaQueue<HeapProvider, CoherentDma, BenchDevice>;

// What the "stack" does with each packet: reads its first cache line.
struct Sink {
  std::uint64_t sum = 0;
  std::uint64_t packets = 0;
};

// One queue and everything under it.
struct Rig {
  std::unique_ptr<HeapProvider> provider;
  CoherentDma dma;
  BenchDevice device;
  mana::QueueStats stats;
  Sink sink;
  mana::PacketBatchSink batch_sink;
  std::unique_ptr<Queue> queue;
  std::string error;

  Rig(bool fullpage, std::uint64_t page_size) {
    const pagefrag::RxBufRequest req{.page_size = page_size, .mtu = 1500, .queue_size = kRing};
    absl::StatusOr<pagefrag::RxBufCfg> cfg = fullpage
                                                 ? pagefrag::FullPageRxBufPolicy<>::configure(req)
                                                 : pagefrag::KernelRxBufPolicy<>::configure(req);
    if (!cfg.ok()) {
      error = std::string(cfg.status().message());
      return;
    }
    const std::size_t block = page_size << 4;
    const std::size_t need = (cfg->pool_size(kRing) + 2 * kRing) * cfg->block_bytes();
    absl::StatusOr<HeapProvider> p = HeapProvider::create(
        {.page_size = page_size, .max_order = 4, .capacity = (need + block - 1) / block * block});
    if (!p.ok()) {
      error = std::string(p.status().message());
      return;
    }
    provider = std::make_unique<HeapProvider>(*std::move(p));
    batch_sink = [this](std::span<const mana::RxPacket> packets) {
      std::uint64_t sum = 0;
      for (const mana::RxPacket& pkt : packets) {
        std::uint64_t first;
        std::memcpy(&first, pkt.data, sizeof(first));
        sum += first;
      }
      sink.sum += sum;
      sink.packets += packets.size();
    };
    Queue::Env env;
    env.provider = provider.get();
    env.dma = &dma;
    env.device = &device;
    env.batch_sink = &batch_sink;
    absl::StatusOr<std::unique_ptr<Queue>> q = Queue::create(
        env, 0, mana::QueueShape{.cfg = *cfg, .rx_size = kRing, .tx_size = 64}, &stats);
    if (!q.ok()) {
      error = std::string(q.status().message());
      return;
    }
    queue = *std::move(q);
  }
};

std::atomic<std::uint64_t> g_timed_packets{0};

}  // namespace

namespace {

// Polls until `n` placed packets are consumed; returns the packets polled.
std::uint32_t poll_chunk(Queue* q, std::uint32_t n) {
  std::uint32_t done = 0;
  while (done < n) {
    const std::uint32_t got = q->poll(kBudget);
    if (got == 0) break;
    done += got;
  }
  return done;
}

}  // namespace

// The timed region, and the same work untimed for warming up. Out of line
// and unmangled so callgrind can collect exactly the first.
extern "C" __attribute__((noinline)) std::uint32_t pagefrag_rx_timed_chunk(Queue* q,
                                                                           std::uint32_t n) {
  return poll_chunk(q, n);
}
extern "C" __attribute__((noinline)) std::uint32_t pagefrag_rx_warm_chunk(Queue* q,
                                                                          std::uint32_t n) {
  return poll_chunk(q, n);
}

namespace {

// This thread's CPU time in ns: what Google Benchmark reports for the DPDK
// side (CPU time), and blind to time this thread spent preempted.
double thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Places a chunk, then polls it; returns (packets, CPU ns inside polls).
std::pair<std::uint64_t, double> run_chunk(Rig& rig, std::uint32_t len) {
  const std::uint32_t placed = rig.device.place(kRing, len, write_header);
  const double t0 = thread_cpu_ns();
  const std::uint32_t done = pagefrag_rx_timed_chunk(rig.queue.get(), placed);
  const double t1 = thread_cpu_ns();
  g_timed_packets.fetch_add(done, std::memory_order_relaxed);
  return {done, t1 - t0};
}

// Warms the queue up: every page through the pool, which grows to its
// working size. Not timed, not counted.
void warm_up(Rig& rig, std::uint32_t len) {
  for (int i = 0; i < 64; ++i) {
    pagefrag_rx_warm_chunk(rig.queue.get(), rig.device.place(kRing, len, write_header));
  }
}

void BM_RxDriver(benchmark::State& state) {
  const bool fullpage = state.range(0) != 0;
  const auto len = static_cast<std::uint32_t>(state.range(1));
  const auto page = static_cast<std::uint64_t>(state.range(2));
  Rig rig(fullpage, page);
  if (!rig.error.empty()) {
    state.SkipWithError(rig.error.c_str());
    return;
  }
  warm_up(rig, len);
  std::uint64_t packets = 0;
  for (auto _ : state) {
    auto [n, ns] = run_chunk(rig, len);
    if (n == 0) {
      state.SkipWithError("the queue consumed no packets");
      return;
    }
    packets += n;
    state.SetIterationTime(ns * 1e-9);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
  state.counters["drops"] = static_cast<double>(rig.stats.dropped());
  benchmark::DoNotOptimize(rig.sink.sum);
}
BENCHMARK(BM_RxDriver)
    ->ArgNames({"mode", "size", "page"})
    ->ArgsProduct({{0, 1}, {64, 1500}, {4096, 65536}})
    ->UseManualTime();

bool pin_to_cpu(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % std::max(1u, std::thread::hardware_concurrency()), &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// queues:N: N threads, each pinned to its own CPU, each with its own rig
// (64 KiB pages, fragments, 1500-byte packets). Each iteration every thread
// runs kChunks chunks; the iteration's time is the slowest thread's time
// inside its polls.
void BM_RxDriverScaling(benchmark::State& state) {
  const auto queues = static_cast<unsigned>(state.range(0));
  constexpr int kChunks = 32;
  std::vector<std::unique_ptr<Rig>> rigs(queues);
  std::vector<std::thread> threads;
  std::atomic<unsigned> ready{0};
  std::atomic<int> go{0};  // iteration number to run; -1: stop
  std::vector<double> ns(queues);
  std::vector<std::uint64_t> pk(queues);
  std::atomic<unsigned> finished{0};
  std::atomic<bool> failed{false};
  for (unsigned t = 0; t < queues; ++t) {
    threads.emplace_back([&, t] {
      pin_to_cpu(t);
      rigs[t] = std::make_unique<Rig>(false, 65536);  // built on its own CPU
      if (!rigs[t]->error.empty()) failed = true;
      if (!failed) {
        warm_up(*rigs[t], 1500);
      }
      ready.fetch_add(1);
      int seen = 0;
      for (;;) {
        int g;
        while ((g = go.load(std::memory_order_acquire)) == seen) std::this_thread::yield();
        if (g < 0) break;
        seen = g;
        double total = 0;
        std::uint64_t n = 0;
        for (int c = 0; c < kChunks && !failed; ++c) {
          auto [p, t_ns] = run_chunk(*rigs[t], 1500);
          n += p;
          total += t_ns;
        }
        ns[t] = total;
        pk[t] = n;
        finished.fetch_add(1, std::memory_order_acq_rel);
      }
    });
  }
  while (ready.load() != queues) std::this_thread::yield();
  std::uint64_t packets = 0;
  int iteration = 0;
  for (auto _ : state) {
    if (failed) break;
    finished.store(0);
    go.store(++iteration, std::memory_order_release);
    while (finished.load(std::memory_order_acquire) != queues) std::this_thread::yield();
    double slowest = 0;
    for (unsigned t = 0; t < queues; ++t) {
      slowest = std::max(slowest, ns[t]);
      packets += pk[t];
    }
    state.SetIterationTime(slowest * 1e-9);
  }
  go.store(-1, std::memory_order_release);
  for (auto& th : threads) th.join();
  if (failed) {
    state.SkipWithError("a queue could not be built");
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
}
BENCHMARK(BM_RxDriverScaling)->ArgName("queues")->Arg(1)->Arg(2)->UseManualTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fprintf(stderr, "rx_driver_bench: timed_packets %llu\n",
               static_cast<unsigned long long>(g_timed_packets.load()));
  return 0;
}
