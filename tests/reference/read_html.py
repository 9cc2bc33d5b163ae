"""The reference for the html_table source: pandas.read_html (lxml) on a page the tests write.

Usage: read_html.py PAGE INDEX [MATCH]
Prints JSON: the table's column names (several header rows joined by a space, a level that
repeats the one above once, "Unnamed: ..." levels left out, as the toolkit names them), each
column's kind (int, float, bool, str) and its values (null for missing).
"""
import json
import math
import sys

import pandas as pd

page, index = sys.argv[1], int(sys.argv[2])
match = sys.argv[3] if len(sys.argv) > 3 else ".+"
frame = pd.read_html(page, match=match, flavor="lxml")[index]


def name(j, column):
    if not isinstance(column, tuple):
        return str(column)
    parts = []
    for level in column:
        level = str(level)
        if level.startswith("Unnamed:") or (parts and parts[-1] == level):
            continue
        parts.append(level)
    return " ".join(parts) if parts else f"Unnamed: {j}"


def kind(dtype):
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "str"


def value(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


print(json.dumps({
    "columns": [name(j, c) for j, c in enumerate(frame.columns)],
    "kinds": [kind(t) for t in frame.dtypes],
    "rows": [[value(v) for v in row] for row in frame.itertuples(index=False)],
}))
