#!/usr/bin/env bash
# Reading the prediction log: a release `mlops serve` logs ROWS predicted rows (default 1,000,000:
# the shipped clean production batch repeated, sent by `mlops predict --url` in 1,000-row
# requests) into a copy of the registry store; then `mlops monitor` over that window runs RUNS
# times (default 5) with `drift.features: false` (reading the log: the window's requests read
# from SQLite and parsed into the columns' samples, and the comparisons) and RUNS times as
# configured (the logged rows also through the package's pipeline to the features), and the
# script prints the medians of its `read_log` and `features` times and of the whole command.
# Usage: bench/monitor_log.sh   env: ROWS, RUNS, MLOPS (a binary instead of the release build).
# Needs: a trained model (make train) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${ROWS:-1000000}"
runs="${RUNS:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
out=bench/out/monitor-log
if [ -n "${MLOPS:-}" ]; then
  mlops="$MLOPS"
else
  cargo build --release --bin mlops
  mlops="$CARGO_TARGET_DIR/release/mlops"
fi
[ -f models/registry/registry.db ] || { echo "no registry: run make train first"; exit 1; }
rm -rf "$out" && mkdir -p "$out"
cp models/registry/registry.db "$out/registry.db"
python3 - "$rows" "$out/rows.csv" <<'PY'
import csv, sys
rows, path = int(sys.argv[1]), sys.argv[2]
with open("data/production/clean.csv", newline="") as f:
    reader = csv.DictReader(f)
    header = [c for c in reader.fieldnames if c != "species"]
    batch = [[r[c] for c in header] for r in reader]
with open(path, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    for i in range(rows):
        w.writerow(batch[i % len(batch)])
PY
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$mlops" --quiet --log-dir "$out/logs" serve --store "$out/registry.db" --port "$port" >"$out/serve.out" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  "$mlops" --quiet healthcheck "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
from=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
"$mlops" --quiet --log-dir "$out/logs" predict --url "http://127.0.0.1:$port" --input "$out/rows.csv" \
  --output "$out/predictions.csv" --chunk-rows 1000 --force
# The writer is behind the answers: wait until every row is in the log.
python3 - "$out/registry.db" "$rows" <<'PY'
import sqlite3, sys, time
db, rows = sys.argv[1], int(sys.argv[2])
for _ in range(600):
    n = sqlite3.connect(db).execute("SELECT COALESCE(SUM(rows), 0) FROM prediction_requests").fetchone()[0]
    if n >= rows:
        break
    time.sleep(0.1)
print(f"{n} rows logged")
PY
to=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
printf 'model: models:/penguins-species@champion\nalerts: []\n' >"$out/monitoring.yaml"
printf 'model: models:/penguins-species@champion\nalerts: []\ndrift: {features: false}\n' >"$out/monitoring-read.yaml"
kill $server; wait $server 2>/dev/null || true
for kind in read all; do
  config="$out/monitoring.yaml"; [ "$kind" = read ] && config="$out/monitoring-read.yaml"
  for i in $(seq 1 "$runs"); do
    start=$(date +%s.%N)
    "$mlops" --quiet --json --log-dir "$out/logs" monitor --store "$out/registry.db" --reports "$out/reports" \
      --config "$config" --from "$from" --to "$to" --model models:/penguins-species@champion \
      >"$out/$kind-$i.json" 2>"$out/$kind-$i.err" || true
    end=$(date +%s.%N)
    echo "$start $end" >"$out/wall-$kind-$i"
  done
done
python3 - "$out" "$runs" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
for kind, what in [("read", "drift.features: false"), ("all", "features too")]:
    read, feat, wall, rows = [], [], [], None
    for i in range(1, runs + 1):
        try:
            m = json.load(open(f"{out}/{kind}-{i}.json"))["monitor"]
        except Exception:
            sys.exit(open(f"{out}/{kind}-{i}.err").read())
        rows = m["rows"]
        read.append(m["seconds"]["read_log"]); feat.append(m["seconds"].get("features", 0.0))
        a, b = map(float, open(f"{out}/wall-{kind}-{i}").read().split())
        wall.append(b - a)
    print(f"{rows:,} logged rows, {what}; medians of {runs} runs: read_log {statistics.median(read):.3f} s,"
          f" features {statistics.median(feat):.3f} s, whole command {statistics.median(wall):.3f} s")
PY
