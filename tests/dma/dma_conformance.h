// SPDX-License-Identifier: BSD-3-Clause
// tests/dma/dma_conformance.h: the DmaBackend conformance suite.
//
// One suite for every DmaBackend model. A test file defines "model" types:
//   using Backend = ...;              the DmaBackend under test
//   static constexpr const char* kName;
//   static constexpr bool kTracksMappings;  rejects unmaps of unknown IOVAs
//   static Backend& backend();       a backend for one test case (fresh or
//                                     shared; the suite unmaps all it maps)
//   static std::span<std::byte> memory(std::size_t bytes);  page-aligned
//                                     DMA-able memory, >= bytes, zeroed
//   static absl::Status device_write(Backend&, Iova, std::span<const std::byte>);
//   static absl::Status device_read(Backend&, Iova, std::span<std::byte>);
// and optionally
//   static constexpr bool kFixedTranslation = true;  the Iova is a fixed
//                                     function of the CPU address (e.g. an
//                                     offset into one registered area, as an
//                                     AF_XDP UMEM): two mappings of the same
//                                     bytes then share their device address,
//                                     as with identity_iova
// and instantiates TEST_CASE_TEMPLATE_INVOKE(dma_backend_conformance, ...).
//
// The device side is the model's: MockDma's simulated device, a memcpy for
// NoDma, a real device's DMA engine in the VM test. The oracle is the bytes
// the test itself wrote. Header-only and free of rapidcheck, so the VM
// test's static guest binary can carry it.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"

namespace pagefrag::testing {

inline void fill_pattern(std::span<std::byte> bytes, unsigned seed) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<std::byte>((i * 131 + seed * 7 + 1) & 0xff);
  }
}

inline bool has_pattern(std::span<const std::byte> bytes, unsigned seed, std::size_t from = 0) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != static_cast<std::byte>(((i + from) * 131 + seed * 7 + 1) & 0xff)) return false;
  }
  return true;
}

struct LiveMapping {
  Iova iova;
  std::span<std::byte> cpu;
  DmaDirection dir;
};

// Whether mappings of the same bytes share device addresses: identity
// backends and models declaring kFixedTranslation.
template <class Model>
constexpr bool shares_device_addresses() {
  if constexpr (requires { Model::kFixedTranslation; }) {
    if (Model::kFixedTranslation) return true;
  }
  return Model::Backend::kFeatures.identity_iova;
}

}  // namespace pagefrag::testing

TEST_CASE_TEMPLATE_DEFINE("DmaBackend conformance", Model, dma_backend_conformance) {
  using pagefrag::DmaDirection;
  using pagefrag::Iova;
  using Backend = typename Model::Backend;
  static_assert(pagefrag::DmaBackend<Backend>);
  static_assert(pagefrag::DmaFeatured<Backend> && pagefrag::DmaMapping<Backend> &&
                pagefrag::DmaSyncing<Backend>);
  // The checked-read ability is there exactly when the feature bit says so.
  static_assert(pagefrag::DmaCheckedRead<Backend> == Backend::kFeatures.checked_cpu_read);
  namespace pt = pagefrag::testing;
  CAPTURE(Model::kName);
  Backend& dma = Model::backend();
  constexpr std::size_t kLen = 4095;  // a real device (edu) moves < 4096 bytes
  std::span<std::byte> mem = Model::memory(2 * 4096).first(2 * 4096);

  SUBCASE("device reads what the CPU wrote, CPU reads what the device wrote") {
    std::span<std::byte> buf = mem.first(kLen);
    pt::fill_pattern(buf, 1);
    auto iova = dma.map(buf, DmaDirection::kBidirectional);
    REQUIRE_MESSAGE(iova.ok(), iova.status().ToString());
    if (Backend::kFeatures.identity_iova) {
      CHECK(iova->value() == reinterpret_cast<std::uintptr_t>(buf.data()));
    } else {
      CHECK(iova->value() != reinterpret_cast<std::uintptr_t>(buf.data()));
    }
    dma.sync_for_device(*iova, kLen, DmaDirection::kBidirectional);
    std::vector<std::byte> seen(kLen);
    REQUIRE(Model::device_write(dma, *iova, {}).ok());  // an empty transfer is harmless
    REQUIRE(Model::device_read(dma, *iova, seen).ok());
    CHECK(pt::has_pattern(seen, 1));

    std::vector<std::byte> from_device(1000);
    pt::fill_pattern(from_device, 2);
    REQUIRE(Model::device_write(dma, *iova + 100, from_device).ok());
    dma.sync_for_cpu(*iova + 100, from_device.size(), DmaDirection::kBidirectional);
    CHECK(pt::has_pattern(buf.subspan(100, 1000), 2));
    CHECK(pt::has_pattern(buf.first(100), 1));
    CHECK(pt::has_pattern(buf.subspan(1100), 1, 1100));
    CHECK(dma.unmap(*iova, kLen, DmaDirection::kBidirectional).ok());
  }

  SUBCASE("to_device: CPU writes after map reach the device after sync_for_device") {
    std::span<std::byte> buf = mem.subspan(4096, 2000);
    auto iova = dma.map(buf, DmaDirection::kToDevice);
    REQUIRE(iova.ok());
    pt::fill_pattern(buf, 3);
    dma.sync_for_device(*iova, buf.size(), DmaDirection::kToDevice);
    std::vector<std::byte> seen(buf.size());
    REQUIRE(Model::device_read(dma, *iova, seen).ok());
    CHECK(pt::has_pattern(seen, 3));
    CHECK(dma.unmap(*iova, buf.size(), DmaDirection::kToDevice).ok());
  }

  SUBCASE("from_device at an unaligned offset, synced in two parts") {
    std::span<std::byte> buf = mem.subspan(64 + 7, 3000);
    auto iova = dma.map(buf, DmaDirection::kFromDevice);
    REQUIRE(iova.ok());
    std::vector<std::byte> packet(3000);
    pt::fill_pattern(packet, 4);
    REQUIRE(Model::device_write(dma, *iova, packet).ok());
    dma.sync_for_cpu(*iova, 1000, DmaDirection::kFromDevice);
    dma.sync_for_cpu(*iova + 1000, 2000, DmaDirection::kFromDevice);
    CHECK(pt::has_pattern(buf, 4));
    CHECK(dma.unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok());
  }

  SUBCASE("the same bytes mapped twice: two working mappings") {
    std::span<std::byte> buf = mem.first(512);
    auto a = dma.map(buf, DmaDirection::kBidirectional);
    auto b = dma.map(buf, DmaDirection::kBidirectional);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    if (!pt::shares_device_addresses<Model>()) CHECK(*a != *b);
    std::vector<std::byte> data(512);
    pt::fill_pattern(data, 5);
    REQUIRE(Model::device_write(dma, *b, data).ok());
    dma.sync_for_cpu(*b, 512, DmaDirection::kBidirectional);
    CHECK(pt::has_pattern(buf, 5));
    CHECK(dma.unmap(*a, 512, DmaDirection::kBidirectional).ok());
    CHECK(dma.unmap(*b, 512, DmaDirection::kBidirectional).ok());
  }

  SUBCASE("unmapping an IOVA that was never mapped fails") {
    if constexpr (Model::kTracksMappings) {
      auto iova = dma.map(mem.first(100), DmaDirection::kFromDevice);
      REQUIRE(iova.ok());
      CHECK_FALSE(dma.unmap(*iova + 4096 * 64, 100, DmaDirection::kFromDevice).ok());
      CHECK(dma.unmap(*iova, 100, DmaDirection::kFromDevice).ok());
      CHECK_FALSE(dma.unmap(*iova, 100, DmaDirection::kFromDevice).ok());  // twice
    }
  }

  SUBCASE("many live mappings never share device addresses") {
    std::mt19937 rng(42);
    std::vector<pt::LiveMapping> live;
    for (int i = 0; i < 64; ++i) {
      const std::size_t off = rng() % 4096;
      const std::size_t len = 1 + rng() % (mem.size() - off);
      auto iova = dma.map(mem.subspan(off, len), DmaDirection::kFromDevice);
      REQUIRE(iova.ok());
      live.push_back({*iova, mem.subspan(off, len), DmaDirection::kFromDevice});
    }
    if (!pt::shares_device_addresses<Model>()) {
      std::vector<pt::LiveMapping> sorted = live;
      std::sort(sorted.begin(), sorted.end(),
                [](const auto& x, const auto& y) { return x.iova < y.iova; });
      for (std::size_t i = 1; i < sorted.size(); ++i) {
        CHECK(sorted[i - 1].iova + sorted[i - 1].cpu.size() <= sorted[i].iova);
      }
    }
    std::shuffle(live.begin(), live.end(), rng);
    for (const auto& m : live) CHECK(dma.unmap(m.iova, m.cpu.size(), m.dir).ok());
  }

  SUBCASE("checked reads (when declared): synced device bytes may be read, CPU bytes too") {
    if constexpr (pagefrag::DmaCheckedRead<Backend>) {
      std::span<std::byte> buf = mem.first(2048);
      auto iova = dma.map(buf, DmaDirection::kFromDevice);
      REQUIRE(iova.ok());
      CHECK(dma.check_cpu_read(buf.data(), buf.size()));  // nothing written yet
      std::vector<std::byte> packet(1000);
      pt::fill_pattern(packet, 6);
      REQUIRE(Model::device_write(dma, *iova, packet).ok());
      dma.sync_for_cpu(*iova, packet.size(), DmaDirection::kFromDevice);
      CHECK(dma.check_cpu_read(buf.data(), packet.size()));
      CHECK(dma.unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok());
    }
  }
}
