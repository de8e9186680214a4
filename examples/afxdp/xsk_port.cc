// SPDX-License-Identifier: BSD-3-Clause
// examples/afxdp/xsk_port.cc: AF_XDP socket setup and teardown with libxdp.
#include "xsk_port.h"

#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <thread>

namespace afxdp {
namespace {

// Only warnings are worth showing, minus the expected one: `ip netns exec`
// remounts /sys without a bpffs, so libxdp loads its redirect program
// without the multi-program dispatcher, which this driver does not need.
int print_warnings_only(enum libxdp_print_level level, const char* format, va_list args) {
  if (level != LIBXDP_WARN || std::strstr(format, "bpffs") != nullptr) return 0;
  return std::vfprintf(stderr, format, args);
}
int print_libbpf_warnings_only(enum libbpf_print_level level, const char* format, va_list args) {
  return level == LIBBPF_WARN ? std::vfprintf(stderr, format, args) : 0;
}

absl::Status check_options(std::span<std::byte> umem, const XskPortOptions& o) {
  const auto host_page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  if (reinterpret_cast<std::uintptr_t>(umem.data()) % host_page != 0 ||
      umem.size() < o.chunk_size) {
    return absl::InvalidArgumentError(
        fmt::format("UMEM area at {} of {} bytes: expected a page-aligned area of at least one "
                    "chunk ({} bytes)",
                    static_cast<const void*>(umem.data()), umem.size(), o.chunk_size));
  }
  if (o.chunk_size < 2048 || o.chunk_size > host_page) {
    return absl::InvalidArgumentError(fmt::format(
        "chunk_size {}: expected 2048..{} (the kernel's XDP_UMEM_MIN_CHUNK_SIZE..PAGE_SIZE)",
        o.chunk_size, host_page));
  }
  if (o.ring_size == 0 || (o.ring_size & (o.ring_size - 1)) != 0) {
    return absl::InvalidArgumentError(
        fmt::format("ring_size {}: expected a power of two", o.ring_size));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<XskPort>> XskPort::open(std::span<std::byte> umem,
                                                       const XskPortOptions& options) {
  if (absl::Status s = check_options(umem, options); !s.ok()) return s;
  libxdp_set_print(print_warnings_only);
  libbpf_set_print(print_libbpf_warnings_only);
  std::unique_ptr<XskPort> port(new XskPort());
  port->options_ = options;
  const xsk_umem_config umem_config{.fill_size = options.ring_size,
                                    .comp_size = options.ring_size,
                                    .frame_size = options.chunk_size,
                                    .frame_headroom = options.umem_headroom,
                                    .flags = XDP_UMEM_UNALIGNED_CHUNK_FLAG};
  if (int err = xsk_umem__create(&port->umem_, umem.data(), umem.size(), &port->fill_, &port->comp_,
                                 &umem_config);
      err != 0) {
    return absl::FailedPreconditionError(
        fmt::format("registering a UMEM of {} bytes (chunk {}, headroom {}, unaligned) failed: {}; "
                    "expected a kernel with AF_XDP sockets (CONFIG_XDP_SOCKETS) and CAP_NET_RAW",
                    umem.size(), options.chunk_size, options.umem_headroom, std::strerror(-err)));
  }
  xsk_socket_config socket_config{};
  socket_config.rx_size = options.ring_size;
  socket_config.tx_size = options.ring_size;
  socket_config.xdp_flags = XDP_FLAGS_SKB_MODE;
  socket_config.bind_flags = XDP_COPY;
  int err = -EBUSY;
  // The kernel keeps a queue busy for a few tens of milliseconds after the
  // previous socket on it closed.
  for (int attempt = 0; attempt < 100 && err == -EBUSY; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    err = xsk_socket__create(&port->socket_, options.ifname.c_str(), options.queue_id, port->umem_,
                             &port->rx_, &port->tx_, &socket_config);
  }
  if (err != 0) {
    return absl::FailedPreconditionError(fmt::format(
        "binding an AF_XDP socket to {} queue {} in copy mode failed: {}; expected an existing "
        "interface in this network namespace, root (CAP_NET_ADMIN, CAP_BPF) and no other XDP "
        "program on it",
        options.ifname, options.queue_id, std::strerror(-err)));
  }
  return port;
}

XskPort::~XskPort() { close(); }

void XskPort::close() {
  if (socket_ != nullptr) xsk_socket__delete(socket_);
  socket_ = nullptr;
  if (umem_ != nullptr) xsk_umem__delete(umem_);
  umem_ = nullptr;
}

int XskPort::fd() const { return xsk_socket__fd(socket_); }

bool XskPort::kick_tx() {
  if (::sendto(fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return true;
  return !(errno == EAGAIN || errno == EBUSY || errno == ENOBUFS || errno == EINTR);
}

absl::StatusOr<xdp_statistics> XskPort::kernel_stats() const {
  xdp_statistics stats{};
  socklen_t len = sizeof(stats);
  if (::getsockopt(fd(), SOL_XDP, XDP_STATISTICS, &stats, &len) != 0) {
    return absl::InternalError(fmt::format("XDP_STATISTICS: {}", std::strerror(errno)));
  }
  return stats;
}

absl::StatusOr<std::uint32_t> interface_mtu(const std::string& ifname) {
  const int sock = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (sock < 0) return absl::InternalError(fmt::format("socket: {}", std::strerror(errno)));
  ifreq req{};
  std::snprintf(req.ifr_name, sizeof(req.ifr_name), "%s", ifname.c_str());
  const int rc = ::ioctl(sock, SIOCGIFMTU, &req);
  const int saved = errno;
  ::close(sock);
  if (rc != 0) {
    return absl::NotFoundError(
        fmt::format("interface '{}': {}; expected an interface of this "
                    "network namespace",
                    ifname, std::strerror(saved)));
  }
  return static_cast<std::uint32_t>(req.ifr_mtu);
}

}  // namespace afxdp
