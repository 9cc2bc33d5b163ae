#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server for the store tests: a cluster in a temporary
# folder on a free loopback port (as the `postgres` user when run as root, since PostgreSQL refuses
# root), password authentication, fsync off. The command sees MLOPS_TEST_PG_URL (the superuser's
# URL, no database) and MLOPS_TEST_PG_PASSWORD; each store test makes a database of its own there
# (mlops_core::testing::TestStore). The server is stopped and its folder removed however the
# command ends; the command's exit code is this script's.
set -euo pipefail

bin="${MLOPS_PG_BIN:-}"
if [ -z "$bin" ]; then
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    bin=$(pg_config --bindir)
  else
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
fi
[ -x "$bin/initdb" ] || { echo "with-postgres: no PostgreSQL server binaries (set MLOPS_PG_BIN, or install postgresql)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/mlops-test-pg.XXXXXX")
password="test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
as=()
if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi
printf '%s' "$password" > "$dir/pw"
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$dir"

stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 --pwfile="$dir/pw" -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
started=
for _ in 1 2 3 4 5; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300" start >/dev/null; then
    started=1
    break
  fi
done
[ -n "$started" ] || { echo "with-postgres: the server did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }

export MLOPS_TEST_PG_URL="postgres://postgres@127.0.0.1:$port"
export MLOPS_TEST_PG_PASSWORD="$password"
set +e
"$@"
code=$?
set -e
exit $code
