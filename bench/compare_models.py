"""Prints the model benchmark's comparison (bench/models.sh): for every dataset and family, the
median fit time of the toolkit and of scikit-learn on the same parts, their ratio, and the
test scores of both with the difference.

Usage: python3 bench/compare_models.py OUT_DIR DATASET...
"""
import json
import statistics
import sys
from pathlib import Path

if len(sys.argv) < 3:
    sys.exit(__doc__)
out = Path(sys.argv[1])
# Each task's headline metric, toolkit name and scikit-learn name.
HEADLINE = {"binary": ("roc_auc", "roc_auc"), "multiclass": ("f1_macro", "f1_macro"), "regression": ("r2", "r2")}
SECOND = {"binary": "accuracy", "multiclass": "accuracy", "regression": "rmse"}
worst = 0.0
for name in sys.argv[2:]:
    ref = json.loads((out / name / "sklearn.json").read_text())
    task = ref["task"]
    main, _ = HEADLINE[task]
    second = SECOND[task]
    print(f"\n{name}: {task}, {ref['rows']['train']} training / {ref['rows']['test']} test rows, "
          f"{ref['features']} features, {ref['threads']} threads")
    print(f"| family | toolkit fit | scikit-learn fit | toolkit / sklearn | toolkit {main} | sklearn {main} "
          f"| difference | toolkit {second} | sklearn {second} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for family, r in ref["models"].items():
        runs = [json.loads(f.read_text()) for f in sorted((out / name).glob(f"toolkit-{family}.*.json"))]
        if "metrics" not in r or not runs:
            continue
        # Over the seeds of a random family: the median fit time and the mean of each metric.
        fits = sorted(f for t in runs for f in t["fit_seconds"])
        t = {"fit_seconds_median": statistics.median(fits),
             "metrics": {k: statistics.fmean(t["metrics"][k] for t in runs) for k in runs[0]["metrics"]}}
        tf, sf = t["fit_seconds_median"], r["fit_seconds_median"]
        tm, sm = t["metrics"][main], r["metrics"][main]
        family = family if len(runs) == 1 else f"{family} (mean of {len(runs)} seeds)"
        diff = tm - sm
        worst = min(worst, diff)
        print(f"| {family} | {tf * 1000:.1f} ms | {sf * 1000:.1f} ms | {tf / sf:.2f} | {tm:.4f} | {sm:.4f} "
              f"| {diff:+.4f} | {t['metrics'][second]:.4f} | {r['metrics'][second]:.4f} |")
print(f"\nlargest shortfall of the toolkit's headline score: {worst:+.4f}")
