#!/usr/bin/env bash
# The training run's `select` and `register` steps at 100,000 test rows (issue 25 item 7): the
# generated model table (bench/generate_models.py) at 500,000 rows, prepared by
# bench/models-data.yaml and trained by bench/select-training.yaml twice, the second time with
# another seed, so that registration compares the new model with the champion on the same
# 100,000 rows. Prints the two steps' lines of each run's summary.
# Usage: bench/select_register.sh [ROWS]   (default 500000). Needs: make release; python3 with
# numpy and pandas.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-500000}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
mlops="$target/release/mlops"
[ -x "$mlops" ] || { echo "build the release binary first: make release"; exit 1; }
rm -rf bench/out/select
mkdir -p bench/out/select
python3 bench/generate_models.py "$rows" bench/out/models.csv
"$mlops" --quiet prepare --config bench/models-data.yaml
for seed in 42 7; do
  sed "s/^seed: 42/seed: $seed/" bench/select-training.yaml > bench/out/select/training-$seed.yaml
  echo "== seed $seed"
  "$mlops" train --config bench/out/select/training-$seed.yaml 2>&1 | grep -E '^(select|register) '
done
