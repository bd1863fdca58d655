#!/usr/bin/env bash
# `make bench` / `make bench-quick`: installs the reference (Debian's nginx), the load generator (wrk) and
# strace (system calls per request) when missing, then runs mogway and nginx side by side (bench/mogbench)
# and writes bench/results/<date>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v strace >/dev/null 2>&1 || need+=(strace)
# The image rows' reference: nginx's image_filter module (its `load_module` path in bench/mogbench/image.go).
[ -e /usr/lib/nginx/modules/ngx_http_image_filter_module.so ] || need+=(libnginx-mod-http-image-filter)
# The lookup rows' peer: nginx asking the tracker through its Lua module (bench/mogbench/lookup.go).
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need+=(libnginx-mod-http-lua)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} from Debian..." >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
  # Debian starts the packaged nginx on :80; the benchmark runs its own instance.
  $sudo systemctl stop nginx >/dev/null 2>&1 || $sudo service nginx stop >/dev/null 2>&1 || true
fi
[ -x bin/mogway ] || make build
exec go run ./bench/mogbench "$@"
