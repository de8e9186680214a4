// SPDX-License-Identifier: BSD-3-Clause
// The program tests/vm/vfio_vm_test.sh runs inside a QEMU guest with an
// emulated VT-d IOMMU: VfioDma against a real kernel and real devices.
//
//   vfio_vm_guest EDU_BDF NIC_BDF
//
// 1. QEMU's edu device (28-bit DMA mask) through VfioDma: a HeapProvider
//    region premapped once; edu's DMA engine copies a page RAM -> device ->
//    RAM at the IOVAs VfioDma chose; the bytes must match. After the region is
//    unmapped, a device write to the old IOVA must not reach memory.
// 2. The e1000e's group: map, unmap, and unmap errors.
// 3. The DmaBackend conformance suite over VfioDma and over the C API's
//    backend on VfioDma's container, the device side being edu's DMA
//    engine (every transfer through the IOMMU).
// 4. The C API's VFIO backend on a shared container: two pools on the
//    container VfioDma opened, beside a 2 MiB mapping of the caller's; edu
//    copies through a fragment of each pool.
// Prints "vfio-vm: PASS ..." or "vfio-vm: FAIL ..." and exits 0 only on
// success. Built statically (fmt header-only) by the VM test script.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pagefrag/c/pagefrag_impl.h"  // the C API, and its VFIO backend for the suite
#include "pagefrag/dma/premapped_region.h"
#include "pagefrag/dma/vfio_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "tests/dma/dma_conformance.h"

namespace pagefrag::vm {
namespace {

// QEMU's edu device: BAR0 registers and its 4 KiB DMA buffer.
class Edu {
 public:
  static constexpr std::uint64_t kBuffer = 0x40000;

  static absl::StatusOr<Edu> open(int device_fd) {
    Edu edu(device_fd);
    vfio_region_info bar{}, cfg{};
    bar.argsz = cfg.argsz = sizeof bar;
    bar.index = VFIO_PCI_BAR0_REGION_INDEX;
    cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
    if (::ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &bar) != 0 ||
        ::ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &cfg) != 0) {
      return absl::InternalError(
          fmt::format("VFIO_DEVICE_GET_REGION_INFO: {}", std::strerror(errno)));
    }
    edu.bar0_ = bar.offset;
    std::uint16_t command = 0;  // PCI command register: enable bus mastering (DMA)
    if (::pread(device_fd, &command, 2, static_cast<off_t>(cfg.offset + 4)) != 2) {
      return absl::InternalError("reading the PCI command register");
    }
    command |= 0x4;
    if (::pwrite(device_fd, &command, 2, static_cast<off_t>(cfg.offset + 4)) != 2) {
      return absl::InternalError("enabling bus mastering");
    }
    edu.write32(0x04, 0x12345678);  // liveness: reads back the complement
    if (edu.read32(0x04) != ~0x12345678u) return absl::InternalError("edu liveness check failed");
    return edu;
  }

  // RAM at iova -> edu buffer + off, or back (to_ram), n <= 4095 bytes
  // (QEMU 7.2's edu aborts on a full 4096-byte transfer).
  absl::Status dma(std::uint64_t iova, std::uint64_t off, std::size_t n, bool to_ram) {
    write64(0x80, to_ram ? kBuffer + off : iova);
    write64(0x88, to_ram ? iova : kBuffer + off);
    write64(0x90, n);
    write64(0x98, to_ram ? 3 : 1);  // bit 0 start, bit 1 device-to-RAM
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((read64(0x98) & 1) != 0) {
      if (std::chrono::steady_clock::now() > deadline)
        return absl::DeadlineExceededError("edu DMA");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return absl::OkStatus();
  }

 private:
  explicit Edu(int fd) : fd_(fd) {}
  template <class T>
  void put(std::uint64_t reg, T v) {
    PAGEFRAG_CHECK(::pwrite(fd_, &v, sizeof v, static_cast<off_t>(bar0_ + reg)) == sizeof v);
  }
  template <class T>
  T get(std::uint64_t reg) {
    T v{};
    PAGEFRAG_CHECK(::pread(fd_, &v, sizeof v, static_cast<off_t>(bar0_ + reg)) == sizeof v);
    return v;
  }
  void write32(std::uint64_t reg, std::uint32_t v) { put(reg, v); }
  std::uint32_t read32(std::uint64_t reg) { return get<std::uint32_t>(reg); }
  void write64(std::uint64_t reg, std::uint64_t v) { put(reg, v); }
  std::uint64_t read64(std::uint64_t reg) { return get<std::uint64_t>(reg); }

  int fd_;
  std::uint64_t bar0_ = 0;
};

// Shared by the scenarios and the conformance model: a VFIO group can be
// opened by one container only.
struct EduRig {
  std::unique_ptr<VfioDma> dma;
  std::unique_ptr<Edu> edu;
  std::unique_ptr<HeapProvider> memory;
  std::span<std::byte> scratch;  // a page the model bounces device data through
  Iova scratch_iova;
  // The C API's backend over dma's container, beside dma's own mappings.
  std::unique_ptr<c_api::ContainerVfioDma> container;
};
EduRig* g_rig = nullptr;

int failures = 0;
void expect(bool ok, const std::string& what) {
  fmt::print("vfio-vm: {} {}\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

// Scenario 1: premapped provider region, edu round trip, then unmap blocks
// the device.
void edu_round_trip(EduRig& rig) {
  auto provider = HeapProvider::create({.page_size = 4096, .max_order = 2, .capacity = 1 << 20});
  PAGEFRAG_CHECK(provider.ok(), "{}", provider.status().ToString());
  auto region = std::make_unique<PremappedRegion>(
      *PremappedRegion::create(*rig.dma, *provider, DmaDirection::kBidirectional));
  Page* src = provider->alloc(0);
  Page* dst = provider->alloc(0);
  const Iova src_iova = region->iova_of(src->va), dst_iova = region->iova_of(dst->va);
  fmt::print("vfio-vm: region {} bytes at {}, src {}, dst {} (IOMMU group {})\n",
             provider->region().size(), region->base(), src_iova, dst_iova, rig.dma->group());
  expect(region->base().value() + provider->region().size() <= (1u << 28),
         "IOVAs of the premapped region lie below edu's 28-bit mask");
  bool inside = false;
  for (const auto& r : rig.dma->iova_ranges()) {
    inside = inside || (region->base().value() >= r.first &&
                        region->base().value() + provider->region().size() - 1 <= r.last);
  }
  expect(inside && region->base().value() != 0,
         "the region's IOVAs lie inside one reported valid range and avoid IOVA 0");
  testing::fill_pattern({src->va, 4095}, 9);
  std::memset(dst->va, 0, 4096);
  expect(rig.edu->dma(src_iova.value(), 0, 4095, false).ok(), "edu DMA RAM -> device");
  expect(rig.edu->dma(dst_iova.value(), 0, 4095, true).ok(), "edu DMA device -> RAM");
  expect(testing::has_pattern({dst->va, 4095}, 9), "device -> RAM bytes equal RAM -> device bytes");
  const std::uint64_t old_dst = dst_iova.value();
  std::memset(dst->va, 0, 4096);
  region.reset();  // unmaps the whole region
  expect(rig.dma->live_mappings() == 0, "region unmapped");
  (void)rig.edu->dma(old_dst, 0, 4095, true);  // the IOMMU must block this write
  bool untouched = true;
  for (int i = 0; i < 4096; ++i) untouched = untouched && dst->va[i] == std::byte{0};
  expect(untouched, "after unmap the device cannot write the page (DMAR fault, memory untouched)");
  provider->release(src);
  provider->release(dst);
}

// Scenario 2: the NIC's group, with a 16-bit DMA mask: IOVAs 4 KiB..64 KiB,
// room for 15 pages.
void nic_map_unmap(const std::string& bdf) {
  auto nic = VfioDma::create({.bdf = bdf, .dma_mask_bits = 16});
  expect(nic.ok(),
         fmt::format("VfioDma for e1000e {}: {}", bdf, nic.ok() ? "ok" : nic.status().ToString()));
  if (!nic.ok()) return;
  std::vector<std::byte> buf(3 * 4096 + 100);
  auto iova = (*nic)->map(buf, DmaDirection::kFromDevice);
  expect(iova.ok(), "e1000e map");
  if (!iova.ok()) return;
  const auto va = reinterpret_cast<std::uintptr_t>(buf.data());
  const std::uint64_t pages = (va + buf.size() + 4095) / 4096 - va / 4096;
  expect((*nic)->pinned_bytes() == pages * 4096,
         fmt::format("e1000e pinned {} bytes for a {}-byte buffer", (*nic)->pinned_bytes(),
                     buf.size()));
  expect(!(*nic)->unmap(*iova, buf.size() - 1, DmaDirection::kFromDevice).ok(),
         "e1000e unmap with the wrong size is refused");
  expect((*nic)->unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok(), "e1000e unmap");
  expect(!(*nic)->unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok(),
         "e1000e second unmap is refused");
  // Four-page buffers (page-aligned): three fit below the mask, the fourth
  // does not.
  std::vector<std::byte> space(16 * 4096 + 4096);
  std::byte* const first =
      space.data() + (4096 - reinterpret_cast<std::uintptr_t>(space.data()) % 4096);
  std::vector<Iova> held;
  absl::Status refused;
  for (int i = 0; i < 4; ++i) {
    auto got = (*nic)->map({first + i * 4 * 4096, 4 * 4096}, DmaDirection::kFromDevice);
    if (!got.ok()) {
      refused = got.status();
      break;
    }
    expect(got->value() + 4 * 4096 <= (1u << 16),
           fmt::format("e1000e IOVA {} lies below the 16-bit mask", *got));
    held.push_back(*got);
  }
  expect(held.size() == 3 && refused.code() == absl::StatusCode::kResourceExhausted,
         fmt::format("the 16-bit mask holds three 16 KiB mappings, the fourth is refused ({})",
                     refused.ToString()));
  for (std::size_t i = 0; i < held.size(); ++i) {
    (void)(*nic)->unmap(held[i], 4 * 4096, DmaDirection::kFromDevice);
  }
}

// Scenario 4: C API pools on the caller's container. The caller (VfioDma
// here, as SPDK or DPDK would) maps 2 MiB first, over the low IOVAs; two
// pools then map their pages through the same container fd. Every map
// they make must land clear of the caller's mapping and of each other
// (MAP_DMA refuses overlaps, so a pool that picked a taken IOVA would fail
// to allocate), below edu's mask, and translate to the pool's own page: edu
// copies a pattern from a fragment of pool A to one of pool B.
void c_pools_on_shared_container(EduRig& rig) {
  std::vector<std::byte> caller(2 << 20);
  auto caller_iova = rig.dma->map(caller, DmaDirection::kBidirectional);
  expect(caller_iova.ok(), "the caller maps 2 MiB into its container");
  if (!caller_iova.ok()) return;
  const std::uint64_t caller_first = caller_iova->value() & ~std::uint64_t{4095};
  const std::uint64_t caller_end = caller_iova->value() + caller.size();

  pagefrag_pool_t* pools[2] = {nullptr, nullptr};
  pagefrag_frag_t frags[2][8] = {};
  bool made = true;
  for (int i = 0; i < 2; ++i) {
    pagefrag_pool_params_t p;
    pagefrag_pool_params_init(&p);
    p.pool_size = 8;
    p.dma = PAGEFRAG_DMA_VFIO;
    p.vfio_container_fd = rig.dma->container_fd();
    p.dma_mask_bits = 28;
    const int rc = pagefrag_pool_create(&p, &pools[i]);
    expect(rc == PAGEFRAG_OK, fmt::format("C pool {} on the caller's container: {}", i,
                                          rc == PAGEFRAG_OK ? "ok" : pagefrag_last_error()));
    made = made && rc == PAGEFRAG_OK;
  }
  if (made) {
    // Two 2 KiB fragments per 4 KiB page: four pages mapped per pool.
    for (int i = 0; i < 2; ++i) {
      for (auto& f : frags[i]) {
        const int rc = pagefrag_frag_alloc(pools[i], 2048, &f);
        if (rc != PAGEFRAG_OK) {
          expect(false, fmt::format("C pool {} fragment: {}", i, pagefrag_last_error()));
          made = false;
          break;
        }
      }
    }
  }
  if (made) {
    bool clear = true, below = true;
    for (const auto& pool : frags) {
      for (const auto& f : pool) {
        clear = clear && (f.iova + f.truesize <= caller_first || f.iova >= caller_end);
        below = below && f.iova + f.truesize <= (1u << 28);
      }
    }
    expect(clear, "no pool IOVA falls inside the caller's mapping");
    expect(below, "every pool IOVA lies below edu's 28-bit mask");
    bool apart = true;
    for (const auto& a : frags[0]) {
      for (const auto& b : frags[1]) apart = apart && a.iova / 4096 != b.iova / 4096;
    }
    expect(apart, "the two pools' pages lie at different IOVAs");
    const pagefrag_frag_t& from = frags[0][5];
    const pagefrag_frag_t& to = frags[1][6];
    testing::fill_pattern({static_cast<std::byte*>(from.va), 2048}, 21);
    std::memset(to.va, 0, 2048);
    std::memset(caller.data(), 0, caller.size());
    expect(
        rig.edu->dma(from.iova, 0, 2048, false).ok() && rig.edu->dma(to.iova, 0, 2048, true).ok(),
        "edu copies pool A's fragment to pool B's by IOVA");
    expect(testing::has_pattern({static_cast<std::byte*>(to.va), 2048}, 21),
           "the bytes land in pool B's fragment");
    bool untouched = true;
    for (std::byte b : caller) untouched = untouched && b == std::byte{0};
    expect(untouched, "the caller's memory is untouched");
    for (int i = 0; i < 2; ++i) {
      for (auto& f : frags[i]) (void)pagefrag_frag_free(pools[i], f.page);
    }
  }
  for (pagefrag_pool_t* pool : pools) {
    if (pool != nullptr) expect(pagefrag_pool_destroy(pool) == PAGEFRAG_OK, "C pool destroyed");
  }
  expect(rig.dma->unmap(*caller_iova, caller.size(), DmaDirection::kBidirectional).ok(),
         "the caller unmaps its 2 MiB");
}

// The conformance models: edu's DMA engine is the device side of VfioDma
// and of the C API's backend over VfioDma's container (ContainerVfioDma,
// what a C pool with PAGEFRAG_DMA_VFIO maps through).
template <class B>
struct EduModel {
  using Backend = B;
  static constexpr bool kTracksMappings = true;
  static std::span<std::byte> memory(std::size_t bytes) {
    static Page* block = g_rig->memory->alloc(2);  // 16 KiB
    std::memset(block->va, 0, 16384);
    PAGEFRAG_CHECK(bytes <= 16384);
    return {block->va, 16384};
  }
  static absl::Status device_write(B&, Iova iova, std::span<const std::byte> bytes) {
    if (bytes.empty()) return absl::OkStatus();
    std::memcpy(g_rig->scratch.data(), bytes.data(), bytes.size());
    if (absl::Status s = g_rig->edu->dma(g_rig->scratch_iova.value(), 0, bytes.size(), false);
        !s.ok()) {
      return s;
    }
    return g_rig->edu->dma(iova.value(), 0, bytes.size(), true);
  }
  static absl::Status device_read(B&, Iova iova, std::span<std::byte> out) {
    if (out.empty()) return absl::OkStatus();
    if (absl::Status s = g_rig->edu->dma(iova.value(), 0, out.size(), false); !s.ok()) return s;
    if (absl::Status s = g_rig->edu->dma(g_rig->scratch_iova.value(), 0, out.size(), true);
        !s.ok()) {
      return s;
    }
    std::memcpy(out.data(), g_rig->scratch.data(), out.size());
    return absl::OkStatus();
  }
};

struct VfioEduModel : EduModel<VfioDma> {
  static constexpr const char* kName = "VfioDma (edu)";
  static VfioDma& backend() { return *g_rig->dma; }
};

struct ContainerEduModel : EduModel<c_api::ContainerVfioDma> {
  static constexpr const char* kName = "C API ContainerVfioDma (edu)";
  static c_api::ContainerVfioDma& backend() { return *g_rig->container; }
};

TEST_CASE_TEMPLATE_INVOKE(dma_backend_conformance, VfioEduModel, ContainerEduModel);

int run(const std::string& edu_bdf, const std::string& nic_bdf) {
  EduRig rig;
  auto dma = VfioDma::create({.bdf = edu_bdf, .dma_mask_bits = 28});
  if (!dma.ok()) {
    fmt::print("vfio-vm: FAIL VfioDma for edu: {}\n", dma.status().ToString());
    return 1;
  }
  rig.dma = *std::move(dma);
  for (const auto& r : rig.dma->iova_ranges()) {
    fmt::print("vfio-vm: IOMMU valid IOVA range {:#x}-{:#x}\n", r.first, r.last);
  }
  auto edu = Edu::open(rig.dma->device_fd());
  if (!edu.ok()) {
    fmt::print("vfio-vm: FAIL edu: {}\n", edu.status().ToString());
    return 1;
  }
  rig.edu = std::make_unique<Edu>(*edu);
  rig.memory = std::make_unique<HeapProvider>(
      *HeapProvider::create({.page_size = 4096, .max_order = 2, .capacity = 1 << 20}));
  g_rig = &rig;
  edu_round_trip(rig);
  nic_map_unmap(nic_bdf);

  Page* scratch = rig.memory->alloc(0);
  rig.scratch = {scratch->va, 4096};
  auto scratch_iova = rig.dma->map(rig.scratch, DmaDirection::kBidirectional);
  PAGEFRAG_CHECK(scratch_iova.ok(), "{}", scratch_iova.status().ToString());
  rig.scratch_iova = *scratch_iova;
  auto container = c_api::ContainerVfioDma::create(rig.dma->container_fd(), 28);
  if (!container.ok()) {
    fmt::print("vfio-vm: FAIL ContainerVfioDma: {}\n", container.status().ToString());
    return 1;
  }
  rig.container = *std::move(container);
  doctest::Context context;
  context.setOption("no-colors", true);
  const int suite = context.run();
  expect(suite == 0, "DmaBackend conformance suite over VfioDma and ContainerVfioDma");
  c_pools_on_shared_container(rig);
  expect(rig.dma->unmap(rig.scratch_iova, 4096, DmaDirection::kBidirectional).ok(),
         "scratch unmapped");
  expect(rig.dma->live_mappings() == 0, "no live mappings left");
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace pagefrag::vm

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s EDU_BDF NIC_BDF\n", argv[0]);
    return 2;
  }
  const int rc = pagefrag::vm::run(argv[1], argv[2]);
  fmt::print("vfio-vm: {} ({} failed checks)\n", rc == 0 ? "PASS" : "FAIL", pagefrag::vm::failures);
  return rc;
}
