"""scikit-learn reference for the toolkit's model training on a features folder it wrote:
fits each model on DIR/train.parquet (as the toolkit fits the final model on the training part),
times the fit and the prediction of the test part, and scores DIR/test.parquet.

Usage: python3 bench/reference_models_sklearn.py DIR TARGET TASK [--repeats N] [--threads T]
           [--models a,b,c] [--seeds K] [--out FILE.json]
TASK is binary, multiclass or regression; T (default 2) caps every thread pool (OpenMP, BLAS,
n_jobs). Models: gradient_boosting, random_forest, decision_tree, knn, svm and, for
classification, logistic_regression and gaussian_nb, for regression linear, ridge, lasso and
elastic_net (default:
all of the task's). random_forest and decision_tree are fitted with random_state 0 to K-1 and their
metrics averaged (default K=1: random_state 0). knn and svm are skipped above 20000 training rows. Prints JSON to --out
(default stdout) and a table on stderr. Predict seconds cover predicting the test part (predict and,
for classifiers, predict_proba) and scoring it.
"""
import argparse
import os

p = argparse.ArgumentParser(usage=__doc__.split("Usage: ")[1].split("\n\n")[0])
p.add_argument("dir")
p.add_argument("target")
p.add_argument("task", choices=["binary", "multiclass", "regression"])
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--models")
p.add_argument("--seeds", type=int, default=1)
p.add_argument("--out")
args = p.parse_args()
os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before sklearn's OpenMP runtime loads

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn import ensemble, linear_model, metrics, naive_bayes, neighbors, svm, tree  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

T, classify = args.threads, args.task != "regression"
SMALL = 20_000  # most training rows for knn and svm
HGB = dict(max_iter=100, learning_rate=0.1, max_depth=6, min_samples_leaf=20, l2_regularization=0.0,
           max_bins=255, early_stopping=False, random_state=42)
RF = dict(n_estimators=100, max_depth=12, n_jobs=T)
# The families whose fit is random: fitted with random_state 0 .. K-1 (--seeds K), metrics averaged.
SEEDED = {"random_forest", "decision_tree"}
if classify:
    MODELS = {
        "gradient_boosting": lambda: ensemble.HistGradientBoostingClassifier(**HGB),
        "random_forest": lambda seed: ensemble.RandomForestClassifier(max_features="sqrt", random_state=seed, **RF),
        "logistic_regression": lambda: linear_model.LogisticRegression(C=1.0, max_iter=100, solver="lbfgs"),
        "decision_tree": lambda seed: tree.DecisionTreeClassifier(random_state=seed),
        "gaussian_nb": lambda: naive_bayes.GaussianNB(),
        "knn": lambda: neighbors.KNeighborsClassifier(n_neighbors=5, n_jobs=T),
        "svm": lambda: svm.SVC(C=1.0, kernel="rbf", gamma="scale", probability=True, random_state=42),
    }
else:
    MODELS = {
        "gradient_boosting": lambda: ensemble.HistGradientBoostingRegressor(**HGB),
        "random_forest": lambda seed: ensemble.RandomForestRegressor(max_features=1.0, random_state=seed, **RF),
        "linear": lambda: linear_model.LinearRegression(),
        "ridge": lambda: linear_model.Ridge(alpha=1.0),
        "lasso": lambda: linear_model.Lasso(alpha=1.0, max_iter=1000),
        "elastic_net": lambda: linear_model.ElasticNet(alpha=1.0, l1_ratio=0.5, max_iter=1000),
        "decision_tree": lambda seed: tree.DecisionTreeRegressor(random_state=seed),
        "knn": lambda: neighbors.KNeighborsRegressor(n_neighbors=5, n_jobs=T),
        "svm": lambda: svm.SVR(C=1.0, epsilon=0.1),
    }
names = args.models.split(",") if args.models else list(MODELS)
unknown = [m for m in names if m not in MODELS]
if unknown:
    sys.exit(f"unknown models for {args.task}: {', '.join(unknown)} (choose from {', '.join(MODELS)})")


def load(part):
    d = pd.read_parquet(Path(args.dir) / f"{part}.parquet")
    # The toolkit's features: every numeric and boolean column but the target, in order.
    x = d.drop(columns=args.target).select_dtypes(include=["number", "bool"])
    return x.astype(float).to_numpy(), d[args.target].to_numpy()


x_train, y_train = load("train")
x_test, y_test = load("test")
if classify:
    classes = np.unique(y_train)  # sorted, as the toolkit orders its classes
    unseen = set(np.unique(y_test)) - set(classes)
    if unseen:
        sys.exit(f"test labels missing from the training part: {sorted(unseen)}")
    y_train, y_test = np.searchsorted(classes, y_train), np.searchsorted(classes, y_test)
    labels = list(range(len(classes)))


def score(model):
    if not classify:
        pred = model.predict(x_test)
        return {"r2": metrics.r2_score(y_test, pred), "rmse": metrics.root_mean_squared_error(y_test, pred),
                "mae": metrics.mean_absolute_error(y_test, pred)}
    proba, pred = model.predict_proba(x_test), model.predict(x_test)
    if args.task == "binary":
        return {"roc_auc": metrics.roc_auc_score(y_test, proba[:, 1]), "accuracy": metrics.accuracy_score(y_test, pred),
                "f1": metrics.f1_score(y_test, pred, pos_label=1), "log_loss": metrics.log_loss(y_test, proba, labels=labels)}
    return {"accuracy": metrics.accuracy_score(y_test, pred),
            "f1_macro": metrics.f1_score(y_test, pred, average="macro"),
            "roc_auc_ovr": metrics.roc_auc_score(y_test, proba[:, 1] if len(labels) == 2 else proba, multi_class="ovr",
                                                 average="macro", labels=labels),
            "log_loss": metrics.log_loss(y_test, proba, labels=labels)}


report = {"task": args.task, "rows": {"train": len(x_train), "test": len(x_test)}, "features": x_train.shape[1],
          "threads": T, "models": {}}
if classify:
    report["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
with threadpool_limits(T):
    for name in names:
        if name in ("knn", "svm") and len(x_train) > SMALL:
            report["models"][name] = {"skipped": f"{len(x_train)} training rows > {SMALL}"}
            continue
        fits, predicts, seeded = [], [], []
        seeds = range(args.seeds) if name in SEEDED else [None]
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for seed in seeds:
                    for _ in range(args.repeats):
                        model = MODELS[name](seed) if seed is not None else MODELS[name]()
                        start = time.perf_counter()
                        model.fit(x_train, y_train)
                        fits.append(time.perf_counter() - start)
                        start = time.perf_counter()
                        scores = score(model)
                        predicts.append(time.perf_counter() - start)
                    seeded.append(scores)
            scores = {k: statistics.fmean(s[k] for s in seeded) for k in seeded[0]}
        except Exception as e:  # a failed model is reported, the others still run
            report["models"][name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
            continue
        entry = {"fit_seconds_median": statistics.median(fits), "fit_seconds": fits,
                 "predict_seconds_median": statistics.median(predicts),
                 "metrics": {k: float(v) for k, v in scores.items()}, "seeds": len(seeded)}
        notes = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
        if notes:
            entry["warnings"] = notes
        report["models"][name] = entry

text = json.dumps(report, indent=2)
if args.out:
    Path(args.out).write_text(text + "\n")
else:
    print(text)
print(f"{args.task}: {len(x_train)} train / {len(x_test)} test rows, {x_train.shape[1]} features, {T} threads, "
      f"median of {args.repeats}", file=sys.stderr)
for name, r in report["models"].items():
    if "metrics" not in r:
        print(f"  {name:20} " + (f"skipped: {r['skipped']}" if "skipped" in r else f"failed: {r['error']}"), file=sys.stderr)
        continue
    shown = "  ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items())
    flag = "  (warnings)" if "warnings" in r else ""
    print(f"  {name:20} fit {r['fit_seconds_median']:8.3f} s  predict {r['predict_seconds_median']:7.3f} s  {shown}{flag}",
          file=sys.stderr)
