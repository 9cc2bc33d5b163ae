"""Reference check: configs/data.yaml's steps done with pandas, compared with the toolkit's output.

Usage: python3 penguins_pandas.py RAW_DIR CURATED.parquet
Prints JSON: the row counts; the columns only pandas has and the columns only the toolkit has;
per shared column, the largest absolute difference between values both sides have (numbers) and
the count of differing cells. A cell null on one side and filled on the other differs; a cell null
on both sides agrees.
"""
import json
import re
import sys

import numpy as np
import pandas as pd

raw_dir, curated = sys.argv[1], sys.argv[2]
df = pd.read_csv(f"{raw_dir}/penguins-raw.csv", na_values=["NA", ""], keep_default_na=False)
islands = pd.read_csv(f"{raw_dir}/islands.csv")

# clean (types, text, duplicates, missing, outliers)
df["Clutch Completion"] = df["Clutch Completion"].str.lower().map({"yes": True, "no": False})
df["Comments"] = df["Comments"].str.strip().str.split().str.join(" ").replace("", np.nan)
df = df.drop_duplicates()
df = df[df["Body Mass (g)"].notna()].copy()
q1, q3 = df["Body Mass (g)"].quantile([0.25, 0.75])
df["Body Mass (g)"] = df["Body Mass (g)"].clip(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))

# standardize
rename = {"studyName": "study_name", "Delta 15 N (o/oo)": "delta_15n", "Delta 13 C (o/oo)": "delta_13c"}
df.columns = [rename.get(c, re.sub(r"[^0-9a-zA-Z]+", "_", c).strip("_").lower()) for c in df.columns]
df["date_egg"] = pd.to_datetime(df["date_egg"], format="%Y-%m-%d")
df["species"] = df["species"].str.split().str[0]
df["sex"] = df["sex"].map({"MALE": "male", "FEMALE": "female"})
df["body_mass_kg"] = df.pop("body_mass_g") * 0.001

# transform
df = df.merge(islands, on="island", how="left")
df["culmen_ratio"] = df["culmen_length_mm"] / df["culmen_depth_mm"]
df["egg_year"] = df["date_egg"].dt.year.astype(float)
df["mass_class"] = pd.cut(df["body_mass_kg"], [0, 3.5, 4.5, 7], labels=["light", "medium", "heavy"]).astype(str)
# (Fills, encodings and scaling learn from rows: configs/training.yaml's `features` fits them on
# the training part.)

ours = pd.read_parquet(curated)
result = {
    "rows": {"pandas": len(df), "toolkit": len(ours)},
    # Column sets compared both ways: a column either side lacks is a difference.
    "missing_in_toolkit": [c for c in df.columns if c not in ours.columns],
    "extra_in_toolkit": [c for c in ours.columns if c not in df.columns],
    "columns": {},
}
# Rows are compared by position; a row only one side has counts as null there.
n = max(len(df), len(ours))
for c in df.columns:
    if c not in ours.columns:
        continue
    a = df[c].reset_index(drop=True).reindex(range(n))
    b = ours[c].reset_index(drop=True).reindex(range(n))
    # A null on one side and a value on the other is a differing cell; nulls on both sides agree.
    one_null = a.isna() != b.isna()
    both = a.notna() & b.notna()
    if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
        x = a.astype(float)
        y = pd.to_numeric(b, errors="coerce").astype(float)
        # A value pandas has that the toolkit's column cannot hold as a number differs too.
        unreadable = b.notna() & y.isna()
        gap = (x - y).abs().where(both & ~unreadable, 0.0)
        differing = one_null | unreadable | (gap > 1e-9)
        result["columns"][c] = {
            "max_abs_difference": float(gap.max()) if n else 0.0,
            "differing_cells": int(differing.sum()),
        }
    else:
        differing = one_null | (both & (a.astype(str) != b.astype(str)))
        result["columns"][c] = {"max_abs_difference": 0.0, "differing_cells": int(differing.sum())}
print(json.dumps(result))
