// SPDX-License-Identifier: BSD-3-Clause
// bench/live_window.h: the window of live objects the allocator benchmarks
// keep, walked as a driver walks its RX ring.
//
// An RX ring keeps `live` buffers posted; each completion frees the oldest
// buffer and posts a new one in its slot. for_each_slot() calls step(slot) on
// the window's slots in ring order, round after round, until the benchmark
// has run enough iterations (one per slot visited). Two untimed rounds come
// first, so every measured run starts warm: each object has been replaced
// twice, and an allocator that fills lazily (a page pool taking pages from
// its provider on first use) has done so, as a DPDK mempool has at creation.
// Without them a short run (the quick compare, a callgrind count that Google
// Benchmark stops after its first batch) would charge that filling to the
// objects it measures. Its loop state is a slot
// pointer and an end pointer, so the step measured keeps its own values in
// registers instead of spilling them to make room for the harness's (an index
// wrapped by compare or mask, plus the iteration count, cost the fragment
// benchmark two stack spills per iteration).
//
// The step must be inlined into the loop: declare it
//   [&](T& slot) PAGEFRAG_BENCH_INLINE { ... }
#pragma once

#include <benchmark/benchmark.h>

#include <vector>

#include "pagefrag/base/compiler.h"

#define PAGEFRAG_BENCH_INLINE __attribute__((always_inline))

namespace pagefrag::bench {

template <class T, class Step>
PAGEFRAG_ALWAYS_INLINE void for_each_slot(benchmark::State& state, std::vector<T>& window,
                                          Step&& step) {
  T* const begin = window.data();
  T* const end = begin + window.size();
  for (int round = 0; round < 2; ++round) {
    for (T* slot = begin; slot != end; ++slot) step(*slot);
  }
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(window.size()))) {
    for (T* slot = begin; slot != end; ++slot) step(*slot);
  }
}

}  // namespace pagefrag::bench
