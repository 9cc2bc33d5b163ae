"""Evidently reference for `mlops monitor drift`: DataDriftPreset on two Parquet files.

Usage: python3 bench/reference_drift_evidently.py REF.parquet CUR.parquet
Needs the packages of bench/requirements-evidently.txt (bench/monitor.sh makes their venv).

Reads both files with pandas.read_parquet and runs Evidently 0.7's report API:
    from evidently import Report
    from evidently.presets import DataDriftPreset
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
with the preset's defaults: every column, the method Evidently picks per column (for more than
1,000 reference rows: Wasserstein distance over the reference's standard deviation for numeric
columns with more than 5 values, Jensen-Shannon distance otherwise, both at 0.1) and dataset drift
at a share of 0.5. Column types come from Evidently's own inference on the pandas frame (object
text columns are categorical). The result is read from snapshot.dict(): DriftedColumnsCount
(count, share) and one ValueDrift per column (its method, threshold and score).

Prints one line with the wall seconds (from before the imports of pandas and evidently to the end;
the read and the report also apart), then a JSON summary in the toolkit's shape:
{"columns": [{"column", "method", "score", "threshold", "drifted"}], "drifted": N, "share",
"dataset_drift", "seconds": {...}, "evidently": version}, each method by the toolkit's name for it
(wasserstein, jensenshannon, ks, chisquare, z, psi; Evidently's own in "evidently_method").
"""
import os
import time

started = time.perf_counter()
os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry (iterative-telemetry)

import json  # noqa: E402
import sys  # noqa: E402

import evidently  # noqa: E402
import pandas as pd  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

# Evidently's display names of its tests, as the toolkit names the same methods.
METHODS = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
           "K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z", "PSI": "psi"}

if len(sys.argv) != 3:
    sys.exit(__doc__.split("\n\n")[1])
imported = time.perf_counter()

reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
read = time.perf_counter()

snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
result = snapshot.dict()
done = time.perf_counter()

columns, count = [], None
for metric in result["metrics"]:
    config = metric["config"]
    if config["type"].endswith(":DriftedColumnsCount"):
        count = metric["value"]
    elif config["type"].endswith(":ValueDrift"):
        method, score, threshold = config["method"], float(metric["value"]), float(config["threshold"])
        # Evidently's tests: a p-value drifts below the threshold, a distance from it on.
        is_p_value = "p_value" in method
        drifted = score < threshold if is_p_value else score >= threshold
        columns.append({"column": config["column"], "method": METHODS.get(method, method), "score": score,
                        "threshold": threshold, "drifted": drifted, "evidently_method": method})
drifted = [c["column"] for c in columns if c["drifted"]]
assert count is not None and int(count["count"]) == len(drifted), (count, drifted)
seconds = {"total": done - started, "imports": imported - started, "read": read - imported, "report": done - read}
print(f"seconds {done - started:.3f} (imports {imported - started:.3f}, read {read - imported:.3f}, "
      f"report {done - read:.3f}), {len(reference)} vs {len(current)} rows, {len(columns)} columns")
print(json.dumps({"columns": columns, "drifted": len(drifted), "drifted_columns": sorted(drifted),
                  "share": count["share"], "dataset_drift": count["share"] >= 0.5, "seconds": seconds,
                  "evidently": evidently.__version__}))
