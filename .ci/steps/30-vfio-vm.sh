#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CI step: the VFIO VM test (tests/vm/vfio_vm_test.sh). Installs what it
# needs from Debian first (QEMU, busybox, cpio, kmod, xz; about 18 MB), then
# boots the guest. The test prints the one-line summary last.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

source .ci/lib/packages.sh
ci_ensure_packages vfio_vm_test qemu-system-x86 busybox-static cpio kmod xz-utils || exit 1
exec bash tests/vm/vfio_vm_test.sh
