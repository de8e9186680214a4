// SPDX-License-Identifier: BSD-3-Clause
// examples/vfio_pci/nic_api.h: what the example NIC drivers (virtio-net,
// e1000e) offer the echo/ping program (nic_app.h), so one program drives
// either. Drivers are polled on one thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vfio_pci {

struct NicOptions {
  std::string bdf;                 // PCI address, bound to vfio-pci
  std::uint32_t mtu = 1500;        // link MTU
  std::uint32_t queue_size = 256;  // RX and TX descriptors
};

// One named counter of values the device wrote that the driver refused.
struct DropCount {
  std::string name;
  std::uint64_t count;
};

// What the teardown check needs from a driver.
struct TeardownInfo {
  std::uint64_t iova_lo = 0;  // lowest IOVA of a posted, now unmapped, buffer
  std::uint64_t iova_hi = 0;  // one past the highest
  std::uint32_t posted = 0;   // buffers posted to the device at teardown
};

}  // namespace vfio_pci
