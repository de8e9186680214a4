// SPDX-License-Identifier: BSD-3-Clause
// examples/afxdp/afxdp_peer.cc: the live test's traffic source (and echo sink).
//
// Runs in the namespace opposite the driver. Sends --count UDP datagrams
// through an ordinary kernel socket to --target:--port, each carrying
// wire.h's verifiable pattern, with sizes from 16 bytes to the largest
// payload the MTU allows (never fragmented: IP_PMTUDISC_DO). At most
// --window datagrams are outstanding: not yet verified by the driver
// (progress file) or, with --echo, not yet echoed back. With --echo every
// echo is checked against the pattern and counted once. Exits 0 only when
// every datagram was confirmed (and, with --echo, every echo arrived intact);
// flags and exit status follow the tools' convention (examples/cli/cli.h):
// 1 a check failed, 2 a usage error.
#include <absl/flags/flag.h>
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "examples/cli/cli.h"
#include "progress.h"
#include "wire.h"

ABSL_FLAG(std::string, target, "", "driver's IPv4 address");
ABSL_FLAG(std::uint32_t, port, 9999, "UDP port (source and destination), 0..65535");
ABSL_FLAG(std::uint32_t, count, 100000, "datagrams to send, 1..2^27");
ABSL_FLAG(std::uint32_t, mtu, 1500, "link MTU, 68..9000: the largest payload is mtu - 28");
ABSL_FLAG(std::uint32_t, window, 256, "most datagrams outstanding at once, >= 1");
ABSL_FLAG(bool, echo, false, "expect every datagram back and verify it");
ABSL_FLAG(std::string, progress_file, "", "shared progress file of the driver");
ABSL_FLAG(double, timeout_s, 20, "give up after this many seconds without progress, > 0, <= 86400");

namespace {

namespace cli = pagefrag::cli;

using Clock = std::chrono::steady_clock;

struct EchoStats {
  std::uint64_t ok = 0, bad = 0, duplicate = 0, bytes = 0;
};

class Peer {
 public:
  Peer(int fd, afxdp::Progress* progress)
      : fd_(fd),
        progress_(progress),
        count_(absl::GetFlag(FLAGS_count)),
        max_payload_(afxdp::max_payload_for_mtu(absl::GetFlag(FLAGS_mtu))),
        echo_(absl::GetFlag(FLAGS_echo)),
        seen_(count_, false),
        buf_(65536) {}

  // Sends everything, then waits for the last confirmations.
  bool run() {
    const std::uint64_t window = absl::GetFlag(FLAGS_window);
    while (sent_ < count_) {
      drain_echoes(0);
      if (sent_ - confirmed() >= window) {
        if (!wait_for_progress()) return false;
        continue;
      }
      if (!send_one(static_cast<std::uint32_t>(sent_))) return false;
    }
    while (confirmed() < count_) {
      if (!wait_for_progress()) return false;
    }
    return !echo_ || (echo_stats_.bad == 0 && echo_stats_.duplicate == 0);
  }

  void print_summary() const {
    fmt::print(
        "peer: sent {} datagrams, {} payload bytes, payload sizes {}..{}; driver verified {}",
        sent_, sent_bytes_, afxdp::kMinPayload, max_payload_, afxdp::observe(progress_->verified));
    if (echo_) {
      fmt::print("; echoes intact {} ({} bytes), corrupt {}, duplicate {}", echo_stats_.ok,
                 echo_stats_.bytes, echo_stats_.bad, echo_stats_.duplicate);
    }
    fmt::print("\n");
  }

 private:
  std::uint64_t confirmed() const {
    return echo_ ? echo_stats_.ok : afxdp::observe(progress_->verified);
  }

  bool send_one(std::uint32_t seq) {
    const std::size_t len = afxdp::payload_size(seq, max_payload_);
    afxdp::fill_payload(seq, {buf_.data(), len});
    while (::send(fd_, buf_.data(), len, 0) < 0) {
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
        std::fprintf(stderr, "peer: send of datagram %u (%zu bytes): %s\n", seq, len,
                     std::strerror(errno));
        return false;
      }
      std::this_thread::yield();
    }
    ++sent_;
    sent_bytes_ += len;
    return true;
  }

  // Reads every echo already queued (waiting up to timeout_ms for the first).
  void drain_echoes(int timeout_ms) {
    if (!echo_) return;
    pollfd pfd{.fd = fd_, .events = POLLIN, .revents = 0};
    if (timeout_ms > 0 && ::poll(&pfd, 1, timeout_ms) <= 0) return;
    for (;;) {
      const ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (n < 0) return;
      std::uint32_t seq = 0;
      const auto verdict =
          afxdp::check_payload({buf_.data(), static_cast<std::size_t>(n)}, max_payload_, &seq);
      if (verdict != afxdp::PayloadVerdict::kOk || seq >= count_) {
        ++echo_stats_.bad;
      } else if (seen_[seq]) {
        ++echo_stats_.duplicate;
      } else {
        seen_[seq] = true;
        ++echo_stats_.ok;
        echo_stats_.bytes += static_cast<std::uint64_t>(n);
      }
    }
  }

  // Waits for one more confirmation; false after timeout_s without any.
  bool wait_for_progress() {
    const std::uint64_t before = confirmed();
    const auto deadline =
        Clock::now() + std::chrono::duration<double>(absl::GetFlag(FLAGS_timeout_s));
    for (unsigned spins = 0; confirmed() == before; ++spins) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "peer: no progress for %.0f s: %lu sent, %lu confirmed\n",
                     absl::GetFlag(FLAGS_timeout_s), static_cast<unsigned long>(sent_),
                     static_cast<unsigned long>(before));
        return false;
      }
      if (echo_) {
        drain_echoes(1);
      } else if (spins > 64) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    }
    return true;
  }

  int fd_;
  afxdp::Progress* progress_;
  std::uint64_t count_;
  std::size_t max_payload_;
  bool echo_;
  std::vector<bool> seen_;
  std::vector<std::byte> buf_;
  std::uint64_t sent_ = 0, sent_bytes_ = 0;
  EchoStats echo_stats_;
};

int open_socket() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  const int pmtu = IP_PMTUDISC_DO;  // never fragment: the MTU-sized payload must fit as is
  const int rcvbuf = 8 << 20;
  sockaddr_in local{.sin_family = AF_INET,
                    .sin_port = htons(static_cast<std::uint16_t>(absl::GetFlag(FLAGS_port))),
                    .sin_addr = {.s_addr = htonl(INADDR_ANY)},
                    .sin_zero = {}};
  sockaddr_in remote = local;
  if (::inet_pton(AF_INET, absl::GetFlag(FLAGS_target).c_str(), &remote.sin_addr) != 1 ||
      ::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
    std::fprintf(stderr, "peer: socket setup for %s:%u failed: %s\n",
                 absl::GetFlag(FLAGS_target).c_str(), absl::GetFlag(FLAGS_port),
                 std::strerror(errno));
    ::close(fd);
    return -1;
  }
  return fd;
}

bool wait_until_ready(afxdp::Progress* progress) {
  const auto deadline =
      Clock::now() + std::chrono::duration<double>(absl::GetFlag(FLAGS_timeout_s));
  while (afxdp::observe(progress->ready) == 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Parses and range-checks the flags; exits 0 for --help, 2 for a bad one.
void parse_flags(int argc, char** argv) {
  cli::parse_flags(argc, argv,
                   {.name = "afxdp_peer",
                    .synopsis = "The AF_XDP live test's traffic source and echo checker.",
                    .details = ""});
  cli::require_range("--port", absl::GetFlag(FLAGS_port), 0, 65535);
  cli::require_range("--count", absl::GetFlag(FLAGS_count), 1, std::uint64_t{1} << 27);
  cli::require_range("--mtu", absl::GetFlag(FLAGS_mtu), 68, 9000);
  cli::require_range("--window", absl::GetFlag(FLAGS_window), 1, ~std::uint32_t{0});
  cli::require_positive_finite("--timeout-s", absl::GetFlag(FLAGS_timeout_s), 86400);
}

}  // namespace

int main(int argc, char** argv) {
  parse_flags(argc, argv);
  auto progress = afxdp::map_progress(absl::GetFlag(FLAGS_progress_file));
  if (!progress.ok()) {
    std::fprintf(stderr, "error: --progress-file: %s\n",
                 std::string(progress.status().message()).c_str());
    return cli::kExitUsage;
  }
  if (!wait_until_ready(*progress)) {
    std::fprintf(stderr, "peer: the driver never reported ready\n");
    return 1;
  }
  const int fd = open_socket();
  if (fd < 0) return 1;
  Peer peer(fd, *progress);
  const bool ok = peer.run();
  peer.print_summary();
  ::close(fd);
  return ok ? 0 : 1;
}
