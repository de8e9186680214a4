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
// Thread contract: every member may be called from any thread. Nothing on
// the data path takes a lock shared by every thread: mappings are found
// through 64 sharded tables (by IOVA for syncs and device accesses, by CPU
// address for check_cpu_read), each with its own mutex and counters on its
// own cache lines, and each mapping's state has its own mutex. map/unmap and
// fault injection (slow paths) share one control mutex. Strict-mode
// ownership is a list of runs per mapping (offset, owner), so a sync costs
// one O(log n) lookup plus O(runs), never O(bytes); bounce copies are
// O(len).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pagefrag/base/bits.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/counters.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/base/pool_attachments.h"
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

// X(Enum, Type, name, doc): every event MockDma counts, once (a
// pagefrag/base/counters.h list: members, sum, fmt and name/value table).
#define PAGEFRAG_MOCK_DMA_COUNTERS(X)                                                             \
  X(kMaps, std::uint64_t, maps, "successful map() calls")                                         \
  X(kMapFailures, std::uint64_t, map_failures, "failed map() calls, injected ones included")      \
  X(kInjectedMapFailures, std::uint64_t, injected_map_failures,                                   \
    "map() failures fault injection caused")                                                      \
  X(kUnmaps, std::uint64_t, unmaps, "successful unmap() calls")                                   \
  X(kUnmapErrors, std::uint64_t, unmap_errors, "unmap() of no mapping / wrong size or direction") \
  X(kSyncsForDevice, std::uint64_t, syncs_for_device, "sync_for_device() calls")                  \
  X(kSyncsForCpu, std::uint64_t, syncs_for_cpu, "sync_for_cpu() calls")                           \
  X(kSyncErrors, std::uint64_t, sync_errors, "sync of a range inside no mapping")                 \
  X(kSyncDirectionMismatches, std::uint64_t, sync_direction_mismatches,                           \
    "sync with a direction unlike the mapping's")                                                 \
  X(kDeviceWrites, std::uint64_t, device_writes, "successful device_write() calls")               \
  X(kDeviceReads, std::uint64_t, device_reads, "successful device_read() calls")                  \
  X(kDeviceFaults, std::uint64_t, device_faults, "rejected device accesses")                      \
  X(kDeviceWritesToCpuOwned, std::uint64_t, device_writes_to_cpu_owned,                           \
    "strict: device write into CPU-owned bytes (a fault)")                                        \
  X(kDeviceReadsOfCpuOwned, std::uint64_t, device_reads_of_cpu_owned,                             \
    "strict: device read CPU-owned bytes (a fault)")                                              \
  X(kCpuReadsChecked, std::uint64_t, cpu_reads_checked, "check_cpu_read() calls")                 \
  X(kUnsyncedCpuReads, std::uint64_t, unsynced_cpu_reads,                                         \
    "strict: check_cpu_read() returned false")                                                    \
  X(kBounceBytesCopied, std::uint64_t, bounce_bytes_copied, "bounce: bytes copied either way")

// Event counts since construction.
struct MockDmaCounters {
  PAGEFRAG_COUNTERS(MockDmaCounters, PAGEFRAG_MOCK_DMA_COUNTERS)

  MockDmaCounters& operator+=(const MockDmaCounters& o) noexcept {
    return *this = counters_sum(*this, o);
  }
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
    std::lock_guard lock(control_mu_);
    if (cpu.empty()) {
      ++control_counters_.map_failures;
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
    std::lock_guard lock(control_mu_);
    auto it = mappings_.find(iova.value());
    if (absl::Status bad = check_unmap(it, iova, len, dir); !bad.ok()) {
      ++control_counters_.unmap_errors;
      return bad;
    }
    std::unique_ptr<Mapping> m = std::move(it->second);
    mappings_.erase(it);
    // Once out of every shard no data-path call can reach the mapping, and
    // none still holds it (each held its shard's lock while using it).
    for_each_shard(iova_shards_, m->iova, m->len, [&](Shard& s) {
      std::lock_guard shard_lock(s.mu);
      s.iova_index.erase(m->iova);
    });
    const auto va = reinterpret_cast<std::uintptr_t>(m->cpu);
    for_each_shard(va_shards_, va, m->len, [&](Shard& s) {
      std::lock_guard shard_lock(s.mu);
      auto [first, last] = s.va_index.equal_range(va);
      for (auto v = first; v != last; ++v) {
        if (v->second == m.get()) {
          s.va_index.erase(v);
          break;
        }
      }
    });
    if (bounce() && dir != DmaDirection::kToDevice) {
      control_counters_.bounce_bytes_copied += copy_to_cpu(*m, 0, m->len);
    }
    iovas_.free(m->alloc_start, m->alloc_size);
    ++control_counters_.unmaps;
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
    Shard& s = iova_shard(iova.value());
    std::lock_guard lock(s.mu);
    absl::StatusOr<Target> t =
        device_target(s, iova, bytes.size(), DmaDirection::kToDevice, "write");
    if (!t.ok()) return t.status();
    Mapping& m = *t->mapping;
    std::lock_guard mapping_lock(m.mu);
    if (bounce()) {
      std::memcpy(m.bounce.data() + t->offset, bytes.data(), bytes.size());
    } else {
      const std::size_t end = t->offset + bytes.size();
      if (m.owner.any(t->offset, end, Owner::kCpu)) {
        // The CPU's cached copy could be written back over the device's
        // data: a missing sync_for_device (e.g. on recycle). Nothing written.
        ++s.counters.device_writes_to_cpu_owned;
        ++s.counters.device_faults;
        return absl::FailedPreconditionError(fmt::format(
            "MockDma: DMA fault: device write of {} bytes at {} covers bytes the CPU owns; "
            "expected sync_for_device first",
            bytes.size(), iova));
      }
      m.owner.assign(t->offset, end, Owner::kDeviceWritten);
      std::memcpy(m.cpu + t->offset, bytes.data(), bytes.size());
    }
    ++s.counters.device_writes;
    return absl::OkStatus();
  }

  // Device side: the simulated device reads out.size() bytes at `iova`.
  // Faults as device_write, PermissionDenied from a from_device mapping;
  // strict mode: FailedPrecondition (counted) when a byte read is owned by
  // the CPU (synced for the CPU and not handed back by sync_for_device).
  // Any thread.
  absl::Status device_read(Iova iova, std::span<std::byte> out) {
    if (out.empty()) return absl::OkStatus();
    Shard& s = iova_shard(iova.value());
    std::lock_guard lock(s.mu);
    absl::StatusOr<Target> t =
        device_target(s, iova, out.size(), DmaDirection::kFromDevice, "read");
    if (!t.ok()) return t.status();
    std::lock_guard mapping_lock(t->mapping->mu);
    if (!bounce() && t->mapping->owner.any(t->offset, t->offset + out.size(), Owner::kCpu)) {
      // What the CPU wrote may still sit in its cache: a missing sync_for_device.
      ++s.counters.device_reads_of_cpu_owned;
      ++s.counters.device_faults;
      return absl::FailedPreconditionError(fmt::format(
          "MockDma: DMA fault: device read of {} bytes at {} covers bytes the CPU owns; "
          "expected sync_for_device first",
          out.size(), iova));
    }
    const std::byte* src = bounce() ? t->mapping->bounce.data() : t->mapping->cpu;
    std::memcpy(out.data(), src + t->offset, out.size());
    ++s.counters.device_reads;
    return absl::OkStatus();
  }

  // Strict mode: whether the CPU may read [va, va + len): false (and
  // counted) when any byte was written by the device through a live mapping
  // and not synced for the CPU since. Always true in bounce mode (stale data
  // shows there instead) and for memory no mapping covers. Any thread.
  bool check_cpu_read(const void* va, std::size_t len) {
    const auto addr = reinterpret_cast<std::uintptr_t>(va);
    bool ok = true;
    if (!bounce() && len != 0) {
      for_each_shard(va_shards_, addr, len, [&](Shard& s) {
        if (ok && any_unsynced(s, addr, len)) ok = false;
      });
    }
    Shard& s = va_shard(addr);
    std::lock_guard lock(s.mu);
    ++s.counters.cpu_reads_checked;
    if (!ok) ++s.counters.unsynced_cpu_reads;
    return ok;
  }

  // Counters so far, and the number of live mappings. Any thread.
  MockDmaCounters counters() const {
    MockDmaCounters sum;
    {
      std::lock_guard lock(control_mu_);
      sum = control_counters_;
    }
    for (const auto* shards : {&iova_shards_, &va_shards_}) {
      for (const Shard& s : *shards) {
        std::lock_guard lock(s.mu);
        sum += s.counters;
      }
    }
    return sum;
  }
  std::size_t live_mappings() const {
    std::lock_guard lock(control_mu_);
    return mappings_.size();
  }

  // One line per live mapping (empty when none). Any thread.
  std::string leak_report() const {
    std::lock_guard lock(control_mu_);
    std::string out;
    for (const auto& [iova, m] : mappings_) {
      out += fmt::format("MockDma leak: {} ({} bytes, {}) maps va {} still mapped\n", Iova(iova),
                         m->len, to_string(m->dir), static_cast<const void*>(m->cpu));
    }
    return out;
  }

  // The pools using this backend (base/pool_attachments.h): destroying it while
  // one is attached aborts, naming the pools. Any thread.
  PoolAttachments& pool_attachments() noexcept { return pool_attachments_; }

 private:
  enum class Owner : std::uint8_t { kCpu, kDevice, kDeviceWritten };

  // Strict mode: who owns each byte of a mapping, as runs [start, next
  // start) of one owner, sorted, adjacent runs of different owners.
  class OwnerRuns {
   public:
    void reset(std::size_t len, Owner owner) {
      len_ = len;
      runs_.assign(1, Run{0, owner});
    }
    // Gives [a, b) to `owner`.
    void assign(std::size_t a, std::size_t b, Owner owner) {
      if (a >= b) return;
      const Owner tail = b < len_ ? at(b) : owner;
      auto lo = std::lower_bound(runs_.begin(), runs_.end(), a,
                                 [](const Run& r, std::size_t x) { return r.start < x; });
      auto hi = std::upper_bound(runs_.begin(), runs_.end(), b,
                                 [](std::size_t x, const Run& r) { return x < r.start; });
      const bool joins_prev = lo != runs_.begin() && std::prev(lo)->owner == owner;
      lo = runs_.erase(lo, hi);
      if (!joins_prev) lo = std::next(runs_.insert(lo, Run{a, owner}));
      if (b < len_ && tail != owner) runs_.insert(lo, Run{b, tail});
    }
    // Whether any byte of [a, b) belongs to `owner`.
    bool any(std::size_t a, std::size_t b, Owner owner) const {
      auto it = std::upper_bound(runs_.begin(), runs_.end(), a,
                                 [](std::size_t x, const Run& r) { return x < r.start; });
      for (--it; it != runs_.end() && it->start < b; ++it) {
        if (it->owner == owner) return true;
      }
      return false;
    }

   private:
    struct Run {
      std::size_t start;
      Owner owner;
    };
    Owner at(std::size_t x) const {
      auto it = std::upper_bound(runs_.begin(), runs_.end(), x,
                                 [](std::size_t v, const Run& r) { return v < r.start; });
      return std::prev(it)->owner;
    }
    std::size_t len_ = 0;
    std::vector<Run> runs_;
  };

  struct Mapping {
    std::byte* cpu = nullptr;
    std::size_t len = 0;
    DmaDirection dir = DmaDirection::kBidirectional;
    std::uint64_t iova = 0;
    std::uint64_t alloc_start = 0;  // IOVA range reserved, guard page included
    std::uint64_t alloc_size = 0;
    std::mutex mu;                  // guards bounce and owner
    std::vector<std::byte> bounce;  // bounce mode: what the device sees
    OwnerRuns owner;                // strict mode
  };

  // One of kShards tables: the mappings whose IOVA range (iova_index) or
  // CPU range (va_index) touches a granule hashed here, and the counters
  // of calls that looked here.
  struct alignas(kCacheLineSize) Shard {
    mutable std::mutex mu;
    std::map<std::uint64_t, Mapping*> iova_index;      // by Iova of the first byte
    std::multimap<std::uintptr_t, Mapping*> va_index;  // by CPU address of the first byte
    std::size_t max_len = 0;                           // longest mapping ever indexed here
    MockDmaCounters counters;
  };
  static constexpr unsigned kGranuleShift = 16;
  static constexpr std::size_t kShards = 64;
  using Shards = std::array<Shard, kShards>;

  struct Target {
    Mapping* mapping;
    std::size_t offset;
  };

  bool bounce() const noexcept { return options_.mode == MockDmaMode::kBounce; }

  static std::size_t shard_of(std::uint64_t addr) noexcept {
    return (addr >> kGranuleShift) % kShards;
  }
  Shard& iova_shard(std::uint64_t iova) noexcept { return iova_shards_[shard_of(iova)]; }
  Shard& va_shard(std::uintptr_t va) noexcept { return va_shards_[shard_of(va)]; }

  // Calls fn once for every shard a granule of [addr, addr + len) hashes to.
  template <class Fn>
  static void for_each_shard(Shards& shards, std::uint64_t addr, std::size_t len, Fn&& fn) {
    const std::uint64_t first = addr >> kGranuleShift;
    const std::uint64_t last = (addr + std::max<std::size_t>(len, 1) - 1) >> kGranuleShift;
    const std::uint64_t n = std::min<std::uint64_t>(last - first + 1, kShards);
    for (std::uint64_t g = first; g < first + n; ++g) fn(shards[g % kShards]);
  }

  // Both syncs: `to` is the new owner of the bytes.
  void sync(Iova iova, std::size_t len, DmaDirection dir, Owner to) {
    Shard& s = iova_shard(iova.value());
    std::lock_guard lock(s.mu);
    ++(to == Owner::kCpu ? s.counters.syncs_for_cpu : s.counters.syncs_for_device);
    auto [m, offset] = sync_target(s, iova, len, dir);
    if (m == nullptr) return;
    std::lock_guard mapping_lock(m->mu);
    if (!bounce()) {
      m->owner.assign(offset, offset + len, to);
    } else if (to == Owner::kCpu && dir != DmaDirection::kToDevice) {
      s.counters.bounce_bytes_copied += copy_to_cpu(*m, offset, len);
    } else if (to == Owner::kDevice && dir != DmaDirection::kFromDevice) {
      s.counters.bounce_bytes_copied += copy_to_bounce(*m, offset, len);
    }
  }

  absl::Status maybe_inject_failure() {
    const std::uint64_t nth = ++map_calls_;
    const bool nth_hit = options_.fail_nth_map != 0 && nth == options_.fail_nth_map;
    const bool coin = options_.fail_probability > 0 &&
                      std::bernoulli_distribution(options_.fail_probability)(rng_);
    if (!nth_hit && !coin) return absl::OkStatus();
    ++control_counters_.map_failures;
    ++control_counters_.injected_map_failures;
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
      ++control_counters_.map_failures;
      return absl::ResourceExhaustedError(
          fmt::format("MockDma::map: IOVA space [{:#x}, {:#x}] has no room for {} bytes ({} free); "
                      "expected fewer live mappings or a larger iova range",
                      options_.iova_first, options_.iova_last, size, iovas_.free_bytes()));
    }
    const std::uint64_t iova = *start + offset;
    auto m = std::make_unique<Mapping>();
    m->cpu = cpu.data();
    m->len = cpu.size();
    m->dir = dir;
    m->iova = iova;
    m->alloc_start = *start;
    m->alloc_size = size;
    if (bounce()) {
      m->bounce.assign(cpu.begin(), cpu.end());
      control_counters_.bounce_bytes_copied += cpu.size();
    } else {
      m->owner.reset(cpu.size(), Owner::kDevice);
    }
    Mapping* raw = m.get();
    mappings_.emplace(iova, std::move(m));
    for_each_shard(iova_shards_, iova, cpu.size(), [&](Shard& s) {
      std::lock_guard lock(s.mu);
      s.iova_index.emplace(iova, raw);
    });
    for_each_shard(va_shards_, va, cpu.size(), [&](Shard& s) {
      std::lock_guard lock(s.mu);
      s.va_index.emplace(va, raw);
      s.max_len = std::max(s.max_len, cpu.size());
    });
    ++control_counters_.maps;
    return Iova(iova);
  }

  absl::Status check_unmap(std::map<std::uint64_t, std::unique_ptr<Mapping>>::iterator it,
                           Iova iova, std::size_t len, DmaDirection dir) const {
    if (it == mappings_.end()) {
      return absl::NotFoundError(fmt::format(
          "MockDma::unmap: no mapping starts at {}; expected an Iova map() returned", iova));
    }
    const Mapping& m = *it->second;
    if (len != m.len || dir != m.dir) {
      return absl::InvalidArgumentError(fmt::format(
          "MockDma::unmap({}, {} bytes, {}): the mapping is {} bytes, {}; expected the same "
          "length and direction as map()",
          iova, len, to_string(dir), m.len, to_string(m.dir)));
    }
    return absl::OkStatus();
  }

  // The mapping holding [iova, iova + len) and the offset in it, or null;
  // `s` is iova's shard, locked. Mappings never overlap in IOVA space, so
  // the one starting last at or below iova is the only candidate.
  static Target lookup(const Shard& s, std::uint64_t iova, std::size_t len, bool* past_end) {
    *past_end = false;
    auto it = s.iova_index.upper_bound(iova);
    if (it == s.iova_index.begin()) return {nullptr, 0};
    --it;
    const std::uint64_t offset = iova - it->first;
    if (offset >= it->second->len) return {nullptr, 0};
    if (len > it->second->len - offset) {
      *past_end = true;
      return {nullptr, 0};
    }
    return {it->second, offset};
  }

  static Target sync_target(Shard& s, Iova iova, std::size_t len, DmaDirection dir) {
    bool past_end = false;
    Target t = lookup(s, iova.value(), len, &past_end);
    if (t.mapping == nullptr) {
      ++s.counters.sync_errors;
    } else if (dir != t.mapping->dir) {
      ++s.counters.sync_direction_mismatches;
    }
    return t;
  }

  static absl::StatusOr<Target> device_target(Shard& s, Iova iova, std::size_t len,
                                              DmaDirection forbidden, std::string_view what) {
    bool past_end = false;
    Target t = lookup(s, iova.value(), len, &past_end);
    if (t.mapping == nullptr) {
      ++s.counters.device_faults;
      const std::string msg =
          fmt::format("MockDma: DMA fault: device {} of {} bytes at {} {}", what, len, iova,
                      past_end ? "runs past the end of its mapping" : "hits no mapping");
      return past_end ? absl::OutOfRangeError(msg) : absl::NotFoundError(msg);
    }
    if (t.mapping->dir == forbidden) {
      ++s.counters.device_faults;
      return absl::PermissionDeniedError(
          fmt::format("MockDma: DMA fault: device {} of {} bytes at {} in a {} mapping", what, len,
                      iova, to_string(forbidden)));
    }
    return t;
  }

  // Bounce copies; the caller holds m.mu (or owns m). Return bytes copied.
  static std::size_t copy_to_cpu(Mapping& m, std::size_t offset, std::size_t len) {
    std::memcpy(m.cpu + offset, m.bounce.data() + offset, len);
    return len;
  }
  static std::size_t copy_to_bounce(Mapping& m, std::size_t offset, std::size_t len) {
    std::memcpy(m.bounce.data() + offset, m.cpu + offset, len);
    return len;
  }

  // Whether a mapping indexed in `s` and overlapping [va, va + len) holds a
  // byte the device wrote and nobody synced for the CPU.
  static bool any_unsynced(Shard& s, std::uintptr_t va, std::size_t len) {
    std::lock_guard lock(s.mu);
    const std::uintptr_t end = va + len;
    for (auto it = s.va_index.lower_bound(end); it != s.va_index.begin();) {
      --it;
      if (it->first + s.max_len <= va) break;  // no earlier mapping can reach va
      Mapping& m = *it->second;
      const std::uintptr_t lo = std::max(va, it->first);
      const std::uintptr_t hi = std::min(end, it->first + m.len);
      if (lo >= hi) continue;
      std::lock_guard mapping_lock(m.mu);
      if (m.owner.any(lo - it->first, hi - it->first, Owner::kDeviceWritten)) return true;
    }
    return false;
  }

  MockDmaOptions options_;
  // Control state (map, unmap, fault injection): never on the data path.
  mutable std::mutex control_mu_;
  std::mt19937_64 rng_;
  internal::IovaAllocator iovas_;
  std::map<std::uint64_t, std::unique_ptr<Mapping>> mappings_;  // by Iova of the first byte
  std::uint64_t map_calls_ = 0;
  MockDmaCounters control_counters_;
  // Data-path lookup tables.
  Shards iova_shards_;
  Shards va_shards_;
  PoolAttachments pool_attachments_{"MockDma"};
};

static_assert(DmaBackend<MockDma>);
static_assert(DmaCheckedRead<MockDma>);

}  // namespace pagefrag
