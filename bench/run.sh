#!/usr/bin/env bash
# Steps 1-6 on the same generated table: the toolkit's release build against the pandas reference.
# Prints median wall time, peak memory and the ratios. Usage: bench/run.sh [ROWS] [RUNS]
# Needs: a release build (make release), python3 with numpy, pandas and pyarrow, hyperfine
# (apt install hyperfine) and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
runs="${2:-5}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
mlops="$target/release/mlops"
data="bench/out/mixed.csv"

[ -x "$mlops" ] || { echo "build the release binary first: make release"; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt install hyperfine"; exit 1; }
if [ ! -f "$data" ] || [ "$(($(wc -l < "$data") - 1))" != "$rows" ]; then
  python3 bench/generate.py "$rows" "$data"
fi

toolkit="rm -rf bench/out/processed && $mlops --quiet --log-dir bench/out/logs prepare --config bench/config.yaml"
pandas="rm -rf bench/out/pandas && python3 bench/reference_pandas.py $data bench/out/pandas"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "== $rows rows, $(du -h "$data" | cut -f1) CSV, $runs runs each"
hyperfine --warmup 1 --runs "$runs" --export-json bench/out/hyperfine.json -n toolkit "$toolkit" -n pandas "$pandas"

peak() { /usr/bin/time -f "%M" bash -c "$1" 2>&1 >/dev/null | tail -n 1; }
toolkit_kb=$(peak "$toolkit")
pandas_kb=$(peak "$pandas")

# hyperfine runs one command's runs, then the other's; the host's speed drifts over minutes, so
# the ratio is also taken pair by pair, the two commands run back to back in alternating order.
python3 - "$toolkit_kb" "$pandas_kb" "$runs" "$toolkit" "$pandas" <<'PY'
import json, statistics, subprocess, sys, time
runs = {r["command"]: r for r in json.load(open("bench/out/hyperfine.json"))["results"]}
t, p = runs["toolkit"]["median"], runs["pandas"]["median"]
tk, pk = int(sys.argv[1]), int(sys.argv[2])
n, commands = int(sys.argv[3]), sys.argv[4:6]

def timed(command):
    started = time.perf_counter()
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started

ratios = []
for i in range(n):
    order = commands if i % 2 == 0 else commands[::-1]
    took = dict(zip(order, (timed(c) for c in order)))
    ratios.append(took[commands[1]] / took[commands[0]])
print(f"median wall time: toolkit {t:.3f} s, pandas {p:.3f} s -> toolkit is {p / t:.1f}x faster")
print(f"paired runs:      median of {n} back-to-back ratios -> toolkit is {statistics.median(ratios):.1f}x faster"
      f" (range {min(ratios):.1f}-{max(ratios):.1f})")
print(f"peak memory:      toolkit {tk / 1024:.0f} MiB, pandas {pk / 1024:.0f} MiB -> {pk / tk:.1f}x less")
PY
