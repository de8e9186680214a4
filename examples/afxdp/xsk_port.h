// SPDX-License-Identifier: BSD-3-Clause
// examples/afxdp/xsk_port.h: one AF_XDP socket and its UMEM, set up with libxdp.
//
// XskPort owns the kernel side of the driver: it registers a UMEM area once
// (in unaligned-chunk mode, so fill-ring addresses may be any byte offset),
// binds a socket to one queue of one interface in copy mode (generic XDP,
// which every Linux netdev supports, veth included), and maps the four
// rings. It knows nothing about pagefrag: the driver decides which UMEM
// offsets go on the fill ring and the TX ring.
//
// Setup and teardown return absl::Status; the rings are used directly with
// libxdp's inline ring functions by the one thread that owns the port.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace afxdp {

struct XskPortOptions {
  std::string ifname;               // interface to bind (must exist in this netns)
  std::uint32_t queue_id = 0;       // its RX queue
  std::uint32_t ring_size = 2048;   // fill, completion, RX and TX entries (power of two)
  std::uint32_t chunk_size = 2048;  // UMEM chunk: 2048..host page size in unaligned mode
  std::uint32_t umem_headroom = 0;  // extra headroom after the kernel's 256 bytes
};

class XskPort {
 public:
  // Registers `umem` (page-aligned, at least one chunk long) and binds a
  // copy-mode socket. Retries for a while when the queue is still busy from
  // a socket closed moments ago. Setup thread.
  static absl::StatusOr<std::unique_ptr<XskPort>> open(std::span<std::byte> umem,
                                                       const XskPortOptions& options);
  ~XskPort();
  XskPort(const XskPort&) = delete;
  XskPort& operator=(const XskPort&) = delete;

  // Deletes socket and UMEM registration (idempotent). Afterwards the kernel
  // holds no UMEM address any more: every address still on the fill ring,
  // RX ring, TX ring or completion ring belongs to the driver again.
  void close();

  xsk_ring_prod& fill() { return fill_; }
  xsk_ring_cons& completion() { return comp_; }
  xsk_ring_cons& rx() { return rx_; }
  xsk_ring_prod& tx() { return tx_; }
  int fd() const;
  const XskPortOptions& options() const { return options_; }

  // Asks the kernel to transmit what is on the TX ring (copy mode sends at
  // most 32 descriptors per call). Returns false when the kernel was busy
  // and the call should be repeated later. Owner thread.
  bool kick_tx();

  // The socket's drop and error counters (XDP_STATISTICS).
  absl::StatusOr<xdp_statistics> kernel_stats() const;

 private:
  XskPort() = default;
  XskPortOptions options_;
  xsk_umem* umem_ = nullptr;
  xsk_socket* socket_ = nullptr;
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
  xsk_ring_cons rx_{};
  xsk_ring_prod tx_{};
};

// The interface's MTU (SIOCGIFMTU), for checking it against the RX-buffer
// layout before binding.
absl::StatusOr<std::uint32_t> interface_mtu(const std::string& ifname);

}  // namespace afxdp
