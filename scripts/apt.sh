# shellcheck shell=bash
# apt-get installs for the test scripts. Sourced by scripts/test-deps.sh and scripts/mariadb.sh.
#
# mogway_apt_install PACKAGE...
#   Installs the Debian packages with apt-get (sudo -n when not root) without starting their services:
#   mariadb-server and prometheus would start (and leave running) their own servers, so a temporary
#   policy-rc.d that denies service starts keeps the install to files only. Returns non-zero, saying
#   why on stderr, when the packages cannot be installed.

_mogway_apt_log() { echo "apt.sh: $*" >&2; }

mogway_apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      _mogway_apt_log "cannot install $*: not root and no sudo"
      return 1
    fi
    sudo="sudo -n"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    _mogway_apt_log "cannot install $*: apt-get is missing"
    return 1
  fi
  _mogway_apt_log "installing $* with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
  local policy=/usr/sbin/policy-rc.d made_policy="" rc=0
  if [ ! -e "$policy" ]; then
    if printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy"; then
      made_policy=1
    fi
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  if [ -n "$made_policy" ]; then
    $sudo rm -f "$policy"
  fi
  return "$rc"
}
