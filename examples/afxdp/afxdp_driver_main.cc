// SPDX-License-Identifier: BSD-3-Clause
// examples/afxdp/afxdp_driver_main.cc: runs AfXdpDriver on one interface queue.
//
//   afxdp_driver --ifname=veth0 --count=100000 [--echo] [--progress-file=F]
//
// Receives (and with --echo sends back) the live test's datagrams, then shuts
// down and checks that every fragment and page went back. Prints the driver,
// pool and kernel counters, and last a one-line summary. Flags and exit
// status follow the tools' convention (examples/cli/cli.h): 0 all datagrams
// verified and nothing leaked, 1 a check failed, 2 a usage error (including
// an interface that does not exist), and one more: 3 the environment cannot
// run AF_XDP (not root, no AF_XDP in the kernel), which tests read as "skip".
#include <absl/flags/flag.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "afxdp_driver.h"
#include "examples/cli/cli.h"
#include "progress.h"

ABSL_FLAG(std::string, ifname, "", "interface to bind");
ABSL_FLAG(std::uint32_t, queue, 0, "RX queue");
ABSL_FLAG(std::uint32_t, mtu, 1500, "MTU the RX buffers are laid out for");
ABSL_FLAG(std::uint64_t, page_size, 65536, "pool page bytes");
ABSL_FLAG(std::uint32_t, ring_size, 2048, "entries per AF_XDP ring");
ABSL_FLAG(bool, echo, false, "send every verified datagram back");
ABSL_FLAG(std::uint32_t, port, 9999, "UDP destination port of the test traffic, 0..65535");
ABSL_FLAG(std::uint64_t, count, 0,
          "stop after this many distinct datagrams, 0..2^27 (0: until SIGINT)");
ABSL_FLAG(double, timeout_s, 60, "fail when not done after this many seconds, > 0, <= 86400");
ABSL_FLAG(std::string, progress_file, "", "shared progress file for the sender");
ABSL_FLAG(bool, check_guards, true, "paint fragments and check bytes outside frames");
ABSL_FLAG(bool, allow_link_mtu_above_layout, false,
          "test only: run on a link whose MTU exceeds --mtu (frames then overrun fragments)");
ABSL_FLAG(bool, probe, false, "only check that this process may open AF_XDP sockets");

namespace {

namespace cli = pagefrag::cli;

constexpr int kExitCannotRun = 3;
// The driver keeps one byte per expected sequence number.
constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 27;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// 0 when AF_XDP sockets can be opened here, else 3 with the reason on stderr.
int probe_af_xdp() {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "afxdp_driver: needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF)\n");
    return kExitCannotRun;
  }
  const int fd = ::socket(AF_XDP, SOCK_RAW, 0);
  if (fd < 0) {
    std::fprintf(stderr, "afxdp_driver: cannot open an AF_XDP socket: %s%s\n", std::strerror(errno),
                 errno == EAFNOSUPPORT ? " (kernel built without CONFIG_XDP_SOCKETS)" : "");
    return kExitCannotRun;
  }
  ::close(fd);
  return 0;
}

afxdp::DriverOptions options_from_flags() {
  return {.ifname = absl::GetFlag(FLAGS_ifname),
          .queue_id = absl::GetFlag(FLAGS_queue),
          .mtu = absl::GetFlag(FLAGS_mtu),
          .page_size = absl::GetFlag(FLAGS_page_size),
          .ring_size = absl::GetFlag(FLAGS_ring_size),
          .echo = absl::GetFlag(FLAGS_echo),
          .udp_port = static_cast<std::uint16_t>(absl::GetFlag(FLAGS_port)),
          .count = absl::GetFlag(FLAGS_count),
          .check_guards = absl::GetFlag(FLAGS_check_guards),
          .allow_link_mtu_above_layout = absl::GetFlag(FLAGS_allow_link_mtu_above_layout)};
}

void print_counters(const afxdp::AfXdpDriver& d, const xdp_statistics& k) {
  fmt::print("driver: {}\n", d.stats());
  fmt::print("frag: {}\n", d.frag_stats());
  fmt::print("pool: {}\n", d.pool_stats());
  fmt::print(
      "kernel: rx_dropped={} rx_invalid_descs={} tx_invalid_descs={} rx_ring_full={} "
      "rx_fill_ring_empty_descs={} tx_ring_empty_descs={}\n",
      k.rx_dropped, k.rx_invalid_descs, k.tx_invalid_descs, k.rx_ring_full,
      k.rx_fill_ring_empty_descs, k.tx_ring_empty_descs);
}

// Every check the live test relies on; prints each failure.
bool passed(const afxdp::AfXdpDriver& d, const afxdp::LeakReport& leaks, const xdp_statistics& k,
            std::uint64_t count) {
  const afxdp::DriverStats& s = d.stats();
  bool ok = true;
  auto require = [&ok](bool cond, const std::string& what) {
    if (!cond) std::fprintf(stderr, "afxdp_driver: FAILED: %s\n", what.c_str());
    ok = ok && cond;
  };
  require(count == 0 || s.verified == count,
          fmt::format("{} of {} datagrams verified", s.verified, count));
  require(s.corrupt == 0 && s.duplicates == 0,
          fmt::format("{} corrupt, {} duplicate datagrams", s.corrupt, s.duplicates));
  require(s.overruns == 0 && s.guard_violations == 0,
          fmt::format("{} overruns, {} guard violations", s.overruns, s.guard_violations));
  require(s.bad_addresses == 0, fmt::format("{} ring addresses never posted", s.bad_addresses));
  require(s.tx_posted == s.tx_completed,
          fmt::format("{} echoes posted, {} completed", s.tx_posted, s.tx_completed));
  require(k.rx_dropped == 0 && k.rx_invalid_descs == 0 && k.tx_invalid_descs == 0,
          "kernel dropped frames or refused descriptors");
  require(leaks.clean(), fmt::format("leaks: pool inflight {}, provider pages {}, dma mappings {}, "
                                     "fragments {}",
                                     leaks.pool_inflight, leaks.provider_pages, leaks.dma_mappings,
                                     leaks.frags_in_flight));
  return ok;
}

// One line: packets, bytes, buffers per page, UMEM used vs one chunk per frame.
void print_summary(const afxdp::AfXdpDriver& d, const afxdp::LeakReport& leaks, bool ok) {
  const afxdp::DriverStats& s = d.stats();
  const auto& cfg = d.cfg();
  const std::uint64_t used = s.pages_high_water * cfg.page_size;
  const std::uint64_t chunk = afxdp::AfXdpDriver::Policy::aligned_chunk_size(cfg);
  const std::uint64_t one_per_frame = s.frags_high_water * chunk;
  const double saved =
      one_per_frame == 0 ? 0.0 : 100.0 * (1.0 - static_cast<double>(used) / one_per_frame);
  fmt::print(
      "afxdp {} {}: {} packets, {} payload bytes intact{}; {} buffers per {} KiB page (stride "
      "{}); UMEM used {} B vs {} B at one {} B chunk per frame ({:.1f}% less); {} guard checks, "
      "{} leaked buffers\n",
      absl::GetFlag(FLAGS_echo) ? "echo" : "rx", ok ? "PASS" : "FAIL", s.verified, s.verified_bytes,
      absl::GetFlag(FLAGS_echo) ? fmt::format(" and echoed") : "", cfg.frag_count,
      cfg.page_size / 1024, cfg.alloc_size, used, one_per_frame, chunk, saved, s.guard_checks,
      leaks.frags_in_flight + static_cast<std::uint64_t>(leaks.pool_inflight));
}

// Parses and range-checks the flags; exits 0 for --help, 2 for a bad one.
void parse_flags(int argc, char** argv) {
  cli::parse_flags(argc, argv,
                   {.name = "afxdp_driver",
                    .synopsis = "The AF_XDP example driver on one interface queue (root).",
                    .details = "Exit status 3: this process cannot open AF_XDP sockets."});
  if (absl::GetFlag(FLAGS_probe)) return;
  if (absl::GetFlag(FLAGS_ifname).empty()) cli::usage_error("--ifname is required");
  cli::require_range("--port", absl::GetFlag(FLAGS_port), 0, 65535);
  cli::require_range("--count", absl::GetFlag(FLAGS_count), 0, kMaxCount);
  cli::require_positive_finite("--timeout-s", absl::GetFlag(FLAGS_timeout_s), 86400);
}

}  // namespace

int main(int argc, char** argv) {
  parse_flags(argc, argv);
  if (int rc = probe_af_xdp(); rc != 0 || absl::GetFlag(FLAGS_probe)) return rc;
  afxdp::Progress* progress = nullptr;
  if (!absl::GetFlag(FLAGS_progress_file).empty()) {
    auto mapped = afxdp::map_progress(absl::GetFlag(FLAGS_progress_file));
    if (!mapped.ok()) {
      std::fprintf(stderr, "error: --progress-file: %s\n", mapped.status().ToString().c_str());
      return cli::kExitUsage;
    }
    progress = *mapped;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto driver = afxdp::AfXdpDriver::create(options_from_flags());
  if (!driver.ok()) {
    std::fprintf(stderr, "error: %s\n", driver.status().ToString().c_str());
    switch (driver.status().code()) {
      case absl::StatusCode::kFailedPrecondition:
        return kExitCannotRun;
      case absl::StatusCode::kInvalidArgument:
      case absl::StatusCode::kNotFound:
      case absl::StatusCode::kOutOfRange:
        return cli::kExitUsage;  // a flag's value (interface, MTU, sizes) is wrong
      default:
        return cli::kExitFailure;
    }
  }
  const absl::Status run = (*driver)->run(
      g_stop,
      std::chrono::milliseconds(static_cast<std::int64_t>(absl::GetFlag(FLAGS_timeout_s) * 1000)),
      progress);
  if (!run.ok()) std::fprintf(stderr, "afxdp_driver: %s\n", run.ToString().c_str());
  const xdp_statistics kernel = (*driver)->kernel_stats().value_or(xdp_statistics{});
  const afxdp::LeakReport leaks = (*driver)->shutdown();
  if (progress != nullptr) afxdp::publish(progress->finished, 1);
  const bool ok = run.ok() && passed(**driver, leaks, kernel, absl::GetFlag(FLAGS_count));
  print_counters(**driver, kernel);
  print_summary(**driver, leaks, ok);
  return ok ? cli::kExitOk : cli::kExitFailure;
}
