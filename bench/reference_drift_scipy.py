"""Hand-written Python reference for `mlops monitor drift`: the loop a Python user writes with
pandas, numpy and scipy to compare a current table with a reference one, column by column.

Usage: python3 bench/reference_drift_scipy.py REF.parquet CUR.parquet [--method ks_psi|ks|psi]

Reads both files with pandas.read_parquet, then for every column the two share (nulls dropped,
as Evidently drops them):
- numeric columns: scipy.stats.ks_2samp (drift at p <= 0.05) and/or the population stability
  index over 10 bins cut at the reference's deciles (np.quantile, np.searchsorted; drift at
  PSI >= 0.1). An empty bin's share is replaced as Evidently does: by 1e-4, or by a millionth
  of the smallest non-empty share when that is at most 1e-4. --method ks_psi (the default) does
  both, ks or psi only one;
- text (categorical) columns: scipy.stats.chisquare of the current counts against the reference's
  proportions scaled to the current total, over the union of both sides' categories (drift at
  p < 0.05). A category missing from one side counts 0 there, as in Evidently's chi-squared
  test; a category seen only in the current data has an expected count of 0, which makes the
  statistic infinite, so its p-value is 0 (written out rather than left to scipy's division
  warning).
These are the same formulas as tests/reference/drift_scipy.py, which the toolkit's drift module is
checked against.

Prints one line with the wall seconds (from before the imports of pandas and scipy to the end;
the read and the drift loop also apart), then a JSON summary in the toolkit's shape:
{"columns": [{"column", "method", "score", "threshold", "drifted"}], "drifted": N columns with any
method drifted, "share": N / columns, "dataset_drift": share >= 0.5, "seconds": {...}}.
"""
import time

started = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

p = argparse.ArgumentParser(usage=__doc__.split("Usage: ")[1].split("\n\n")[0])
p.add_argument("reference")
p.add_argument("current")
p.add_argument("--method", choices=["ks_psi", "ks", "psi"], default="ks_psi")
args = p.parse_args()
imported = time.perf_counter()

reference = pd.read_parquet(args.reference)
current = pd.read_parquet(args.current)
read = time.perf_counter()


def fill_zeroes(shares):
    smallest = shares[shares > 0].min()
    return np.where(shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001, shares)


def psi(ref, cur):
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    ref_shares = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
    cur_shares = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1) / len(cur)
    ref_shares, cur_shares = fill_zeroes(ref_shares), fill_zeroes(cur_shares)
    return float(np.sum((cur_shares - ref_shares) * np.log(cur_shares / ref_shares)))


def chisquare(ref, cur):
    ref_counts, cur_counts = ref.value_counts(), cur.value_counts()
    keys = ref_counts.index.union(cur_counts.index)
    if len(keys) < 2:
        return 1.0
    expected = ref_counts.reindex(keys, fill_value=0).to_numpy(float) * (len(cur) / len(ref))
    if (expected == 0).any():
        return 0.0
    return float(stats.chisquare(cur_counts.reindex(keys, fill_value=0).to_numpy(float), expected).pvalue)


results = []
columns = [c for c in reference.columns if c in current.columns]
for column in columns:
    ref, cur = reference[column].dropna(), current[column].dropna()
    if pd.api.types.is_numeric_dtype(ref.dtype) and not pd.api.types.is_bool_dtype(ref.dtype):
        ref, cur = ref.to_numpy(float), cur.to_numpy(float)
        if args.method in ("ks_psi", "ks"):
            p_value = float(stats.ks_2samp(ref, cur).pvalue)
            results.append({"column": column, "method": "ks", "score": p_value, "threshold": 0.05,
                            "drifted": p_value <= 0.05})
        if args.method in ("ks_psi", "psi"):
            score = psi(ref, cur)
            results.append({"column": column, "method": "psi", "score": score, "threshold": 0.1,
                            "drifted": score >= 0.1})
    else:
        p_value = chisquare(ref, cur)
        results.append({"column": column, "method": "chisquare", "score": p_value, "threshold": 0.05,
                        "drifted": p_value < 0.05})
done = time.perf_counter()

drifted = sorted({r["column"] for r in results if r["drifted"]})
share = len(drifted) / len(columns) if columns else 0.0
seconds = {"total": done - started, "imports": imported - started, "read": read - imported, "drift": done - read}
print(f"seconds {done - started:.3f} (imports {imported - started:.3f}, read {read - imported:.3f}, "
      f"drift {done - read:.3f}), {len(reference)} vs {len(current)} rows, {len(columns)} columns")
print(json.dumps({"columns": results, "drifted": len(drifted), "drifted_columns": drifted, "share": share,
                  "dataset_drift": share >= 0.5, "seconds": seconds}))
