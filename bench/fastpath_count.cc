// SPDX-License-Identifier: BSD-3-Clause
// bench/fastpath_count.cc: fixed-count loops of each fast path, one
// out-of-line function per path, for instruction counts under callgrind:
//   valgrind --tool=callgrind --toggle-collect='*count_*'
//            bazel-bin/bench/fastpath_count
// Each count_* function runs its operation kOps times; callgrind's
// inclusive Ir of the function divided by kOps is instructions per operation
// (loop overhead included, as in the LIFO floor).
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "pagefrag/dma/no_dma.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace pagefrag {
namespace {

using Pool = PagePool<HeapProvider, NoDma>;
using Frags = FragmentAllocator<Pool>;
constexpr std::uint64_t kOps = 1'024'000;

PAGEFRAG_ALWAYS_INLINE void touch(void* obj, std::uint64_t value) {
  *static_cast<volatile std::uint64_t*>(obj) = value;
}

PAGEFRAG_NOINLINE void count_lifo_floor(std::byte** stack, std::size_t n) {
  std::size_t top = n;
  for (std::uint64_t i = 0; i < kOps; ++i) {
    std::byte* obj = stack[--top];
    touch(obj, i);
    stack[top++] = obj;
  }
}

PAGEFRAG_NOINLINE void count_page_alloc_recycle_direct(Pool& pool) {
  for (std::uint64_t i = 0; i < kOps; ++i) {
    Page* page = pool.alloc();
    touch(page->va, i);
    pool.recycle_direct(page);
  }
}

// One fragment cut and the oldest of a FIFO window freed, per operation:
// by the owner (free_frag) or through the any-thread path. The window is
// walked slot by slot as in allocator_bench (bench/live_window.h); kOps is a
// multiple of its size.
template <bool kRemote>
PAGEFRAG_NOINLINE void count_frag_alloc_free(Frags& frags, std::vector<Page*>& window,
                                             std::uint32_t stride) {
  Page** const begin = window.data();
  Page** const end = begin + window.size();
  for (std::uint64_t i = 0; i < kOps; i += window.size()) {
    for (Page** slot = begin; slot != end; ++slot) {
      const Frag f = frags.alloc_frag(stride);
      touch(f.va, i);
      if constexpr (kRemote) {
        Frags::free_frag_remote(*slot);
      } else {
        frags.free_frag(*slot);
      }
      *slot = f.page;
    }
  }
}

int run() {
  auto provider = HeapProvider::create(
      {.page_size = 65536, .max_order = 0, .capacity = std::size_t{128} << 20});
  if (!provider.ok()) return 1;
  NoDma dma;
  {
    std::vector<std::byte> memory(128 * 4096);
    std::vector<std::byte*> stack(128);
    for (std::size_t i = 0; i < stack.size(); ++i) stack[i] = memory.data() + i * 4096;
    count_lifo_floor(stack.data(), stack.size());
  }
  {
    auto pool = Pool::create(*provider, dma, {.pool_size = 256});
    count_page_alloc_recycle_direct(**pool);
  }
  for (bool remote : {false, true}) {
    auto pool = Pool::create(*provider, dma, {.pool_size = 256});
    auto frags = Frags::create(**pool);
    std::vector<Page*> window(1024);
    for (Page*& p : window) p = frags->alloc_frag(1856).page;
    if (remote) {
      count_frag_alloc_free<true>(*frags, window, 1856);
      for (Page* p : window) Frags::free_frag_remote(p);
    } else {
      count_frag_alloc_free<false>(*frags, window, 1856);
      for (Page* p : window) frags->free_frag(p);
    }
  }
  fmt::print("ran {} operations per count_* function\n", kOps);
  return 0;
}

}  // namespace
}  // namespace pagefrag

int main() { return pagefrag::run(); }
