#!/usr/bin/env bash
# Batch inference on the source's raw records, toolkit against pandas + scikit-learn: a generated
# CSV of raw penguin records (data/raw/penguins-raw.csv resampled with noise on the measurements,
# 100k and 1M rows, its NA markers kept) predicted by `mlops predict` with the registered champion
# (release build) and by bench/reference_raw_pandas.py (the same preparation, read from the
# package's pipeline.json and done with vectorised pandas, and a scikit-learn model of the same
# family and hyperparameters; pandas in chunks). Wall time and peak memory (/usr/bin/time -v)
# per size: the toolkit's peak memory should not grow with the file.
# Usage: bench/inference.sh [SIZES...]   (default: 100000 1000000)
# Needs: make train, a release build (make release), python3 with pandas, pyarrow, scikit-learn
#   (PYTHON names another interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-100000 1000000}")
read -r -a sizes <<< "${sizes[*]}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
mlops="${MLOPS:-$target/release/mlops}"
model="${MODEL:-models:/penguins-species@champion}"
out=bench/out/inference
[ -x "$mlops" ] || { echo "build the release binary first: make release"; exit 1; }
python="${PYTHON:-python3}"
mkdir -p "$out"
"$mlops" --quiet --log-dir "$out/logs" registry show "$model" --json > "$out/model.json" ||
  { echo "no model $model in the registry: make train"; exit 1; }
package=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["artifact_path"])' "$out/model.json")
dataset=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1] + "/lineage.json"))["dataset_version"])' "$package")
curated="data/processed/${dataset%@*}/${dataset#*@}/data.parquet"

measure() { # LABEL FILE -- COMMAND...: wall seconds and max RSS (MB) into $out/LABEL.time
  local label=$1; shift
  /usr/bin/time -v "$@" > "$out/$label.stdout" 2> "$out/$label.time"
  python3 - "$out/$label.time" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1).split(":")
secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
print(f"{secs:.2f} {rss:.0f}")
PY
}

printf "%-10s %12s %12s %14s %14s %8s\n" rows "toolkit s" "toolkit MB" "pandas s" "pandas MB" ratio
for n in "${sizes[@]}"; do
  csv="$out/rows-$n.csv"
  [ -f "$csv" ] || "$python" - data/raw/penguins-raw.csv "$csv" "$n" <<'PY'
import sys
import numpy as np, pandas as pd
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = pd.read_csv(src, dtype=str, keep_default_na=False)
rng = np.random.default_rng(42)
out = d.iloc[rng.integers(0, len(d), n)].reset_index(drop=True)
for c in ["Culmen Length (mm)", "Culmen Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"]:
    x = pd.to_numeric(out[c], errors="coerce") * rng.normal(1.0, 0.02, n)
    whole = c in ("Flipper Length (mm)", "Body Mass (g)")
    out[c] = [("NA" if np.isnan(v) else str(int(round(v))) if whole else f"{v:.1f}") for v in x]
out.to_csv(dst, index=False)
PY
  read -r ts tm < <(measure "toolkit-$n" "$mlops" --quiet --log-dir "$out/logs" predict --model "$model" --input "$csv" --output "$out/toolkit-$n.csv" --force)
  read -r ps pm < <(measure "pandas-$n" "$python" bench/reference_raw_pandas.py "$package" "$curated" "$csv" "$out/pandas-$n.csv")
  ratio=$(python3 -c "print(f'{$ts / $ps:.2f}x')")
  printf "%-10s %12s %12s %14s %14s %8s\n" "$n" "$ts" "$tm" "$ps" "$pm" "$ratio"
  "$python" - "$out/toolkit-$n.csv" "$out/pandas-$n.csv" <<'PY'
import sys, pandas as pd
a, b = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
print(f"           labels agree on {(a.prediction == b.prediction).mean():.4f} of {len(a)} rows")
PY
done
