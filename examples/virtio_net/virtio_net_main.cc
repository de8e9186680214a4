// SPDX-License-Identifier: BSD-3-Clause
// virtio_net_echo: the virtio-net example driver's program (see
// examples/vfio_pci/nic_app.h for the flags and what it does).
#include "examples/vfio_pci/nic_app.h"
#include "examples/virtio_net/virtio_net.h"

int main(int argc, char** argv) {
  return vfio_pci::nic_main<virtio_net::VirtioNet>(argc, argv, "virtio_net_echo");
}
