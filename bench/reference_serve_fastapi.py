"""FastAPI reference for the toolkit's model server (`mlops serve`), as a Python team would write it:
the same model family (DecisionTreeClassifier, max_depth=3, random_state=42) fitted by scikit-learn
on the curated penguins data the toolkit wrote (data/processed/penguins/*/data.parquet), behind a
plain preprocessing Pipeline (numeric median impute, bool as int, date as days since 1970, one-hot
categoricals with handle_unknown="ignore"), one pandas DataFrame per request.

Routes: GET /ping; POST /invocations {"dataframe_records": [...]} -> {"predictions": [...]};
POST /v2/models/{name}/infer with Open Inference Protocol v2 column tensors -> outputs "label"
(BYTES, [N]) and "probabilities" (FP64, [N, classes]), the toolkit's output layout.

Usage:
  python3 bench/reference_serve_fastapi.py [--port P] [--workers W]   serve (PORT env too; 2 workers)
  uvicorn reference_serve_fastapi:app --app-dir bench --workers 2 --port P   the same
  python3 bench/reference_serve_fastapi.py --check [ROWS.json]   predict plain JSON rows, print
Each worker fits the pipeline at import (273 training rows: milliseconds); REFERENCE_DATA names
another parquet file.
Needs: python3 with fastapi, uvicorn, pandas, pyarrow and scikit-learn.
"""
import glob
import os
import sys
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

MODEL_NAME = "penguins-species"
TARGET = "species"
NUMERIC = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "delta_15n", "delta_13c",
           "body_mass_kg", "culmen_ratio", "egg_year", "island_biscoe", "island_dream",
           "island_torgersen", "sex_female", "sex_male"]
BOOLS = ["clutch_completion"]
DATES = ["date_egg"]
CATEGORICAL = ["comments", "mass_class"]
FEATURES = BOOLS + DATES + NUMERIC + CATEGORICAL
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def bool_as_int(x):
    return x.astype("float64")


def days_since_epoch(x):
    return x.apply(lambda s: (pd.to_datetime(s) - pd.Timestamp("1970-01-01")).dt.days).astype("float64")


def build_pipeline() -> Pipeline:
    pre = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), NUMERIC),
        ("bool", make_pipeline(FunctionTransformer(bool_as_int), SimpleImputer(strategy="most_frequent")), BOOLS),
        ("date", make_pipeline(FunctionTransformer(days_since_epoch), SimpleImputer(strategy="median")), DATES),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
    ])
    return Pipeline([("pre", pre), ("model", DecisionTreeClassifier(max_depth=3, random_state=42))])


def train(data: str | None = None) -> Pipeline:
    from sklearn.model_selection import train_test_split
    if data is None:
        data = max(glob.glob(os.path.join(ROOT, "data/processed/penguins/*/data.parquet")), key=os.path.getmtime)
    df = pd.read_parquet(data)
    x_train, x_test, y_train, y_test = train_test_split(
        df[FEATURES], df[TARGET], test_size=0.2, stratify=df[TARGET], random_state=42)
    pipe = build_pipeline().fit(x_train, y_train)
    print(f"reference: fitted on {len(x_train)} rows of {data}; held-out accuracy "
          f"{(pipe.predict(x_test) == y_test).mean():.3f} on {len(x_test)} rows", file=sys.stderr)
    return pipe


pipeline = train(os.environ.get("REFERENCE_DATA"))
classes = [str(c) for c in pipeline.classes_]
app = FastAPI(title="penguins-species (FastAPI reference)")


class Records(BaseModel):
    dataframe_records: list[dict[str, Any]]


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[Tensor]


def frame(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in FEATURES if c not in df.columns]
    if missing:
        raise HTTPException(status_code=422, detail=f"missing columns: {missing}")
    return df[FEATURES]


@app.get("/ping", response_class=PlainTextResponse)
def ping() -> str:
    return "\n"


@app.post("/invocations")
def invocations(body: Records) -> dict:
    df = frame(pd.DataFrame(body.dataframe_records))
    return {"predictions": pipeline.predict(df).tolist()}


@app.post("/v2/models/{name}/infer")
def infer(name: str, body: InferRequest) -> dict:
    if name != MODEL_NAME:
        raise HTTPException(status_code=404, detail=f"unknown model {name}")
    df = frame(pd.DataFrame({t.name: t.data for t in body.inputs}))
    proba = pipeline.predict_proba(df)
    labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    n = len(df)
    out = {"model_name": MODEL_NAME, "model_version": "1", "outputs": [
        {"name": "label", "datatype": "BYTES", "shape": [n], "data": labels.tolist()},
        {"name": "probabilities", "datatype": "FP64", "shape": [n, len(classes)], "data": proba.ravel().tolist()},
    ]}
    if body.id is not None:
        out["id"] = body.id
    return out


if __name__ == "__main__":
    import argparse
    import json
    p = argparse.ArgumentParser(usage=__doc__.split("Usage:\n")[1].split("\n\n")[0])
    p.add_argument("--check", nargs="?", const="-", metavar="ROWS.json")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    if args.check:
        rows = json.load(sys.stdin if args.check == "-" else open(args.check))
        df = frame(pd.DataFrame(rows))
        for label, proba in zip(pipeline.predict(df), pipeline.predict_proba(df)):
            print(label, dict(zip(classes, np.round(proba, 3).tolist())))
    else:  # the uvicorn command line, so that the workers import this file as a module
        os.execvp(sys.executable, [sys.executable, "-m", "uvicorn", "reference_serve_fastapi:app",
                                   "--app-dir", os.path.dirname(os.path.abspath(__file__)),
                                   "--host", args.host, "--port", str(args.port), "--workers", str(args.workers),
                                   "--no-access-log", "--log-level", "warning"])
