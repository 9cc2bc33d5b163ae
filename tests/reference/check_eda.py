"""Checks an EDA report as a user (and pandas) would see it.

Usage: python3 tests/reference/check_eda.py DATA.parquet eda.json eda.html

1. Parses eda.html with Python's HTML parser: every section of the table of contents exists,
   every in-page link resolves, every column has its chart, charts are inline SVG with tooltips,
   and nothing is loaded from elsewhere.
2. Recomputes the profile's statistics with pandas (describe, skew, kurt, nunique, corr with
   both methods, duplicated) and reports the largest relative difference of each, going over
   pandas' columns: a column the profile lacks (or has in excess), and a column pandas calls
   numeric that the profile does not summarise as numeric (or the reverse), are reported.
Prints one JSON object; the end-to-end test asserts on it.
"""
import json
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd

data_path, json_path, html_path = sys.argv[1:4]
df = pd.read_parquet(data_path)
profile = json.load(open(json_path))


class Report(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.figures, self.svgs, self.tips = set(), [], [], 0, 0
        self.external, self.scripts, self.sections = [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
        for key in ("href", "src"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])
        if tag == "figure":
            self.figures.append(a.get("data-chart"))
        if tag == "svg":
            self.svgs += 1
        if tag == "title":
            self.tips += 1
        if tag == "script":
            self.scripts += 1


page = Report()
page.feed(open(html_path, encoding="utf-8").read())
html = {
    "sections": page.sections,
    "broken_links": [l for l in page.links if l not in page.ids],
    "figures": len(page.figures),
    "svgs": page.svgs,
    "tooltips": page.tips,
    "external": page.external,
    "scripts": page.scripts,
}


def rel(a, b):
    if a is None or b is None or (isinstance(b, float) and np.isnan(b)):
        return 0.0 if (a is None) == (b is None or np.isnan(b)) else float("inf")
    return abs(a - b) / max(abs(b), 1.0)


numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
by_name = {v["name"]: v for v in profile["variables"]}
variables = {
    # Pandas' columns are the reference: one the profile lacks is reported, and so is one the
    # profile has that the data does not.
    "missing_in_toolkit": [c for c in df.columns if c not in by_name],
    "extra_in_toolkit": [name for name in by_name if name not in df.columns],
    # Whether a column is numeric is pandas' call; the toolkit's statistics must be there for it.
    "numeric_in_pandas_only": [],
    "numeric_in_toolkit_only": [],
}
worst = {}
for c in df.columns:
    if c not in by_name:
        continue
    v, s = by_name[c], df[c]
    checks = {"count": (v["count"], int(s.count())), "unique": (v["unique"], int(s.nunique()))}
    if c in numeric and s.count() > 0 and not v["numeric"]:
        variables["numeric_in_pandas_only"].append(c)
    elif c in numeric and s.count() > 0:
        n, d = v["numeric"], s.describe()
        checks.update(
            mean=(n["mean"], d["mean"]), std=(n["std"], d["std"]), min=(n["min"], d["min"]), q1=(n["q1"], d["25%"]),
            median=(n["median"], d["50%"]), q3=(n["q3"], d["75%"]), max=(n["max"], d["max"]),
            skew=(n["skew"], s.skew()), kurtosis=(n["kurtosis"], s.kurt()),
        )
    elif c not in numeric and v["numeric"]:
        variables["numeric_in_toolkit_only"].append(c)
    for stat, (ours, theirs) in checks.items():
        worst[stat] = max(worst.get(stat, 0.0), rel(ours, float(theirs)))

corr = profile["correlations"]
for method in ("pearson", "spearman"):
    theirs = df[corr["columns"]].corr(method=method)
    diff = 0.0
    for i, a in enumerate(corr["columns"]):
        for j, b in enumerate(corr["columns"]):
            diff = max(diff, rel(corr[method][i][j], float(theirs.loc[a, b])))
    worst[method] = diff

print(json.dumps({
    "html": html,
    "numeric_columns": {"toolkit": corr["columns"], "pandas": numeric},
    "duplicates": {"toolkit": profile["duplicates"]["count"], "pandas": int(df.duplicated().sum())},
    "rows": {"toolkit": profile["rows"], "pandas": len(df)},
    "variables": variables,
    "max_relative_difference": worst,
}))
