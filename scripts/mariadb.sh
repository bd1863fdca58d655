# shellcheck shell=bash
# Private MariaDB for the test suite. Sourced by scripts/test-deps.sh, which calls mariadb_start and
# traps mariadb_stop.
#
# mariadb_start
#   If MOGWAY_TEST_MYSQL_DSN is already set, it is used as is and nothing is started.
#   Otherwise it installs Debian's mariadb-server when no mariadbd/mysqld binary exists (apt-get, with
#   sudo only when not root; the package's own service is kept from starting), creates a data directory under a fresh `mktemp -d`, and starts mariadbd
#   there, listening on 127.0.0.1 on a free port and on a socket in the same directory. A user
#   `mogway`@`127.0.0.1` with a random password and all privileges is created at start-up (--init-file),
#   so the tests connect over TCP with a password like any tracker would. Then it exports
#
#     MOGWAY_TEST_MYSQL_DSN="mogway:<password>@tcp(127.0.0.1:<port>)/"
#
#   a go-sql-driver/mysql DSN with an empty database name: the tests create one database per test
#   (mogway_test_<random>), put its name after the "/" and drop it when the test ends. A DSN given from
#   outside must have the same form (user with CREATE/DROP DATABASE rights, "/" followed by nothing or by
#   "?params").
# mariadb_stop
#   Shuts the private server down (mariadb-admin shutdown, then SIGTERM, then SIGKILL, each bounded) and
#   removes its directory. It does nothing when mariadb_start started nothing.

_mogway_mariadb_dir=""
_mogway_mariadb_pid=""

_mogway_mariadb_log() { echo "mariadb.sh: $*" >&2; }

# _mogway_mariadb_find NAME...: prints the first of the named programs found in PATH or the sbin dirs.
_mogway_mariadb_find() {
  local n d
  for n in "$@"; do
    if command -v "$n" >/dev/null 2>&1; then command -v "$n"; return 0; fi
    for d in /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin; do
      if [ -x "$d/$n" ]; then echo "$d/$n"; return 0; fi
    done
  done
  return 1
}

# shellcheck source=scripts/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

_mogway_mariadb_install() {
  _mogway_mariadb_log "mariadbd is not installed; installing mariadb-server (this takes a minute)"
  mogway_apt_install mariadb-server mariadb-client && return 0
  _mogway_mariadb_log "install MariaDB or set MOGWAY_TEST_MYSQL_DSN"
  return 1
}

# _mogway_mariadb_free_port: prints a TCP port on 127.0.0.1 that nothing listens on. It is taken
# below Linux's ephemeral range (32768-60999 by default): a port in that range may be the local end of
# one of the tests' own loopback connections, which a connect probe does not see and bind refuses.
_mogway_mariadb_free_port() {
  local port i
  for i in $(seq 1 50); do
    port=$(( 20000 + (RANDOM % 12000) ))
    # A successful connect means the port is taken.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

mariadb_start() {
  if [ -n "${MOGWAY_TEST_MYSQL_DSN:-}" ]; then
    _mogway_mariadb_log "using MOGWAY_TEST_MYSQL_DSN from the environment"
    return 0
  fi
  local mysqld installdb admin
  if ! mysqld=$(_mogway_mariadb_find mariadbd mysqld); then
    _mogway_mariadb_install || return 1
    mysqld=$(_mogway_mariadb_find mariadbd mysqld) || { _mogway_mariadb_log "mariadbd still missing after install"; return 1; }
  fi
  installdb=$(_mogway_mariadb_find mariadb-install-db mysql_install_db) || { _mogway_mariadb_log "mariadb-install-db missing"; return 1; }
  admin=$(_mogway_mariadb_find mariadb-admin mysqladmin) || admin=""

  _mogway_mariadb_dir=$(mktemp -d "${TMPDIR:-/tmp}/mogway-mariadb.XXXXXX")
  local dir=$_mogway_mariadb_dir user port pass
  user=$(id -un)
  port=$(_mogway_mariadb_free_port) || { _mogway_mariadb_log "no free port"; return 1; }
  pass="t$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

  if ! "$installdb" --no-defaults --datadir="$dir/data" --user="$user" --skip-test-db \
      --auth-root-authentication-method=socket >"$dir/install.log" 2>&1; then
    _mogway_mariadb_log "mariadb-install-db failed:"; cat "$dir/install.log" >&2
    return 1
  fi
  cat >"$dir/init.sql" <<EOF
CREATE USER IF NOT EXISTS 'mogway'@'127.0.0.1' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON *.* TO 'mogway'@'127.0.0.1';
EOF
  "$mysqld" --no-defaults --user="$user" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --pid-file="$dir/mysqld.pid" --bind-address=127.0.0.1 --port="$port" --skip-name-resolve \
    --init-file="$dir/init.sql" --log-error="$dir/error.log" --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=48M --max-connections=500 --skip-log-bin \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci </dev/null >/dev/null 2>&1 &
  _mogway_mariadb_pid=$!

  # Wait (at most 60 s) until the server answers on its socket and accepts TCP connections.
  local i ready=""
  for i in $(seq 1 600); do
    if ! kill -0 "$_mogway_mariadb_pid" 2>/dev/null; then
      _mogway_mariadb_log "mariadbd exited during start-up:"; tail -n 30 "$dir/error.log" >&2
      _mogway_mariadb_pid=""
      return 1
    fi
    if [ -n "$admin" ]; then
      if "$admin" --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -umogway -p"$pass" ping >/dev/null 2>&1; then ready=1; break; fi
    elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      ready=1; break
    fi
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    _mogway_mariadb_log "mariadbd did not answer within 60 s:"; tail -n 30 "$dir/error.log" >&2
    return 1
  fi
  export MOGWAY_TEST_MYSQL_DSN="mogway:$pass@tcp(127.0.0.1:$port)/"
  _mogway_mariadb_log "private MariaDB on 127.0.0.1:$port (pid $_mogway_mariadb_pid, data in $dir)"
}

mariadb_stop() {
  local dir=$_mogway_mariadb_dir pid=$_mogway_mariadb_pid i admin
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    if admin=$(_mogway_mariadb_find mariadb-admin mysqladmin); then
      "$admin" --no-defaults --socket="$dir/mysqld.sock" -uroot --connect-timeout=5 shutdown >/dev/null 2>&1 || true
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      _mogway_mariadb_log "mariadbd (pid $pid) ignored SIGTERM for 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  fi
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    rm -rf -- "$dir"
  fi
  _mogway_mariadb_dir=""
  _mogway_mariadb_pid=""
}
