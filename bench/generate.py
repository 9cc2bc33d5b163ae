"""Writes the benchmark table: N rows of mixed types with missing values, duplicates and outliers.

Usage: python3 bench/generate.py [ROWS] [OUT.csv]   (defaults: 1000000, bench/out/mixed.csv)
The seed is fixed, so the same ROWS always gives the same file.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
out = Path(sys.argv[2] if len(sys.argv) > 2 else "bench/out/mixed.csv")
out.parent.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(42)


def with_nulls(values, share):
    values = pd.Series(values, dtype="object")
    values[rng.random(len(values)) < share] = None
    return values


categories = np.array([f"cat_{i:02d}" for i in range(20)])
words = np.array(["Great", "ok", "BAD!", "needs review", "late, again", "fine."])
amount = rng.normal(250.0, 60.0, rows)
amount[rng.random(rows) < 0.001] *= 25  # outliers
frame = pd.DataFrame(
    {
        "Order ID": np.arange(1, rows + 1),
        "Category": with_nulls(categories[rng.integers(0, 20, rows)], 0.05),
        "Region": np.array(["north", "south", "east", "west"])[rng.integers(0, 4, rows)],
        "Amount": with_nulls(np.round(amount, 4), 0.05),
        "Quantity": pd.array(np.where(rng.random(rows) < 0.02, pd.NA, rng.integers(1, 100, rows)), dtype="Int64"),
        "Unit Price": np.round(rng.uniform(0.5, 90.0, rows), 2),
        "Active": np.array(["Yes", "No"])[rng.integers(0, 2, rows)],
        "Created": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D"),
        "Score": with_nulls(np.round(rng.uniform(0, 1, rows), 6), 0.10),
        "Comment": with_nulls(words[rng.integers(0, len(words), rows)], 0.30),
    }
)
frame["Created"] = frame["Created"].dt.strftime("%Y-%m-%d")
# About 0.5% exact duplicate rows.
dupes = frame.sample(frac=0.005, random_state=7)
frame = pd.concat([frame.iloc[: rows - len(dupes)], dupes])
frame.to_csv(out, index=False, na_rep="NA")
print(f"wrote {len(frame)} rows to {out} ({out.stat().st_size / 1e6:.1f} MB)")
