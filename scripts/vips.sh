#!/usr/bin/env bash
# Runs the command given as arguments with libvips' development files installed: the image transforms
# (package imaging, build tag vips) link libvips through cgo. Installs the Debian package libvips-dev
# with apt-get (scripts/apt.sh) when pkg-config does not find vips; fails, saying why, when it cannot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=scripts/apt.sh
source "$here/apt.sh"

if ! pkg-config --exists vips 2>/dev/null; then
  mogway_apt_install libvips-dev pkg-config || {
    echo "vips.sh: libvips-dev is needed to build with -tags vips; install it, or build with 'make build TAGS='" >&2
    exit 1
  }
fi
exec "$@"
