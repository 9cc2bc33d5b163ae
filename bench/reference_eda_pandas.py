"""pandas reference for `mlops eda`: the same profile of the same table, as JSON.

Usage: python3 bench/reference_eda_pandas.py [IN.parquet] [OUT.json]
Computes what the toolkit's profile holds: shape, types, deep memory; per column count, nulls,
nunique, top-10 value counts; describe(), skew and kurtosis, a 30-bin histogram and IQR outliers of
numeric columns; value counts of text and boolean columns; Pearson and Spearman matrices and the
pairs over 0.7; duplicate rows; constant columns. (No HTML: pandas has none; ydata-profiling, which
draws one, is far slower than this script.)
"""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

src = sys.argv[1] if len(sys.argv) > 1 else "bench/out/wide.parquet"
out = Path(sys.argv[2] if len(sys.argv) > 2 else "bench/out/eda_pandas.json")
df = pd.read_parquet(src)
numeric = df.select_dtypes(include=[np.number]).columns
categorical = [c for c in df.columns if c not in numeric and not pd.api.types.is_datetime64_any_dtype(df[c])]
profile = {
    "rows": len(df),
    "columns": df.shape[1],
    "types": {str(k): int(v) for k, v in df.dtypes.astype(str).value_counts().items()},
    "memory": int(df.memory_usage(deep=True).sum()),
    "variables": {},
}
describe = df[numeric].describe()
skew, kurt = df[numeric].skew(), df[numeric].kurt()
for c in df.columns:
    s = df[c]
    v = {"count": int(s.count()), "nulls": int(s.isna().sum()), "unique": int(s.nunique()),
         "top": {str(k): int(n) for k, n in s.value_counts().head(10).items()}}
    if c in numeric:
        d = describe[c]
        values = s.dropna().to_numpy()
        q1, q3 = d["25%"], d["75%"]
        lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        counts, edges = np.histogram(values, bins=30)
        v.update({k: float(d[k]) for k in ["mean", "std", "min", "25%", "50%", "75%", "max"]})
        v.update(skew=float(skew[c]), kurtosis=float(kurt[c]), zeros=int((values == 0).sum()),
                 histogram={"edges": edges.tolist(), "counts": counts.tolist()},
                 outliers=int(((values < lo) | (values > hi)).sum()))
    elif c in categorical:
        v["categories"] = {str(k): int(n) for k, n in s.value_counts().head(20).items()}
    profile["variables"][c] = v
pearson = df[numeric].corr()
spearman = df[numeric].corr(method="spearman")
profile["pearson"] = pearson.values.tolist()
profile["spearman"] = spearman.values.tolist()
profile["high"] = [(a, b) for i, a in enumerate(numeric) for b in numeric[i + 1:]
                   if abs(pearson.loc[a, b]) >= 0.7 or abs(spearman.loc[a, b]) >= 0.7]
profile["duplicates"] = int(df.duplicated().sum())
profile["constant"] = [c for c in df.columns if df[c].nunique() <= 1]
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(profile, default=str))
print(f"{len(df)} rows x {df.shape[1]} columns profiled")
