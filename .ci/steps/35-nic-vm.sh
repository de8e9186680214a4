#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: the example NIC drivers over VFIO in a QEMU guest
# (tests/vm/nic_vm_test.sh): virtio-net at MTU 1500 and 9000 (jumbo frames
# over several MANA-sized fragments), e1000e at MTU 1500; each run also pings
# slirp's 10.0.2.2 and checks that DMA after teardown is blocked. The kernel,
# guest programs and host peer are built once into one directory for the
# three runs. Installs QEMU, busybox, cpio, kmod, xz first if missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

source .ci/lib/packages.sh
ci_ensure_packages nic_vm_test qemu-system-x86 busybox-static cpio kmod xz-utils || exit 1

build=$(mktemp -d /tmp/pagefrag-nic-vm-build.XXXXXX)
trap 'rm -rf "$build"' EXIT
export NIC_VM_BUILD_DIR=$build
frames=${NIC_VM_FRAMES:-3000}
rc=0
summary=()
run() {
  local out
  out=$(bash tests/vm/nic_vm_test.sh "$@" 2>&1)
  local status=$?
  echo "$out"
  summary+=("$(tail -n 1 <<<"$out")")
  ((status == 0)) || rc=1
}
run --device=virtio-net --frames="$frames" --sizes=60..1514 --mtu=1500 --seed=1
run --device=virtio-net --frames="$frames" --sizes=60..9014 --mtu=9000 --seed=2
run --device=e1000e --frames="$frames" --sizes=60..1514 --mtu=1500 --seed=3
printf '%s\n' "${summary[@]}"
exit $rc
