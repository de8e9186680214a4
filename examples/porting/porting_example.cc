// SPDX-License-Identifier: BSD-3-Clause
// examples/porting/porting_example.cc: the porting guide's example program.
//
// The smallest complete driver on pagefrag: one RX queue whose "device" is
// MockDma in bounce mode (a device that reaches memory only through live
// mappings, and whose writes the CPU sees only after sync_for_cpu). It sets
// the stack up the way docs/porting.md section 2 says, runs the fast path of
// section 3 for a fixed number of packets, verifying every byte, and tears
// down as section 5 says, checking for leaks. Exit 0 and one summary line on
// success; exit 1 with an `error:` line on any failure.
//
// docs/porting.md quotes the regions between `// [porting:NAME]` and
// `// [porting:end]` verbatim; //tests/docs:porting_doc_test checks that the
// doc's blocks equal these regions, and the Bazel target, the pkg-config
// build, the CMake package and an outside Bazel workspace each build and run
// this file (tests/install/, .ci/steps/15-consumers.sh).
#include <pagefrag/pagefrag.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

namespace {

using pagefrag::DmaDirection;
using pagefrag::Frag;
using pagefrag::FragmentAllocator;
using pagefrag::HeapProvider;
using pagefrag::HeapProviderParams;
using pagefrag::KernelRxBufPolicy;
using pagefrag::MockDma;
using pagefrag::MockDmaMode;
using pagefrag::Page;
using pagefrag::PagePool;
using pagefrag::PoolStats;
using pagefrag::PremappedRegion;
using pagefrag::RxBufCfg;

using Pool = PagePool<HeapProvider, MockDma, PoolStats>;
using Frags = FragmentAllocator<Pool>;

constexpr std::uint32_t kQueueSize = 256;
constexpr std::uint32_t kPackets = 20000;

int fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "error: %s: %s\n", what, status.ToString().c_str());
  return 1;
}

// Packet n's length and bytes: a function of n alone, so the receiver checks
// them without state from the sender.
std::uint32_t packet_len(std::uint32_t n, std::uint32_t datasize) {
  return 60 + (n * 97) % (datasize - 60 + 1);
}
std::byte packet_byte(std::uint32_t n, std::uint32_t i) {
  return static_cast<std::byte>((n * 31 + i * 7) & 0xff);
}

// The "device" receives packet n into the buffer posted at iova: it writes
// through its mapping, as a NIC's DMA engine would.
absl::Status device_receive(MockDma& dma, pagefrag::Iova iova, std::uint32_t n, std::uint32_t len) {
  std::vector<std::byte> bytes(len);
  for (std::uint32_t i = 0; i < len; ++i) bytes[i] = packet_byte(n, i);
  return dma.device_write(iova, bytes);
}

int run() {
  // [porting:configure]
  // 1. The layout, or a precise error.
  absl::StatusOr<RxBufCfg> cfg =
      KernelRxBufPolicy<>::configure({.page_size = 65536, .mtu = 1500, .queue_size = kQueueSize});
  if (!cfg.ok()) return fail("configure", cfg.status());
  // [porting:end]

  // [porting:provider]
  // 3. The provider, sized from the layout: every ring slot holding a
  // fragment plus the block being carved. HeapProvider's capacity must be a
  // multiple of its largest block (page_size << max_order), so round up.
  const HeapProviderParams defaults;
  const std::uint64_t blocks = cfg->pool_size(kQueueSize) + 1;
  const std::uint64_t max_block = cfg->page_size << defaults.max_order;
  const std::uint64_t capacity =
      (blocks * cfg->block_bytes() + max_block - 1) / max_block * max_block;
  absl::StatusOr<HeapProvider> provider =
      HeapProvider::create({.page_size = cfg->page_size, .capacity = capacity});
  if (!provider.ok()) return fail("provider", provider.status());
  // [porting:end]

  // [porting:pool]
  // 4. Map the region once, then the pool over it. Receive-only: the device
  // writes, so kFromDevice. The pool syncs a recycled block for the device.
  MockDma dma({.mode = MockDmaMode::kBounce});
  const DmaDirection dir = DmaDirection::kFromDevice;
  std::optional<PremappedRegion> region;
  if (auto r = PremappedRegion::create(dma, *provider, dir); r.ok()) {
    region.emplace(*std::move(r));
  } else {
    return fail("map the region", r.status());
  }
  absl::StatusOr<Pool::Handle> pool =
      Pool::create(*provider, dma,
                   {.order = cfg->order,
                    .pool_size = cfg->pool_size(kQueueSize),
                    .dma_dir = dir,
                    .max_len = static_cast<std::uint32_t>(cfg->block_bytes()),
                    .flags = pagefrag::kPagePoolDmaSyncDev,
                    .premapped = true,
                    .premapped_iova = region->base()});
  if (!pool.ok()) return fail("pool", pool.status());
  // [porting:end]

  // [porting:frags]
  // 5. The fragment allocator over that pool: offsets are multiples of 64.
  absl::StatusOr<Frags> made = Frags::create(**pool, {.align = 64});
  if (!made.ok()) return fail("fragment allocator", made.status());
  std::optional<Frags> frags(*std::move(made));
  // [porting:end]

  std::vector<Frag> ring(kQueueSize);
  std::uint32_t posted = 0;
  std::uint32_t verified = 0;
  std::uint64_t short_fills = 0;

  // [porting:refill]
  // Refill: post a fragment in every empty slot. A null Frag (pool empty) is
  // no error: post fewer, count it, retry on the next poll.
  auto refill = [&] {
    for (Frag& slot : ring) {
      if (slot) continue;
      slot = frags->alloc_frag(cfg->alloc_size);
      if (!slot) {
        ++short_fills;
        return;
      }
      ++posted;
    }
  };
  // [porting:end]

  refill();
  for (std::uint32_t n = 0; n < kPackets; ++n) {
    Frag& slot = ring[n % kQueueSize];
    if (!slot) return fail("receive", absl::InternalError("no buffer posted"));
    const std::uint32_t len = packet_len(n, cfg->datasize);
    if (absl::Status st = device_receive(dma, slot.iova + cfg->headroom, n, len); !st.ok()) {
      return fail("device write", st);
    }
    // [porting:receive]
    // Receive: find the page, give the bytes to the CPU, read the packet,
    // then recycle the fragment (owner thread, no lock, no atomic RMW).
    Page* page = (*pool)->page_of(slot.va);
    (*pool)->sync_for_cpu(page, slot.offset + cfg->headroom, len);
    const std::byte* data = slot.va + cfg->headroom;
    bool good = true;
    for (std::uint32_t i = 0; i < len; ++i) good &= data[i] == packet_byte(n, i);
    verified += good ? 1 : 0;
    frags->free_frag(page);
    slot = Frag{};
    // [porting:end]
    --posted;
    refill();
  }

  // [porting:teardown]
  // Teardown: the device is stopped; take back every posted buffer, destroy
  // the allocator, check the pool has nothing in flight, then destroy the
  // pool and unmap the region. The provider must have every block back.
  for (Frag& slot : ring) {
    if (slot) frags->free_frag(slot.page);
    slot = Frag{};
  }
  frags.reset();
  const std::int64_t inflight = (*pool)->handed_out();
  pool->reset();
  region.reset();
  const std::size_t blocks_out = provider->allocated_blocks();
  const std::size_t mappings = dma.live_mappings();
  // [porting:end]

  if (verified != kPackets || inflight != 0 || blocks_out != 0 || mappings != 0) {
    std::fprintf(stderr,
                 "error: %u of %u packets verified; leaks: %lld pages in flight, %zu blocks, %zu "
                 "mappings\n",
                 verified, kPackets, static_cast<long long>(inflight), blocks_out, mappings);
    return 1;
  }
  std::printf(
      "porting_example: %u buffers of %u bytes per %llu-byte block, %llu blocks provided; "
      "%u packets verified, %llu short fills; leaks: 0 pages, 0 blocks, 0 mappings\n",
      cfg->frag_count, cfg->alloc_size, static_cast<unsigned long long>(cfg->block_bytes()),
      static_cast<unsigned long long>(capacity / cfg->block_bytes()), verified,
      static_cast<unsigned long long>(short_fills));
  return 0;
}

}  // namespace

int main() { return run(); }
