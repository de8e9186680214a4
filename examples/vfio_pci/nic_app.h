// SPDX-License-Identifier: BSD-3-Clause
// examples/vfio_pci/nic_app.h: the program both example NIC drivers build
// into (virtio_net_echo, e1000e_echo); tests/vm/nic_vm_test.sh runs it in a
// QEMU guest.
//
//   PROG --bdf=BDF [--mtu=1500] [--frames=N] [--idle-ms=20000]
//        [--ping-bdf=BDF] [--teardown]
//
// 1. --ping-bdf: a second NIC of the same kind on QEMU's slirp: ARP for
//    10.0.2.2, one ICMP echo to it, the reply checked byte for byte.
// 2. Echo: sends a hello control frame until traffic arrives, then sends
//    every received frame back unchanged (zero-copy: the RX fragments go out
//    through TX) until N frames are echoed or nothing arrives for idle-ms.
// 3. --teardown: unmaps the RX buffers from the IOMMU while they are still
//    posted, asks the peer for one more frame, and checks the buffers'
//    memory is unchanged (the guest kernel logs the DMAR fault).
// Prints "nic-vm: ..." lines and exits 0 on success, 1 on a runtime
// failure, 2 on a usage error.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "examples/vfio_pci/nic_api.h"
#include "examples/vfio_pci/nic_buffers.h"
#include "examples/vfio_pci/nic_wire.h"

namespace vfio_pci {

struct AppFlags {
  std::string bdf, ping_bdf;
  std::uint32_t mtu = 1500;
  std::uint64_t frames = 0;
  std::uint64_t idle_ms = 20000;
  bool teardown = false;
  bool help = false;
};

// The tools convention by hand: --flag=value; errors name the flag.
inline absl::StatusOr<AppFlags> parse_app_flags(int argc, char** argv) {
  AppFlags f;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? "" : arg.substr(eq + 1));
    const auto number = [&](std::uint64_t lo, std::uint64_t hi) -> absl::StatusOr<std::uint64_t> {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < lo || v > hi) {
        return absl::InvalidArgumentError(
            fmt::format("{} {} is invalid: expected an integer in {}..{}", name, value, lo, hi));
      }
      return v;
    };
    if (name == "--help" || name == "-h") {
      f.help = true;
    } else if (name == "--bdf" && !value.empty()) {
      f.bdf = value;
    } else if (name == "--ping-bdf" && !value.empty()) {
      f.ping_bdf = value;
    } else if (name == "--teardown" && eq == std::string_view::npos) {
      f.teardown = true;
    } else if (name == "--mtu" || name == "--frames" || name == "--idle-ms") {
      absl::StatusOr<std::uint64_t> v = name == "--mtu" ? number(68, 9216) : number(0, 1u << 30);
      if (!v.ok()) return v.status();
      if (name == "--mtu") f.mtu = static_cast<std::uint32_t>(*v);
      if (name == "--frames") f.frames = *v;
      if (name == "--idle-ms") f.idle_ms = *v;
    } else {
      return absl::InvalidArgumentError(fmt::format("unknown or malformed flag '{}'", arg));
    }
  }
  if (!f.help && f.bdf.empty()) return absl::InvalidArgumentError("--bdf is required");
  return f;
}

inline std::string mac_string(const std::array<std::uint8_t, 6>& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                     m[5]);
}

using Clock = std::chrono::steady_clock;

// Sends frame and polls until accept(frame bytes) or the timeout.
template <class Nic, class Accept>
bool exchange(Nic& nic, const std::vector<std::byte>& out, Accept accept,
              std::chrono::milliseconds timeout) {
  std::vector<std::byte> in(16384);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!nic.tx_copy(out)) return false;
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      RxFrame f;
      if (!nic.poll_rx(f)) {
        nic.poll_tx();
        continue;
      }
      const std::size_t n = f.copy_out(in);
      nic.buffers().free_frame(f);
      if (accept(std::span<const std::byte>(in.data(), n))) return true;
    }
  }
  return false;
}

template <class Nic>
void print_drops(const Nic& nic, std::string_view what) {
  std::string s;
  std::uint64_t total = 0;
  for (const DropCount& d : nic.drops()) {
    total += d.count;
    if (d.count) s += fmt::format(" {}={}", d.name, d.count);
  }
  fmt::print("nic-vm: {} hostile values refused: {}{}\n", what, total, s);
}

template <class Nic>
bool shutdown_and_report(Nic& nic, std::string_view what) {
  IommuReport r;
  const std::uint32_t per_page = nic.buffers_per_page();
  nic.shutdown(r);
  fmt::print(
      "nic-vm: {} iommu: buffers_per_page {}, map_calls {} (pool pages {}, for {} pages held), "
      "steady_state_map_calls {}, pinned_pool_bytes {}, posted_buffer_bytes {}, "
      "whole_region_bytes {}\n",
      what, per_page, r.map_calls, r.pool_map_calls, r.pool_pages, r.steady_map_calls,
      r.pinned_pool_bytes, r.posted_bytes, r.region_bytes);
  fmt::print("nic-vm: {} leaks: pages {} mappings {}\n", what, r.leaked_pages, r.leaked_mappings);
  return r.leaked_pages == 0 && r.leaked_mappings == 0;
}

template <class Nic>
bool run_ping(const AppFlags& flags) {
  absl::StatusOr<std::unique_ptr<Nic>> nic = Nic::create({.bdf = flags.ping_bdf, .mtu = 1500});
  if (!nic.ok()) {
    fmt::print("nic-vm: ping FAIL: {}\n", nic.status().ToString());
    return false;
  }
  const nic_wire::Ip me{10, 0, 2, 15}, gw{10, 0, 2, 2};
  std::optional<nic_wire::Mac> gw_mac;
  const bool arp = exchange(
      **nic, nic_wire::arp_request((*nic)->mac(), me, gw),
      [&](std::span<const std::byte> f) {
        gw_mac = nic_wire::arp_reply_from(f, gw);
        return gw_mac.has_value();
      },
      std::chrono::milliseconds(3000));
  bool ok = arp;
  if (arp) {
    const std::vector<std::byte> req =
        nic_wire::icmp_echo((*nic)->mac(), *gw_mac, me, gw, 0x5046, 1);
    ok = exchange(
        **nic, req, [&](std::span<const std::byte> f) { return nic_wire::is_echo_reply(f, req); },
        std::chrono::milliseconds(3000));
  }
  fmt::print("nic-vm: ping {}: arp for 10.0.2.2 {}{}, icmp echo reply {}\n", ok ? "ok" : "FAIL",
             arp ? "answered by " : "unanswered", arp ? mac_string(*gw_mac) : "",
             ok ? fmt::format("intact ({} payload bytes)", nic_wire::kPingPayload) : "missing");
  print_drops(**nic, "ping");
  return shutdown_and_report(**nic, "ping") && ok;
}

template <class Nic>
bool run_echo(Nic& nic, const AppFlags& flags) {
  std::uint64_t received = 0, echoed = 0, tx_full = 0, multi = 0, max_segs = 0;
  bool traffic = false;
  // Setup mapped the rings and prefilled the pool: from here on, the data
  // path, no map call is expected.
  nic.buffers().mark_steady();
  auto last_rx = Clock::now(), last_hello = Clock::now() - std::chrono::seconds(1);
  while (flags.frames == 0 || echoed < flags.frames) {
    RxFrame f;
    if (!nic.poll_rx(f)) {
      nic.poll_tx();
      const auto now = Clock::now();
      if (!traffic && now - last_hello > std::chrono::milliseconds(500)) {
        nic.tx_copy(nic_wire::control_frame(nic.mac(), nic_wire::kHello));
        last_hello = now;
      }
      if (now - last_rx > std::chrono::milliseconds(flags.idle_ms) || nic.broken()) break;
      continue;
    }
    traffic = true;
    last_rx = Clock::now();
    ++received;
    multi += f.nsegs > 1;
    max_segs = std::max<std::uint64_t>(max_segs, f.nsegs);
    bool sent = nic.tx_frame(f);
    for (auto until = Clock::now() + std::chrono::seconds(2); !sent && Clock::now() < until;) {
      nic.poll_tx();
      sent = nic.tx_frame(f);
    }
    if (sent) {
      ++echoed;
    } else {
      ++tx_full;
      nic.buffers().free_frame(f);
    }
  }
  for (auto until = Clock::now() + std::chrono::seconds(2);
       Clock::now() < until && nic.tx_done() < echoed;) {
    nic.poll_tx();
  }
  fmt::print(
      "nic-vm: echo: received {}, echoed {}, tx completed {}, tx full {}, frames over several "
      "buffers {} (at most {} buffers), device {}\n",
      received, echoed, nic.tx_done(), tx_full, multi, max_segs, nic.device_state());
  print_drops(nic, "echo");
  return flags.frames == 0 || echoed == flags.frames;
}

template <class Nic>
bool run_teardown(Nic& nic) {
  constexpr std::uint8_t kPattern = 0xa5;
  TeardownInfo info;
  if (absl::Status st = nic.teardown_revoke(kPattern, info); !st.ok()) {
    fmt::print("nic-vm: teardown FAIL: {}\n", st.ToString());
    return false;
  }
  fmt::print("nic-vm: teardown: {} posted buffers at iova {:#x}..{:#x} unmapped while posted\n",
             info.posted, info.iova_lo, info.iova_hi);
  nic.tx_copy(nic_wire::control_frame(nic.mac(), nic_wire::kTeardown));
  const auto until = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < until) {
    nic.poll_tx();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string completion;
  const bool unchanged = nic.teardown_unchanged(kPattern, completion);
  fmt::print("nic-vm: teardown: buffer memory {}, rx completion {}, {}\n",
             unchanged ? "unchanged" : "CHANGED", completion, nic.device_state());
  return unchanged && info.posted > 0;
}

template <class Nic>
int nic_main(int argc, char** argv, std::string_view prog) {
  absl::StatusOr<AppFlags> flags = parse_app_flags(argc, argv);
  if (!flags.ok()) {
    fmt::print(stderr, "error: {}\n", std::string(flags.status().message()));
    return 2;
  }
  if (flags->help) {
    fmt::print(
        "usage: {} --bdf=BDF [--mtu=1500] [--frames=N] [--idle-ms=20000] [--ping-bdf=BDF] "
        "[--teardown]\n  Polled user-space driver over VFIO on pagefrag fragments: echoes "
        "frames,\n  pings 10.0.2.2 on --ping-bdf, checks blocked DMA after teardown.\n",
        prog);
    return 0;
  }
  bool ok = true;
  if (!flags->ping_bdf.empty()) ok = run_ping<Nic>(*flags) && ok;
  absl::StatusOr<std::unique_ptr<Nic>> nic = Nic::create({.bdf = flags->bdf, .mtu = flags->mtu});
  if (!nic.ok()) {
    fmt::print("nic-vm: FAIL: {}\n", nic.status().ToString());
    return 1;
  }
  fmt::print("nic-vm: {} up at {}, mac {}, mtu {}, {}-byte buffers, {} per 64 KiB page\n", prog,
             flags->bdf, mac_string((*nic)->mac()), flags->mtu, (*nic)->cfg().alloc_size,
             (*nic)->buffers_per_page());
  ok = run_echo(**nic, *flags) && ok;
  if (flags->teardown) ok = run_teardown(**nic) && ok;
  ok = shutdown_and_report(**nic, "echo") && ok;
  fmt::print("nic-vm: RESULT {}\n", ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace vfio_pci
