"""Writes the wide benchmark table for EDA and features: N rows x 30 columns (20 numeric with
missing values, skew and correlated pairs, 6 categorical, 2 dates, 2 booleans) as Parquet.

Usage: python3 bench/generate_wide.py [ROWS] [OUT.parquet]   (defaults: 1000000, bench/out/wide.parquet)
The seed is fixed, so the same ROWS always gives the same file.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
out = Path(sys.argv[2] if len(sys.argv) > 2 else "bench/out/wide.parquet")
out.parent.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
cols = {}
base = rng.normal(0, 1, rows)
for i in range(20):
    if i % 5 == 0:
        v = base * (i + 1) + rng.normal(0, 0.3, rows)  # correlated with `base`
    elif i % 5 == 1:
        v = rng.lognormal(0, 1, rows)  # skewed
    elif i % 5 == 2:
        v = rng.integers(0, 1000, rows).astype(float)
    else:
        v = rng.normal(100 * i, 10 + i, rows)
    v = np.where(rng.random(rows) < (0.02 * (i % 4)), np.nan, v)  # 0-6% missing
    cols[f"num_{i:02d}"] = v
for i in range(6):
    k = [3, 10, 50, 200, 1000, 20][i]
    labels = np.array([f"c{i}_{j}" for j in range(k)])
    v = pd.Series(labels[rng.integers(0, k, rows)], dtype="object")
    v[rng.random(rows) < 0.03] = None
    cols[f"cat_{i}"] = v
cols["date_0"] = pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D")
cols["date_1"] = pd.to_datetime("2021-06-01") + pd.to_timedelta(rng.integers(0, 86400 * 365, rows), unit="s")
cols["flag_0"] = rng.random(rows) < 0.3
cols["flag_1"] = rng.random(rows) < 0.7
frame = pd.DataFrame(cols)
frame["date_0"] = frame["date_0"].dt.date
frame["date_1"] = frame["date_1"].astype("datetime64[us]")
frame.to_parquet(out, index=False)
print(f"wrote {len(frame)} rows x {frame.shape[1]} columns to {out} ({out.stat().st_size / 1e6:.1f} MB)")
