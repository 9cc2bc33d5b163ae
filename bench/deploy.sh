#!/usr/bin/env bash
# Local deployments (step 19), release build: what the router in front of a `mlops deploy local`
# endpoint costs, and how long a blue/green replacement takes.
# 1. Deploys the model on a free port (prediction log into a copy of the registry store), then
#    drives 1-row POST /invocations with wrk (2 threads; 2 and 32 connections; DURATION seconds)
#    once through the endpoint (router + server) and once straight at the server behind it.
# 2. Replaces the deployment REPLACES times with the same version and reports the median time of
#    `mlops deploy local` (start, readiness, switch, drain of the old server).
# Usage: bench/deploy.sh   env: DURATION (default 10), CONNECTIONS (default "2 32"), REPLACES
#   (default 5), MODEL (default models:/penguins-species@champion), MLOPS (a binary instead of
#   building the release one). Needs a trained model (make train), python3, wrk (installed with
#   apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-10}"
connections="${CONNECTIONS:-2 32}"
replaces="${REPLACES:-5}"
model="${MODEL:-models:/penguins-species@champion}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
out=bench/out/deploy

if [ -n "${MLOPS:-}" ]; then
  mlops="$MLOPS"
else
  cargo build --release --bin mlops
  mlops="$CARGO_TARGET_DIR/release/mlops"
fi
if ! command -v wrk >/dev/null; then
  as_root=$([ "$(id -u)" = 0 ] || echo sudo)
  $as_root apt-get update -qq && $as_root apt-get install -y -qq wrk >/dev/null
fi
rm -rf "$out" && mkdir -p "$out"

# A config whose store is a copy of the registry's (the prediction log grows there, not in yours)
# and whose logs stay under bench/out.
python3 - "$out" <<'PY'
import re, sqlite3, sys
out = sys.argv[1]
config = open("configs/deployment.yaml").read()
store = re.search(r"^store:\s*(\S+)", config, re.M).group(1)
sqlite3.connect(store).backup(sqlite3.connect(f"{out}/registry.db"))
config = re.sub(r"^store:.*$", f"store: {out}/registry.db", config, flags=re.M)
config = re.sub(r"^  logs: .*$", f"  logs: {out}/logs", config, flags=re.M)
open(f"{out}/deployment.yaml", "w").write(config)
PY
run() { "$mlops" --quiet --log-dir "$out/logs" "$@"; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { run deploy stop --config "$out/deployment.yaml" >/dev/null 2>&1 || true; rm -f "$out"/registry.db*; }
trap cleanup EXIT

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
run deploy local --config "$out/deployment.yaml" --model "$model" --port "$port" > /dev/null
backend=$(run --json deploy status --config "$out/deployment.yaml" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["serving"][0]["deployment"]["backend"])')
echo "== $model: endpoint 127.0.0.1:$port (router), server $backend; $duration s per case"

cp docs/examples/invocations.json "$out/body.json"
python3 - "$out/body.json" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
split = body["dataframe_split"]
body["dataframe_split"]["data"] = split["data"][:1]
json.dump(body, open(sys.argv[1], "w"))
PY
wrk -t2 -c2 -d2s -s bench/post_json.lua "http://127.0.0.1:$port/invocations" -- "$out/body.json" > /dev/null
for conns in $connections; do
  for where in "router 127.0.0.1:$port" "server $backend"; do
    read -r name addr <<< "$where"
    wrk -t2 -c"$conns" -d"${duration}s" --latency -s bench/post_json.lua "http://$addr/invocations" -- "$out/body.json" \
      > "$out/$name-c$conns.txt"
  done
done

times=()
for _ in $(seq "$replaces"); do
  start=$(date +%s%N)
  run deploy local --config "$out/deployment.yaml" --model "$model" --port "$port" > /dev/null
  times+=("$(( $(date +%s%N) - start ))")
done

python3 - "$out" "$connections" "${times[@]}" <<'PY'
import re, statistics, sys
out, connections, times = sys.argv[1], sys.argv[2].split(), [int(t) / 1e9 for t in sys.argv[3:]]
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
def parse(path):
    text = open(path).read()
    ms = lambda p: (lambda m: float(m[1]) * unit[m[2]])(re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    return float(re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)[1]), ms(50), ms(99), errors
print(f"{'1-row /invocations':20} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
for c in connections:
    r, s = parse(f"{out}/router-c{c}.txt"), parse(f"{out}/server-c{c}.txt")
    for name, v in (("through the router", r), ("server alone", s)):
        print(f"{name:20} {c:>5} {v[0]:8.0f} {v[1]:7.2f} {v[2]:7.2f} {v[3]:6d}")
    print(f"{'router throughput':20} {c:>5} {r[0] / s[0]:7.2f}x of the server alone")
if times:
    print(f"blue/green replacement (deploy local, {len(times)} runs): median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s")
PY
