#!/usr/bin/env bash
# Runs the command given as arguments (the test suite) with everything the tests need installed and
# started: a private MariaDB on 127.0.0.1 in a temporary directory, exported to the tests as
# MOGWAY_TEST_MYSQL_DSN and torn down when the command exits; promtool (Debian package prometheus),
# which lints every /metrics endpoint and the example alert rules; Chromium, which drives the
# status page tests; and nginx with its Lua module, against which the benchmark's reference
# configurations are checked (bench/mogbench: `nginx -t`, and the peer that asks the tracker run on a
# real cluster). Missing tools are installed with apt-get (sudo when not root), their services not
# started; a tool that cannot be installed makes only its tests skip, saying why. The command then runs under
# scripts/vips.sh, which installs libvips-dev: the image engine links it, so without it the build fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=scripts/apt.sh
source "$here/apt.sh"

_mogway_tool_log() { echo "test-deps.sh: $*" >&2; }

# _mogway_tools: promtool, chromium, nginx and its Lua module, installed when missing.
_mogway_tools() {
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  [ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || missing+=(libnginx-mod-http-lua)
  if [ ${#missing[@]} -gt 0 ]; then
    mogway_apt_install "${missing[@]}" || _mogway_tool_log "could not install ${missing[*]}; the tests that need them will skip"
  fi
}

_mogway_tools
if [ -x "$here/mariadb.sh" ]; then
  # shellcheck source=/dev/null
  source "$here/mariadb.sh"
  mariadb_start
  trap mariadb_stop EXIT
fi
"$here/vips.sh" "$@"
