#!/usr/bin/env bash
# Serving only, two release builds against each other (bench/pair.sh runs every workload): each
# round starts OLD then NEW on a copy of the store, warms up, and measures /invocations with one
# row under 32 connections and with 1,000 rows under 2 (wrk, 8 s each). Prints requests/s per
# round; compare the medians of the NEW/OLD ratios.
# Usage: bench/serve_pair.sh OLD_MLOPS NEW_MLOPS [ROUNDS]   (needs a champion: make train; wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
old="$1" new="$2" rounds="${3:-5}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import json, sys
b=json.load(open("docs/examples/invocations.json"))
one={"dataframe_split":{"columns":b["dataframe_split"]["columns"],"data":b["dataframe_split"]["data"][:1]}}
json.dump(one,open(sys.argv[1] + "/one.json","w"))
big={"dataframe_split":{"columns":b["dataframe_split"]["columns"],"data":(b["dataframe_split"]["data"]*400)[:1000]}}
json.dump(big,open(sys.argv[1] + "/big.json","w"))
PY
for round in $(seq "$rounds"); do
  for bin in "$old" "$new"; do
    rm -f $tmp/store.db*; sqlite3 models/registry/registry.db ".backup $tmp/store.db" 2>/dev/null || cp models/registry/registry.db $tmp/store.db
    port=$((18000 + RANDOM % 1000))
    "$bin" --quiet --log-dir $tmp/logs serve --port $port --store $tmp/store.db > /dev/null 2>&1 &
    pid=$!
    for i in $(seq 50); do curl -sf localhost:$port/ping >/dev/null && break; sleep 0.1; done
    wrk -t2 -c2 -d1s -s bench/post_json.lua "http://127.0.0.1:$port/invocations" -- $tmp/one.json >/dev/null
    one=$(wrk -t2 -c32 -d8s -s bench/post_json.lua "http://127.0.0.1:$port/invocations" -- $tmp/one.json | awk '/Requests\/sec/ {print $2}')
    big=$(wrk -t2 -c2 -d8s -s bench/post_json.lua "http://127.0.0.1:$port/invocations" -- $tmp/big.json | awk '/Requests\/sec/ {print $2}')
    kill -TERM $pid; wait $pid || true
    echo "round $round $(basename "$bin") one_row_rps=$one batch1000_rps=$big"
  done
done
