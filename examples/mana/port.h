// SPDX-License-Identifier: BSD-3-Clause
// examples/mana/port.h: ManaPort, a MANA port of N queues served by poller
// threads, and its control-thread reconfiguration.
//
// A port owns N ManaQueues over one memory provider, one DMA backend and one
// device. Each queue is polled by one poller thread (NAPI-like: poll with a
// budget; when idle, arm the completion queues' interrupt and sleep), which
// owns that queue's pool. One thread per queue by default; with `pollers`
// fewer, each thread serves every pollers-th queue, as NAPI instances share
// a CPU (more threads than CPUs would spend their time switching).
//
// Reconfiguration (attach, detach, set_mtu, set_xdp, set_full_page) runs on
// a control thread and never leaves the port without buffers:
//  1. compute the new RxBufCfg with the policy (invalid: the status says
//     which field and its valid range; nothing changes);
//  2. while the old queues keep running, build a complete new queue set:
//     pools, every RX buffer (fragments in fragment mode, so truesize stays
//     true and nothing is parked), rings and device objects. Any failure
//     releases what was built and returns; the old MTU / program / mode are
//     untouched because they were never changed;
//  3. stop the pollers (napi_disable), fence every RQ and drain it, unsteer,
//     return every TX and RX buffer, destroy the old pools;
//  4. steer the device to the new queues and restart the pollers.
// Steps 3 and 4 cannot fail.
//
// Threads: every public call except poll() and the statistics accessors is
// control-thread only (serialised by a mutex). poll() is for ports created
// with threaded = false, from the thread that owns that queue.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "examples/mana/device.h"
#include "examples/mana/fault.h"
#include "examples/mana/limits.h"
#include "examples/mana/queue.h"
#include "examples/mana/stats.h"
#include "examples/mana/xdp.h"
#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/memory/provider.h"
#include "pagefrag/rxbuf/full_page_policy.h"
#include "pagefrag/rxbuf/kernel_policy.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"

namespace mana {

using pagefrag::DmaBackend;
using pagefrag::FullPageRxBufPolicy;
using pagefrag::is_power_of_two;
using pagefrag::KernelRxBufPolicy;
using pagefrag::MemoryProvider;
using pagefrag::RxBufCfg;
using pagefrag::RxBufPolicy;
using pagefrag::RxBufRequest;

// A policy's configure function (RxBufPolicy::configure).
using RxBufConfigureFn = absl::StatusOr<RxBufCfg> (*)(const RxBufRequest&);

struct ManaPortOptions {
  std::uint32_t num_queues = 4;                                   // 1..64
  std::uint32_t rx_queue_size = ManaLimits::kDefaultRxQueueSize;  // power of two, 128..8192
  std::uint32_t tx_queue_size = ManaLimits::kDefaultTxQueueSize;  // power of two, 2..8192
  std::uint32_t mtu = 1500;
  std::uint32_t adapter_mtu = 9216;
  std::uint32_t max_order = 4;  // the largest page order a policy may pick
  RxBufConfigureFn policy = &KernelRxBufPolicy<>::configure;
  bool full_page = false;             // the full-page-rx switch
  std::uint32_t budget = 64;          // packets per poll
  bool threaded = true;               // poller threads poll the queues
  std::uint32_t pollers = 0;          // threads when threaded: 1..num_queues, 0 one per queue
  FaultInjector* injector = nullptr;  // optional
  PacketSink sink;                    // the "stack"; called on the polling thread
  PacketBatchSink batch_sink;         // the same, once per poll (preferred when set)
  // Test-only: skip the sync for the CPU of received buffers, so a test can
  // prove it detects the missing sync.
  bool testing_skip_sync_for_cpu = false;
  // Time each queue's busy polls (QueueStats::rx_poll_ns, sink excluded)
  // with a cheap clock; off, the data path reads no clock.
  bool time_polls = false;
};

template <MemoryProvider P, DmaBackend D, ManaDevice Device>
class ManaPort {
 public:
  using Provider = InjectingProvider<P>;
  using Dma = InjectingDma<D>;
  using Queue = ManaQueue<Provider, Dma, Device>;

  // Control thread. Validates the options; the port starts down (attach()).
  static absl::StatusOr<std::unique_ptr<ManaPort>> create(P& provider, D& dma, Device& device,
                                                          ManaPortOptions opts) {
    if (absl::Status s = validate(opts); !s.ok()) return s;
    std::unique_ptr<ManaPort> port(new ManaPort(provider, dma, device, std::move(opts)));
    absl::StatusOr<RxBufCfg> cfg = port->configure(port->settings_);
    if (!cfg.ok()) return cfg.status();
    port->cfg_ = *cfg;
    return port;
  }

  ManaPort(const ManaPort&) = delete;
  ManaPort& operator=(const ManaPort&) = delete;
  ~ManaPort() { (void)detach(); }

  // Control thread. Builds every queue and starts the pollers. On failure
  // the port stays down with nothing allocated.
  absl::Status attach() {
    std::lock_guard lock(control_mu_);
    if (up_) return absl::OkStatus();
    absl::StatusOr<std::vector<std::unique_ptr<Queue>>> fresh = build_all(cfg_, settings_);
    if (!fresh.ok()) return fresh.status();
    install(*std::move(fresh));
    up_ = true;
    start_pollers();
    return absl::OkStatus();
  }

  // Control thread. Stops the pollers, fences the device, returns every
  // buffer and destroys the queues.
  absl::Status detach() {
    std::lock_guard lock(control_mu_);
    if (!up_) return absl::OkStatus();
    stop_pollers();
    teardown(queues_);
    up_ = false;
    return absl::OkStatus();
  }

  // Control thread. Changes the MTU (rebuilding the queues when up).
  absl::Status set_mtu(std::uint32_t mtu) {
    return apply([mtu](Settings& s) { s.mtu = mtu; });
  }
  // Control thread. Attaches `prog`, or detaches the program when empty.
  absl::Status set_xdp(XdpProgram prog) {
    auto shared = prog ? std::make_shared<const XdpProgram>(std::move(prog)) : nullptr;
    return apply([&shared](Settings& s) { s.xdp = std::move(shared); });
  }
  // Control thread. The full-page-rx switch: one buffer per page.
  absl::Status set_full_page(bool on) {
    return apply([on](Settings& s) { s.full_page = on; });
  }

  // Threaded = false only: polls queue q from the thread that owns its pool
  // (the control thread, which created it). Returns the work done.
  std::uint32_t poll(std::uint32_t q, std::uint32_t budget) {
    PAGEFRAG_CHECK(!opts_.threaded, "poll() on a threaded port");
    if (!up_ || q >= queues_.size()) return 0;
    return queues_[q]->poll(budget);
  }

  // --- state: control thread (the only writer) ---
  bool is_up() const { return up_; }
  std::uint32_t mtu() const { return settings_.mtu; }
  bool xdp_attached() const { return settings_.xdp != nullptr; }
  bool full_page() const { return settings_.full_page; }
  const RxBufCfg& rxbuf_cfg() const { return cfg_; }

  // --- statistics: any thread (counters may lag a running poller) ---
  std::uint32_t num_queues() const { return opts_.num_queues; }
  const ManaPortOptions& options() const { return opts_; }
  const QueueStats& queue_stats(std::uint32_t q) const { return *stats_[q]; }
  std::uint64_t reconfigurations() const { return reconfigurations_.get(); }
  std::uint64_t failed_reconfigurations() const { return failed_reconfigurations_.get(); }
  // Pages that had not returned to a queue's pool when it was destroyed.
  // Any thread.
  std::uint64_t inflight_at_destroy() const { return inflight_at_destroy_.get(); }
  // The largest held-bytes high-water mark of one queue's pool in the
  // current configuration (the last one when down). Any thread; waits for a
  // running reconfiguration.
  std::size_t queue_bytes_high_water() const {
    std::lock_guard lock(control_mu_);
    if (!up_) return last_queue_bytes_hw_;
    std::size_t hw = 0;
    for (const auto& q : queues_) hw = std::max(hw, q->held_bytes_high_water());
    return hw;
  }
  // Sums of every queue's counters, and ethtool -S style text of the port
  // and of each queue ("q<N>_<counter>: value" lines). Any thread.
  PortTotals totals() const;
  std::string format_stats() const;

 private:
  struct Settings {
    std::uint32_t mtu = 1500;
    std::shared_ptr<const XdpProgram> xdp;
    bool full_page = false;
  };

  ManaPort(P& provider, D& dma, Device& device, ManaPortOptions opts)
      : provider_(provider, opts.injector),
        dma_(dma, opts.injector),
        device_(&device),
        opts_(std::move(opts)) {
    settings_.mtu = opts_.mtu;
    settings_.full_page = opts_.full_page;
    for (std::uint32_t i = 0; i < opts_.num_queues; ++i) {
      stats_.push_back(std::make_unique<QueueStats>());
    }
  }

  static absl::Status validate(const ManaPortOptions& o) {
    auto bad = [](std::string_view field, std::uint64_t v, std::string_view expected) {
      return absl::InvalidArgumentError(
          fmt::format("ManaPortOptions.{} = {}; expected {}", field, v, expected));
    };
    if (absl::Status s = validate_num_queues("ManaPortOptions.num_queues", o.num_queues); !s.ok()) {
      return s;
    }
    if (absl::Status s = validate_rx_queue_size("ManaPortOptions.rx_queue_size", o.rx_queue_size);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = validate_tx_queue_size("ManaPortOptions.tx_queue_size", o.tx_queue_size);
        !s.ok()) {
      return s;
    }
    if (o.budget < 1) return bad("budget", o.budget, "at least 1");
    if (o.pollers > o.num_queues) {
      return bad("pollers", o.pollers,
                 fmt::format("0 (one per queue) or 1..num_queues ({})", o.num_queues));
    }
    if (o.policy == nullptr) return bad("policy", 0, "a configure function");
    return absl::OkStatus();
  }

  absl::StatusOr<RxBufCfg> configure(const Settings& s) const {
    const RxBufRequest req{.page_size = provider_.page_size(),
                           .mtu = s.mtu,
                           .xdp = s.xdp != nullptr,
                           .adapter_mtu = opts_.adapter_mtu,
                           .queue_size = opts_.rx_queue_size,
                           .max_order = std::min(opts_.max_order, provider_.max_order())};
    RxBufConfigureFn fn = s.full_page ? &FullPageRxBufPolicy<>::configure : opts_.policy;
    absl::StatusOr<RxBufCfg> cfg = fn(req);
    if (!cfg.ok()) return cfg;
    if (cfg->order > provider_.max_order()) {
      return absl::InvalidArgumentError(
          fmt::format("mtu {} needs order-{} pages; expected at most the provider's max_order {}",
                      s.mtu, cfg->order, provider_.max_order()));
    }
    return cfg;
  }

  // One change of the settings, read, changed and applied under the lock
  // (two control callers cannot build on the same old settings).
  template <class Change>
  absl::Status apply(Change change) {
    std::lock_guard lock(control_mu_);
    Settings next = settings_;
    change(next);
    absl::StatusOr<RxBufCfg> cfg = configure(next);
    if (!cfg.ok()) return fail(cfg.status());
    if (!up_) {
      settings_ = std::move(next);
      cfg_ = *cfg;
      return absl::OkStatus();
    }
    const bool same_layout = *cfg == cfg_ && (next.xdp != nullptr) == (settings_.xdp != nullptr);
    if (same_layout) {  // only the program changes: no new buffers needed
      stop_pollers();
      for (auto& q : queues_) q->set_xdp(next.xdp.get());
      settings_ = std::move(next);
      start_pollers();
      reconfigurations_.add();
      return absl::OkStatus();
    }
    absl::StatusOr<std::vector<std::unique_ptr<Queue>>> fresh = build_all(*cfg, next);
    if (!fresh.ok()) return fail(fresh.status());
    stop_pollers();
    teardown(queues_);
    install(*std::move(fresh));
    settings_ = std::move(next);
    cfg_ = *cfg;
    start_pollers();
    reconfigurations_.add();
    return absl::OkStatus();
  }

  absl::Status fail(absl::Status s) {
    failed_reconfigurations_.add();
    return s;
  }

  absl::StatusOr<std::vector<std::unique_ptr<Queue>>> build_all(const RxBufCfg& cfg,
                                                                const Settings& s) {
    typename Queue::Env env{&provider_,
                            &dma_,
                            device_,
                            opts_.injector,
                            &opts_.sink,
                            s.xdp.get(),
                            opts_.testing_skip_sync_for_cpu,
                            &opts_.batch_sink,
                            opts_.time_polls};
    const QueueShape shape{cfg, opts_.rx_queue_size, opts_.tx_queue_size};
    std::vector<std::unique_ptr<Queue>> fresh;
    fresh.reserve(opts_.num_queues);
    for (std::uint32_t i = 0; i < opts_.num_queues; ++i) {
      absl::StatusOr<std::unique_ptr<Queue>> q = Queue::create(env, i, shape, stats_[i].get());
      if (!q.ok()) {
        teardown_unsteered(fresh);
        return q.status();
      }
      fresh.push_back(*std::move(q));
    }
    return fresh;
  }

  void install(std::vector<std::unique_ptr<Queue>> fresh) {
    queues_ = std::move(fresh);
    for (std::uint32_t i = 0; i < queues_.size(); ++i) {
      queues_[i]->set_lookup([this](std::uint32_t target) -> Queue* {
        return target < queues_.size() ? queues_[target].get() : nullptr;
      });
      device_->steer_rx(i, queues_[i]->rq_object());
      device_->steer_tx(i, queues_[i]->sq_object());
    }
  }

  // Pollers stopped. Fences and drains every RQ, unsteers, reclaims TX
  // buffers (which may belong to any queue's pool) before any pool goes.
  void teardown(std::vector<std::unique_ptr<Queue>>& qs) {
    for (std::uint32_t i = 0; i < qs.size(); ++i) {
      qs[i]->clear_fence();
      device_->fence_rq(qs[i]->rq_object());
      for (std::uint64_t spins = 0;
           !qs[i]->fence_seen() && !qs[i]->rx_overrun() && spins < kFenceSpins; ++spins) {
        qs[i]->poll(opts_.rx_queue_size);
      }
    }
    for (std::uint32_t i = 0; i < qs.size(); ++i) {
      device_->steer_rx(i, Device::kNoObject);
      device_->steer_tx(i, Device::kNoObject);
    }
    teardown_unsteered(qs);
  }

  // Queues never steered (or already unsteered): reclaim TX, then destroy.
  void teardown_unsteered(std::vector<std::unique_ptr<Queue>>& qs) {
    for (auto& q : qs) q->teardown_tx();
    std::size_t hw = 0;
    for (auto& q : qs) {
      q->release_rx();
      inflight_at_destroy_.add(
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, q->inflight())));
      hw = std::max(hw, q->held_bytes_high_water());
      q.reset();
    }
    if (&qs == &queues_) last_queue_bytes_hw_ = hw;
    qs.clear();
  }

  void start_pollers() {
    if (!opts_.threaded) return;
    running_.store(true, std::memory_order_release);
    for (auto& q : queues_) q->pool().release_owner();
    const auto n = static_cast<std::uint32_t>(
        opts_.pollers == 0 ? queues_.size() : std::min<std::size_t>(opts_.pollers, queues_.size()));
    events_.resize(n);
    for (std::uint32_t t = 0; t < n; ++t) {
      if (!events_[t]) events_[t] = std::make_unique<EventQueue>();
      std::vector<Queue*> mine;
      for (std::uint32_t i = t; i < queues_.size(); i += n) {
        queues_[i]->attach_events(events_[t].get());
        mine.push_back(queues_[i].get());
      }
      threads_.emplace_back(
          [this, mine = std::move(mine), eq = events_[t].get()] { poller(mine, *eq); });
    }
  }

  // A poller owns its queues' pools while it runs: the control thread
  // releases ownership before starting it and claims it back after the join.
  //
  // Idle like NAPI: a round of polls that finds no work yields; after
  // kIdleSpins such rounds the poller reads its event queue's count, arms
  // every queue's RX and TX completion queues (an arm fails when a
  // completion is already waiting: poll on) and sleeps until a device
  // completion on an armed queue (or the stop) raises the event queue. Idle queues thus leave
  // the CPUs to the busy ones and to the device.
  void poller(const std::vector<Queue*>& mine, EventQueue& eq) {
    for (Queue* q : mine) q->pool().claim_owner();
    std::uint32_t idle = 0;
    auto poll_all = [&] {
      std::uint32_t work = 0;
      for (Queue* q : mine) work += q->poll(opts_.budget);
      return work;
    };
    while (running_.load(std::memory_order_acquire)) {
      if (poll_all() != 0) {
        idle = 0;
      } else if (++idle <= kIdleSpins) {
        std::this_thread::yield();
      } else {
        idle = 0;
        const std::uint32_t seen = eq.seen();
        bool armed = true;
        for (Queue* q : mine) armed = q->arm_interrupts() && armed;
        if (armed && running_.load(std::memory_order_acquire)) eq.wait(seen);
      }
    }
    for (Queue* q : mine) q->pool().release_owner();
  }

  void stop_pollers() {
    if (threads_.empty()) return;
    running_.store(false, std::memory_order_release);
    for (auto& eq : events_) eq->raise();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    for (auto& q : queues_) q->pool().claim_owner();
  }

  static constexpr std::uint64_t kFenceSpins = 1u << 20;
  static constexpr std::uint32_t kIdleSpins = 4;

  Provider provider_;
  Dma dma_;
  Device* device_;
  ManaPortOptions opts_;
  mutable std::mutex control_mu_;
  Settings settings_;
  RxBufCfg cfg_;
  bool up_ = false;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::vector<std::unique_ptr<QueueStats>> stats_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<EventQueue>> events_;  // one per poller thread
  std::atomic<bool> running_{false};
  Counter reconfigurations_;
  Counter failed_reconfigurations_;
  Counter inflight_at_destroy_;
  std::size_t last_queue_bytes_hw_ = 0;
};

template <MemoryProvider P, DmaBackend D, ManaDevice Device>
PortTotals ManaPort<P, D, Device>::totals() const {
  PortTotals t;
  for (const auto& s : stats_) t = pagefrag::counters_sum(t, s->snapshot());
  return t;
}

template <MemoryProvider P, DmaBackend D, ManaDevice Device>
std::string ManaPort<P, D, Device>::format_stats() const {
  std::string out;
  const PortTotals t = totals();
  fmt::format_to(std::back_inserter(out),
                 "rx_dropped: {}\nreconfigurations: {}\nfailed_reconfigurations: {}\n", t.dropped(),
                 reconfigurations(), failed_reconfigurations());
  format_counters(out, "", t);
  for (std::uint32_t q = 0; q < stats_.size(); ++q) {
    format_counters(out, fmt::format("q{}_", q), stats_[q]->snapshot());
  }
  return out;
}

}  // namespace mana
