#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the test run (the tuning tests on a real database).
#
#   eval "$(.ci/postgres.sh start DIR)"   # DIR: an empty or missing directory; prints `export RNNKIT_TEST_POSTGRES=...`
#   .ci/postgres.sh stop DIR              # stops the server and removes DIR
#
# start: installs Debian's `postgresql` package with apt-get only when no PostgreSQL binaries are found (then
# as root: without the Debian default cluster), makes a cluster in DIR/data owned by a non-root user (the
# `postgres` system user when run as root: the server refuses to run as root), starts it on 127.0.0.1 at a free
# port (unix socket in DIR, trust authentication: loopback only, nothing else can reach it), creates the
# database rnnkit_test, writes the URL to DIR/url and prints the export line on stdout (everything else goes to
# stderr). The superuser `rnnkit` may create databases: the tests make one per test.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

pg_bin() {  # the newest installed PostgreSQL's bin directory, or nothing
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
  return 0
}

as_owner() {  # run a command as the cluster's owner (postgres when we are root, else ourselves)
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install_postgres() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed and installing it needs root: apt-get install postgresql" >&2
    exit 1
  fi
  echo "postgres.sh: installing Debian's postgresql package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  # postgresql-common first, so that the package's default cluster (on port 5432, started at install) is not made
  apt-get install -y -q --no-install-recommends postgresql-common >&2
  sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
  apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold postgresql >&2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local bin port url tries=0
  bin=$(pg_bin)
  if [ -z "$bin" ]; then
    install_postgres
    bin=$(pg_bin)
    [ -n "$bin" ] || { echo "postgres.sh: no initdb after installing postgresql" >&2; exit 1; }
  fi
  if [ -e "$dir/data" ]; then
    echo "postgres.sh: $dir/data exists; give an empty directory (or run: $0 stop $dir)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" --shell /usr/sbin/nologin postgres
    chown postgres "$dir"
    chmod 755 "$dir"  # mktemp -d makes 700: the owner must reach its cluster
  fi
  as_owner "$bin/initdb" -D "$dir/data" -U rnnkit --auth=trust --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # a free port can be taken between the probe and the bind: try a few
  while :; do
    port=$(free_port)
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=100" \
        start >&2; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 3 ]; then tail -n 20 "$dir/server.log" >&2; exit 1; fi
  done
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U rnnkit rnnkit_test
  url="postgresql+psycopg://rnnkit@127.0.0.1:$port/rnnkit_test"
  echo "$url" >"$dir/url"
  echo "$bin" >"$dir/bin"
  echo "postgres.sh: PostgreSQL ($("$bin/postgres" --version)) at $url, cluster in $dir" >&2
  echo "export RNNKIT_TEST_POSTGRES=$url"
}

stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    local bin
    bin=$(cat "$dir/bin" 2>/dev/null || pg_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >&2 || true
  fi
  rm -rf "$dir"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
