#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# VfioDma against a real kernel and real (emulated) devices behind an
# emulated VT-d IOMMU, in a QEMU guest (TCG; no KVM needed).
#
# The C API's VFIO backend is tested there too, on the container VfioDma
# opened: the conformance suite, and two pools beside the caller's own
# mapping.
#
# Each run: resolves Debian's cloud kernel through its meta-package (the ABI
# name moves), downloads it without installing (apt-get download, dpkg -x),
# builds an initramfs of busybox, the VFIO modules and a static test program
# compiled from this tree (tests/vm/vfio_vm_guest.cc; fmt header-only,
# Abseil's static libraries), boots QEMU q35 + intel-iommu + e1000e (no
# network backend) + edu, and in the guest binds edu and the e1000e to
# vfio-pci and runs the program. Exits 0 only when the guest reports
# success. Prints a one-line summary last.
#
# Needs: qemu-system-x86, busybox-static, cpio, kmod, xz-utils, g++, Abseil
# and fmt headers (.ci/steps/30-vfio-vm.sh installs them). Env: VM_KEEP=1
# keeps the work directory; VM_TIMEOUT (seconds, default 180); VM_KERNEL_DIR
# reuses a downloaded kernel (tests/vm/vm_lib.sh).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
start=$SECONDS
work=$(mktemp -d /tmp/pagefrag-vm.XXXXXX)
[[ ${VM_KEEP:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT

fail() {  # reason
  echo "vfio_vm_test: FAIL after $((SECONDS - start)) s: $*"
  exit 1
}

# shellcheck source=tests/vm/vm_lib.sh
source "$root/tests/vm/vm_lib.sh"
vm_check_tools
vm_fetch_kernel "${VM_KERNEL_DIR:-$work/kernel-pkg}"

# --- initramfs ----------------------------------------------------------------
initrd_root="$work/initrd"
vm_initrd_base "$initrd_root" vfio vfio_iommu_type1 vfio-pci
# The guest program, static, from this tree (it includes the C API's
# implementation).
vm_build_guest "$root/tests/vm/vfio_vm_guest.cc" "$initrd_root/guest" -O1

{
  vm_init_prelude
  cat <<'INIT'
edu=$(find_dev 0x1234 0x11e8)
nic=$(find_dev 0x8086 0x10d3)
echo "vfio-vm: edu at $edu, e1000e at $nic"
bind_vfio $edu
bind_vfio $nic
/guest $edu $nic
echo "PAGEFRAG-VM-EXIT $?"
poweroff -f
INIT
} >"$initrd_root/init"
chmod +x "$initrd_root/init"
vm_pack "$initrd_root" "$work/initrd.gz"

# --- boot ---------------------------------------------------------------------
boot_start=$SECONDS
timeout "${VM_TIMEOUT:-180}" qemu-system-x86_64 -accel tcg -cpu max -M q35 -smp 1 -m 512 \
  -nographic -no-reboot -nodefaults -serial stdio \
  -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
  -device intel-iommu,intremap=on,caching-mode=on \
  -device e1000e,netdev=n0 -netdev user,id=n0 -device edu \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 intel_iommu=on iommu=pt" \
  </dev/null >"$work/serial.log" 2>&1
qemu_rc=$?
boot_s=$((SECONDS - boot_start))
tr -d '\r' <"$work/serial.log" | grep -E '^(vfio-vm:|\[doctest\]|.*ERROR|.*DMAR)' | grep -v 'vfio-vm: PASS'
((qemu_rc == 124)) && fail "QEMU timed out after ${VM_TIMEOUT:-180} s (kernel $kver)"
exit_line=$(tr -d '\r' <"$work/serial.log" | grep -m1 'PAGEFRAG-VM-EXIT' || true)
[[ -n "$exit_line" ]] || { tail -n 30 "$work/serial.log"; fail "guest never reported (QEMU rc $qemu_rc, kernel $kver)"; }
[[ "$exit_line" == "PAGEFRAG-VM-EXIT 0" ]] || fail "guest reported '${exit_line#PAGEFRAG-VM-EXIT }' (kernel $kver)"
checks=$(tr -d '\r' <"$work/serial.log" | grep -c '^vfio-vm: ok')
asserts=$(tr -d '\r' <"$work/serial.log" | grep -m1 '^\[doctest\] assertions' | awk '{print $3}')
echo "vfio_vm_test: PASS in $((SECONDS - start)) s (boot+guest ${boot_s} s, kernel $kver): $checks guest checks, DmaBackend conformance over VfioDma and ContainerVfioDma passed ($asserts assertions)"
