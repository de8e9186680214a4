// SPDX-License-Identifier: BSD-3-Clause
// nic_peer: the host side of tests/vm/nic_vm_test.sh. Listens on loopback
// for QEMU's `-netdev stream` (each Ethernet frame prefixed by its length,
// 4 bytes big-endian), waits for the guest driver's hello frame, offers N
// test frames and checks every echoed frame byte for byte.
//
//   nic_peer --port-file=PATH --frames=N --sizes=MIN..MAX|imix --seed=S
//            [--timeout-s=300] [--teardown]
//
// Frame i: destination the guest's MAC (from its hello), source
// 02:00:00:00:00:01, EtherType 0x88b5, then i (4 bytes), then bytes of a
// stream keyed by (seed, i); its size uniform in MIN..MAX or imix (60, 590
// and 1514 bytes in the ratio 7:4:1), also keyed by (seed, i). With
// --teardown, once the guest reports its buffers unmapped, one more frame is
// offered (not expected back). Prints one summary line; exits 0 when every
// frame came back intact exactly once, 1 otherwise, 2 on a usage error.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "examples/vfio_pci/nic_wire.h"

namespace {

struct Flags {
  std::string port_file;
  std::uint64_t frames = 0;
  std::uint32_t min = 60, max = 1514;
  bool imix = false;
  std::uint64_t seed = 1;
  std::uint64_t timeout_s = 300;
  bool teardown = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::exit(2);
}

bool parse_u64(const std::string& s, std::uint64_t& out) {
  char* end = nullptr;
  if (s.empty()) return false;
  out = std::strtoull(s.c_str(), &end, 10);
  return *end == '\0';
}

// One function so it can be swapped for the shared flag parser.
Flags parse_flags(int argc, char** argv) {
  Flags f;
  bool have_frames = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq),
                      value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    std::uint64_t v = 0;
    if (name == "--help") {
      std::printf(
          "usage: nic_peer --port-file=PATH --frames=N [--sizes=MIN..MAX|imix] [--seed=S] "
          "[--timeout-s=300] [--teardown]\n");
      std::exit(0);
    } else if (name == "--port-file" && !value.empty()) {
      f.port_file = value;
    } else if (name == "--frames" && parse_u64(value, v) && v >= 1 && v <= 100000000) {
      f.frames = v;
      have_frames = true;
    } else if (name == "--seed" && parse_u64(value, v)) {
      f.seed = v;
    } else if (name == "--timeout-s" && parse_u64(value, v) && v >= 1) {
      f.timeout_s = v;
    } else if (name == "--teardown" && eq == std::string::npos) {
      f.teardown = true;
    } else if (name == "--sizes" && value == "imix") {
      f.imix = true;
    } else if (name == "--sizes") {
      const std::size_t dots = value.find("..");
      std::uint64_t lo = 0, hi = 0;
      if (dots == std::string::npos || !parse_u64(value.substr(0, dots), lo) ||
          !parse_u64(value.substr(dots + 2), hi) || lo < 60 || hi < lo || hi > 65535) {
        usage_error("--sizes " + value +
                    " is invalid: expected MIN..MAX with 60 <= MIN <= MAX <= 65535, or imix");
      }
      f.min = static_cast<std::uint32_t>(lo);
      f.max = static_cast<std::uint32_t>(hi);
    } else {
      usage_error("unknown or malformed flag '" + arg + "'");
    }
  }
  if (f.port_file.empty()) usage_error("--port-file is required");
  if (!have_frames) usage_error("--frames is required");
  return f;
}

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

const nic_wire::Mac kPeerMac{0x02, 0, 0, 0, 0, 0x01};

std::uint32_t frame_size(const Flags& f, std::uint64_t seq) {
  const std::uint64_t r = splitmix(f.seed * 0x100000001b3ULL ^ seq);
  if (f.imix) {
    const std::uint64_t k = r % 12;
    return k < 7 ? 60 : k < 11 ? 590 : 1514;
  }
  return f.min + static_cast<std::uint32_t>(r % (f.max - f.min + 1));
}

std::vector<std::byte> make_frame(const Flags& f, const nic_wire::Mac& dst, std::uint64_t seq) {
  std::vector<std::byte> b(frame_size(f, seq));
  nic_wire::put_mac(b.data(), dst);
  nic_wire::put_mac(b.data() + 6, kPeerMac);
  nic_wire::put16(b.data() + 12, nic_wire::kEtherTypeTest);
  nic_wire::put16(b.data() + 14, static_cast<std::uint16_t>(seq >> 16));
  nic_wire::put16(b.data() + 16, static_cast<std::uint16_t>(seq));
  std::uint64_t state = splitmix(f.seed ^ (seq << 20));
  for (std::size_t i = 18; i < b.size(); i += 8) {
    state = splitmix(state);
    for (std::size_t j = 0; j < 8 && i + j < b.size(); ++j) b[i + j] = std::byte(state >> (8 * j));
  }
  return b;
}

bool write_all(int fd, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t k = ::send(fd, c, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    c += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

class Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}
  bool send_frame(const std::vector<std::byte>& frame) {
    std::lock_guard lock(mu_);
    const std::uint32_t len = htonl(static_cast<std::uint32_t>(frame.size()));
    return write_all(fd_, &len, 4) && write_all(fd_, frame.data(), frame.size());
  }
  // Next frame, or nullopt on EOF/error/timeout.
  std::optional<std::vector<std::byte>> recv_frame(int timeout_ms) {
    std::uint32_t len = 0;
    if (!read_all(&len, 4, timeout_ms)) return std::nullopt;
    len = ntohl(len);
    if (len > (1u << 20)) return std::nullopt;
    std::vector<std::byte> b(len);
    if (!read_all(b.data(), len, timeout_ms)) return std::nullopt;
    return b;
  }
  bool timed_out() const { return timed_out_; }

 private:
  bool read_all(void* p, std::size_t n, int timeout_ms) {
    char* c = static_cast<char*>(p);
    while (n > 0) {
      pollfd pfd{fd_, POLLIN, 0};
      const int r = ::poll(&pfd, 1, timeout_ms);
      if (r == 0) {
        timed_out_ = true;
        return false;
      }
      if (r < 0) return false;
      const ssize_t k = ::recv(fd_, c, n, 0);
      if (k <= 0) return false;
      c += k;
      n -= static_cast<std::size_t>(k);
    }
    return true;
  }
  int fd_;
  std::mutex mu_;
  bool timed_out_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = parse_flags(argc, argv);
  const int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof addr;
  if (ls < 0 || ::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(ls, 1) != 0 || ::getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) {
    std::printf("nic_peer: FAIL: cannot listen on loopback: %s\n", std::strerror(errno));
    return 1;
  }
  {
    std::ofstream(flags.port_file + ".tmp") << ntohs(addr.sin_port) << "\n";
    std::rename((flags.port_file + ".tmp").c_str(), flags.port_file.c_str());
  }
  pollfd pfd{ls, POLLIN, 0};
  if (::poll(&pfd, 1, 60000) != 1) {
    std::printf("nic_peer: FAIL: QEMU never connected\n");
    return 1;
  }
  const int fd = ::accept(ls, nullptr, nullptr);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Conn conn(fd);
  const auto start = std::chrono::steady_clock::now();
  const auto left_ms = [&] {
    const auto end = start + std::chrono::seconds(flags.timeout_s);
    return static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(end -
                                                                 std::chrono::steady_clock::now())
               .count()));
  };

  // Wait for the guest's hello.
  std::optional<nic_wire::Mac> guest;
  while (!guest) {
    std::optional<std::vector<std::byte>> f = conn.recv_frame(left_ms());
    if (!f) {
      std::printf("nic_peer: FAIL: no hello from the guest driver (%s)\n",
                  conn.timed_out() ? "timeout" : "connection closed");
      return 1;
    }
    if (nic_wire::control_kind(*f) == nic_wire::kHello) {
      guest.emplace();
      std::memcpy(guest->data(), f->data() + 6, 6);
    }
  }

  std::atomic<std::uint64_t> sent{0};
  std::atomic<bool> send_failed{false};
  std::thread sender([&] {
    for (std::uint64_t i = 0; i < flags.frames; ++i) {
      if (!conn.send_frame(make_frame(flags, *guest, i))) {
        send_failed = true;
        return;
      }
      sent.fetch_add(1);
    }
  });

  std::vector<std::uint8_t> seen(flags.frames, 0);
  std::uint64_t intact = 0, corrupt = 0, duplicate = 0, other = 0;
  bool teardown_offered = false, closed = false;
  while (intact < flags.frames || (flags.teardown && !teardown_offered)) {
    std::optional<std::vector<std::byte>> f = conn.recv_frame(left_ms());
    if (!f) {
      closed = true;
      break;
    }
    const char kind = nic_wire::control_kind(*f);
    if (kind == nic_wire::kHello) continue;
    if (kind == nic_wire::kTeardown) {
      if (!teardown_offered) conn.send_frame(make_frame(flags, *guest, flags.frames));
      teardown_offered = true;
      continue;
    }
    if (f->size() < 18 || nic_wire::get16(f->data() + 12) != nic_wire::kEtherTypeTest) {
      ++other;
      continue;
    }
    const std::uint64_t seq =
        (std::uint64_t{nic_wire::get16(f->data() + 14)} << 16) | nic_wire::get16(f->data() + 16);
    if (seq >= flags.frames || *f != make_frame(flags, *guest, seq)) {
      ++corrupt;
    } else if (seen[seq]++) {
      ++duplicate;
    } else {
      ++intact;
    }
  }
  if (closed) ::shutdown(fd, SHUT_RDWR);  // unblocks a sender stuck on a dead connection
  sender.join();
  const std::uint64_t lost = flags.frames - intact;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const bool ok = intact == flags.frames && corrupt == 0 && duplicate == 0 && !send_failed &&
                  (!flags.teardown || teardown_offered);
  std::printf(
      "nic_peer: %s: sent %llu, echoed %llu intact, %llu corrupt, %llu lost, %llu duplicate, "
      "%llu other, teardown frame %s, %.1f s\n",
      ok ? "ok" : "FAIL", static_cast<unsigned long long>(sent.load()),
      static_cast<unsigned long long>(intact), static_cast<unsigned long long>(corrupt),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(duplicate),
      static_cast<unsigned long long>(other), teardown_offered ? "offered" : "not offered", secs);
  std::fflush(stdout);
  // Keep the connection until QEMU goes away, so the teardown frame is not
  // lost with a closed socket before the NIC reads it.
  if (!closed) {
    while (conn.recv_frame(std::min(left_ms(), 30000))) {
    }
  }
  ::close(fd);
  return ok ? 0 : 1;
}
