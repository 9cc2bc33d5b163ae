#!/usr/bin/env bash
# The closed loop of `make lifecycle`, stage by stage, in a project of its own (build/lifecycle:
# a copy of configs/ and data/, so your registry is left alone):
#   1. train the champion;
#   2. deploy it on this machine (127.0.0.1:$PORT, behind the blue/green router);
#   3. send the new field season (data/production/shifted.csv) with its actual labels, while a
#      load generator keeps the endpoint busy;
#   4. monitor: drift and the accuracy drop open alerts;
#   5. `mlops lifecycle run`: retrain on the newest rows, gate, promote; the endpoint follows;
#   6. a rollback and back, then retention retires the oldest version;
#   7. `mlops lifecycle status`, and the load generator's failures (none).
# Usage: scripts/lifecycle-demo.sh MLOPS [PORT]
set -euo pipefail
mlops="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
port="${2:-8767}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/build/lifecycle"
rm -rf "$dir" && mkdir -p "$dir/data" "$dir/logs"
cp -r "$root/configs" "$dir/"
cp -r "$root/data/raw" "$root/data/production" "$dir/data/"
cd "$dir"
stage() { printf '\n== %s\n' "$*"; }

cleanup() {
  touch "$dir/stop"
  wait 2>/dev/null || true
  "$mlops" --quiet deploy stop --port "$port" >/dev/null 2>&1 || true
}
trap cleanup EXIT

stage "1/7 train the champion (build/lifecycle)"
"$mlops" --quiet train >logs/train.out 2>&1 || { cat logs/train.out; exit 1; }
"$mlops" lifecycle status

stage "2/7 deploy it on 127.0.0.1:$port"
"$mlops" deploy local --port "$port"

stage "3/7 the new season's batch with its labels, while a load generator keeps the endpoint busy"
: >load.ok; : >load.failed
(
  while [ ! -f stop ]; do
    # Whole records, as a caller sends what it has (the clean batch, 50 rows a request).
    if "$mlops" --quiet monitor replay --url "http://127.0.0.1:$port" --input data/production/clean.csv \
      --rows-per-request 50 >/dev/null 2>>logs/load.err; then echo >>load.ok; else echo >>load.failed; fi
  done
) &
from=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
"$mlops" monitor replay --url "http://127.0.0.1:$port" --input data/production/shifted.csv --actual species

stage "4/7 monitor the window: alerts open"
code=0; "$mlops" monitor --from "$from" --check || code=$?
echo "monitor --check exited $code (2: a critical alert is open)"

stage "5/7 mlops lifecycle run: retrain, gate, promote; the endpoint follows"
code=0; "$mlops" lifecycle run || code=$?
echo "lifecycle run exited $code"
"$mlops" deploy status

stage "6/7 a rollback, forward again, and retention keeping one version"
"$mlops" lifecycle rollback --reason "checking the new season by hand"
"$mlops" lifecycle rollback --reason "the new season it is"
sed -e 's/^  dataset_drift: true/  dataset_drift: false/' \
  -e 's/^  performance_drop: .*/  performance_drop: null/' \
  -e 's/^  keep_last: 5/  keep_last: 1/' configs/lifecycle.yaml >configs/lifecycle-keep-one.yaml
"$mlops" lifecycle --config configs/lifecycle-keep-one.yaml run

stage "7/7 where it stands"
touch stop; wait 2>/dev/null || true
"$mlops" lifecycle status
"$mlops" registry history penguins-species | tail -n 6
ok=$(wc -l <load.ok); failed=$(wc -l <load.failed)
echo "load generator: $ok batch(es) answered, $failed failed during the loop"
[ "$failed" -eq 0 ] || { cat logs/load.err; exit 1; }
