# SPDX-License-Identifier: BSD-3-Clause
# Sourced by CI steps: ci_ensure_packages TAG PKG... installs the Debian
# packages among PKG that are not installed yet (apt-get, root needed). On
# failure it prints one "TAG: FAIL: ..." line (and the apt log's tail) and
# returns 1; the apt log is /tmp/TAG-apt.log.

ci_ensure_packages() {
  local tag=$1 pkg log
  shift
  local missing=()
  for pkg in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] ||
      missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "$tag: FAIL: missing ${missing[*]}; installing them needs root"
    return 1
  fi
  log=/tmp/$tag-apt.log
  if ! DEBIAN_FRONTEND=noninteractive \
    bash -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"' \
    _ "${missing[@]}" >"$log" 2>&1; then
    tail -n 5 "$log"
    echo "$tag: FAIL: apt-get could not install ${missing[*]} (see $log)"
    return 1
  fi
}
