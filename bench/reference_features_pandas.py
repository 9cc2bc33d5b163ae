"""pandas + scikit-learn reference for `mlops features` with bench/training.yaml on the wide table:
the same stratified split, the same features fitted on the training part, the same selection,
then the test part transformed and all parts written as Parquet.

Usage: python3 bench/reference_features_pandas.py [IN.parquet] [OUT_DIR]
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
from sklearn.model_selection import KFold, train_test_split
from sklearn.preprocessing import PolynomialFeatures, TargetEncoder

src = sys.argv[1] if len(sys.argv) > 1 else "bench/out/wide.parquet"
out = Path(sys.argv[2] if len(sys.argv) > 2 else "bench/out/features_pandas")
out.mkdir(parents=True, exist_ok=True)
df = pd.read_parquet(src)
df = df[df["cat_0"].notna()]
train, test = train_test_split(df, test_size=0.2, stratify=df["cat_0"], random_state=42)


def extract(d, fit, fitting):
    d = d.copy()
    d0 = pd.to_datetime(d["date_0"])
    d["date_0_year"], d["date_0_month"], d["date_0_day"] = d0.dt.year, d0.dt.month, d0.dt.day
    d["date_0_day_of_week"] = d0.dt.day_of_week
    d["date_0_is_weekend"] = d["date_0_day_of_week"] >= 5
    d["date_1_hour"], d["date_1_day_of_week"] = d["date_1"].dt.hour, d["date_1"].dt.day_of_week
    d["cat_4_length"] = d["cat_4"].str.len()
    if fitting:
        fit.update(edges=pd.qcut(d["num_02"], 10, retbins=True, duplicates="drop")[1])
    d["num_02_bin"] = pd.cut(d["num_02"], fit["edges"], include_lowest=True).astype(str)
    d["ratio_03_04"] = d["num_03"] / d["num_04"]
    d["prod_05_06"] = d["num_05"] * d["num_06"]
    poly = PolynomialFeatures(2, include_bias=False)
    terms = poly.fit_transform(d[["num_07", "num_08", "num_09"]].fillna(0))[:, 3:]
    for name, col in zip(poly.get_feature_names_out(["num_07", "num_08", "num_09"])[3:], terms.T):
        d[name] = col
    d = d.sort_values(["cat_1", "date_1"])
    g = d.groupby("cat_1")["num_10"]
    d["num_10_lag1"], d["num_10_lag7"] = g.shift(1), g.shift(7)
    d["num_10_rolling_mean7"] = g.rolling(7).mean().reset_index(level=0, drop=True)
    d = d.sort_index()
    grp = d.groupby("cat_2")["num_11"]
    if fitting:
        fit.update(mean=grp.mean(), std=grp.std())
    d["num_11_mean_by_cat_2"] = d["cat_2"].map(fit["mean"])
    d["num_11_std_by_cat_2"] = d["cat_2"].map(fit["std"])
    d["num_11_rank_by_cat_2"] = grp.rank(pct=True)
    return d


state = {}
train_x = extract(train, state, True)
test_x = extract(test, state, False)
# Out-of-fold target encoding on the training rows (cross fitting), full fit for the test rows.
te = TargetEncoder(target_type="multiclass", smooth=10.0, cv=KFold(5, shuffle=True, random_state=42))
cats = train_x[["cat_4"]].fillna("null")
encoded = te.fit_transform(cats, train_x["cat_0"])
names = [f"cat_4_te_{c}" for c in te.classes_]
train_x[names] = encoded
test_x[names] = te.transform(test_x[["cat_4"]].fillna("null"))
train_x, test_x = train_x.drop(columns="cat_4"), test_x.drop(columns="cat_4")
# Selection on the numeric features of the training part.
features = [c for c in train_x.select_dtypes(include=[np.number, bool]).columns if c != "cat_0"]
x = train_x[features].astype(float)
vt = VarianceThreshold(0.0).fit(x.fillna(x.mean()))
kept = [f for f, k in zip(features, vt.get_support()) if k]
corr = x[kept].corr().abs()
chosen = []
for c in kept:
    if not any(corr.loc[k, c] > 0.95 for k in chosen):
        chosen.append(c)
best = SelectKBest(f_classif, k=20).fit(x[chosen].fillna(x[chosen].mean()), train_x["cat_0"])
selected = [c for c, k in zip(chosen, best.get_support()) if k]
drop = [c for c in features if c not in selected]
train_x.drop(columns=drop).to_parquet(out / "train.parquet")
test_x.drop(columns=drop).to_parquet(out / "test.parquet")
print(f"{len(train_x)} training rows, {len(selected)} features kept")
