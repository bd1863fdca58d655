#!/usr/bin/env bash
# Runs the command given as arguments (the test suite) with everything the tests need installed and
# started: today a private MariaDB on 127.0.0.1 in a temporary directory, exported to the tests as
# MOGWAY_TEST_MYSQL_DSN. It is torn down when the command exits.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/mariadb.sh" ]; then
  # shellcheck source=/dev/null
  source "$here/mariadb.sh"
  mariadb_start
  trap mariadb_stop EXIT
fi
"$@"
