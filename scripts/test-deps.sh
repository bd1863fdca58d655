#!/usr/bin/env bash
# Runs the command given as arguments (the test suite) with everything the tests need installed and
# started: a private MariaDB on 127.0.0.1 in a temporary directory, exported to the tests as
# MOGWAY_TEST_MYSQL_DSN and torn down when the command exits; promtool (Debian package prometheus),
# which lints every /metrics endpoint and the example alert rules; and Chromium, which drives the
# status page tests. Missing tools are installed with apt-get (sudo when not root); a tool that
# cannot be installed makes only its tests skip, saying why.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

_mogway_tool_log() { echo "test-deps.sh: $*" >&2; }

# _mogway_apt_install PACKAGE...: installs Debian packages without starting their services.
_mogway_apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      _mogway_tool_log "cannot install $*: not root and no sudo"
      return 1
    fi
    sudo="sudo -n"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    _mogway_tool_log "cannot install $*: apt-get is missing"
    return 1
  fi
  _mogway_tool_log "installing $* with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
  # The prometheus package would start (and leave running) a Prometheus server: a temporary
  # policy-rc.d that denies service starts keeps the install to files only.
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

# _mogway_tools: promtool and chromium, installed when missing.
_mogway_tools() {
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    _mogway_apt_install "${missing[@]}" || _mogway_tool_log "could not install ${missing[*]}; the tests that need them will skip"
  fi
}

_mogway_tools
if [ -x "$here/mariadb.sh" ]; then
  # shellcheck source=/dev/null
  source "$here/mariadb.sh"
  mariadb_start
  trap mariadb_stop EXIT
fi
"$@"
