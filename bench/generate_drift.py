"""Writes the drift benchmark's tables: a reference and two current Parquet files with the same 30
columns, 20 numeric and 10 categorical (text), where 8 columns of the current files have shifted.

Usage: python3 bench/generate_drift.py [DIR] [REF_ROWS] [CUR_ROWS]
           (defaults: bench/out/drift, 327000, 3270000)
Writes DIR/reference.parquet (REF_ROWS rows), DIR/current.parquet (CUR_ROWS rows) and
DIR/current_small.parquet (REF_ROWS rows, the same distributions as current.parquet, drawn anew;
for Evidently, which is run on equal sizes). The seed is fixed (numpy default_rng(42), drawn in
that order), so the same sizes always give the same files. Parquet as pyarrow writes it by
default (snappy, 1Mi-row groups); text columns are plain UTF-8 strings, not dictionaries.

The columns (the 8 shifted ones marked, with the shift in the current files):

  n00_normal           normal(50, 10)
  n01_normal_shift     normal(0, 1)             SHIFT: mean +0.4 (0.4 standard deviations)
  n02_normal_scale     normal(100, 15)          SHIFT: scale x1.5 (sd 22.5), same mean
  n03_lognormal        lognormal(3, 0.5)
  n04_lognormal_shift  lognormal(1, 0.8)        SHIFT: log-mean 1.35 (values x1.42)
  n05_uniform          uniform(0, 1000)
  n06_exponential      exponential(2)
  n07_int_poisson      poisson(4), integers with ties
  n08_int_small        integers 1-5
  n09_int_wide         integers 0-1000
  n10_int_shift        poisson(10)              SHIFT: poisson(12)
  n11_normal_nulls     normal(-5, 2), 5% nulls
  n12_lognormal_nulls  lognormal(0, 1), 5% nulls
  n13_int_nulls        integers 18-90, 5% nulls (Int64 with nulls)
  n14_gamma            gamma(2, 3)
  n15_beta             beta(2, 5)
  n16_rounded          normal(20, 5) rounded to 0.1 (ties)
  n17_binary           0/1 integers, 30% ones
  n18_student_t        student t, 5 degrees of freedom
  n19_mixture          80% normal(0, 1) + 20% normal(5, 1)   SHIFT: 40% of the second component

  c00_color      3 categories, uniform
  c01_region     5 categories
  c02_country    40 categories, Zipf-like shares
  c03_device     4 categories (mobile/desktop/tablet/tv 40/45/10/5%)   SHIFT: 60/30/7/3%
  c04_plan       6 categories, 2% nulls
  c05_channel    8 categories   SHIFT: a 9th, `tiktok`, only in the current files (6% of rows)
  c06_product    25 categories, Zipf-like   SHIFT: the shares of the 1st and 6th categories swapped,
                 and of the 2nd and 8th
  c07_status     3 categories (active/paused/closed 85/10/5%)
  c08_weekday    7 categories
  c09_segment    12 categories

Every shift moves each method's score past its threshold at these sizes: Evidently's defaults
for more than 1,000 reference rows (Wasserstein distance over the reference's standard deviation
>= 0.1, Jensen-Shannon distance >= 0.1), KS (p <= 0.05), PSI over the reference's deciles (>= 0.1)
and chi-squared (p < 0.05). The unchanged columns are drawn from the same distributions in every
file, so KS flags about 5% of them by chance. The chi-squared test (Evidently's, and the
reference scripts') takes the reference's shares as exact: against a current file 10 times the
reference it reads the reference's own sampling noise as drift and flags most unchanged text
columns too (on equal sizes, less often).
"""
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/drift")
ref_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 327_000
cur_rows = int(sys.argv[3]) if len(sys.argv) > 3 else 3_270_000
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(42)


def zipf_shares(k, s=1.1):
    w = 1.0 / np.arange(1, k + 1) ** s
    return w / w.sum()


def text(names, shares, n, null_share=0.0):
    """A plain string column drawn from NAMES with SHARES, built from dictionary indices."""
    codes = rng.choice(len(names), size=n, p=np.asarray(shares) / np.sum(shares)).astype(np.int32)
    mask = rng.random(n) < null_share if null_share else None
    indices = pa.array(codes, mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string())).cast(pa.string())


def with_nulls(values, share):
    mask = rng.random(len(values)) < share
    return pa.array(values, mask=mask)


def table(n, shifted):
    """N rows; SHIFTED draws the current files' distributions."""
    s = shifted
    c = {}
    c["n00_normal"] = rng.normal(50, 10, n)
    c["n01_normal_shift"] = rng.normal(0.4 if s else 0.0, 1, n)
    c["n02_normal_scale"] = rng.normal(100, 22.5 if s else 15, n)
    c["n03_lognormal"] = rng.lognormal(3, 0.5, n)
    c["n04_lognormal_shift"] = rng.lognormal(1.35 if s else 1.0, 0.8, n)
    c["n05_uniform"] = rng.uniform(0, 1000, n)
    c["n06_exponential"] = rng.exponential(2, n)
    c["n07_int_poisson"] = rng.poisson(4, n).astype(np.int64)
    c["n08_int_small"] = rng.integers(1, 6, n)
    c["n09_int_wide"] = rng.integers(0, 1001, n)
    c["n10_int_shift"] = rng.poisson(12 if s else 10, n).astype(np.int64)
    c["n11_normal_nulls"] = with_nulls(rng.normal(-5, 2, n), 0.05)
    c["n12_lognormal_nulls"] = with_nulls(rng.lognormal(0, 1, n), 0.05)
    c["n13_int_nulls"] = with_nulls(rng.integers(18, 91, n), 0.05)
    c["n14_gamma"] = rng.gamma(2, 3, n)
    c["n15_beta"] = rng.beta(2, 5, n)
    c["n16_rounded"] = np.round(rng.normal(20, 5, n), 1)
    c["n17_binary"] = (rng.random(n) < 0.3).astype(np.int64)
    c["n18_student_t"] = rng.standard_t(5, n)
    second = rng.random(n) < (0.4 if s else 0.2)
    c["n19_mixture"] = np.where(second, rng.normal(5, 1, n), rng.normal(0, 1, n))

    c["c00_color"] = text(["red", "green", "blue"], [1, 1, 1], n)
    c["c01_region"] = text(["north", "south", "east", "west", "central"], [30, 25, 20, 15, 10], n)
    c["c02_country"] = text([f"country_{i:02d}" for i in range(40)], zipf_shares(40), n)
    c["c03_device"] = text(["mobile", "desktop", "tablet", "tv"], [60, 30, 7, 3] if s else [40, 45, 10, 5], n)
    c["c04_plan"] = text(["free", "basic", "plus", "pro", "team", "enterprise"], [40, 25, 15, 10, 7, 3], n, 0.02)
    channels = ["search", "direct", "email", "social", "referral", "display", "affiliate", "video"]
    channel_shares = [30, 20, 15, 12, 10, 6, 4, 3]
    if s:
        c["c05_channel"] = text(channels + ["tiktok"], [x * 0.94 for x in channel_shares] + [6], n)
    else:
        c["c05_channel"] = text(channels, channel_shares, n)
    product_shares = zipf_shares(25)
    if s:
        product_shares = product_shares.copy()
        product_shares[[0, 5]] = product_shares[[5, 0]]
        product_shares[[1, 7]] = product_shares[[7, 1]]
    c["c06_product"] = text([f"sku_{i:03d}" for i in range(25)], product_shares, n)
    c["c07_status"] = text(["active", "paused", "closed"], [85, 10, 5], n)
    c["c08_weekday"] = text(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], [16, 16, 16, 16, 16, 10, 10], n)
    c["c09_segment"] = text([f"segment_{chr(97 + i)}" for i in range(12)], zipf_shares(12, 0.7), n)
    return pa.table(c)


for name, n, shifted in [("reference", ref_rows, False), ("current", cur_rows, True), ("current_small", ref_rows, True)]:
    path = out / f"{name}.parquet"
    pq.write_table(table(n, shifted), path)
    print(f"wrote {n} rows to {path} ({path.stat().st_size / 1e6:.1f} MB)")
