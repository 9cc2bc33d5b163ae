"""Writes four small real datasets that ship inside scikit-learn (no download) as CSV, with
snake_case column names: breast_cancer.csv (binary, target `diagnosis`: malignant/benign),
wine.csv (multiclass, target `cultivar`: class_0, class_1, class_2), iris.csv (Fisher's irises,
multiclass, target `species`: setosa, versicolor, virginica) and diabetes.csv (regression, target
`progression`, unscaled features).

Usage: python3 bench/export_real.py OUT_DIR
"""
import re
import sys
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

if len(sys.argv) != 2:
    sys.exit(__doc__)
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)


def snake(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


for file, loader, target in [
    ("breast_cancer.csv", load_breast_cancer, "diagnosis"),
    ("wine.csv", load_wine, "cultivar"),
    ("iris.csv", load_iris, "species"),
    ("diabetes.csv", lambda: load_diabetes(scaled=False), "progression"),
]:
    data = loader()
    frame = pd.DataFrame(data.data, columns=[snake(c) for c in data.feature_names])
    frame[target] = data.target_names[data.target] if "target_names" in data else data.target
    frame.to_csv(out / file, index=False)
    print(f"{out / file}: {len(frame)} rows x {frame.shape[1]} columns (target {target})")
