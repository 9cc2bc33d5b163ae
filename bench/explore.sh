#!/usr/bin/env bash
# Steps 7 and 10 on the generated wide table (1M x 30 by default): `mlops eda` against the pandas
# profile of bench/reference_eda_pandas.py, and `mlops features` (split, fit, transform, write)
# against bench/reference_features_pandas.py. Prints medians, ratios, peak memory, report size.
# Usage: bench/explore.sh [ROWS] [RUNS]
# Needs: a release build (make release), python3 with numpy, pandas, pyarrow and scikit-learn,
# hyperfine and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
runs="${2:-3}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
mlops="$target/release/mlops"
data="bench/out/wide.parquet"

[ -x "$mlops" ] || { echo "build the release binary first: make release"; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt install hyperfine"; exit 1; }
python3 -c 'import sklearn' 2>/dev/null || { echo "scikit-learn is missing: pip install scikit-learn"; exit 1; }
if [ ! -f "$data" ] || [ "$(python3 -c "import pyarrow.parquet as p; print(p.ParquetFile('$data').metadata.num_rows)")" != "$rows" ]; then
  python3 bench/generate_wide.py "$rows" "$data"
fi

eda="$mlops --quiet --log-dir bench/out/logs eda --config bench/training.yaml --file $data --out bench/out/eda"
eda_pandas="python3 bench/reference_eda_pandas.py $data bench/out/eda_pandas.json"
features="rm -rf bench/out/features && $mlops --quiet --log-dir bench/out/logs features --config bench/training.yaml --file $data --out bench/out/features"
features_pandas="rm -rf bench/out/features_pandas && python3 bench/reference_features_pandas.py $data bench/out/features_pandas"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "== $rows rows x 30 columns ($(du -h "$data" | cut -f1) Parquet), $runs runs each"
hyperfine --warmup 1 --runs "$runs" --export-json bench/out/explore.json \
  -n eda "$eda" -n eda_pandas "$eda_pandas" -n features "$features" -n features_pandas "$features_pandas"

peak() { /usr/bin/time -f "%M" bash -c "$1" 2>&1 >/dev/null | tail -n 1; }
python3 - "$(peak "$eda")" "$(peak "$eda_pandas")" "$(peak "$features")" "$(peak "$features_pandas")" "$(stat -c %s bench/out/eda/eda.html)" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open("bench/out/explore.json"))["results"]}
kb = [int(v) for v in sys.argv[1:5]]
for name, (t, p), (mt, mp) in [("eda", (r["eda"], r["eda_pandas"]), kb[0:2]), ("features", (r["features"], r["features_pandas"]), kb[2:4])]:
    print(f"{name:9} median: toolkit {t:.2f} s, pandas {p:.2f} s -> {p / t:.1f}x faster; peak memory {mt / 1024:.0f} vs {mp / 1024:.0f} MiB")
print(f"EDA report: {int(sys.argv[5]) / 1024:.0f} KiB")
PY
