// SPDX-License-Identifier: BSD-3-Clause
// e1000e_echo: the e1000e (82574L) example driver's program (see
// examples/vfio_pci/nic_app.h for the flags and what it does).
#include "examples/e1000e/e1000e.h"
#include "examples/vfio_pci/nic_app.h"

int main(int argc, char** argv) {
  return vfio_pci::nic_main<e1000e::E1000e>(argc, argv, "e1000e_echo");
}
