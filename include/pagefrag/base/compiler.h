// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/base/compiler.h: branch hints, hot/cold markers and the cache line.
#pragma once

#include <cstddef>

namespace pagefrag {

// Cache line of every platform pagefrag targets (x86_64, arm64): the kernel's
// SMP_CACHE_BYTES. State written by different threads lives on different lines.
inline constexpr std::size_t kCacheLineSize = 64;

}  // namespace pagefrag

#define PAGEFRAG_LIKELY(x) (__builtin_expect(!!(x), 1))
#define PAGEFRAG_UNLIKELY(x) (__builtin_expect(!!(x), 0))
// Slow paths (refill, provider allocation, DMA mapping) stay out of line so the
// fast path stays small enough to inline.
#define PAGEFRAG_NOINLINE __attribute__((noinline))
#define PAGEFRAG_COLD __attribute__((cold))
#define PAGEFRAG_ALWAYS_INLINE inline __attribute__((always_inline))
// Tells the optimizer that `cond` holds, so that it drops the tests `cond`
// implies (an invariant it cannot see, such as "a page in the pool's cache is
// never null"). Undefined behaviour if `cond` is false: only for invariants
// that the code establishing them checks.
#define PAGEFRAG_ASSUME(cond)             \
  do {                                    \
    if (!(cond)) __builtin_unreachable(); \
  } while (0)
