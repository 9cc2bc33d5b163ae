"""Reference values for step 22's drift methods, from scipy and numpy as Evidently calls them.

Reads a JSON list of cases on stdin, each {"kind": "numeric" | "categorical", "reference": [...],
"current": [...]} (values without nulls), and writes one JSON object per case on stdout with
Evidently's default method for the column ("auto", as DataDriftPreset picks it) and the value of
every method that applies:

- ks: scipy.stats.ks_2samp(reference, current).pvalue (also "ks_statistic")
- wasserstein: scipy.stats.wasserstein_distance / max(np.std(reference), 0.001)
- chisquare: scipy.stats.chisquare of the current counts against the reference's, scaled
- z: Evidently's two-proportion Z-test, 2 * (1 - norm.cdf(|z|))
- jensenshannon: scipy.spatial.distance.jensenshannon of Evidently's binned shares
- psi: the population stability index over the reference's deciles (np.quantile) or categories,
  empty bins filled as Evidently fills them

The functions follow Evidently's legacy stattests (chisquare_stattest.py, z_stattest.py,
wasserstein_distance_norm.py, jensenshannon.py and utils.get_binned_data).
"""

import json
import sys

import numpy as np
from scipy import stats
from scipy.spatial import distance


def counts(reference, current):
    keys = sorted(set(reference) | set(current))
    ref = {k: 0 for k in keys}
    cur = {k: 0 for k in keys}
    for v in reference:
        ref[v] += 1
    for v in current:
        cur[v] += 1
    return keys, np.array([ref[k] for k in keys], dtype=float), np.array([cur[k] for k in keys], dtype=float)


def auto(kind, reference, current):
    n_values = len(set(reference) | set(current))
    if len(reference) <= 1000:
        if kind == "numeric" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def chisquare(reference, current):
    _, ref, cur = counts(reference, current)
    if len(ref) < 2:
        return 1.0
    f_exp = ref * (len(current) / len(reference))
    if np.any(f_exp == 0):
        return 0.0
    return float(stats.chisquare(cur, f_exp)[1])


def z(reference, current):
    keys = sorted(set(reference) | set(current))
    if len(keys) < 2:
        return 1.0
    ref = np.array([0 if x == keys[0] else 1 for x in reference], dtype=float)
    cur = np.array([0 if x == keys[0] else 1 for x in current], dtype=float)
    n1, n2 = len(ref), len(cur)
    p1, p2 = ref.sum() / n1, cur.sum() / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    zs = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(zs))))


def binned(kind, reference, current):
    if kind == "numeric" and len(set(reference)) > 20:
        both = np.concatenate([reference, current])
        bins = np.histogram_bin_edges(both, bins="sturges")
        return np.histogram(reference, bins)[0] / len(reference), np.histogram(current, bins)[0] / len(current)
    _, ref, cur = counts(reference, current)
    return ref / len(reference), cur / len(current)


def fill_zeroes(shares):
    shares = shares.copy()
    smallest = min(shares[shares != 0])
    np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return shares


def psi(kind, reference, current):
    if kind == "numeric":
        edges = np.unique(np.quantile(reference, [i / 10 for i in range(1, 10)]))
        ref = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=len(edges) + 1) / len(reference)
        cur = np.bincount(np.searchsorted(edges, current, side="left"), minlength=len(edges) + 1) / len(current)
    else:
        _, ref, cur = counts(reference, current)
        ref, cur = ref / len(reference), cur / len(current)
    ref, cur = fill_zeroes(ref), fill_zeroes(cur)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def main():
    out = []
    for case in json.load(sys.stdin):
        kind = case["kind"]
        reference, current = case["reference"], case["current"]
        if kind == "numeric":
            reference, current = np.array(reference, dtype=float), np.array(current, dtype=float)
            key = lambda xs: [float(x) for x in xs]  # noqa: E731
        else:
            key = list
        values = {"auto": auto(kind, key(reference), key(current))}
        values["chisquare"] = chisquare(key(reference), key(current))
        values["z"] = z(key(reference), key(current)) if len(set(key(reference)) | set(key(current))) <= 2 else None
        ref_shares, cur_shares = binned(kind, reference, current)
        values["jensenshannon"] = float(distance.jensenshannon(ref_shares, cur_shares))
        values["psi"] = psi(kind, reference, current)
        if kind == "numeric":
            ks = stats.ks_2samp(reference, current)
            values["ks"] = float(ks.pvalue)
            values["ks_statistic"] = float(ks.statistic)
            values["wasserstein"] = float(stats.wasserstein_distance(reference, current) / max(np.std(reference), 0.001))
        out.append(values)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
