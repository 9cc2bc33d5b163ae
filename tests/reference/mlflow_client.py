"""Reference check: MLflow's own scoring client, used unchanged, against `mlops serve`.

Usage: python3 mlflow_client.py URL ROWS_JSON [--drop COLUMN] [--timeout SECONDS]

URL is the server's base address (http://127.0.0.1:8080). ROWS_JSON is a file holding a JSON list
of plain records (column -> value; dates as "YYYY-MM-DD", missing values as null).

Needs `mlflow-skinny` (the lightest package that ships the client) and pandas. The client is
`mlflow.pyfunc.scoring_server.client.ScoringServerClient`: it polls GET /ping until it answers 200,
and posts a pandas DataFrame to /invocations as Content-Type application/json with the body
`{"dataframe_split": {"index": [...], "columns": [...], "data": [[...], ...]}}`, written by
`json.dumps` (so a missing value in the DataFrame goes out as the bare token `NaN`). It reads the
answer with `PredictionsResponse.from_json`, which needs a JSON object with a `predictions` key, and
raises a plain `Exception("Invocation failed (error code N, response: BODY)")` on any status but 200.

Prints one JSON object on stdout:
  {"predictions": [...],            the list the client returned
   "bad_request": {"dropped": COLUMN, "exception": TYPE, "message": TEXT,
                   "status": N, "response": BODY as JSON (or text)}}
Exits non-zero, with the error on stderr, if the client fails on the good rows, if
`get_predictions()` does not give one row per input row, or if the bad request (the rows without
COLUMN, by default their first column) is not refused.
"""
import argparse
import json
import math
import re
import sys
from urllib.parse import urlsplit


def plain(value):
    """Plain JSON values (NaN and infinities as null; numpy scalars as Python ones)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fail(message):
    print(f"mlflow_client.py: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("rows_json")
    parser.add_argument("--drop", help="column left out of the bad request (default: the first one)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for /ping")
    args = parser.parse_args()

    url = urlsplit(args.url if "://" in args.url else f"http://{args.url}")
    if url.scheme != "http" or not url.hostname:
        fail(f"URL must be http://HOST:PORT, got {args.url!r}")
    if url.path not in ("", "/"):
        fail(f"the MLflow client takes a host and a port only, not a path ({url.path!r})")
    host, port = url.hostname, url.port or 80

    with open(args.rows_json) as f:
        rows = json.load(f)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        fail(f"{args.rows_json} must hold a non-empty JSON list of objects")

    import pandas as pd
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    client = ScoringServerClient(host, port)
    try:
        client.wait_server_ready(timeout=args.timeout)
    except Exception as e:  # noqa: BLE001 - report whatever the client raised
        fail(f"server not ready: {type(e).__name__}: {e}")

    frame = pd.DataFrame(rows)
    try:
        response = client.invoke(frame)
        predictions = response["predictions"]
        as_frame = response.get_predictions()
    except Exception as e:  # noqa: BLE001
        fail(f"invoke failed: {type(e).__name__}: {e}")
    if len(as_frame) != len(frame):
        fail(f"get_predictions() gave {len(as_frame)} rows for {len(frame)} input rows: {predictions!r}")

    dropped = args.drop or str(frame.columns[0])
    if dropped not in frame.columns:
        fail(f"--drop {dropped!r}: no such column in {args.rows_json}")
    try:
        unexpected = client.invoke(frame.drop(columns=[dropped]))
    except Exception as e:  # noqa: BLE001
        message = str(e)
        bad = {"dropped": dropped, "exception": type(e).__name__, "message": message}
        m = re.match(r"Invocation failed \(error code (\d+), response: (.*)\)\Z", message, re.S)
        if m:
            bad["status"] = int(m.group(1))
            try:
                bad["response"] = json.loads(m.group(2))
            except ValueError:
                bad["response"] = m.group(2)
    else:
        fail(f"the rows without {dropped!r} were accepted: {dict(unexpected)!r}")

    print(json.dumps({"predictions": plain(predictions), "bad_request": plain(bad)}, allow_nan=False))


if __name__ == "__main__":
    main()
