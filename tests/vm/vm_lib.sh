# SPDX-License-Identifier: BSD-3-Clause
# Shared by the VM tests (vfio_vm_test.sh, nic_vm_test.sh); source it, then
# call the functions. Each needs $work (a scratch directory) and a fail()
# function of the caller's (prints the FAIL line and exits).
#
#   vm_check_tools            the host tools every VM test needs
#   vm_fetch_kernel DIR       Debian's cloud kernel into DIR (kernel/, deb);
#                             sets kver and vmlinuz. Reuses DIR when it holds one.
#   vm_initrd_base ROOT DIR MODULE...
#                             busybox, /bin/sh and the modules (with their
#                             dependencies, decompressed) into ROOT/modules,
#                             their load order in ROOT/modules/order.
#   vm_init_prelude           prints the start of an /init script: mounts,
#                             insmod in order, find_dev VENDOR DEVICE [NTH],
#                             bind_vfio BDF.
#   vm_build_guest SRC OUT    a static guest program from this tree.
#   vm_pack ROOT OUT          an initramfs (gzip'd newc cpio) of ROOT.

vm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

vm_check_tools() {
  local tool
  for tool in qemu-system-x86_64 cpio depmod modprobe xz g++ pkg-config apt-get dpkg; do
    command -v "$tool" >/dev/null ||
      fail "missing tool '$tool' (install qemu-system-x86 busybox-static cpio kmod xz-utils g++ pkg-config)"
  done
  vm_busybox=$(command -v busybox || true)
  [[ -n "$vm_busybox" ]] && file -L "$vm_busybox" 2>/dev/null | grep -q 'statically linked' ||
    { [[ -x /bin/busybox ]] && vm_busybox=/bin/busybox; }
  [[ -x "$vm_busybox" ]] || fail "no busybox (install busybox-static)"
}

vm_fetch_kernel() {  # dir
  local dir=$1 meta="" candidate pkg
  mkdir -p "$dir"
  if ! compgen -G "$dir/kernel/boot/vmlinuz-*" >/dev/null; then
    for candidate in linux-image-6.12-cloud-amd64 linux-image-cloud-amd64; do
      if apt-cache show "$candidate" >/dev/null 2>&1; then meta=$candidate; break; fi
    done
    [[ -n "$meta" ]] || fail "apt knows no Debian cloud kernel meta-package (run apt-get update?)"
    pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-/{print $2; exit}')
    [[ -n "$pkg" ]] || fail "cannot resolve $meta to a kernel package"
    (cd "$dir" && apt-get download "$pkg" >"$dir/apt.log" 2>&1) ||
      fail "apt-get download $pkg failed: $(tail -n 1 "$dir/apt.log")"
    dpkg -x "$dir"/"$pkg"_*.deb "$dir/kernel" || fail "dpkg -x of $pkg failed"
  fi
  kver=$(ls "$dir/kernel/lib/modules" | head -n 1)
  vmlinuz="$dir/kernel/boot/vmlinuz-$kver"
  [[ -f "$vmlinuz" ]] || fail "no vmlinuz in $dir/kernel"
  vm_kernel_dir="$dir/kernel"
}

vm_initrd_base() {  # root module...
  local root=$1 module kind path name deps
  shift
  mkdir -p "$root"/{bin,proc,sys,dev,modules}
  cp "$vm_busybox" "$root/bin/busybox"
  ln -sf busybox "$root/bin/sh"
  depmod -b "$vm_kernel_dir" "$kver" || fail "depmod failed"
  deps=$(mktemp "$work/deps.XXXXXX")
  for module in "$@"; do  # one at a time: extra names are parameters
    modprobe -d "$vm_kernel_dir" -S "$kver" --show-depends "$module" >>"$deps" 2>&1 ||
      fail "modprobe --show-depends $module: $(tail -n 1 "$deps")"
  done
  : >"$root/modules/order"
  while read -r kind path _; do
    [[ $kind == insmod ]] || continue
    name=$(basename "$path")
    case "$name" in
      *.xz) xz -dc "$path" >"$root/modules/${name%.xz}"; name=${name%.xz} ;;
      *.zst) fail "zstd-compressed modules are not handled ($name)" ;;
      *) cp "$path" "$root/modules/$name" ;;
    esac
    grep -qx "$name" "$root/modules/order" || echo "$name" >>"$root/modules/order"
  done <"$deps"
}

vm_init_prelude() {
  cat <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m || echo "vm: insmod $m failed"; done
find_dev() {  # vendor device [nth, from 1] -> BDF
  n=0
  for d in /sys/bus/pci/devices/*; do
    if [ "$(cat $d/vendor)" = "$1" ] && [ "$(cat $d/device)" = "$2" ]; then
      n=$((n + 1))
      [ "$n" = "${3:-1}" ] && { basename $d; return; }
    fi
  done
}
bind_vfio() {
  d=/sys/bus/pci/devices/$1
  echo vfio-pci > $d/driver_override
  [ -e $d/driver ] && echo $1 > $d/driver/unbind
  echo $1 > /sys/bus/pci/drivers_probe
}
INIT
}

vm_build_guest() {  # src out [extra g++ args...]
  local src=$1 out=$2 absl_libs
  shift 2
  absl_libs=$(pkg-config --static --libs absl_statusor absl_str_format) ||
    fail "pkg-config finds no Abseil (install libabsl-dev)"
  # shellcheck disable=SC2086
  g++ -std=c++20 -O2 -static -Wall -Wextra -Wpedantic -Werror -DFMT_HEADER_ONLY \
    -I "$vm_root/include" -I "$vm_root" "$@" "$src" -o "$out" \
    $absl_libs -pthread 2>"$work/build.log" ||
    { tail -n 20 "$work/build.log"; fail "building the guest program $(basename "$src") failed"; }
}

vm_pack() {  # root out
  (cd "$1" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$2" ||
    fail "packing the initramfs failed"
}
