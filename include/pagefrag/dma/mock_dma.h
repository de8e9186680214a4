// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/mock_dma.h: MockDma, a simulated IOMMU stricter than hardware.
//
// MockDma is the DmaBackend every test and the reference driver run on. It
// gives each mapping its own IOVA from a device address space disjoint from
// CPU addresses (so handing a device a pointer is caught), keeps a mapping
// table, and offers a device-side API (device_write/device_read) through
// which simulated devices reach memory only via live mappings, with the
// mapping's direction enforced. Bad device accesses are faults: a Status and
// a counter, never a crash.
//
// Two modes catch the DMA-API mistakes real x86 hardware forgives:
//   kStrict  device writes land in CPU memory at once (cache-coherent), but
//            every mapped byte has an owner: map() and sync_for_device() give
//            it to the device, sync_for_cpu() back to the CPU. A driver reads
//            packet bytes through check_cpu_read(), which fails (and counts)
//            when a byte was written by the device and never synced for the
//            CPU.
//   kBounce  like swiotlb=force: each mapping has a bounce copy. The device
//            reads and writes only the copy; CPU memory receives device data
//            only through sync_for_cpu (over exactly the synced range) or
//            unmap, and the device sees CPU writes only after
//            sync_for_device. A missing or short sync shows up as stale data.
//
// Fault injection fails the Nth map() or each map() with a seeded
// probability. On destruction, live mappings are reported (leak check).
//
// Thread contract: every member may be called from any thread; one internal
// std::mutex serialises them (it is a test double, not a fast path). Sync
// calls cost one O(log n) lookup plus O(len) for ownership or bounce copies.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/dma/internal/iova_allocator.h"

namespace pagefrag {

enum class MockDmaMode : std::uint8_t { kStrict, kBounce };

struct MockDmaOptions {
  MockDmaMode mode = MockDmaMode::kStrict;
  // The device address space [iova_first, iova_last]. The default lies above
  // the 47-bit user address space, so no IOVA ever equals a CPU address.
  std::uint64_t iova_first = std::uint64_t{1} << 47;
  std::uint64_t iova_last = (std::uint64_t{1} << 48) - 1;
  // Fault injection: fail map() number fail_nth_map (1-based; 0 = never),
  // and each map() with probability fail_probability (seeded by seed).
  std::uint64_t fail_nth_map = 0;
  double fail_probability = 0.0;
  std::uint64_t seed = 1;
  // Receives the leak report when live mappings remain at destruction;
  // when empty the report goes to stderr.
  std::function<void(std::string_view)> on_leak = {};
};

// Event counts since construction.
struct MockDmaCounters {
  std::uint64_t maps = 0;          // successful map() calls
  std::uint64_t map_failures = 0;  // failed map() calls, injected ones included
  std::uint64_t injected_map_failures = 0;
  std::uint64_t unmaps = 0;        // successful unmap() calls
  std::uint64_t unmap_errors = 0;  // unmap() of no mapping / wrong size or direction
  std::uint64_t syncs_for_device = 0;
  std::uint64_t syncs_for_cpu = 0;
  std::uint64_t sync_errors = 0;  // sync of a range inside no mapping
  std::uint64_t sync_direction_mismatches = 0;
  std::uint64_t device_writes = 0;               // successful device_write() calls
  std::uint64_t device_reads = 0;                // successful device_read() calls
  std::uint64_t device_faults = 0;               // rejected device accesses
  std::uint64_t device_writes_to_cpu_owned = 0;  // strict: device wrote CPU-owned bytes
  std::uint64_t cpu_reads_checked = 0;
  std::uint64_t unsynced_cpu_reads = 0;   // strict: check_cpu_read() returned false
  std::uint64_t bounce_bytes_copied = 0;  // bounce: bytes copied either way
};

class MockDma {
 public:
  static constexpr DmaFeatures kFeatures{
      .needs_sync = true, .identity_iova = false, .checked_cpu_read = true};
  static constexpr std::uint64_t kIovaPage = 4096;

  explicit MockDma(MockDmaOptions options = {})
      : options_(std::move(options)), rng_(options_.seed) {
    iovas_.add_range(options_.iova_first, options_.iova_last);
  }
  MockDma(const MockDma&) = delete;
  MockDma& operator=(const MockDma&) = delete;
  ~MockDma() {
    if (mappings_.empty()) return;
    const std::string report = leak_report();
    if (options_.on_leak)
      options_.on_leak(report);
    else
      std::fputs(report.c_str(), stderr);
  }

  MockDmaMode mode() const noexcept { return options_.mode; }

  // Maps `cpu` for `dir`; the Iova keeps cpu's offset within a 4 KiB page.
  // Errors: InvalidArgument (empty region), ResourceExhausted (injected
  // failure, IOVA space exhausted). Mapping the same bytes twice is legal
  // and yields two IOVAs. Any thread.
  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection dir) {
    std::lock_guard lock(mu_);
    if (cpu.empty()) {
      ++counters_.map_failures;
      return absl::InvalidArgumentError(
          fmt::format("MockDma::map({}): empty region; expected at least 1 byte", to_string(dir)));
    }
    if (absl::Status injected = maybe_inject_failure(); !injected.ok()) return injected;
    return insert_mapping(cpu, dir);
  }

  // Unmaps the mapping map() returned `iova` for. Errors (counted):
  // NotFound when no mapping starts at iova; InvalidArgument when len or dir
  // differ from the map() call. Bounce mode copies device data back for
  // from_device/bidirectional mappings, as swiotlb does. Any thread.
  absl::Status unmap(Iova iova, std::size_t len, DmaDirection dir) {
    std::lock_guard lock(mu_);
    auto it = mappings_.find(iova.value());
    if (absl::Status bad = check_unmap(it, iova, len, dir); !bad.ok()) {
      ++counters_.unmap_errors;
      return bad;
    }
    Mapping& m = it->second;
    if (bounce() && dir != DmaDirection::kToDevice) copy_to_cpu(m, 0, m.len);
    iovas_.free(m.alloc_start, m.alloc_size);
    erase_va_index(m.cpu, iova.value());
    mappings_.erase(it);
    ++counters_.unmaps;
    return absl::OkStatus();
  }

  // Hands [iova, iova + len) to the device (strict: ownership; bounce: copies
  // CPU bytes to the bounce copy unless dir is from_device). A range inside
  // no mapping, or a dir unlike the mapping's, is counted. Any thread.
  void sync_for_device(Iova iova, std::size_t len, DmaDirection dir) noexcept {
    sync(iova, len, dir, Owner::kDevice);
  }

  // Hands [iova, iova + len) back to the CPU (strict: ownership; bounce:
  // copies device data into CPU memory unless dir is to_device). Any thread.
  void sync_for_cpu(Iova iova, std::size_t len, DmaDirection dir) noexcept {
    sync(iova, len, dir, Owner::kCpu);
  }

  // Device side: the simulated device writes `bytes` at `iova` (an empty
  // transfer always succeeds and touches nothing). Faults
  // (counted, nothing written): NotFound outside every mapping, OutOfRange
  // past the end of the mapping, PermissionDenied into a to_device mapping.
  // Any thread.
  absl::Status device_write(Iova iova, std::span<const std::byte> bytes) {
    if (bytes.empty()) return absl::OkStatus();  // an empty transfer touches nothing
    std::lock_guard lock(mu_);
    absl::StatusOr<Target> t = device_target(iova, bytes.size(), DmaDirection::kToDevice, "write");
    if (!t.ok()) return t.status();
    Mapping& m = *t->mapping;
    if (bounce()) {
      std::memcpy(m.bounce.data() + t->offset, bytes.data(), bytes.size());
    } else {
      auto owner = m.owner.begin() + static_cast<std::ptrdiff_t>(t->offset);
      if (std::find(owner, owner + static_cast<std::ptrdiff_t>(bytes.size()), Owner::kCpu) !=
          owner + static_cast<std::ptrdiff_t>(bytes.size())) {
        ++counters_.device_writes_to_cpu_owned;
      }
      std::fill_n(owner, bytes.size(), Owner::kDeviceWritten);
      std::memcpy(m.cpu + t->offset, bytes.data(), bytes.size());
    }
    ++counters_.device_writes;
    return absl::OkStatus();
  }

  // Device side: the simulated device reads out.size() bytes at `iova`.
  // Faults as device_write, PermissionDenied from a from_device mapping.
  // Any thread.
  absl::Status device_read(Iova iova, std::span<std::byte> out) {
    if (out.empty()) return absl::OkStatus();
    std::lock_guard lock(mu_);
    absl::StatusOr<Target> t = device_target(iova, out.size(), DmaDirection::kFromDevice, "read");
    if (!t.ok()) return t.status();
    const std::byte* src = bounce() ? t->mapping->bounce.data() : t->mapping->cpu;
    std::memcpy(out.data(), src + t->offset, out.size());
    ++counters_.device_reads;
    return absl::OkStatus();
  }

  // Strict mode: whether the CPU may read [va, va + len): false (and
  // counted) when any byte was written by the device through a live mapping
  // and not synced for the CPU since. Always true in bounce mode (stale data
  // shows there instead) and for memory no mapping covers. Any thread.
  bool check_cpu_read(const void* va, std::size_t len) {
    std::lock_guard lock(mu_);
    ++counters_.cpu_reads_checked;
    if (bounce() || len == 0) return true;
    const bool ok = !any_unsynced(reinterpret_cast<std::uintptr_t>(va), len);
    if (!ok) ++counters_.unsynced_cpu_reads;
    return ok;
  }

  // Counters so far, and the number of live mappings. Any thread.
  MockDmaCounters counters() const {
    std::lock_guard lock(mu_);
    return counters_;
  }
  std::size_t live_mappings() const {
    std::lock_guard lock(mu_);
    return mappings_.size();
  }

  // One line per live mapping (empty when none). Any thread.
  std::string leak_report() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& [iova, m] : mappings_) {
      out += fmt::format("MockDma leak: {} ({} bytes, {}) maps va {} still mapped\n", Iova(iova),
                         m.len, to_string(m.dir), static_cast<const void*>(m.cpu));
    }
    return out;
  }

 private:
  enum class Owner : std::uint8_t { kCpu, kDevice, kDeviceWritten };

  struct Mapping {
    std::byte* cpu = nullptr;
    std::size_t len = 0;
    DmaDirection dir = DmaDirection::kBidirectional;
    std::uint64_t alloc_start = 0;  // IOVA range reserved, guard page included
    std::uint64_t alloc_size = 0;
    std::vector<std::byte> bounce;  // bounce mode: what the device sees
    std::vector<Owner> owner;       // strict mode: per-byte owner
  };

  struct Target {
    Mapping* mapping;
    std::size_t offset;
  };

  bool bounce() const noexcept { return options_.mode == MockDmaMode::kBounce; }

  // Both syncs: `to` is the new owner of the bytes.
  void sync(Iova iova, std::size_t len, DmaDirection dir, Owner to) {
    std::lock_guard lock(mu_);
    ++(to == Owner::kCpu ? counters_.syncs_for_cpu : counters_.syncs_for_device);
    auto [m, offset] = sync_target(iova, len, dir);
    if (m == nullptr) return;
    if (!bounce()) {
      std::fill_n(m->owner.begin() + static_cast<std::ptrdiff_t>(offset), len, to);
    } else if (to == Owner::kCpu && dir != DmaDirection::kToDevice) {
      copy_to_cpu(*m, offset, len);
    } else if (to == Owner::kDevice && dir != DmaDirection::kFromDevice) {
      copy_to_bounce(*m, offset, len);
    }
  }

  absl::Status maybe_inject_failure() {
    const std::uint64_t nth = ++map_calls_;
    const bool nth_hit = options_.fail_nth_map != 0 && nth == options_.fail_nth_map;
    const bool coin = options_.fail_probability > 0 &&
                      std::bernoulli_distribution(options_.fail_probability)(rng_);
    if (!nth_hit && !coin) return absl::OkStatus();
    ++counters_.map_failures;
    ++counters_.injected_map_failures;
    return absl::ResourceExhaustedError(fmt::format(
        "MockDma::map: injected failure of map call #{} (fail_nth_map {}, fail_probability {})",
        nth, options_.fail_nth_map, options_.fail_probability));
  }

  absl::StatusOr<Iova> insert_mapping(std::span<std::byte> cpu, DmaDirection dir) {
    const auto va = reinterpret_cast<std::uintptr_t>(cpu.data());
    const std::uint64_t offset = va % kIovaPage;
    // One unmapped guard page after each mapping turns overruns into faults.
    const std::uint64_t size = align_up(offset + cpu.size(), kIovaPage) + kIovaPage;
    const std::optional<std::uint64_t> start = iovas_.alloc(size, kIovaPage);
    if (!start) {
      ++counters_.map_failures;
      return absl::ResourceExhaustedError(
          fmt::format("MockDma::map: IOVA space [{:#x}, {:#x}] has no room for {} bytes ({} free); "
                      "expected fewer live mappings or a larger iova range",
                      options_.iova_first, options_.iova_last, size, iovas_.free_bytes()));
    }
    const std::uint64_t iova = *start + offset;
    Mapping& m = mappings_[iova];
    m = Mapping{cpu.data(), cpu.size(), dir, *start, size, {}, {}};
    if (bounce()) {
      m.bounce.assign(cpu.begin(), cpu.end());
      counters_.bounce_bytes_copied += cpu.size();
    } else {
      m.owner.assign(cpu.size(), Owner::kDevice);
    }
    va_index_.emplace(va, iova);
    max_len_ = std::max(max_len_, cpu.size());
    ++counters_.maps;
    return Iova(iova);
  }

  absl::Status check_unmap(std::map<std::uint64_t, Mapping>::iterator it, Iova iova,
                           std::size_t len, DmaDirection dir) const {
    if (it == mappings_.end()) {
      return absl::NotFoundError(fmt::format(
          "MockDma::unmap: no mapping starts at {}; expected an Iova map() returned", iova));
    }
    const Mapping& m = it->second;
    if (len != m.len || dir != m.dir) {
      return absl::InvalidArgumentError(fmt::format(
          "MockDma::unmap({}, {} bytes, {}): the mapping is {} bytes, {}; expected the same "
          "length and direction as map()",
          iova, len, to_string(dir), m.len, to_string(m.dir)));
    }
    return absl::OkStatus();
  }

  // The mapping holding [iova, iova + len) and the offset in it, or null.
  Target lookup(std::uint64_t iova, std::size_t len, bool* past_end) {
    *past_end = false;
    auto it = mappings_.upper_bound(iova);
    if (it == mappings_.begin()) return {nullptr, 0};
    --it;
    const std::uint64_t offset = iova - it->first;
    if (offset >= it->second.len) return {nullptr, 0};
    if (len > it->second.len - offset) {
      *past_end = true;
      return {nullptr, 0};
    }
    return {&it->second, offset};
  }

  Target sync_target(Iova iova, std::size_t len, DmaDirection dir) {
    bool past_end = false;
    Target t = lookup(iova.value(), len, &past_end);
    if (t.mapping == nullptr) {
      ++counters_.sync_errors;
    } else if (dir != t.mapping->dir) {
      ++counters_.sync_direction_mismatches;
    }
    return t;
  }

  absl::StatusOr<Target> device_target(Iova iova, std::size_t len, DmaDirection forbidden,
                                       std::string_view what) {
    bool past_end = false;
    Target t = lookup(iova.value(), len, &past_end);
    if (t.mapping == nullptr) {
      ++counters_.device_faults;
      const std::string msg =
          fmt::format("MockDma: DMA fault: device {} of {} bytes at {} {}", what, len, iova,
                      past_end ? "runs past the end of its mapping" : "hits no mapping");
      return past_end ? absl::OutOfRangeError(msg) : absl::NotFoundError(msg);
    }
    if (t.mapping->dir == forbidden) {
      ++counters_.device_faults;
      return absl::PermissionDeniedError(
          fmt::format("MockDma: DMA fault: device {} of {} bytes at {} in a {} mapping", what, len,
                      iova, to_string(forbidden)));
    }
    return t;
  }

  void copy_to_cpu(Mapping& m, std::size_t offset, std::size_t len) {
    std::memcpy(m.cpu + offset, m.bounce.data() + offset, len);
    counters_.bounce_bytes_copied += len;
  }
  void copy_to_bounce(Mapping& m, std::size_t offset, std::size_t len) {
    std::memcpy(m.bounce.data() + offset, m.cpu + offset, len);
    counters_.bounce_bytes_copied += len;
  }

  void erase_va_index(const std::byte* cpu, std::uint64_t iova) {
    auto [first, last] = va_index_.equal_range(reinterpret_cast<std::uintptr_t>(cpu));
    for (auto it = first; it != last; ++it) {
      if (it->second == iova) {
        va_index_.erase(it);
        return;
      }
    }
  }

  // Whether any live mapping overlapping [va, va + len) holds a byte the
  // device wrote and nobody synced for the CPU.
  bool any_unsynced(std::uintptr_t va, std::size_t len) const {
    const std::uintptr_t end = va + len;
    for (auto it = va_index_.lower_bound(end); it != va_index_.begin();) {
      --it;
      if (it->first + max_len_ <= va) break;  // no earlier mapping can reach va
      const Mapping& m = mappings_.at(it->second);
      const std::uintptr_t lo = std::max(va, it->first);
      const std::uintptr_t hi = std::min(end, it->first + m.len);
      if (lo >= hi) continue;
      const auto first = m.owner.begin() + static_cast<std::ptrdiff_t>(lo - it->first);
      if (std::find(first, first + static_cast<std::ptrdiff_t>(hi - lo), Owner::kDeviceWritten) !=
          first + static_cast<std::ptrdiff_t>(hi - lo)) {
        return true;
      }
    }
    return false;
  }

  MockDmaOptions options_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  internal::IovaAllocator iovas_;
  std::map<std::uint64_t, Mapping> mappings_;              // by IOVA of the first mapped byte
  std::multimap<std::uintptr_t, std::uint64_t> va_index_;  // CPU address -> IOVA key
  std::size_t max_len_ = 0;
  std::uint64_t map_calls_ = 0;
  MockDmaCounters counters_;
};

static_assert(DmaBackend<MockDma>);
static_assert(DmaCheckedRead<MockDma>);

}  // namespace pagefrag
