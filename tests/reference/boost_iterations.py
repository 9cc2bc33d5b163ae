"""Reference for gradient boosting's early stopping: scikit-learn's iteration counts on data both
sides generate from the same formula.

Usage: python3 boost_iterations.py [ROWS]
Trains HistGradientBoostingClassifier (binary and three classes) and HistGradientBoostingRegressor
with their defaults (early_stopping="auto", on above 10,000 rows; random_state=42) on ROWS rows
(12,000 unless given) and prints JSON: scikit-learn's version and, per model, `n_iter_` and the
held-out loss (`-validation_score_`) after the first iteration and after the last.

The data: integer hashes of the row number, no random generator, so that the Rust test
(`early_stopping_stops_at_scikit_learns_iteration` in crates/step11-candidates/src/tests.rs)
builds the same rows. Six features of 200 distinct values each (0.0 to 19.9): at most 255, so
both sides cut bins halfway between neighbouring values. Noise from a seventh hash makes the
models overfit, so that early stopping stops before max_iter.

Regenerate the Rust test's numbers:
    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn==1.9.1 numpy==2.4.6 scipy==1.17.1
    /tmp/skl/bin/python tests/reference/boost_iterations.py
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

MASK = 0xFFFFFFFF


def mix(i, j):
    """A 32-bit hash of row i and column j (murmur3's finalizer on a multiplicative hash)."""
    v = ((i + 1) * 2654435761 + (j + 1) * 40503) & MASK
    v ^= v >> 15
    v = (v * 2246822519) & MASK
    v ^= v >> 13
    return v


def rows(n):
    x = np.array([[(mix(i, j) % 200) / 10.0 for j in range(6)] for i in range(n)])
    # Scalar arithmetic in the Rust test's order: ((x0 - x1) + x2 * x3 / 20) + noise.
    target = np.array(
        [(x[i, 0] - x[i, 1] + x[i, 2] * x[i, 3] / 20.0) + (mix(i, 99) % 1000) / 100.0 for i in range(n)]
    )
    binary = (target > 10.0).astype(int)
    three = np.clip(np.floor(target / 7.0), 0, 2).astype(int)
    return x, binary, three, target


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12_000
    x, binary, three, target = rows(n)
    out = {"scikit-learn": sklearn.__version__, "rows": n}
    for name, model, y in [
        ("binary", HistGradientBoostingClassifier(random_state=42), binary),
        ("three_classes", HistGradientBoostingClassifier(random_state=42), three),
        ("regressor", HistGradientBoostingRegressor(random_state=42), target),
    ]:
        model.fit(x, y)
        assert model.do_early_stopping_
        out[name] = {
            "n_iter": int(model.n_iter_),
            "first_validation_loss": float(-model.validation_score_[1]),
            "last_validation_loss": float(-model.validation_score_[-1]),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
