// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/poll_clock.h: the cheap clock a queue times its polls with
// (ManaPortOptions.time_polls).
//
// On x86 it reads the time-stamp counter (invariant on every CPU this runs
// on: it ticks at a constant rate on every core), a few nanoseconds with no
// system call; elsewhere std::chrono::steady_clock. ns_per_tick() calibrates
// the counter against steady_clock once per process (about 20 ms, on first
// use: a queue calls it when it is created with timing on, never on the data
// path).
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace mana {

struct PollClock {
  // Any thread.
  static std::uint64_t now() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
#endif
  }

  // Nanoseconds per tick of now(). Any thread; the first call takes ~20 ms.
  static double ns_per_tick() {
    static const double v = calibrate();
    return v;
  }

 private:
  static double calibrate() {
#if defined(__x86_64__) || defined(__i386__)
    using Clock = std::chrono::steady_clock;
    const Clock::time_point t0 = Clock::now();
    const std::uint64_t c0 = now();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const Clock::time_point t1 = Clock::now();
    const std::uint64_t c1 = now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
    return c1 > c0 ? ns / static_cast<double>(c1 - c0) : 1.0;
#else
    return 1.0;
#endif
  }
};

}  // namespace mana
