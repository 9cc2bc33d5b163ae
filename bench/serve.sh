#!/usr/bin/env bash
# Model serving under HTTP load: `mlops serve` (release build) against the FastAPI reference of
# bench/reference_serve_fastapi.py (the package's preparation done with pandas and the same model
# family fitted by scikit-learn, uvicorn with 2 workers), on the same request bodies of raw records
# made from the served model's input example: one row to POST /invocations, one row to the Open Inference Protocol v2 route
# POST /v2/models/NAME/infer, and a 1000-row batch to /invocations. Each case runs with wrk
# (2 threads; 2 and 32 connections; DURATION seconds). Prints requests/s, p50 and p99 latency,
# the toolkit/FastAPI throughput ratio and the batch case's rows/s; raw wrk output in bench/out/serve.
# The toolkit serves with the shipped configs/deployment.yaml (prediction log on, written to a copy
# of the registry store), and the script prints how many rows of each case the log wrote and
# dropped; the 1000-row case then runs once more with the log off. uvicorn runs without its
# access log.
# Usage: bench/serve.sh   env: DURATION (seconds per case, default 10), CONNECTIONS (default "2 32"),
#   MODEL (default models:/penguins-species@champion), MLOPS (a binary to use instead of building
#   the release one with cargo build --release --bin mlops).
# Needs: a trained model (make train), python3 with pandas, pyarrow and scikit-learn; installs wrk
# (apt-get) and fastapi with uvicorn[standard] (pip) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-10}"
connections="${CONNECTIONS:-2 32}"
model="${MODEL:-models:/penguins-species@champion}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
target="$CARGO_TARGET_DIR"
out=bench/out/serve

if [ -n "${MLOPS:-}" ]; then
  mlops="$MLOPS"
else
  cargo build --release --bin mlops
  mlops="$target/release/mlops"
fi
[ -x "$mlops" ] || { echo "no mlops binary at $mlops"; exit 1; }
if ! command -v wrk >/dev/null; then
  as_root=$([ "$(id -u)" = 0 ] || echo sudo)
  $as_root apt-get update -qq && $as_root apt-get install -y -qq wrk >/dev/null
fi
python3 -c 'import fastapi, uvicorn, uvloop, httptools' 2>/dev/null ||
  python3 -m pip install --quiet fastapi 'uvicorn[standard]'
python3 -c 'import sklearn, pandas, pyarrow' 2>/dev/null || { echo "needs python3 with scikit-learn, pandas and pyarrow"; exit 1; }
rm -rf "$out" && mkdir -p "$out"

# The bodies, from the registered package's input example (externally tagged values).
"$mlops" --quiet --log-dir "$out/logs" registry show "$model" --json > "$out/model.json" ||
  { echo "no model $model in the registry: make train"; exit 1; }
name=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["name"])' "$out/model.json")
python3 - "$out" <<'PY'
import datetime, json, random, sys
out = sys.argv[1]
package = json.load(open(f"{out}/model.json"))["artifact_path"]
signature = json.load(open(f"{package}/signature.json"))["inputs"]
epoch = datetime.date(1970, 1, 1)

def plain(v):
    if v == "null" or v is None:
        return None
    (kind, x), = v.items()
    return (epoch + datetime.timedelta(days=x)).isoformat() if kind == "date" else x

examples = [{c: plain(v) for c, v in row.items()} for row in json.load(open(f"{package}/input_example.json"))]
rng = random.Random(42)

def perturb(row):  # measurements moved by up to 3%, dates by up to 10 days; indicators, years kept
    r = dict(row)
    for c in signature:
        v, name = r.get(c["name"]), c["name"]
        if v is None:
            continue
        if c["dtype"] == "float" and c.get("range") != [0.0, 1.0] and not name.endswith("_year"):
            r[name] = round(v * (1 + rng.uniform(-0.03, 0.03)), 6)
        elif c["dtype"] == "date":
            r[name] = (datetime.date.fromisoformat(v) + datetime.timedelta(days=rng.randint(-10, 10))).isoformat()
    return r

batch = [examples[0]] + [perturb(examples[i % len(examples)]) for i in range(1, 1000)]
types = {"float": "FP64", "int": "FP64", "bool": "BOOL", "date": "BYTES", "string": "BYTES"}
oip = {"inputs": [{"name": c["name"], "shape": [1], "datatype": types.get(c["dtype"], "BYTES"),
                   "data": [examples[0].get(c["name"])]} for c in signature]}
json.dump({"dataframe_records": examples[:1]}, open(f"{out}/invocations_1.json", "w"))
json.dump(oip, open(f"{out}/infer_1.json", "w"))
json.dump({"dataframe_records": batch}, open(f"{out}/invocations_1000.json", "w"))
PY
# case name, route, body
cases=("invocations_1 /invocations" "infer_1 /v2/models/$name/infer" "invocations_1000 /invocations")

pid=
stop() { if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
# The store copy holds every logged prediction of the run (gigabytes): count them, then remove it.
cleanup() {
  stop
  if [ -f "$out/registry.db" ]; then
    python3 -c "import sqlite3,sys; print('prediction log:', sqlite3.connect(sys.argv[1]).execute('select count(*) from prediction_log').fetchone()[0], 'rows')" "$out/registry.db" 2>/dev/null || true
    rm -f "$out/registry.db" "$out/registry.db-wal" "$out/registry.db-shm"
  fi
}
trap cleanup EXIT
wait_ping() { # URL
  for _ in $(seq 240); do
    curl -sf "$1/ping" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "the server exited; see $out"; exit 1; }
    sleep 0.25
  done
  echo "no answer from $1/ping after 60 s"; exit 1
}
# The toolkit's prediction log counters (rows written, rows dropped) from /metrics.
log_counts() { # URL
  curl -s "$1/metrics" | awk '/^mlops_prediction_log_written_total/ {w=$2} /^mlops_prediction_log_dropped_total/ {d=$2} END {print w+0, d+0}'
}
measure() { # SERVER URL
  local server=$1 url=$2 kind route conns code before after
  for c in "${cases[@]}"; do  # one request each: the answer must be 200, and is kept
    read -r kind route <<< "$c"
    code=$(curl -s -o "$out/$server-$kind.response.json" -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary "@$out/$kind.json" "$url$route")
    [ "$code" = 200 ] || { echo "$server $route answered $code: $(head -c 300 "$out/$server-$kind.response.json")"; exit 1; }
  done
  wrk -t2 -c2 -d2s -s bench/post_json.lua "$url/invocations" -- "$out/invocations_1.json" > /dev/null  # warm-up
  for c in "${cases[@]}"; do
    read -r kind route <<< "$c"
    for conns in $connections; do
      echo "   $server $kind, $conns connections"
      [ "$server" = toolkit ] && before=$(log_counts "$url")
      wrk -t2 -c"$conns" -d"${duration}s" --timeout 10s --latency -s bench/post_json.lua "$url$route" -- \
        "$out/$kind.json" > "$out/$server-$kind-c$conns.txt"
      if [ "$server" = toolkit ]; then  # the writer drains its queue, then the counts are read
        sleep 2
        after=$(log_counts "$url")
        echo "$before $after" > "$out/$server-$kind-c$conns.log-counts"
      fi
    done
  done
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "== $model, $duration s per case, connections: $connections"
# The toolkit, its prediction log written to a copy of the registry store.
store=$(python3 - "$out/registry.db" <<'PY'
import re, sqlite3, sys
config = open("configs/deployment.yaml").read()
store = re.search(r"^store:\s*(\S+)", config, re.M).group(1)
src = sqlite3.connect(store)
src.backup(sqlite3.connect(sys.argv[1]))
print(store)
PY
)
echo "== toolkit: $mlops (store copied from $store)"
"$mlops" --quiet --log-dir "$out/logs" --json serve --model "$model" --port 0 --host 127.0.0.1 --store "$out/registry.db" \
  > "$out/toolkit-serve.json" 2> "$out/toolkit-serve.err" &
pid=$!
url=
for _ in $(seq 240); do
  url=$(grep -o '"url": *"[^"]*"' "$out/toolkit-serve.json" | cut -d'"' -f4 || true)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "mlops serve exited: $(cat "$out/toolkit-serve.err")"; exit 1; }
  sleep 0.25
done
[ -n "$url" ] || { echo "mlops serve printed no url"; exit 1; }
wait_ping "$url"
measure toolkit "$url"
stop

# The 1000-row case once more with the prediction log off: the request path's own ceiling.
python3 - "$out/nolog.yaml" <<'PY'
import re, sys
config = open("configs/deployment.yaml").read()
fixed = re.sub(r"(prediction_log:\s*\n\s*enabled:\s*)true", r"\1false", config)
assert fixed != config, "configs/deployment.yaml: no prediction_log.enabled: true to turn off"
open(sys.argv[1], "w").write(fixed)
PY
"$mlops" --quiet --log-dir "$out/logs" --json serve --config "$out/nolog.yaml" --model "$model" --port 0 \
  --host 127.0.0.1 --store "$out/registry.db" > "$out/toolkit-nolog-serve.json" 2> "$out/toolkit-nolog-serve.err" &
pid=$!
url=
for _ in $(seq 240); do
  url=$(grep -o '"url": *"[^"]*"' "$out/toolkit-nolog-serve.json" | cut -d'"' -f4 || true)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "mlops serve exited: $(cat "$out/toolkit-nolog-serve.err")"; exit 1; }
  sleep 0.25
done
[ -n "$url" ] || { echo "mlops serve printed no url"; exit 1; }
wait_ping "$url"
echo "   toolkit invocations_1000 with the prediction log off, 32 connections"
wrk -t2 -c32 -d"${duration}s" --timeout 10s --latency -s bench/post_json.lua "$url/invocations" -- \
  "$out/invocations_1000.json" > "$out/toolkit-nolog-invocations_1000-c32.txt"
stop

# The FastAPI reference, 2 uvicorn workers.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== FastAPI: uvicorn $(python3 -c 'import uvicorn; print(uvicorn.__version__)'), 2 workers, port $port"
package=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["artifact_path"])' "$out/model.json")
MODEL_PACKAGE="$package" MODEL_NAME="$name" python3 -m uvicorn reference_serve_fastapi:app --app-dir bench --host 127.0.0.1 --port "$port" --workers 2 \
  --no-access-log --log-level warning > "$out/fastapi-serve.out" 2>&1 &
pid=$!
wait_ping "http://127.0.0.1:$port"
measure fastapi "http://127.0.0.1:$port"
stop

python3 - "$out" "$connections" <<'PY'
import json, re, sys
out, connections = sys.argv[1], sys.argv[2].split()
cases = [("invocations_1", "/invocations, 1 row", 1), ("infer_1", "OIP v2 infer, 1 row", 1),
         ("invocations_1000", "/invocations, 1000 rows", 1000)]
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}

def parse(path):
    text = open(path).read()
    ms = lambda p: (lambda m: float(m[1]) * unit[m[2]] if m else float("nan"))(
        re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors += sum(map(int, sock.groups())) if sock else 0
    return {"rps": float(re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)[1]), "p50": ms(50), "p99": ms(99),
            "errors": errors}

results, header = [], f"{'case':26} {'conns':>5} {'toolkit req/s':>13} {'p50 ms':>7} {'p99 ms':>7} " \
                       f"{'FastAPI req/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}"
print(header)
print("-" * len(header))
for case, label, rows in cases:
    for c in connections:
        t, f = (parse(f"{out}/{s}-{case}-c{c}.txt") for s in ("toolkit", "fastapi"))
        results.append({"case": case, "rows": rows, "connections": int(c), "toolkit": t, "fastapi": f})
        print(f"{label:26} {c:>5} {t['rps']:13.0f} {t['p50']:7.2f} {t['p99']:7.2f} "
              f"{f['rps']:13.0f} {f['p50']:7.2f} {f['p99']:7.2f} {t['rps'] / f['rps']:5.1f}x")
for r in results:
    if r["rows"] > 1:
        print(f"rows/s, {r['rows']}-row batch, {r['connections']} connections: toolkit "
              f"{r['toolkit']['rps'] * r['rows']:,.0f}, FastAPI {r['fastapi']['rps'] * r['rows']:,.0f}")
    for s in ("toolkit", "fastapi"):
        if r[s]["errors"]:
            print(f"warning: {s} {r['case']} c{r['connections']}: {r[s]['errors']} errors (non-2xx or socket)")
for r in results:
    b = f"{out}/toolkit-{r['case']}-c{r['connections']}.log-counts"
    w0, d0, w1, d1 = map(int, open(b).read().split())
    written, dropped = w1 - w0, d1 - d0
    share = written / (written + dropped) if written + dropped else 1.0
    r["toolkit"]["log_written"], r["toolkit"]["log_dropped"] = written, dropped
    print(f"prediction log, {r['case']} c{r['connections']}: {written:,} rows written, {dropped:,} dropped "
          f"({share:.0%} logged)")
nolog = parse(f"{out}/toolkit-nolog-invocations_1000-c32.txt")
print(f"rows/s, 1000-row batch, 32 connections, prediction log off: toolkit {nolog['rps'] * 1000:,.0f}")
t = json.load(open(f"{out}/toolkit-invocations_1000.response.json"))["predictions"]
f = json.load(open(f"{out}/fastapi-invocations_1000.response.json"))["predictions"]
print(f"batch predictions agree on {sum(a == b for a, b in zip(t, f))}/{len(t)} rows "
      "(different preprocessing: the toolkit's feature pipeline, the reference's plain one)")
json.dump(results, open(f"{out}/results.json", "w"), indent=1)
PY
