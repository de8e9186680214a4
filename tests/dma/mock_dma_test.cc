// SPDX-License-Identifier: BSD-3-Clause
// Tests of the DMA layer on the host: the DmaBackend conformance suite over
// NoDma and MockDma in both modes, then MockDma's own contract: bounce mode
// exposes missing and short syncs as stale data, strict mode flags unsynced
// CPU reads, device faults, unmap errors, fault injection, leak reports, and
// a stateful model of bounce semantics.
#include "pagefrag/dma/mock_dma.h"

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pagefrag/dma/coherent_dma.h"
#include "pagefrag/dma/no_dma.h"
#include "tests/dma/dma_conformance.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag {
namespace {

alignas(4096) std::array<std::byte, 4 * 4096> g_memory;

std::span<std::byte> zeroed_memory(std::size_t bytes) {
  REQUIRE(bytes <= g_memory.size());
  g_memory.fill(std::byte{0});
  return g_memory;
}

struct NoDmaModel {
  using Backend = NoDma;
  static constexpr const char* kName = "NoDma";
  static constexpr bool kTracksMappings = false;
  static NoDma& backend() {
    static NoDma dma;
    return dma;
  }
  static std::span<std::byte> memory(std::size_t bytes) { return zeroed_memory(bytes); }
  static absl::Status device_write(NoDma&, Iova iova, std::span<const std::byte> bytes) {
    if (!bytes.empty())
      std::memcpy(reinterpret_cast<void*>(iova.value()), bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  static absl::Status device_read(NoDma&, Iova iova, std::span<std::byte> out) {
    std::memcpy(out.data(), reinterpret_cast<const void*>(iova.value()), out.size());
    return absl::OkStatus();
  }
};

struct CoherentModel {
  using Backend = CoherentDma;
  static constexpr const char* kName = "CoherentDma";
  static constexpr bool kTracksMappings = true;
  static constexpr bool kFixedTranslation = true;  // Iova = VA + window base
  static CoherentDma& backend() {
    static CoherentDma dma;
    return dma;
  }
  static std::span<std::byte> memory(std::size_t bytes) { return zeroed_memory(bytes); }
  static absl::Status device_write(CoherentDma& d, Iova iova, std::span<const std::byte> bytes) {
    return d.device_write(iova, bytes);
  }
  static absl::Status device_read(CoherentDma& d, Iova iova, std::span<std::byte> out) {
    return d.device_read(iova, out);
  }
};

template <MockDmaMode Mode>
struct MockModel {
  using Backend = MockDma;
  static constexpr const char* kName =
      Mode == MockDmaMode::kStrict ? "MockDma strict" : "MockDma bounce";
  static constexpr bool kTracksMappings = true;
  static MockDma& backend() {
    static std::unique_ptr<MockDma> dma;
    dma.reset();  // a fresh backend per test run; leaks of the last go to stderr
    dma = std::make_unique<MockDma>(MockDmaOptions{.mode = Mode});
    return *dma;
  }
  static std::span<std::byte> memory(std::size_t bytes) { return zeroed_memory(bytes); }
  static absl::Status device_write(MockDma& d, Iova iova, std::span<const std::byte> bytes) {
    return d.device_write(iova, bytes);
  }
  static absl::Status device_read(MockDma& d, Iova iova, std::span<std::byte> out) {
    return d.device_read(iova, out);
  }
};

TEST_CASE_TEMPLATE_INVOKE(dma_backend_conformance, NoDmaModel, CoherentModel,
                          MockModel<MockDmaMode::kStrict>, MockModel<MockDmaMode::kBounce>);

std::vector<std::byte> bytes_of(std::size_t n, unsigned char value) {
  return std::vector<std::byte>(n, std::byte{value});
}

bool all_equal(std::span<const std::byte> bytes, unsigned char value) {
  return std::all_of(bytes.begin(), bytes.end(),
                     [value](std::byte b) { return b == std::byte{value}; });
}

TEST_CASE("CoherentDma: Iova = VA + window base, syncs need nothing, device faults outside") {
  static_assert(!CoherentDma::kFeatures.needs_sync);
  CoherentDma dma;
  std::vector<std::byte> buf = bytes_of(2048, 0xaa);
  auto iova = dma.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  CHECK(iova->value() == reinterpret_cast<std::uintptr_t>(buf.data()) + CoherentDma::kWindowBase);
  CHECK(dma.live_mappings() == 1);
  REQUIRE(dma.device_write(*iova + 10, bytes_of(100, 0x55)).ok());
  CHECK(all_equal(std::span(buf).subspan(10, 100), 0x55));  // coherent: visible at once
  CHECK(all_equal(std::span(buf).first(10), 0xaa));
  CHECK(
      dma.device_write(Iova(reinterpret_cast<std::uintptr_t>(buf.data())), bytes_of(1, 0)).code() ==
      absl::StatusCode::kOutOfRange);  // a raw CPU address is not a device address
  CHECK(dma.unmap(*iova, 2047, DmaDirection::kFromDevice).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(dma.unmap(*iova, 2048, DmaDirection::kToDevice).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(dma.unmap(*iova, 2048, DmaDirection::kFromDevice).ok());
  CHECK(dma.unmap(*iova, 2048, DmaDirection::kFromDevice).code() == absl::StatusCode::kNotFound);
  CHECK(dma.map({}, DmaDirection::kFromDevice).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(dma.maps() == 1);
  CHECK(dma.unmaps() == 1);
  CHECK(dma.live_mappings() == 0);
}

TEST_CASE("bounce mode: a missing sync_for_cpu leaves the CPU reading stale bytes") {
  MockDma dma({.mode = MockDmaMode::kBounce});
  std::vector<std::byte> buf = bytes_of(2048, 0xaa);
  auto iova = dma.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  REQUIRE(dma.device_write(*iova, bytes_of(1500, 0x55)).ok());
  CHECK(all_equal(buf, 0xaa));  // the packet has not reached CPU memory
  dma.sync_for_cpu(*iova, 1500, DmaDirection::kFromDevice);
  CHECK(all_equal(std::span(buf).first(1500), 0x55));
  CHECK(all_equal(std::span(buf).subspan(1500), 0xaa));
  CHECK(dma.unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok());
}

TEST_CASE("bounce mode: a short sync_for_cpu leaves the tail stale") {
  MockDma dma({.mode = MockDmaMode::kBounce});
  std::vector<std::byte> buf = bytes_of(4096, 0xaa);
  auto iova = dma.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  // A fragment at offset 1856: the device writes 1500 bytes, the driver
  // syncs only 1000 (the kernel bug class: partial-length sync).
  REQUIRE(dma.device_write(*iova + 1856, bytes_of(1500, 0x55)).ok());
  dma.sync_for_cpu(*iova + 1856, 1000, DmaDirection::kFromDevice);
  CHECK(all_equal(std::span(buf).subspan(1856, 1000), 0x55));
  CHECK(all_equal(std::span(buf).subspan(2856, 500), 0xaa));
  CHECK(all_equal(std::span(buf).first(1856), 0xaa));
  CHECK(dma.unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok());
}

TEST_CASE("bounce mode: CPU writes reach the device only after sync_for_device") {
  MockDma dma({.mode = MockDmaMode::kBounce});
  std::vector<std::byte> buf = bytes_of(256, 0x11);
  auto iova = dma.map(buf, DmaDirection::kToDevice);
  REQUIRE(iova.ok());
  std::fill(buf.begin(), buf.end(), std::byte{0x22});
  std::vector<std::byte> seen(256);
  REQUIRE(dma.device_read(*iova, seen).ok());
  CHECK(all_equal(seen, 0x11));  // the copy taken at map time
  dma.sync_for_device(*iova, 128, DmaDirection::kToDevice);
  REQUIRE(dma.device_read(*iova, seen).ok());
  CHECK(all_equal(std::span(seen).first(128), 0x22));
  CHECK(all_equal(std::span(seen).subspan(128), 0x11));
  CHECK(dma.unmap(*iova, buf.size(), DmaDirection::kToDevice).ok());
}

TEST_CASE("bounce mode: unmap of a from_device mapping copies device data back") {
  MockDma dma({.mode = MockDmaMode::kBounce});
  std::vector<std::byte> buf = bytes_of(64, 0);
  auto iova = dma.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  REQUIRE(dma.device_write(*iova, bytes_of(64, 0x77)).ok());
  CHECK(dma.unmap(*iova, 64, DmaDirection::kFromDevice).ok());
  CHECK(all_equal(buf, 0x77));
}

TEST_CASE("strict mode: reading device-written bytes before sync_for_cpu is caught") {
  MockDma dma({.mode = MockDmaMode::kStrict});
  std::vector<std::byte> buf = bytes_of(4096, 0);
  auto iova = dma.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  CHECK(dma.check_cpu_read(buf.data(), 4096));  // nothing written yet
  REQUIRE(dma.device_write(*iova + 64, bytes_of(1500, 0x55)).ok());
  CHECK(all_equal(std::span(buf).subspan(64, 1500), 0x55));  // coherent: data is there
  CHECK_FALSE(dma.check_cpu_read(buf.data() + 64, 1500));
  CHECK_FALSE(dma.check_cpu_read(buf.data() + 1000, 1));
  CHECK(dma.check_cpu_read(buf.data(), 64));  // bytes the device did not write
  CHECK(dma.counters().unsynced_cpu_reads == 2);
  dma.sync_for_cpu(*iova + 64, 1000, DmaDirection::kFromDevice);  // short sync
  CHECK(dma.check_cpu_read(buf.data() + 64, 1000));
  CHECK_FALSE(dma.check_cpu_read(buf.data() + 64, 1500));
  dma.sync_for_cpu(*iova + 1064, 500, DmaDirection::kFromDevice);
  CHECK(dma.check_cpu_read(buf.data() + 64, 1500));
  CHECK(dma.counters().unsynced_cpu_reads == 3);
  CHECK(dma.counters().cpu_reads_checked == 7);
  CHECK(dma.unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok());
  CHECK(dma.check_cpu_read(buf.data(), 4096));  // unmapped memory is the CPU's
}

TEST_CASE("strict mode: a device write into CPU-owned bytes is a counted fault") {
  MockDma dma({.mode = MockDmaMode::kStrict});
  std::vector<std::byte> buf = bytes_of(512, 0);
  auto iova = dma.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  REQUIRE(dma.device_write(*iova, bytes_of(100, 1)).ok());
  CHECK(dma.counters().device_writes_to_cpu_owned == 0);  // map gave it to the device
  dma.sync_for_cpu(*iova, 512, DmaDirection::kFromDevice);
  // Recycled without sync_for_device: a fault, nothing written.
  CHECK(dma.device_write(*iova, bytes_of(100, 2)).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(all_equal(std::span(buf).first(100), 1));
  CHECK(dma.counters().device_writes_to_cpu_owned == 1);
  dma.sync_for_device(*iova, 512, DmaDirection::kFromDevice);
  REQUIRE(dma.device_write(*iova, bytes_of(100, 3)).ok());
  CHECK(dma.counters().device_writes_to_cpu_owned == 1);
  CHECK(dma.unmap(*iova, 512, DmaDirection::kFromDevice).ok());
}

TEST_CASE("strict mode: a device read of CPU-owned bytes (no sync_for_device) faults") {
  MockDma dma({.mode = MockDmaMode::kStrict});
  std::vector<std::byte> buf = bytes_of(512, 0);
  auto iova = dma.map(buf, DmaDirection::kBidirectional);
  REQUIRE(iova.ok());
  std::vector<std::byte> seen(100);
  CHECK(dma.device_read(*iova, seen).ok());  // map gave every byte to the device
  dma.sync_for_cpu(*iova + 50, 100, DmaDirection::kBidirectional);
  CHECK(dma.device_read(*iova, seen).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(dma.device_read(*iova + 150, seen).ok());  // bytes the CPU never took
  dma.sync_for_device(*iova + 50, 100, DmaDirection::kBidirectional);
  CHECK(dma.device_read(*iova, seen).ok());
  CHECK(dma.counters().device_reads_of_cpu_owned == 1);
  CHECK(dma.unmap(*iova, 512, DmaDirection::kBidirectional).ok());
}

TEST_CASE("IOVAs come from the configured space, keep the page offset and never equal VAs") {
  MockDma dma({.iova_first = 0x10000,
               .iova_last = 0x10000 + 64 * 4096 - 1,
               .on_leak = [](std::string_view) {}});  // leaks asserted via leak_report()
  std::vector<std::byte> buf(10000);
  for (std::size_t off : {0u, 1u, 100u, 4095u, 4096u, 5000u}) {
    auto iova = dma.map(std::span(buf).subspan(off, 100), DmaDirection::kBidirectional);
    REQUIRE(iova.ok());
    CHECK(iova->value() >= 0x10000);
    CHECK(iova->value() + 100 <= 0x10000 + 64 * 4096);
    CHECK(iova->value() % 4096 == reinterpret_cast<std::uintptr_t>(buf.data() + off) % 4096);
    CHECK(iova->value() != reinterpret_cast<std::uintptr_t>(buf.data() + off));
  }
  CHECK(dma.live_mappings() == 6);
  std::string report = dma.leak_report();
  CHECK(std::count(report.begin(), report.end(), '\n') == 6);
  // Leaks are reported by the destructor; this test hands them to a sink.
}

TEST_CASE("exhausting the IOVA space fails with ResourceExhausted; unmapping makes room") {
  // Room for 4 pages: each one-page mapping takes its page plus a guard page.
  MockDma dma({.iova_first = 0x100000, .iova_last = 0x100000 + 4 * 4096 - 1});
  alignas(4096) static std::byte page[4096];
  auto a = dma.map(page, DmaDirection::kToDevice);
  auto b = dma.map(page, DmaDirection::kToDevice);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  auto c = dma.map(page, DmaDirection::kToDevice);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(c.status().message()).find("no room for 8192 bytes") != std::string::npos);
  CHECK(dma.unmap(*a, 4096, DmaDirection::kToDevice).ok());
  auto d = dma.map(page, DmaDirection::kToDevice);
  CHECK(d.ok());
  CHECK(dma.unmap(*b, 4096, DmaDirection::kToDevice).ok());
  CHECK(dma.unmap(*d, 4096, DmaDirection::kToDevice).ok());
  CHECK(dma.counters().map_failures == 1);
}

TEST_CASE("device faults are Statuses and counters, never crashes") {
  MockDma dma;
  std::vector<std::byte> rx(1000), tx(1000);
  auto rx_iova = dma.map(rx, DmaDirection::kFromDevice);
  auto tx_iova = dma.map(tx, DmaDirection::kToDevice);
  REQUIRE(rx_iova.ok());
  REQUIRE(tx_iova.ok());
  std::vector<std::byte> chunk(100);
  const absl::Status past = dma.device_write(*rx_iova + 950, chunk);
  CHECK(past.code() == absl::StatusCode::kOutOfRange);
  CHECK(dma.device_write(*rx_iova + 1000, chunk).code() == absl::StatusCode::kNotFound);
  CHECK(dma.device_write(Iova(0x42), chunk).code() == absl::StatusCode::kNotFound);
  CHECK(dma.device_write(Iova(reinterpret_cast<std::uintptr_t>(rx.data())), chunk).code() ==
        absl::StatusCode::kNotFound);  // a CPU pointer is no device address
  CHECK(dma.device_write(*tx_iova, chunk).code() == absl::StatusCode::kPermissionDenied);
  CHECK(dma.device_read(*rx_iova, chunk).code() == absl::StatusCode::kPermissionDenied);
  CHECK(dma.device_read(*tx_iova + 900, chunk).ok());
  CHECK(all_equal(rx, 0));  // nothing was written by a faulting access
  const MockDmaCounters c = dma.counters();
  CHECK(c.device_faults == 6);
  CHECK(c.device_reads == 1);
  CHECK(c.device_writes == 0);
  CHECK(std::string(past.message()).find("past the end") != std::string::npos);
  CHECK(dma.unmap(*rx_iova, 1000, DmaDirection::kFromDevice).ok());
  CHECK(dma.unmap(*tx_iova, 1000, DmaDirection::kToDevice).ok());
  CHECK(dma.device_read(*tx_iova, chunk).code() == absl::StatusCode::kNotFound);  // after unmap
}

TEST_CASE("unmap errors name the mismatch; syncs outside mappings are counted") {
  MockDma dma;
  std::vector<std::byte> buf(300);
  auto iova = dma.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  CHECK(dma.unmap(*iova + 1, 299, DmaDirection::kFromDevice).code() == absl::StatusCode::kNotFound);
  const absl::Status size = dma.unmap(*iova, 200, DmaDirection::kFromDevice);
  CHECK(size.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(size.message()).find("the mapping is 300 bytes") != std::string::npos);
  CHECK(dma.unmap(*iova, 300, DmaDirection::kToDevice).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(dma.counters().unmap_errors == 3);
  dma.sync_for_cpu(*iova + 200, 200, DmaDirection::kFromDevice);  // runs past the end
  dma.sync_for_device(Iova(0x1000), 10, DmaDirection::kFromDevice);
  dma.sync_for_cpu(*iova, 10, DmaDirection::kToDevice);
  CHECK(dma.counters().sync_errors == 2);
  CHECK(dma.counters().sync_direction_mismatches == 1);
  CHECK(dma.unmap(*iova, 300, DmaDirection::kFromDevice).ok());
  CHECK(dma.unmap(*iova, 300, DmaDirection::kFromDevice).code() == absl::StatusCode::kNotFound);
  CHECK(dma.live_mappings() == 0);
}

TEST_CASE("fault injection: the Nth map fails, and seeded probabilities repeat") {
  std::vector<std::byte> buf(64);
  MockDma nth({.fail_nth_map = 3});
  std::vector<bool> ok;
  std::vector<Iova> live;
  for (int i = 0; i < 5; ++i) {
    auto iova = nth.map(buf, DmaDirection::kToDevice);
    ok.push_back(iova.ok());
    if (iova.ok())
      live.push_back(*iova);
    else
      CHECK(std::string(iova.status().message()).find("map call #3") != std::string::npos);
  }
  CHECK(ok == std::vector<bool>{true, true, false, true, true});
  CHECK(nth.counters().injected_map_failures == 1);
  for (Iova iova : live) CHECK(nth.unmap(iova, 64, DmaDirection::kToDevice).ok());

  auto outcomes = [&buf](double p, std::uint64_t seed) {
    MockDma dma({.fail_probability = p, .seed = seed});
    std::vector<bool> out;
    for (int i = 0; i < 64; ++i) {
      auto iova = dma.map(buf, DmaDirection::kToDevice);
      out.push_back(iova.ok());
      if (iova.ok()) CHECK(dma.unmap(*iova, 64, DmaDirection::kToDevice).ok());
    }
    return out;
  };
  CHECK(outcomes(0.5, 7) == outcomes(0.5, 7));
  CHECK(outcomes(0.5, 7) != outcomes(0.5, 8));
  const std::vector<bool> never = outcomes(0.0, 1), always = outcomes(1.0, 1);
  CHECK(std::count(never.begin(), never.end(), true) == 64);
  CHECK(std::count(always.begin(), always.end(), true) == 0);
}

TEST_CASE("destruction reports live mappings to the leak sink") {
  std::vector<std::string> reports;
  std::vector<std::byte> buf(100);
  {
    MockDma dma({.on_leak = [&reports](std::string_view r) { reports.emplace_back(r); }});
    auto kept = dma.map(buf, DmaDirection::kFromDevice);
    auto freed = dma.map(buf, DmaDirection::kToDevice);
    REQUIRE(kept.ok());
    REQUIRE(freed.ok());
    CHECK(dma.unmap(*freed, 100, DmaDirection::kToDevice).ok());
  }
  REQUIRE(reports.size() == 1);
  CHECK(std::count(reports[0].begin(), reports[0].end(), '\n') == 1);
  CHECK(reports[0].find("100 bytes, from_device") != std::string::npos);
  {
    MockDma clean({.on_leak = [&reports](std::string_view r) { reports.emplace_back(r); }});
    auto iova = clean.map(buf, DmaDirection::kFromDevice);
    REQUIRE(iova.ok());
    CHECK(clean.unmap(*iova, 100, DmaDirection::kFromDevice).ok());
  }
  CHECK(reports.size() == 1);
}

TEST_CASE("syncs and device accesses from several threads keep counts exact") {
  MockDma dma({.mode = MockDmaMode::kBounce});
  std::vector<std::byte> buf(4096);
  auto iova = dma.map(buf, DmaDirection::kBidirectional);
  REQUIRE(iova.ok());
  constexpr int kRounds = 2000;
  auto worker = [&dma, &iova](std::size_t offset) {
    std::array<std::byte, 64> chunk{};
    for (int i = 0; i < kRounds; ++i) {
      (void)dma.device_write(*iova + offset, chunk);
      dma.sync_for_cpu(*iova + offset, 64, DmaDirection::kBidirectional);
      dma.sync_for_device(*iova + offset, 64, DmaDirection::kBidirectional);
    }
  };
  std::thread a(worker, 0), b(worker, 2048);
  a.join();
  b.join();
  const MockDmaCounters c = dma.counters();
  CHECK(c.device_writes == 2 * kRounds);
  CHECK(c.syncs_for_cpu == 2 * kRounds);
  CHECK(c.syncs_for_device == 2 * kRounds);
  CHECK(dma.unmap(*iova, 4096, DmaDirection::kBidirectional).ok());
}

// A model of bounce semantics: two byte arrays, what the CPU sees and what
// the device sees, moved between only by the syncs.
TEST_CASE("bounce mode matches a two-copy model under random operations (stateful)") {
  PAGEFRAG_RC_CHECK("cpu and device views follow the syncs", [] {
    constexpr std::size_t kLen = 256;
    MockDma dma({.mode = MockDmaMode::kBounce});
    std::vector<std::byte> cpu(kLen, std::byte{0});
    auto iova = dma.map(cpu, DmaDirection::kBidirectional);
    RC_ASSERT(iova.ok());
    std::vector<std::byte> model_cpu(kLen, std::byte{0}), model_dev(kLen, std::byte{0});
    const int steps = *rc::gen::inRange(1, 40);
    for (int s = 0; s < steps; ++s) {
      const std::size_t off = *rc::gen::inRange<std::size_t>(0, kLen);
      const std::size_t len = *rc::gen::inRange<std::size_t>(1, kLen - off + 1);
      const auto value = static_cast<std::byte>(*rc::gen::inRange(1, 256));
      switch (*rc::gen::inRange(0, 5)) {
        case 0:  // CPU writes
          std::fill_n(cpu.begin() + off, len, value);
          std::fill_n(model_cpu.begin() + off, len, value);
          break;
        case 1:  // device writes
          RC_ASSERT(dma.device_write(*iova + off, std::vector<std::byte>(len, value)).ok());
          std::fill_n(model_dev.begin() + off, len, value);
          break;
        case 2:
          dma.sync_for_cpu(*iova + off, len, DmaDirection::kBidirectional);
          std::copy_n(model_dev.begin() + off, len, model_cpu.begin() + off);
          break;
        case 3:
          dma.sync_for_device(*iova + off, len, DmaDirection::kBidirectional);
          std::copy_n(model_cpu.begin() + off, len, model_dev.begin() + off);
          break;
        default: {  // device reads
          std::vector<std::byte> seen(len);
          RC_ASSERT(dma.device_read(*iova + off, seen).ok());
          RC_ASSERT(std::equal(seen.begin(), seen.end(), model_dev.begin() + off));
        }
      }
      RC_ASSERT(cpu == model_cpu);
    }
    RC_ASSERT(dma.unmap(*iova, kLen, DmaDirection::kBidirectional).ok());
    RC_ASSERT(cpu == model_dev);  // unmap copies the device view back
  });
}

// A model of strict ownership: one owner per byte, moved by map (device),
// device writes (device-written), syncs (cpu / device); a checked read fails
// exactly when a device-written byte is in range. Two overlapping mappings
// of the same bytes keep independent owners. MockDma keeps runs, not bytes.
TEST_CASE("strict mode matches a per-byte owner model under random operations (stateful)") {
  PAGEFRAG_RC_CHECK("checked reads follow the syncs", [] {
    constexpr std::size_t kLen = 300;
    enum : std::uint8_t { kCpu, kDev, kWritten };
    MockDma dma({.mode = MockDmaMode::kStrict});
    std::vector<std::byte> mem(kLen + 100, std::byte{0});
    // Mapping 0 covers [0, kLen); mapping 1 covers [100, kLen + 100).
    const std::size_t base[2] = {0, 100};
    Iova iova[2];
    std::vector<std::uint8_t> owner[2] = {std::vector<std::uint8_t>(kLen, kDev),
                                          std::vector<std::uint8_t>(kLen, kDev)};
    for (int m = 0; m < 2; ++m) {
      auto i = dma.map(std::span(mem).subspan(base[m], kLen), DmaDirection::kBidirectional);
      RC_ASSERT(i.ok());
      iova[m] = *i;
    }
    std::uint64_t expect_cpu_owned_writes = 0;
    const int steps = *rc::gen::inRange(1, 60);
    for (int s = 0; s < steps; ++s) {
      const int m = *rc::gen::inRange(0, 2);
      const std::size_t off = *rc::gen::inRange<std::size_t>(0, kLen);
      const std::size_t len = *rc::gen::inRange<std::size_t>(1, kLen - off + 1);
      auto& own = owner[m];
      switch (*rc::gen::inRange(0, 4)) {
        case 0:
          if (std::find(own.begin() + off, own.begin() + off + len, kCpu) !=
              own.begin() + off + len) {
            ++expect_cpu_owned_writes;  // a fault: nothing written, owners unchanged
            RC_ASSERT(!dma.device_write(iova[m] + off, std::vector<std::byte>(len)).ok());
            break;
          }
          RC_ASSERT(dma.device_write(iova[m] + off, std::vector<std::byte>(len)).ok());
          std::fill_n(own.begin() + off, len, kWritten);
          break;
        case 1:
          dma.sync_for_cpu(iova[m] + off, len, DmaDirection::kBidirectional);
          std::fill_n(own.begin() + off, len, kCpu);
          break;
        case 2:
          dma.sync_for_device(iova[m] + off, len, DmaDirection::kBidirectional);
          std::fill_n(own.begin() + off, len, kDev);
          break;
        default: {  // a CPU read of [off, off + len) of the memory (both mappings)
          bool expect = true;
          for (int k = 0; k < 2; ++k) {
            for (std::size_t b = off; b < off + len; ++b) {
              if (b >= base[k] && b < base[k] + kLen && owner[k][b - base[k]] == kWritten)
                expect = false;
            }
          }
          RC_ASSERT(dma.check_cpu_read(mem.data() + off, len) == expect);
        }
      }
    }
    RC_ASSERT(dma.counters().device_writes_to_cpu_owned == expect_cpu_owned_writes);
    for (int m = 0; m < 2; ++m) {
      RC_ASSERT(dma.unmap(iova[m], kLen, DmaDirection::kBidirectional).ok());
    }
  });
}

TEST_CASE("strict mode: a mapping spanning many shard granules is found from each") {
  MockDma dma({.mode = MockDmaMode::kStrict});
  std::vector<std::byte> buf(5 << 20);  // 5 MiB: more granules than shards
  auto iova = dma.map(buf, DmaDirection::kFromDevice);
  REQUIRE(iova.ok());
  for (std::size_t off :
       {std::size_t{0}, std::size_t{65536 * 3 + 5}, (std::size_t{5} << 20) - 64}) {
    REQUIRE(dma.device_write(*iova + off, bytes_of(64, 1)).ok());
    CHECK_FALSE(dma.check_cpu_read(buf.data() + off, 64));
    dma.sync_for_cpu(*iova + off, 64, DmaDirection::kFromDevice);
    CHECK(dma.check_cpu_read(buf.data() + off, 64));
  }
  CHECK(dma.counters().sync_errors == 0);
  CHECK(dma.unmap(*iova, buf.size(), DmaDirection::kFromDevice).ok());
  CHECK(dma.device_write(*iova + 65536 * 3, bytes_of(1, 1)).code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pagefrag
