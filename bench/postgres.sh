#!/usr/bin/env bash
# The PostgreSQL source against pandas: one table of ROWS rows x 10 columns (bigint, integer,
# three double precision, numeric(12,2), text, varchar, date, timestamp; seeded) read whole into
# a frame by `mlops ingest --config` (a server-side cursor, binary protocol) and by
# pandas.read_sql with SQLAlchemy and psycopg 3, on one throwaway server started here (initdb in
# a temporary folder, a free port, stopped at the end). Paired runs in alternating order; prints
# the median wall time and peak memory of each and the ratio (toolkit / pandas: below 1 is faster).
#
# Usage: bench/postgres.sh [RUNS]        (ROWS=1000000 by default; `make release` first)
# Needs: PostgreSQL's server binaries (initdb, pg_ctl: Debian's postgresql package), python3 for the
# reference's environment (bench/requirements-postgres.txt, made here once), /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
rows="${ROWS:-1000000}"
mlops="${MLOPS:-${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}/release/mlops}"
[ -x "$mlops" ] || { echo "no toolkit at $mlops: make release"; exit 1; }
bin="${MLOPS_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$bin/initdb" ] || { echo "no PostgreSQL server binaries (set MLOPS_PG_BIN, or apt install postgresql)"; exit 1; }

source bench/lib.sh
venv=$(bench_venv bench/requirements-postgres.txt postgres)

# The server: a cluster of its own, as the tests make one (as the postgres user when root).
dir="$(mktemp -d /tmp/mlops-pg-bench.XXXXXX)"
as=()
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); chown postgres:postgres "$dir"; fi
export PGPASSWORD=bench
echo "$PGPASSWORD" >"$dir/pw" && chmod 644 "$dir/pw"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 --pwfile="$dir/pw" -E UTF8 --no-sync >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=256MB" start >/dev/null
trap '"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
psql() { "$bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE bench"
psql -d bench -c "SELECT setseed(0.42);
  CREATE TABLE wide AS SELECT g::bigint AS id, (g % 1000)::int4 AS grp, random() * 1000 AS x1,
    random() AS x2, (random() - 0.5) * 1e6 AS x3, round((random() * 10000)::numeric, 2)::numeric(12,2) AS price,
    'label ' || (g % 97) AS label, substr(md5(g::text), 1, 8)::varchar(8) AS code,
    date '2020-01-01' + (g % 1500) AS day, timestamp '2020-01-01' + g * interval '1 minute' AS at
  FROM generate_series(1, $rows) AS g;"
psql -d bench -c "VACUUM ANALYZE wide"
url="postgres://postgres@127.0.0.1:$port/bench"
config="$dir/bench.yaml"
cat >"$config" <<YAML
sources:
  wide:
    postgres: {url: "$url", table: wide, password_env: PGPASSWORD}
YAML

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== server: $("$bin/postgres" --version), $rows rows x 10 columns"
echo "== python: $("$venv/bin/python" -c 'import sys, pandas, sqlalchemy, psycopg; print(f"Python {sys.version.split()[0]}, pandas {pandas.__version__}, SQLAlchemy {sqlalchemy.__version__}, psycopg {psycopg.__version__}")')"
python3 bench/paired.py "$runs" 0 rows "mlops ingest (cursor)" "pandas.read_sql (psycopg 3)" \
  -- "$mlops" --quiet --log-dir "$dir/logs" --json ingest --config "$config" \
  -- "$venv/bin/python" bench/reference_postgres_pandas.py "$url" wide
