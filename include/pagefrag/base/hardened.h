// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/base/hardened.h: the hardened-mode switch and AddressSanitizer
// poisoning.
//
// PAGEFRAG_HARDENED is a compile-time switch: define it to 1 (for example
// --copt=-DPAGEFRAG_HARDENED=1, as the asan and tsan configurations in
// .bazelrc do) to turn on the checks that cost time on the data path:
//   - per-fragment liveness in FragmentAllocator (a fragment freed twice,
//     a free of an address no live fragment holds, a page of another pool
//     abort naming it, even within the page's fragment count);
//   - owner-thread checks on every owner-only call (PAGEFRAG_HCHECK, also on
//     in debug builds);
//   - with AddressSanitizer (PAGEFRAG_ASAN): pages sitting in a pool and free
//     fragments are poisoned, so a driver's use after free is reported at
//     the faulty access.
// It is off (0) by default: the build users ship is the one tested as is.
// Checks that cost nothing measurable (a page's pooled state, the pool a
// page belongs to) are on in every build (PAGEFRAG_CHECK).
#pragma once

#include <cstddef>

#include "pagefrag/base/check.h"

#ifndef PAGEFRAG_HARDENED
#define PAGEFRAG_HARDENED 0
#endif

// PAGEFRAG_ASAN: 1 when compiled with AddressSanitizer (g++ defines
// __SANITIZE_ADDRESS__, clang answers __has_feature(address_sanitizer)).
#if defined(__SANITIZE_ADDRESS__)
#define PAGEFRAG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PAGEFRAG_ASAN 1
#endif
#endif
#ifndef PAGEFRAG_ASAN
#define PAGEFRAG_ASAN 0
#endif

#if PAGEFRAG_ASAN
#include <sanitizer/asan_interface.h>
#endif

// PAGEFRAG_HCHECK: a PAGEFRAG_CHECK in hardened and debug builds, nothing
// (arguments unevaluated) otherwise.
#if PAGEFRAG_HARDENED || PAGEFRAG_DEBUG_BUILD
#define PAGEFRAG_HCHECK(cond, ...) PAGEFRAG_CHECK(cond __VA_OPT__(, ) __VA_ARGS__)
#define PAGEFRAG_HCHECKS_ON 1
#else
#define PAGEFRAG_HCHECK(cond, ...) \
  do {                             \
    if (false && (cond)) {         \
    }                              \
  } while (false)
#define PAGEFRAG_HCHECKS_ON 0
#endif

namespace pagefrag {

// Whether this build is hardened, and whether it poisons for ASan.
inline constexpr bool kHardened = PAGEFRAG_HARDENED != 0;
inline constexpr bool kPoisoning = kHardened && PAGEFRAG_ASAN != 0;

// Marks [p, p + n) unusable (a free fragment, a pooled page): an access is
// an ASan report at the faulty instruction. Nothing unless kPoisoning.
inline void poison_memory(const void* p, std::size_t n) noexcept {
#if PAGEFRAG_HARDENED && PAGEFRAG_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

// Makes [p, p + n) usable again (handed out, or returned to its provider).
inline void unpoison_memory(const void* p, std::size_t n) noexcept {
#if PAGEFRAG_HARDENED && PAGEFRAG_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

}  // namespace pagefrag
