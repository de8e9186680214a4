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

packages=(qemu-system-x86 busybox-static cpio kmod xz-utils)
missing=()
for pkg in "${packages[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] ||
    missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "nic_vm_test: FAIL: missing ${missing[*]}; installing them needs root"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >/tmp/nic-vm-apt.log 2>&1; then
    tail -n 5 /tmp/nic-vm-apt.log
    echo "nic_vm_test: FAIL: apt-get could not install ${missing[*]} (see /tmp/nic-vm-apt.log)"
    exit 1
  fi
fi

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
