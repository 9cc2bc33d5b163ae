"""Python reference for `mlops predict`: pandas reads the CSV, the FastAPI reference's
scikit-learn pipeline (same family, same data) predicts labels and probabilities, pandas writes
`row,prediction,probability_<class>` to CSV. Reading in chunks (`chunksize`) keeps memory flat,
as the toolkit does.

Usage: python3 bench/reference_batch_pandas.py INPUT.csv OUTPUT.csv [--chunksize N]
"""
import argparse
import os
import sys
import time

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_serve_fastapi as ref  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--chunksize", type=int, default=65536)
    a = p.parse_args()
    pipe = ref.train()
    classes = list(pipe.classes_)
    started = time.perf_counter()
    rows = 0
    with open(a.output, "w") as out:
        for k, chunk in enumerate(pd.read_csv(a.input, chunksize=a.chunksize)):
            x = ref.frame(chunk)
            proba = pipe.predict_proba(x)
            res = pd.DataFrame(proba, columns=[f"probability_{c}" for c in classes])
            res.insert(0, "prediction", [classes[i] for i in proba.argmax(axis=1)])
            res.insert(0, "row", range(rows, rows + len(chunk)))
            res.to_csv(out, index=False, header=(k == 0))
            rows += len(chunk)
    print(f"{rows} rows in {time.perf_counter() - started:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
