#!/usr/bin/env bash
# Model training, toolkit against scikit-learn on the same parts: a generated 250k-row binary
# problem (bench/generate_models.py) and five real datasets (the shipped penguins, and
# scikit-learn's bundled breast cancer, wine, iris and diabetes data, exported by bench/export_real.py;
# no download). `mlops features` writes each dataset's train/test parts once; then every family
# is fitted on them by `mlops fit` (release build) and by bench/reference_models_sklearn.py with
# the same hyperparameters and thread count, and bench/compare_models.py prints fit-time ratios
# and score differences. Usage: bench/models.sh [ROWS] [REPEATS]   (defaults: 250000, 3)
# Needs: a release build (make release); python3 with numpy, pandas, pyarrow, scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-250000}"
repeats="${2:-3}"
threads=2
target="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
mlops="$target/release/mlops"
out=bench/out/models
[ -x "$mlops" ] || { echo "build the release binary first: make release"; exit 1; }
mkdir -p "$out"

# The toolkit's spec of each family, with scikit-learn's settings in the reference script.
spec() { # TASK FAMILY SEED
  local clf=$([ "$1" = regression ] && echo false || echo true) seed=$3
  case "$2" in
    gradient_boosting) $clf && f=gradient_boosting_classifier || f=gradient_boosting_regressor
      echo "{$f: {max_iter: 100, learning_rate: 0.1, max_depth: 6, max_leaf_nodes: 31, min_samples_leaf: 20, early_stopping: false}}" ;;
    random_forest) $clf && f=random_forest_classifier || f=random_forest_regressor
      echo "{$f: {n_estimators: 100, max_depth: 12, random_state: $seed}}" ;;
    decision_tree) $clf && f=decision_tree_classifier || f=decision_tree_regressor
      echo "{$f: {random_state: $seed}}" ;;
    knn) $clf && echo "{knn_classifier: {k: 5}}" || echo "{knn_regressor: {k: 5}}" ;;
    svm) $clf && echo "{svc: {c: 1.0, kernel: rbf, gamma: scale}}" || echo "{svr: {c: 1.0, epsilon: 0.1}}" ;;
    logistic_regression) echo "{logistic_regression: {c: 1.0, max_iter: 100}}" ;;
    gaussian_nb) echo gaussian_nb ;;
    linear) echo linear ;;
    ridge) echo "{ridge: {alpha: 1.0}}" ;;
    lasso) echo "{lasso: {alpha: 1.0, max_iter: 1000}}" ;;
    elastic_net) echo "{elastic_net: {alpha: 1.0, l1_ratio: 0.5, max_iter: 1000}}" ;;
  esac
}

bench() { # NAME TARGET TASK REPEATS SEEDS FAMILY...
  local name=$1 column=$2 task=$3 reps=$4 seeds=$5; shift 5
  local dir="$out/$name" families
  families=$(IFS=,; echo "$*")
  echo "== $name: $task, target $column, families $families"
  for family in "$@"; do
    if [ "$family" = knn ] || [ "$family" = svm ]; then
      # As the reference: the quadratic families only below 20,000 training rows.
      [ "$(python3 -c "import pyarrow.parquet as p; print(p.read_metadata('$dir/train.parquet').num_rows)")" -le 20000 ] || continue
    fi
    local task_flag=classification
    [ "$task" = regression ] && task_flag=regression
    rm -f "$dir"/toolkit-"$family"*.json
    local n=1
    case "$family" in random_forest|decision_tree) n=$seeds ;; esac
    for ((seed = 0; seed < n; seed++)); do
      "$mlops" --quiet --log-dir "$out/logs" --json fit "$dir" --target "$column" --task "$task_flag" \
        --model "$(spec "$task" "$family" "$seed")" --repeats "$reps" > "$dir/toolkit-$family.$seed.json"
    done
  done
  python3 bench/reference_models_sklearn.py "$dir" "$column" "$task" --repeats "$reps" --threads "$threads" \
    --models "$families" --seeds "$seeds" --out "$dir/sklearn.json" 2>/dev/null
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# The generated problem: steps 1-6 (bench/models-data.yaml), then the split and features.
if [ ! -f bench/out/models.csv ] || [ "$(($(wc -l < bench/out/models.csv) - 1))" != "$rows" ]; then
  python3 bench/generate_models.py "$rows" bench/out/models.csv
  rm -rf bench/out/processed/models
fi
"$mlops" --quiet --log-dir "$out/logs" features --config bench/models-training.yaml -o "$out/generated" >/dev/null
# The real data: penguins through the shipped training config, the others through bench/real/.
"$mlops" --quiet --log-dir "$out/logs" features --config configs/training.yaml -o "$out/penguins" >/dev/null
python3 bench/export_real.py bench/out/real >/dev/null
for d in breast_cancer wine iris diabetes; do
  "$mlops" --quiet --log-dir "$out/logs" features --file "bench/out/real/$d.csv" --config "bench/real/$d.yaml" \
    -o "$out/$d" >/dev/null
done

classifiers=(gradient_boosting random_forest logistic_regression decision_tree gaussian_nb knn svm)
# Random families (trees, forests) on the small sets: metrics averaged over random_state 0-19 on
# both sides, since one seed's test score of a single deep tree moves by several hundredths.
bench generated label binary "$repeats" 1 gradient_boosting random_forest logistic_regression decision_tree gaussian_nb
bench penguins species multiclass 5 20 "${classifiers[@]}"
bench breast_cancer diagnosis binary 5 20 "${classifiers[@]}"
bench wine cultivar multiclass 5 20 "${classifiers[@]}"
bench iris species multiclass 5 20 "${classifiers[@]}"
bench diabetes progression regression 5 20 gradient_boosting random_forest linear ridge lasso elastic_net decision_tree knn svm
python3 bench/compare_models.py "$out" generated penguins breast_cancer wine iris diabetes
