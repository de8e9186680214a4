#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: the VFIO VM test (tests/vm/vfio_vm_test.sh). Installs what it
# needs from Debian first (QEMU, busybox, cpio, kmod, xz; about 18 MB), then
# boots the guest. The test prints the one-line summary last.
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
    echo "vfio_vm_test: FAIL: missing ${missing[*]}; installing them needs root"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >/tmp/vfio-vm-apt.log 2>&1; then
    tail -n 5 /tmp/vfio-vm-apt.log
    echo "vfio_vm_test: FAIL: apt-get could not install ${missing[*]} (see /tmp/vfio-vm-apt.log)"
    exit 1
  fi
fi
exec bash tests/vm/vfio_vm_test.sh
