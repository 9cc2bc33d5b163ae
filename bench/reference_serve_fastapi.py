"""FastAPI reference for the toolkit's model server (`mlops serve`), as a Python team would write it
when callers send the source's raw records: the served package's preparation (its pipeline.json,
applied with vectorised pandas by bench/reference_raw_pandas.py) and a scikit-learn model of the
same family and hyperparameters, fitted on the curated dataset version the package was trained on;
one pandas DataFrame per request.

Routes: GET /ping; POST /invocations {"dataframe_records": [...]} -> {"predictions": [...]};
POST /v2/models/{name}/infer with Open Inference Protocol v2 column tensors -> outputs "label"
(BYTES, [N]) and "probabilities" (FP64, [N, classes]), the toolkit's output layout.

Usage:
  MODEL_PACKAGE=DIR python3 bench/reference_serve_fastapi.py [--port P] [--workers W]   serve
  MODEL_PACKAGE=DIR python3 bench/reference_serve_fastapi.py --check [ROWS.json]   predict raw rows
MODEL_PACKAGE is the served package's directory (`mlops registry show MODEL --json` ->
artifact_path); the curated data is found from its lineage under data/processed (relative to the
folder it runs in, as mlops's paths are). Each worker fits
at import (milliseconds on the shipped data).
Needs: python3 with fastapi, uvicorn, pandas, pyarrow and scikit-learn.
"""
import json
import os
import sys
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_raw_pandas as raw  # noqa: E402

PACKAGE = os.environ["MODEL_PACKAGE"]
MODEL_NAME = os.environ.get("MODEL_NAME", "penguins-species")
name, version = json.load(open(os.path.join(PACKAGE, "lineage.json")))["dataset_version"].split("@")
fitted = raw.Fitted(PACKAGE, os.path.join("data/processed", name, version, "data.parquet"))
classes = fitted.classes
REQUIRED = [c["name"] for c in fitted.signature if not c.get("nullable")]
TEXT = [c["name"] for c in fitted.signature if c["dtype"] in ("string", "date", "datetime")]
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


def proba_of(df: pd.DataFrame) -> np.ndarray:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise HTTPException(status_code=422, detail=f"missing columns: {missing}")
    for c in fitted.signature:
        if c["name"] not in df.columns:
            df[c["name"]] = np.nan
    return fitted.predict_proba(df.astype({c: object for c in TEXT}))


@app.get("/ping", response_class=PlainTextResponse)
def ping() -> str:
    return "\n"


@app.post("/invocations")
def invocations(body: Records) -> dict:
    proba = proba_of(pd.DataFrame(body.dataframe_records))
    return {"predictions": [classes[i] for i in proba.argmax(axis=1)]}


@app.post("/v2/models/{name}/infer")
def infer(name: str, body: InferRequest) -> dict:
    if name != MODEL_NAME:
        raise HTTPException(status_code=404, detail=f"unknown model {name}")
    proba = proba_of(pd.DataFrame({t.name: t.data for t in body.inputs}))
    labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    n = len(proba)
    out = {"model_name": MODEL_NAME, "model_version": "1", "outputs": [
        {"name": "label", "datatype": "BYTES", "shape": [n], "data": labels.tolist()},
        {"name": "probabilities", "datatype": "FP64", "shape": [n, len(classes)], "data": proba.ravel().tolist()},
    ]}
    if body.id is not None:
        out["id"] = body.id
    return out


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(usage=__doc__.split("Usage:\n")[1].split("\n\n")[0])
    p.add_argument("--check", nargs="?", const="-", metavar="ROWS.json")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    if args.check:
        rows = json.load(sys.stdin if args.check == "-" else open(args.check))
        for proba in proba_of(pd.DataFrame(rows)):
            print(classes[int(proba.argmax())], dict(zip(classes, np.round(proba, 3).tolist())))
    else:  # the uvicorn command line, so that the workers import this file as a module
        os.execvp(sys.executable, [sys.executable, "-m", "uvicorn", "reference_serve_fastapi:app",
                                   "--app-dir", os.path.dirname(os.path.abspath(__file__)),
                                   "--host", args.host, "--port", str(args.port), "--workers", str(args.workers),
                                   "--no-access-log", "--log-level", "warning"])
