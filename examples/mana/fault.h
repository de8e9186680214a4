// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/fault.h: the named fault-injection points of the MANA driver,
// an injector, and the provider / DMA adapters that consult it.
//
// Every allocation and DMA-map point of queue create, attach, set_mtu and
// set_xdp is declared once, in PAGEFRAG_MANA_FAULT_POINTS; tests iterate over
// kAllFaultPoints and check each point was reached (hits() > 0) and that
// failing it leaves a working port. The injector is optional: a driver with
// no injector pays one null-pointer test per point.
//
// InjectingProvider and InjectingDma wrap the real provider and DMA backend
// so failures can be injected where the pool itself allocates and maps.
// InjectingProvider also serialises the provider: a port's queues share one
// provider and a page may be released to it from any queue's thread.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "pagefrag/base/compiler.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/memory/locked_provider.h"
#include "pagefrag/memory/provider.h"

namespace mana {

using pagefrag::DmaBackend;
using pagefrag::DmaCheckedRead;
using pagefrag::DmaDirection;
using pagefrag::DmaFeatures;
using pagefrag::HeapProvider;
using pagefrag::Iova;
using pagefrag::MemoryProvider;
using pagefrag::NoDma;
using pagefrag::Page;

// Categories, as the example's --inject flag names them.
enum class FaultCategory : std::uint8_t { kAlloc, kDmaMap };

// X(enumerator, name, category): every injection point, once.
#define PAGEFRAG_MANA_FAULT_POINTS(X)                                                         \
  X(kRxQueueAlloc, "rx_queue_alloc", kAlloc)     /* RX queue object, slots, WQ and CQ */      \
  X(kRxPoolCreate, "rx_pool_create", kAlloc)     /* the queue's PagePool */                   \
  X(kRxBufferAlloc, "rx_buffer_alloc", kAlloc)   /* a buffer for a slot at create time */     \
  X(kProviderAlloc, "provider_alloc", kAlloc)    /* the pool asking the provider for pages */ \
  X(kDmaMap, "dma_map", kDmaMap)                 /* the pool mapping a page */                \
  X(kRxDeviceCreate, "rx_device_create", kAlloc) /* the device's RQ object */                 \
  X(kTxQueueAlloc, "tx_queue_alloc", kAlloc)     /* TX queue object, WQ, CQ, slots */         \
  X(kTxDeviceCreate, "tx_device_create", kAlloc) /* the device's SQ object */                 \
  X(kRxRefill, "rx_refill", kAlloc)              /* data path: a replacement buffer */

enum class FaultPoint : std::uint8_t {
#define PAGEFRAG_MANA_FP_ENUM(e, name, cat) e,
  PAGEFRAG_MANA_FAULT_POINTS(PAGEFRAG_MANA_FP_ENUM)
#undef PAGEFRAG_MANA_FP_ENUM
};

inline constexpr std::array kAllFaultPoints = {
#define PAGEFRAG_MANA_FP_LIST(e, name, cat) FaultPoint::e,
    PAGEFRAG_MANA_FAULT_POINTS(PAGEFRAG_MANA_FP_LIST)
#undef PAGEFRAG_MANA_FP_LIST
};
inline constexpr std::size_t kFaultPointCount = kAllFaultPoints.size();

constexpr std::string_view to_string(FaultPoint p) noexcept {
  switch (p) {
#define PAGEFRAG_MANA_FP_NAME(e, name, cat) \
  case FaultPoint::e:                       \
    return name;
    PAGEFRAG_MANA_FAULT_POINTS(PAGEFRAG_MANA_FP_NAME)
#undef PAGEFRAG_MANA_FP_NAME
  }
  return "unknown";
}

constexpr FaultCategory category_of(FaultPoint p) noexcept {
  switch (p) {
#define PAGEFRAG_MANA_FP_CAT(e, name, cat) \
  case FaultPoint::e:                      \
    return FaultCategory::cat;
    PAGEFRAG_MANA_FAULT_POINTS(PAGEFRAG_MANA_FP_CAT)
#undef PAGEFRAG_MANA_FP_CAT
  }
  return FaultCategory::kAlloc;
}

// Decides, per hit of a point, whether it fails. Two independent triggers:
// a probability per category (deterministic from the seed and the hit
// number, so runs repeat) and a one-shot "fail the n-th next hit of point p".
// Any thread may call should_fail(); configuration calls happen while no
// driver thread is inside should_fail (e.g. before a reconfiguration).
// While nothing is armed (no countdown, no probability), inject() costs one
// relaxed load of a read-mostly flag and one predictable branch: no hit is
// counted there and no shared line is written. Data-path callers count their
// unarmed hits in bulk instead (count_hits, e.g. once per poll).
class FaultInjector {
 public:
  explicit FaultInjector(std::uint64_t seed = 1) : seed_(seed) {}

  // Failure probability (0..1) of every point of `cat`.
  void set_probability(FaultCategory cat, double p) {
    const double clamped = p < 0 ? 0 : (p > 1 ? 1 : p);
    threshold_[static_cast<std::size_t>(cat)].store(
        static_cast<std::uint64_t>(clamped * 18446744073709549568.0), std::memory_order_relaxed);
    update_armed();
  }
  // Fails the n-th (1-based) hit of `p` counted from now; 0 disarms.
  void fail_nth(FaultPoint p, std::uint64_t n) {
    countdown_[index(p)].store(static_cast<std::int64_t>(n), std::memory_order_relaxed);
    update_armed();
  }
  // Whether any trigger is set (a countdown armed or a probability above 0).
  bool armed() const noexcept { return armed_.load(std::memory_order_relaxed); }
  // True when the caller must behave as if the operation at `p` failed.
  bool should_fail(FaultPoint p) {
    const std::size_t i = index(p);
    const std::uint64_t hit = hits_[i].fetch_add(1, std::memory_order_relaxed);
    bool fail = countdown_[i].load(std::memory_order_relaxed) > 0 &&
                countdown_[i].fetch_sub(1, std::memory_order_relaxed) == 1;
    const std::uint64_t threshold =
        threshold_[static_cast<std::size_t>(category_of(p))].load(std::memory_order_relaxed);
    if (!fail && threshold != 0) fail = mix(seed_ ^ (std::uint64_t{i} << 56) ^ hit) < threshold;
    if (fail) failures_[i].fetch_add(1, std::memory_order_relaxed);
    return fail;
  }
  // Adds `n` hits of `p` that happened while nothing was armed (bulk
  // accounting from the data path). Any thread.
  void count_hits(FaultPoint p, std::uint64_t n) {
    hits_[index(p)].fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t hits(FaultPoint p) const { return hits_[index(p)].load(std::memory_order_relaxed); }
  std::uint64_t failures(FaultPoint p) const {
    return failures_[index(p)].load(std::memory_order_relaxed);
  }
  std::uint64_t total_failures() const {
    std::uint64_t sum = 0;
    for (const auto& f : failures_) sum += f.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  static constexpr std::size_t index(FaultPoint p) { return static_cast<std::size_t>(p); }
  void update_armed() {
    bool any = false;
    for (const auto& t : threshold_) any |= t.load(std::memory_order_relaxed) != 0;
    for (const auto& c : countdown_) any |= c.load(std::memory_order_relaxed) > 0;
    armed_.store(any, std::memory_order_relaxed);
  }
  // splitmix64 finaliser: a well-mixed 64-bit value from a counter.
  static constexpr std::uint64_t mix(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }

  std::uint64_t seed_;
  alignas(64) std::atomic<bool> armed_{false};  // read on every data-path point
  alignas(64) std::array<std::atomic<std::uint64_t>, 2> threshold_{};
  std::array<std::atomic<std::uint64_t>, kFaultPointCount> hits_{};
  std::array<std::atomic<std::uint64_t>, kFaultPointCount> failures_{};
  std::array<std::atomic<std::int64_t>, kFaultPointCount> countdown_{};
};

// True when `inj` is set, armed, and decides `p` fails.
inline bool inject(FaultInjector* inj, FaultPoint p) {
  return inj != nullptr && PAGEFRAG_UNLIKELY(inj->armed()) && inj->should_fail(p);
}

// A MemoryProvider over another one: serialises it (through
// pagefrag::LockedProvider: any queue's thread may release a page) and fails
// alloc_bulk at FaultPoint::kProviderAlloc.
template <MemoryProvider P>
class InjectingProvider {
 public:
  static constexpr bool kPhysicallyContiguous = P::kPhysicallyContiguous;
  static constexpr bool kShareable = true;

  explicit InjectingProvider(P& inner, FaultInjector* injector = nullptr)
      : locked_(inner), injector_(injector) {}

  // Any thread; the wrapped provider's contract otherwise.
  std::size_t page_size() const { return locked_.page_size(); }
  unsigned max_order() const { return locked_.max_order(); }
  std::size_t alloc_bulk(unsigned order, Page** pages, std::size_t n) {
    if (inject(injector_, FaultPoint::kProviderAlloc)) return 0;
    return locked_.alloc_bulk(order, pages, n);
  }
  void release_bulk(Page** pages, std::size_t n) { locked_.release_bulk(pages, n); }
  Page* page_of(const void* addr) const { return locked_.page_of(addr); }
  std::span<std::byte> region() const { return locked_.region(); }

  P& inner() { return locked_.inner(); }
  void set_injector(FaultInjector* injector) { injector_ = injector; }

 private:
  pagefrag::LockedProvider<P> locked_;
  FaultInjector* injector_;
};

// A DmaBackend over another one that fails map() at FaultPoint::kDmaMap and
// forwards everything else, including the optional device-side and checked
// accessors of MockDma.
template <DmaBackend D>
class InjectingDma {
 public:
  static constexpr DmaFeatures kFeatures = D::kFeatures;

  explicit InjectingDma(D& inner, FaultInjector* injector = nullptr)
      : inner_(&inner), injector_(injector) {}

  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection dir) {
    if (inject(injector_, FaultPoint::kDmaMap)) {
      return absl::ResourceExhaustedError(
          "dma map failed (injected at fault point dma_map); expected a mapping");
    }
    return inner_->map(cpu, dir);
  }
  absl::Status unmap(Iova iova, std::size_t len, DmaDirection dir) {
    return inner_->unmap(iova, len, dir);
  }
  void sync_for_device(Iova iova, std::size_t len, DmaDirection dir) noexcept {
    inner_->sync_for_device(iova, len, dir);
  }
  void sync_for_cpu(Iova iova, std::size_t len, DmaDirection dir) noexcept {
    inner_->sync_for_cpu(iova, len, dir);
  }
  bool check_cpu_read(const void* va, std::size_t len) requires DmaCheckedRead<D> {
    return inner_->check_cpu_read(va, len);
  }

  D& inner() { return *inner_; }
  void set_injector(FaultInjector* injector) { injector_ = injector; }

 private:
  D* inner_;
  FaultInjector* injector_;
};

static_assert(MemoryProvider<InjectingProvider<HeapProvider>>);
static_assert(pagefrag::kShareableProvider<InjectingProvider<HeapProvider>>);  // a port shares it
static_assert(DmaBackend<InjectingDma<NoDma>>);

}  // namespace mana
