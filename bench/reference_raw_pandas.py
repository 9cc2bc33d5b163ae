"""Python reference for `mlops predict` on the source's raw records: pandas reads the raw CSV in
chunks, applies the same preparation the model package carries (its `pipeline.json`: the prepare
run's operations, then the features, each done with vectorised pandas), and scikit-learn predicts
with a model of the same family and hyperparameters, fitted (before the timing starts) on the
curated dataset version passed through the same features. pandas writes
`row,prediction,probability_<class>`.

Usage: python3 bench/reference_raw_pandas.py PACKAGE_DIR CURATED.parquet INPUT.csv OUTPUT.csv
       [--chunksize N]
Needs: python3 with pandas, pyarrow and scikit-learn.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd


def value(v):
    """A fitted value as the package writes it: `{"float": 4.0}`, `{"str": "x"}`, or "null"."""
    if v is None or v == "null":
        return np.nan
    (_, x), = v.items()
    return x


def apply(df: pd.DataFrame, op: dict) -> pd.DataFrame:
    kind = op["op"]
    if kind == "rename":
        return df.rename(columns=dict(op["mapping"]))
    if kind == "drop":
        return df.drop(columns=[c for c in op["columns"] if c in df.columns])
    if kind in ("deduplicate", "drop_null_rows", "filter_range"):
        return df  # training-set shaping: every served row is kept
    c = op.get("column")
    if kind == "clip":
        df[c] = pd.to_numeric(df[c], errors="coerce").clip(op["lower"], op["upper"])
    elif kind == "cast":
        (to, spec), = op["to"].items() if isinstance(op["to"], dict) else ((op["to"], {}),)
        if to == "date":
            parsed = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
            for f in spec.get("formats") or ["%Y-%m-%d"]:
                parsed = parsed.fillna(pd.to_datetime(df[c], format=f, errors="coerce"))
            df[c] = parsed
        elif to in ("float", "int"):
            df[c] = pd.to_numeric(df[c], errors="coerce")
        else:
            raise SystemExit(f"cast to {to} is not in this reference")
    elif kind == "linear":
        df[op.get("output") or c] = pd.to_numeric(df[c], errors="coerce") * op["factor"] + op["offset"]
    elif kind == "derive":
        df[op["output"]] = df.eval(op["expr"]["source"]).astype("float64")
    elif kind == "bin":
        x = pd.to_numeric(df[c], errors="coerce")
        df[op["output"]] = pd.cut(x, op["edges"], labels=op["labels"], right=op.get("closed", "right") == "right").astype(object)
    elif kind == "date_parts":
        d = pd.to_datetime(df[c])
        parts = {
            "year": d.dt.year, "month": d.dt.month, "day": d.dt.day, "day_of_week": d.dt.day_of_week,
            "hour": d.dt.hour, "is_weekend": (d.dt.day_of_week >= 5).where(d.notna()),
        }
        for part, out in zip(op["parts"], op["outputs"]):
            df[out] = parts[part].astype("float64")
    elif kind == "group_stats":
        x = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64")
        groups = df[op["by"]].astype(object)
        table, fallback = op["table"], op["fallback"]
        for stat, out in zip(op["stats"], op["outputs"]):
            col = np.full(len(df), np.nan)
            for key, idx in groups.groupby(groups.fillna("\0"), sort=False).indices.items():
                s = table.get(key, fallback)
                if stat == "mean":
                    col[idx] = s["mean"]
                elif stat == "std":
                    col[idx] = s["std"]
                else:  # rank: the percentile among the group's training values (101 quantiles)
                    q = np.asarray(s["quantiles"], dtype="float64")
                    steps = max(len(q), 2) - 1
                    v = x[idx]
                    below = np.searchsorted(q, v, side="left")
                    upto = np.searchsorted(q, v, side="right")
                    i = np.clip(below, 1, len(q) - 1)
                    between = ((i - 1) + (v - q[i - 1]) / (q[i] - q[i - 1])) / steps
                    r = np.where(below < upto, (below + upto - 1) / 2.0 / steps,
                                 np.where(below == 0, 0.0, np.where(below >= len(q), 1.0, between)))
                    col[idx] = np.where(np.isnan(v), np.nan, np.clip(r, 0.0, 1.0))
            df[out] = col
    elif kind == "target_encode":
        keys = df[c].astype(object)
        prior = op["prior"]
        for j, out in enumerate(op["outputs"]):
            mapping = {k: v[j] for k, v in op["table"].items()}
            df[out] = keys.map(mapping).astype("float64").fillna(prior[j])
        if op.get("drop_input"):
            df = df.drop(columns=[c])
    elif kind == "one_hot":
        keys = df[c].astype(object)
        for cat, out in zip(op["categories"], op["outputs"]):
            df[out] = (keys == cat).astype("float64").where(keys.notna())
        if op.get("drop_input"):
            df = df.drop(columns=[c])
    elif kind == "fill_null":
        df[c] = df[c].fillna(value(op["value"]))
    elif kind == "scale":
        df[c] = (pd.to_numeric(df[c], errors="coerce") - op["center"]) / op["scale"]
    else:
        raise SystemExit(f"operation `{kind}` is not in this reference")
    return df


def model(info: dict):
    """A scikit-learn model of the package's family with its hyperparameters."""
    family, params = info["family"], {k: json.loads(v) if v[:1] in "0123456789-[{tfn" else v.strip('"')
                                      for k, v in info["params"].items()}
    if family == "logistic_regression":
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(C=params.get("c", 1.0), max_iter=params.get("max_iter", 100))
    if family == "decision_tree_classifier":
        from sklearn.tree import DecisionTreeClassifier
        return DecisionTreeClassifier(max_depth=params.get("max_depth"), random_state=42)
    if family == "random_forest_classifier":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier(n_estimators=params.get("n_estimators", 100), max_depth=params.get("max_depth"),
                                      random_state=42, n_jobs=1)
    if family == "svc":
        from sklearn.svm import SVC
        return SVC(C=params.get("c", 1.0), kernel=params.get("kernel", "rbf"), probability=True, random_state=42)
    if family == "knn_classifier":
        from sklearn.neighbors import KNeighborsClassifier
        return KNeighborsClassifier(n_neighbors=params.get("k", 5))
    if family == "gaussian_nb":
        from sklearn.naive_bayes import GaussianNB
        return GaussianNB()
    if family == "gradient_boosting_classifier":
        from sklearn.ensemble import HistGradientBoostingClassifier
        return HistGradientBoostingClassifier(max_iter=params.get("max_iter", 100), max_depth=params.get("max_depth"),
                                              learning_rate=params.get("learning_rate", 0.1), random_state=42)
    raise SystemExit(f"family `{family}` is not in this reference")


class Fitted:
    """The package's road and a scikit-learn model of its family, fitted on the curated rows passed
    through the road's features part."""

    def __init__(self, package: str, curated: str):
        self.info = json.load(open(os.path.join(package, "model.json")))
        self.ops = json.load(open(os.path.join(package, "pipeline.json")))["ops"]
        self.signature = json.load(open(os.path.join(package, "signature.json")))["inputs"]
        skip = self.info.get("source_ops") or 0
        rows = pd.read_parquet(curated)
        y = rows[self.info["target"]].astype(str)
        x = rows.drop(columns=[self.info["target"]])
        for op in self.ops[skip:]:
            x = apply(x, op)
        keep = y.notna() & (y != "None")
        self.model = model(self.info).fit(x.loc[keep, self.info["features"]].to_numpy(dtype="float64"), y[keep])
        self.classes = [str(c) for c in self.model.classes_]

    def predict_proba(self, records: pd.DataFrame) -> np.ndarray:
        """Raw records (the source's columns) to class probabilities, through the road."""
        frame = records
        for op in self.ops:
            frame = apply(frame, op)
        return self.model.predict_proba(frame[self.info["features"]].to_numpy(dtype="float64"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("package")
    p.add_argument("curated")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--chunksize", type=int, default=65536)
    a = p.parse_args()
    fitted = Fitted(a.package, a.curated)  # not timed
    started = time.perf_counter()
    rows = 0
    text = {c["name"]: "string" for c in fitted.signature if c["dtype"] in ("string", "date", "datetime")}
    nulls = sorted({n for c in fitted.signature for n in c.get("null_values", [])} | {""})
    with open(a.output, "w") as out:
        reader = pd.read_csv(a.input, chunksize=a.chunksize, usecols=[c["name"] for c in fitted.signature],
                             dtype=text, na_values=nulls, keep_default_na=False)
        for k, chunk in enumerate(reader):
            proba = fitted.predict_proba(chunk.astype({c: object for c in text}))
            res = pd.DataFrame(proba, columns=[f"probability_{c}" for c in fitted.classes])
            res.insert(0, "prediction", [fitted.classes[i] for i in proba.argmax(axis=1)])
            res.insert(0, "row", range(rows, rows + len(chunk)))
            res.to_csv(out, index=False, header=(k == 0))
            rows += len(chunk)
    print(f"{rows} rows in {time.perf_counter() - started:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
