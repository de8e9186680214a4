#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# VfioDma against a real kernel and real (emulated) devices behind an
# emulated VT-d IOMMU, in a QEMU guest (TCG; no KVM needed).
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
# keeps the work directory; VM_TIMEOUT (seconds, default 180).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
start=$SECONDS
work=$(mktemp -d /tmp/pagefrag-vm.XXXXXX)
[[ ${VM_KEEP:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT

fail() {  # reason
  echo "vfio_vm_test: FAIL after $((SECONDS - start)) s: $*"
  exit 1
}

for tool in qemu-system-x86_64 cpio depmod modprobe xz g++ pkg-config apt-get dpkg; do
  command -v "$tool" >/dev/null || fail "missing tool '$tool' (install qemu-system-x86 busybox-static cpio kmod xz-utils g++ pkg-config)"
done
busybox=$(command -v busybox || true)
[[ -n "$busybox" ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  { [[ -x /bin/busybox ]] && busybox=/bin/busybox; }
[[ -x "$busybox" ]] || fail "no busybox (install busybox-static)"

# --- kernel: newest cloud kernel meta-package this machine's apt knows -------
meta=""
for candidate in linux-image-6.12-cloud-amd64 linux-image-cloud-amd64; do
  if apt-cache show "$candidate" >/dev/null 2>&1; then meta=$candidate; break; fi
done
[[ -n "$meta" ]] || fail "apt knows no Debian cloud kernel meta-package (run apt-get update?)"
pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-/{print $2; exit}')
[[ -n "$pkg" ]] || fail "cannot resolve $meta to a kernel package"
(cd "$work" && apt-get download "$pkg" >"$work/apt.log" 2>&1) ||
  fail "apt-get download $pkg failed: $(tail -n 1 "$work/apt.log")"
dpkg -x "$work"/"$pkg"_*.deb "$work/kernel" || fail "dpkg -x of $pkg failed"
kver=$(ls "$work/kernel/lib/modules" | head -n 1)
vmlinuz="$work/kernel/boot/vmlinuz-$kver"
[[ -f "$vmlinuz" ]] || fail "no vmlinuz in $pkg"

# --- initramfs ----------------------------------------------------------------
initrd_root="$work/initrd"
mkdir -p "$initrd_root"/{bin,proc,sys,dev,modules}
cp "$busybox" "$initrd_root/bin/busybox"
ln -s busybox "$initrd_root/bin/sh"
depmod -b "$work/kernel" "$kver" || fail "depmod failed"
for module in vfio vfio_iommu_type1 vfio-pci; do  # one at a time: extra names are parameters
  modprobe -d "$work/kernel" -S "$kver" --show-depends "$module" >>"$work/deps" 2>&1 ||
    fail "modprobe --show-depends $module: $(tail -n 1 "$work/deps")"
done
: >"$initrd_root/modules/order"
while read -r kind path _; do
  [[ $kind == insmod ]] || continue
  name=$(basename "$path")
  case "$name" in
    *.xz) xz -dc "$path" >"$initrd_root/modules/${name%.xz}"; name=${name%.xz} ;;
    *.zst) fail "zstd-compressed modules are not handled ($name)" ;;
    *) cp "$path" "$initrd_root/modules/$name" ;;
  esac
  grep -qx "$name" "$initrd_root/modules/order" || echo "$name" >>"$initrd_root/modules/order"
done <"$work/deps"

# The guest program, static, from this tree.
absl_libs=$(pkg-config --static --libs absl_statusor absl_str_format) ||
  fail "pkg-config finds no Abseil (install libabsl-dev)"
# shellcheck disable=SC2086
g++ -std=c++20 -O1 -static -Wall -Wextra -Wpedantic -Werror -DFMT_HEADER_ONLY \
  -I "$root/include" -I "$root" "$root/tests/vm/vfio_vm_guest.cc" -o "$initrd_root/guest" \
  $absl_libs -pthread 2>"$work/build.log" || { tail -n 20 "$work/build.log"; fail "building the guest program failed"; }

cat >"$initrd_root/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m || echo "vfio-vm: insmod $m failed"; done
find_dev() {  # vendor device -> BDF
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor)" = "$1" ] && [ "$(cat $d/device)" = "$2" ] && { basename $d; return; }
  done
}
bind_vfio() {
  d=/sys/bus/pci/devices/$1
  echo vfio-pci > $d/driver_override
  [ -e $d/driver ] && echo $1 > $d/driver/unbind
  echo $1 > /sys/bus/pci/drivers_probe
}
edu=$(find_dev 0x1234 0x11e8)
nic=$(find_dev 0x8086 0x10d3)
echo "vfio-vm: edu at $edu, e1000e at $nic"
bind_vfio $edu
bind_vfio $nic
/guest $edu $nic
echo "PAGEFRAG-VM-EXIT $?"
poweroff -f
INIT
chmod +x "$initrd_root/init"
(cd "$initrd_root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz" ||
  fail "packing the initramfs failed"

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
echo "vfio_vm_test: PASS in $((SECONDS - start)) s (boot+guest ${boot_s} s, kernel $kver): $checks guest checks, DmaBackend conformance over VfioDma passed ($asserts assertions)"
