"""Writes the model benchmark table: a binary classification problem with 30 feature columns
(22 numeric with missing values, skew, signal and noise; 6 categorical with 3 to 50 levels;
2 booleans) and the target `label` (`yes`/`no`, about 30% `yes`) drawn from a nonlinear function
of 11 of the columns, so that boosted trees beat a linear model clearly.

Usage: python3 bench/generate_models.py [ROWS] [OUT.csv]   (defaults: 250000, bench/out/models.csv)
The seed is fixed, so the same ROWS always gives the same file. Missing values are empty fields.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 250_000
out = Path(sys.argv[2] if len(sys.argv) > 2 else "bench/out/models.csv")
out.parent.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(11)
n = {}
# Columns that carry the signal (the label is drawn from their values before any are blanked).
n["num_00"] = rng.normal(0, 1, rows)  # linear
n["num_01"] = rng.normal(0, 1, rows)  # interaction with num_02
n["num_02"] = rng.uniform(-2, 2, rows)
n["num_03"] = rng.lognormal(0, 1, rows)  # skewed, threshold effect
n["num_04"] = rng.normal(0, 1, rows)  # periodic effect
n["num_05"] = rng.exponential(1, rows)  # skewed, U-shaped effect
n["num_06"] = 0.8 * n["num_00"] + rng.normal(0, 0.6, rows)  # correlated with num_00, no effect
n["num_07"] = rng.poisson(3, rows)  # counts, weak effect
# Noise.
for i in range(8, 22):
    kind = i % 4
    if kind == 0:
        v = rng.normal(50, 10, rows)
    elif kind == 1:
        v = rng.lognormal(1, 1.2, rows)  # skewed
    elif kind == 2:
        v = rng.integers(0, 100, rows)
    else:
        v = rng.uniform(0, 1, rows)
    n[f"num_{i:02d}"] = v
cats = {}
for i, (k, sd) in enumerate([(3, 0.8), (5, 0.0), (8, 0.0), (12, 0.6), (25, 0.0), (50, 0.5)]):
    codes = rng.integers(0, k, rows)
    effect = rng.normal(0, sd, k)[codes]  # cat_0, cat_3 and cat_5 carry signal
    cats[f"cat_{i}"] = (np.array([f"c{i}_{j:02d}" for j in range(k)])[codes], effect)
flag_0 = rng.random(rows) < 0.4
flag_1 = rng.random(rows) < 0.6  # noise

logit = (
    0.7 * n["num_00"]
    + 0.9 * n["num_01"] * n["num_02"]
    + 1.2 * (n["num_03"] > 2.0)
    + 0.9 * np.sin(2.0 * n["num_04"])
    + 0.7 * np.abs(n["num_05"] - 1.0)
    + 0.15 * np.minimum(n["num_07"], 6)
    + 0.8 * flag_0 * (n["num_00"] > 0)
    + sum(effect for _, effect in cats.values())
)
logit = 1.6 * (logit - logit.mean())
lo, hi = -10.0, 10.0  # the intercept that makes 30% of the probabilities `yes`, by bisection
for _ in range(60):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if np.mean(1 / (1 + np.exp(-(logit + mid)))) < 0.3 else (lo, mid)
label = rng.random(rows) < 1 / (1 + np.exp(-(logit + lo)))

frame = pd.DataFrame(n)
for i, name in enumerate(frame.columns):
    share = [0.0, 0.01, 0.03, 0.05, 0.08][i % 5]  # 0-8% missing
    frame[name] = frame[name].mask(rng.random(rows) < share)
    if name in ("num_07", "num_10", "num_14", "num_18"):
        frame[name] = frame[name].astype("Int64")
for name, (values, _) in cats.items():
    frame[name] = pd.Series(values).where(rng.random(rows) >= 0.02)
frame["flag_0"] = np.where(flag_0, "true", "false")
frame["flag_1"] = np.where(flag_1, "true", "false")
frame["label"] = np.where(label, "yes", "no")
frame.to_csv(out, index=False, na_rep="", float_format="%.6g")
print(f"wrote {rows} rows x {frame.shape[1]} columns to {out} ({out.stat().st_size / 1e6:.1f} MB), "
      f"{label.mean():.1%} yes")
