//! Feature selection: variance threshold, correlation filter, univariate scores (ANOVA F, chi²,
//! mutual information, F regression) and model importance through a trait.

use std::collections::BTreeMap;

use mlops_core::frame::{f64_column, keys};
use mlops_core::stats::{nan_mean, pearson_about};
use ndarray::Array2;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::params::{Score, SelectSpec};
use crate::{FeatureError, Result};

/// Ranks features with a fitted model (tree-based importance). The model crates implement it;
/// `pipelines` hands one in. `x` has one column per feature, `y` the target (class index or value).
pub trait Importance {
    /// One non-negative importance per column of `x`.
    fn importances(&self, x: &Array2<f64>, y: &[f64], names: &[String]) -> std::result::Result<Vec<f64>, String>;
}

/// Why a feature was dropped, or how it scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    /// The feature.
    pub column: String,
    /// Which filter dropped it, in words.
    pub reason: String,
}

/// The outcome of selection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Selected {
    /// Features kept, in frame order.
    pub kept: Vec<String>,
    /// Features dropped, in the order the filters dropped them.
    pub dropped: Vec<Dropped>,
    /// Univariate scores (or importances) of the features scored.
    pub scores: BTreeMap<String, f64>,
}

/// A numeric column as floats, NaN for nulls.
fn values(df: &DataFrame, c: &str) -> Result<Vec<f64>> {
    Ok(f64_column(df, c)?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Class labels as small integers (in sorted label order), `None` for nulls.
pub fn class_codes(labels: &[Option<String>]) -> Vec<Option<u32>> {
    let mut names: Vec<&String> = labels.iter().flatten().collect();
    names.sort();
    names.dedup();
    let index: BTreeMap<&String, u32> = names.into_iter().enumerate().map(|(i, n)| (n, i as u32)).collect();
    labels.iter().map(|l| l.as_ref().and_then(|l| index.get(l).copied())).collect()
}

/// Population variance of the non-NaN values (scikit-learn's `VarianceThreshold`).
fn variance(x: &[f64]) -> f64 {
    let (sum, n) = x.iter().filter(|v| !v.is_nan()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        return 0.0;
    }
    let m = sum / n as f64;
    x.iter().filter(|v| !v.is_nan()).map(|v| (v - m).powi(2)).sum::<f64>() / n as f64
}

/// Per-class count, sum and sum of squares of a feature (rows where both are present).
fn class_moments(x: &[f64], classes: &[Option<u32>]) -> Vec<(f64, f64, f64)> {
    let k = classes.iter().flatten().max().map_or(0, |m| *m as usize + 1);
    let mut m = vec![(0.0, 0.0, 0.0); k];
    for (&v, c) in x.iter().zip(classes) {
        if let Some(c) = c
            && !v.is_nan()
        {
            let e = &mut m[*c as usize];
            e.0 += 1.0;
            e.1 += v;
            e.2 += v * v;
        }
    }
    m.retain(|e| e.0 > 0.0);
    m
}

/// scikit-learn's `f_classif`: between-class over within-class mean squares. `classes` are
/// [`class_codes`]; NaN features and null classes are left out.
pub fn anova_f(x: &[f64], classes: &[Option<u32>]) -> Option<f64> {
    let m = class_moments(x, classes);
    let n: f64 = m.iter().map(|e| e.0).sum();
    let k = m.len() as f64;
    if k < 2.0 || n <= k {
        return None;
    }
    let grand = m.iter().map(|e| e.1).sum::<f64>() / n;
    let between: f64 = m.iter().map(|e| e.0 * (e.1 / e.0 - grand).powi(2)).sum();
    let within: f64 = m.iter().map(|e| e.2 - e.1 * e.1 / e.0).sum::<f64>().max(0.0);
    let f = (between / (k - 1.0)) / (within / (n - k));
    Some(if f.is_nan() { 0.0 } else { f })
}

/// scikit-learn's `chi2`: observed per-class sums of a non-negative feature against the sums
/// expected from the class frequencies. `Err` carries a negative value found.
pub fn chi2(x: &[f64], classes: &[Option<u32>]) -> std::result::Result<Option<f64>, f64> {
    if let Some(v) = x.iter().zip(classes).find(|(v, c)| c.is_some() && **v < 0.0) {
        return Err(*v.0);
    }
    let m = class_moments(x, classes);
    let n: f64 = m.iter().map(|e| e.0).sum();
    let total: f64 = m.iter().map(|e| e.1).sum();
    if n == 0.0 || total == 0.0 {
        return Ok(None);
    }
    Ok(Some(
        m.iter()
            .map(|e| {
                let expected = e.0 / n * total;
                (e.1 - expected).powi(2) / expected
            })
            .sum(),
    ))
}

/// Equal-frequency bin of every value (`bins` bins; NaN stays `None`).
fn discretize(x: &[f64], bins: usize) -> Vec<Option<u32>> {
    let mut sorted: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    if sorted.is_empty() {
        return vec![None; x.len()];
    }
    let cuts: Vec<f64> = (1..bins).map(|i| sorted[(i * sorted.len() / bins).min(sorted.len() - 1)]).collect();
    x.iter().map(|&v| (!v.is_nan()).then(|| cuts.partition_point(|&c| c <= v) as u32)).collect()
}

/// Mutual information in nats between two discrete variables (rows where both are present).
fn mutual_information(a: &[Option<u32>], b: &[Option<u32>]) -> f64 {
    let ka = a.iter().flatten().max().map_or(0, |m| *m as usize + 1);
    let kb = b.iter().flatten().max().map_or(0, |m| *m as usize + 1);
    let mut joint = vec![0.0f64; ka * kb];
    let (mut pa, mut pb, mut n) = (vec![0.0f64; ka], vec![0.0f64; kb], 0.0f64);
    for (x, y) in a.iter().zip(b) {
        if let (Some(x), Some(y)) = (x, y) {
            joint[*x as usize * kb + *y as usize] += 1.0;
            pa[*x as usize] += 1.0;
            pb[*y as usize] += 1.0;
            n += 1.0;
        }
    }
    let mut mi = 0.0f64;
    for x in 0..ka {
        for y in 0..kb {
            let c = joint[x * kb + y];
            if c > 0.0 {
                mi += c / n * (c * n / (pa[x] * pb[y])).ln();
            }
        }
    }
    mi.max(0.0)
}

/// scikit-learn's `f_regression`: `r² / (1 - r²) · (n - 2)` (NaN marks missing values).
pub fn f_regression(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.iter().zip(y).filter(|(a, b)| !a.is_nan() && !b.is_nan()).count();
    let r = pearson_about(x, nan_mean(x), y, nan_mean(y))?;
    if n < 3 {
        return None;
    }
    Some(if r.abs() >= 1.0 { f64::MAX } else { r * r / (1.0 - r * r) * (n - 2) as f64 })
}

/// Runs the filters of `spec` over the numeric `features` of `df`.
pub fn select(
    df: &DataFrame,
    features: &[String],
    spec: &SelectSpec,
    model: Option<&dyn Importance>,
) -> Result<Selected> {
    let key = "select";
    if df.column(&spec.target).is_err() {
        return Err(crate::error::missing(df, "select.target", &spec.target));
    }
    let mut kept: Vec<String> = features.iter().filter(|f| **f != spec.target).cloned().collect();
    let mut out = Selected::default();
    let cache: BTreeMap<String, Vec<f64>> =
        kept.iter().map(|f| Ok((f.clone(), values(df, f)?))).collect::<Result<_>>()?;
    let protected = |c: &String| spec.keep.contains(c);
    if let Some(threshold) = spec.variance {
        kept.retain(|c| {
            let v = variance(&cache[c]);
            let keep = v > threshold || protected(c);
            if !keep {
                out.dropped.push(Dropped { column: c.clone(), reason: format!("variance {v:.4} <= {threshold}") });
            }
            keep
        });
    }
    if let Some(threshold) = spec.correlation {
        // Every pair's r, over the cores; then the greedy pass keeps the first of each close pair.
        let means: BTreeMap<&String, f64> = kept.iter().map(|c| (c, nan_mean(&cache[c]))).collect();
        let pairs: Vec<(usize, usize)> = (0..kept.len()).flat_map(|i| (0..i).map(move |j| (j, i))).collect();
        let r: BTreeMap<(usize, usize), Option<f64>> = pairs
            .iter()
            .copied()
            .zip(
                mlops_core::par::map(&pairs, |&(a, b)| {
                    let (ca, cb) = (&kept[a], &kept[b]);
                    pearson_about(&cache[ca], means[ca], &cache[cb], means[cb])
                })
                .ok_or_else(|| FeatureError::Invalid {
                    key: format!("{key}.correlation"),
                    message: "a correlation thread failed".into(),
                })?,
            )
            .collect();
        let mut chosen: Vec<usize> = Vec::new();
        for (i, c) in kept.iter().enumerate() {
            let clash = chosen
                .iter()
                .find_map(|&k| r.get(&(k, i)).copied().flatten().filter(|r| r.abs() > threshold).map(|r| (k, r)));
            match clash {
                Some((other, r)) if !protected(c) => out.dropped.push(Dropped {
                    column: c.clone(),
                    reason: format!("|r| = {:.3} with `{}`", r.abs(), kept[other]),
                }),
                _ => chosen.push(i),
            }
        }
        let chosen: Vec<String> = chosen.into_iter().map(|i| kept[i].clone()).collect();
        kept = chosen;
    }
    let labels = keys(df, &spec.target)?;
    let classes = class_codes(&labels);
    let target_is_number = df.column(&spec.target).ok().and_then(|t| mlops_core::frame::dtype_of(t.dtype()))
        == Some(mlops_core::DType::Float);
    if let Some(kb) = &spec.k_best {
        if kb.k == 0 {
            return Err(FeatureError::Invalid { key: format!("{key}.k_best.k"), message: "must be at least 1".into() });
        }
        let numeric_target = match kb.score {
            Score::FRegression | Score::MutualInfo if target_is_number => Some(values(df, &spec.target)?),
            Score::FRegression => {
                return Err(FeatureError::Invalid {
                    key: format!("{key}.k_best.score"),
                    message: format!("f_regression needs a numeric target; `{}` is not a float column", spec.target),
                });
            }
            _ => None,
        };
        let binned_target = numeric_target.as_ref().map(|y| discretize(y, 10));
        let scores = mlops_core::par::map(&kept, |c| -> Result<f64> {
            let x = &cache[c];
            let s = match kb.score {
                Score::AnovaF => anova_f(x, &classes),
                Score::Chi2 => chi2(x, &classes).map_err(|v| FeatureError::Invalid {
                    key: format!("{key}.k_best.score"),
                    message: format!("chi2 needs non-negative features; `{c}` has {v}"),
                })?,
                Score::MutualInfo => {
                    Some(mutual_information(&discretize(x, 10), binned_target.as_ref().unwrap_or(&classes)))
                }
                Score::FRegression => numeric_target.as_ref().and_then(|y| f_regression(x, y)),
            };
            Ok(s.unwrap_or(0.0))
        })
        .ok_or_else(|| FeatureError::Invalid {
            key: format!("{key}.k_best"),
            message: "a scoring thread failed".into(),
        })?;
        let scored: Vec<(String, f64)> =
            kept.iter().cloned().zip(scores.into_iter().collect::<Result<Vec<_>>>()?).collect();
        rank_and_cut(&mut kept, scored, kb.k, &format!("{} score", kb.score.name()), &mut out);
    }
    if let Some(imp) = &spec.importance {
        let model = model.ok_or(FeatureError::NoImportanceModel)?;
        let target = if target_is_number { Some(values(df, &spec.target)?) } else { None };
        let y_of = |i: usize| match &target {
            Some(t) => t[i],
            None => classes[i].map_or(f64::NAN, f64::from),
        };
        let rows: Vec<usize> =
            (0..df.height()).filter(|&i| !y_of(i).is_nan() && kept.iter().all(|c| !cache[c][i].is_nan())).collect();
        let mut x = Array2::<f64>::zeros((rows.len(), kept.len()));
        for (j, c) in kept.iter().enumerate() {
            for (r, &i) in rows.iter().enumerate() {
                x[[r, j]] = cache[c][i];
            }
        }
        let y: Vec<f64> = rows.iter().map(|&i| y_of(i)).collect();
        let scores = model
            .importances(&x, &y, &kept)
            .map_err(|message| FeatureError::Invalid { key: format!("{key}.importance"), message })?;
        let scored = kept.iter().cloned().zip(scores).collect();
        rank_and_cut(&mut kept, scored, imp.top, "model importance", &mut out);
    }
    out.kept = kept;
    Ok(out)
}

fn rank_and_cut(kept: &mut Vec<String>, mut scored: Vec<(String, f64)>, k: usize, what: &str, out: &mut Selected) {
    let order: Vec<String> = scored.iter().map(|(c, _)| c.clone()).collect();
    scored.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| order.iter().position(|c| *c == a.0).cmp(&order.iter().position(|c| *c == b.0)))
    });
    let winners: Vec<String> = scored.iter().take(k).map(|(c, _)| c.clone()).collect();
    for (rank, (c, s)) in scored.iter().enumerate() {
        out.scores.insert(c.clone(), *s);
        if rank >= k {
            out.dropped.push(Dropped { column: c.clone(), reason: format!("{what} {s:.4} below the best {k}") });
        }
    }
    kept.retain(|c| winners.contains(c));
}
