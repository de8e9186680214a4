// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/base/check.h: invariant checks that abort with file and line.
//
// PAGEFRAG_CHECK(cond, fmt, args...) is always on: a broken invariant (never
// bad input; that is reported as a Status or a counter) prints where and why,
// then aborts. PAGEFRAG_DCHECK is the same in debug builds and compiles to
// nothing (its arguments unevaluated) when NDEBUG is defined.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "pagefrag/base/compiler.h"

namespace pagefrag::internal {

// Out of line and cold: the fast path pays one predicted branch.
[[noreturn]] PAGEFRAG_COLD PAGEFRAG_NOINLINE inline void check_failed(const char* file, int line,
                                                                      const char* condition,
                                                                      const std::string& detail) {
  std::fputs(fmt::format("{}:{}: PAGEFRAG_CHECK({}) failed{}{}\n", file, line, condition,
                         detail.empty() ? "" : ": ", detail)
                 .c_str(),
             stderr);
  std::fflush(stderr);
  std::abort();
}

// The message is formatted in here, not at the check: the arguments travel
// by value, so a function that checks needs no stack frame, string or stack
// canary of its own for the message it almost never prints.
template <class... Args>
[[noreturn]] PAGEFRAG_COLD PAGEFRAG_NOINLINE void check_failed_fmt(
    const char* file, int line, const char* condition, fmt::format_string<Args...> format,
    Args... args) {
  check_failed(file, line, condition,
               fmt::vformat(fmt::string_view(format), fmt::make_format_args(args...)));
}

}  // namespace pagefrag::internal

#define PAGEFRAG_CHECK(cond, ...)                                            \
  do {                                                                       \
    if (PAGEFRAG_UNLIKELY(!(cond))) {                                        \
      ::pagefrag::internal::check_failed_fmt(__FILE__, __LINE__, #cond,      \
                                             "" __VA_OPT__(, ) __VA_ARGS__); \
    }                                                                        \
  } while (false)

#ifdef NDEBUG
#define PAGEFRAG_DCHECK(cond, ...) \
  do {                             \
    if (false && (cond)) {         \
    }                              \
  } while (false)
#define PAGEFRAG_DEBUG_BUILD 0
#else
#define PAGEFRAG_DCHECK(cond, ...) PAGEFRAG_CHECK(cond __VA_OPT__(, ) __VA_ARGS__)
#define PAGEFRAG_DEBUG_BUILD 1
#endif
