// SPDX-License-Identifier: BSD-3-Clause
// bench/queue_memory.h: the held-bytes workload of one RX queue.
//
// An RX ring of 1024 entries keeps 1024 fragments of 1856 bytes live, cut
// from 64 KiB pages, and frees them in FIFO order (oldest first) as it posts
// new ones: all on the owner thread, all through free_frag_remote (the stack
// on another CPU, XDP_REDIRECT, a DPDK lcore), or alternating. The pool is
// sized as the kernel and the MANA queue size it: queue_size / fragments per
// page + 1 pages. The result is the pool's held-bytes high-water mark: the
// memory the queue pins. A memory bound, not a timing: the same on every
// machine, so a test asserts it (tests/frag/queue_memory_test.cc) and
// bench/queue_memory reports it as JSON.
//
// Remote frees are issued from the owner thread through the remote entry
// point, which is what the allocator sees of them; their order is the FIFO
// order either way.
#pragma once

#include <absl/status/statusor.h>
#include <absl/strings/str_cat.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "pagefrag/pagefrag.h"

namespace pagefrag::bench {

enum class FreeMode { kOwner, kRemote, kMixed };

constexpr std::string_view to_string(FreeMode m) {
  switch (m) {
    case FreeMode::kOwner:
      return "owner";
    case FreeMode::kRemote:
      return "remote";
    case FreeMode::kMixed:
      return "mixed";
  }
  return "?";
}

struct QueueMemoryParams {
  std::size_t page_size = 65536;
  std::uint32_t frag_size = 1856;
  std::size_t live = 1024;  // the RX ring's entries
  std::size_t allocs = 1'000'000;
};

// The held-bytes high-water mark; an error if an allocation failed.
inline absl::StatusOr<std::size_t> queue_memory_high_water(FreeMode mode,
                                                           const QueueMemoryParams& q = {}) {
  using Pool = PagePool<HeapProvider, NoDma>;
  using Frags = FragmentAllocator<Pool>;
  auto provider = HeapProvider::create(
      {.page_size = q.page_size, .max_order = 0, .capacity = q.page_size * 512});
  if (!provider.ok()) return provider.status();
  NoDma dma;
  const std::size_t per_page = q.page_size / q.frag_size;
  const auto pool_size = static_cast<std::uint32_t>(q.live / per_page + 1);
  auto pool = Pool::create(*provider, dma, {.pool_size = pool_size, .flags = kPagePoolDmaMap});
  if (!pool.ok()) return pool.status();
  std::size_t high_water = 0;
  {
    auto frags = Frags::create(**pool);
    if (!frags.ok()) return frags.status();
    std::vector<Page*> ring(q.live, nullptr);
    for (std::size_t i = 0; i < q.allocs; ++i) {
      Page*& slot = ring[i % q.live];
      if (slot != nullptr) {
        const bool remote = mode == FreeMode::kRemote || (mode == FreeMode::kMixed && (i & 1) != 0);
        if (remote) {
          Frags::free_frag_remote(slot);
        } else {
          frags->free_frag(slot);
        }
      }
      const Frag f = frags->alloc_frag(q.frag_size);
      if (!f) {
        return absl::ResourceExhaustedError(
            absl::StrCat("allocation ", i, " failed with ", (*pool)->held_bytes(), " bytes held"));
      }
      slot = f.page;
    }
    high_water = (*pool)->held_bytes_high_water();
    for (Page* p : ring) {
      if (p != nullptr) frags->free_frag(p);
    }
  }
  return high_water;
}

}  // namespace pagefrag::bench
