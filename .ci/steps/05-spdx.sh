#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every source file carries the project's SPDX licence line.
exec "$(dirname "${BASH_SOURCE[0]}")/../../scripts/check_spdx.sh"
