// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/version.h: the library's version, for consumers outside Bazel.
#pragma once

#define PAGEFRAG_VERSION_MAJOR 0
#define PAGEFRAG_VERSION_MINOR 2
#define PAGEFRAG_VERSION_PATCH 0
// Monotonic: major * 10000 + minor * 100 + patch.
#define PAGEFRAG_VERSION \
  (PAGEFRAG_VERSION_MAJOR * 10000 + PAGEFRAG_VERSION_MINOR * 100 + PAGEFRAG_VERSION_PATCH)
#define PAGEFRAG_VERSION_STRING "0.2.0"
