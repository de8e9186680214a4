# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the tests that build code outside Bazel from an install prefix
# (tests/*/pkg_config_build_test.sh). The test sets `root` (the source tree)
# first, then:
#   outside_build_setup NAME   a scratch directory $work (removed on exit),
#                              pagefrag's C++ library installed to
#                              $work/prefix (scripts/install.sh --no-c),
#                              PKG_CONFIG_PATH set;
#   fail MESSAGE               prints "FAIL: MESSAGE" and exits 1;
#   require_public_headers FILE...
#                              fails when FILE includes a pagefrag internal/
#                              header, anything from examples/mana/ or tests/,
#                              or a pagefrag header the prefix does not have;
#                              sets $uses to the public headers included.

fail() {
  echo "FAIL: $*"
  exit 1
}

outside_build_setup() {  # name
  work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pagefrag-$1.XXXXXX")
  # shellcheck disable=SC2064  # $work is fixed now
  trap "rm -rf '$work'" EXIT
  bash "$root/scripts/install.sh" --prefix "$work/prefix" --no-c >/dev/null
  export PKG_CONFIG_PATH=$work/prefix/share/pkgconfig
}

require_public_headers() {  # files...
  if grep -nE '#include [<"](pagefrag/.*internal/|examples/mana/|tests/)' "$@"; then
    fail "non-public headers included (above)"
  fi
  uses=$(grep -ohE '#include [<"]pagefrag/[^">]+' "$@" | sed -E 's/#include [<"]//' | sort -u)
  local header
  for header in $uses; do
    [[ -f "$work/prefix/include/$header" ]] || fail "$header is not an installed header"
  done
}
