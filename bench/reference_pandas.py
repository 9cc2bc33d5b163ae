"""pandas reference for bench/config.yaml: the same steps 1-6 on the same generated file.

Usage: python3 bench/reference_pandas.py [IN.csv] [OUT_DIR]
"""
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

src = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/mixed.csv")
out_dir = Path(sys.argv[2] if len(sys.argv) > 2 else "bench/out/pandas")

# 1. ingest (with a content hash for lineage, as the toolkit records)
raw_sha = hashlib.sha256(src.read_bytes()).hexdigest()
df = pd.read_csv(src, na_values=["NA"], keep_default_na=False, low_memory=False)

# 2. validate: every check, counting failures (Pandera-style lazy validation)
cats = {f"cat_{i:02d}" for i in range(20)}
failures = {
    "order_id_null": int(df["Order ID"].isna().sum()),
    "category_allowed": int((df["Category"].notna() & ~df["Category"].isin(cats)).sum()),
    "region_allowed": int((~df["Region"].isin({"north", "south", "east", "west"})).sum()),
    "region_null": int(df["Region"].isna().sum()),
    "amount_min": int((df["Amount"] < -100000).sum()),
    "amount_max": int((df["Amount"] > 100000).sum()),
    "quantity_min": int((df["Quantity"] < 1).sum()),
    "quantity_max": int((df["Quantity"] > 1000).sum()),
    "unit_price_min": int((df["Unit Price"] < 0).sum()),
    "created_regex": int((df["Created"].notna() & ~df["Created"].str.match(r"^\d{4}-\d{2}-\d{2}$")).sum()),
    "rule_total": int((df["Quantity"] * df["Unit Price"] < 0).sum()),
}
assert all(v == 0 for k, v in failures.items() if k != "rule_total"), failures

# 3. clean
df["Active"] = df["Active"].str.strip().str.lower().map({"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False})
df["Comment"] = df["Comment"].str.strip().str.lower().str.replace(r"[^\w\s]", "", regex=True)
df = df.drop_duplicates()
df["Amount"] = df["Amount"].fillna(df["Amount"].median())
df["Quantity"] = df["Quantity"].fillna(df["Quantity"].median())
df["Category"] = df["Category"].fillna(df["Category"].mode()[0])
df["Score"] = df["Score"].fillna(df.groupby("Category")["Score"].transform("median")).fillna(df["Score"].median())
q1, q3 = df["Amount"].quantile(0.25), df["Amount"].quantile(0.75)
df["Amount"] = df["Amount"].clip(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))

# 4. standardize
df.columns = [re.sub(r"[^0-9a-zA-Z]+", "_", c).strip("_").lower() for c in df.columns]
df["created"] = pd.to_datetime(df["created"], format="%Y-%m-%d", errors="coerce")
df["amount"] = df["amount"].round(2)

# 5. transform
df["total"] = df["quantity"] * df["unit_price"]
df = pd.get_dummies(df, columns=["region"], prefix="region", dtype=float)
df["amount"] = (df["amount"] - df["amount"].mean()) / df["amount"].std(ddof=0)
lo, hi = df["score"].min(), df["score"].max()
df["score"] = (df["score"] - lo) / (hi - lo)

# 6. curate: content hash as version, Parquet, metadata
version = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).values.tobytes()).hexdigest()[:16]
target = out_dir / version
target.mkdir(parents=True, exist_ok=True)
df.to_parquet(target / "data.parquet", index=False, compression="zstd")
meta = {
    "version": version,
    "rows": len(df),
    "columns": df.shape[1],
    "nulls": {c: int(n) for c, n in df.isna().sum().items()},
    "unique": {c: int(n) for c, n in df.nunique(dropna=False).items()},
    "source_sha256": raw_sha,
}
(target / "metadata.json").write_text(json.dumps(meta, indent=2))
print(f"{version} {len(df)} rows x {df.shape[1]} columns")
