// SPDX-License-Identifier: BSD-3-Clause
// bench/dpdk_autotest_shim.cc: an LD_PRELOAD shim that lets bench/compare.py
// run DPDK's own dpdk-test mempool_perf_autotest in minutes instead of hours.
//
// The autotest times every configuration line for TIME_S = 5 seconds of TSC
// cycles, comparing cycles / rte_get_timer_hz() (which is rte_get_tsc_hz()
// with the TSC timer) against 5, and prints objects per "second" as the
// count / 5. Over a thousand lines at 5 s each would take about 90 minutes,
// and the test has no option to run some lines only. With this shim loaded,
// rte_get_tsc_hz() returns the real frequency divided by
// PAGEFRAG_DPDK_HZ_SCALE (default 1): a "second" is then 1 / scale real
// seconds, so each line runs 5 / scale real seconds; compare.py
// multiplies the printed rate by the same scale, keeps the lines of its
// subset and stops the test when it has them. The test's own loop, objects
// and bookkeeping are untouched.
//
// It also makes stdout line-buffered, so compare.py reads each line as the
// test prints it (stdout is a pipe).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

std::uint64_t scale() {
  static const std::uint64_t s = [] {
    const char* v = std::getenv("PAGEFRAG_DPDK_HZ_SCALE");
    const std::uint64_t n = v != nullptr ? std::strtoull(v, nullptr, 10) : 1;
    return n == 0 ? std::uint64_t{1} : n;
  }();
  return s;
}

__attribute__((constructor)) void line_buffered_stdout() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
}

}  // namespace

extern "C" std::uint64_t rte_get_tsc_hz(void) {
  using Fn = std::uint64_t (*)();
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "rte_get_tsc_hz"));
  return real != nullptr ? real() / scale() : 0;
}
