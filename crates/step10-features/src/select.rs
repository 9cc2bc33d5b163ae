//! Feature selection: variance threshold, correlation filter, univariate scores (ANOVA F, chi²,
//! mutual information, F regression) and model importance through a trait.

use std::collections::BTreeMap;

use mlops_core::frame::{f64_column, keys};
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

fn values(df: &DataFrame, c: &str) -> Result<Vec<Option<f64>>> {
    Ok(f64_column(df, c)?.iter().map(|v| v.filter(|x| !x.is_nan())).collect())
}

fn variance(x: &[f64]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let m = x.iter().sum::<f64>() / x.len() as f64;
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64
}

fn pearson(a: &[Option<f64>], b: &[Option<f64>]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = a.iter().zip(b).filter_map(|(x, y)| Some(((*x)?, (*y)?))).collect();
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return None;
    }
    let (mx, my) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// scikit-learn's `f_classif`: between-class over within-class mean squares.
pub fn anova_f(x: &[Option<f64>], classes: &[Option<String>]) -> Option<f64> {
    let mut groups: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (v, c) in x.iter().zip(classes) {
        if let (Some(v), Some(c)) = (v, c) {
            groups.entry(c.as_str()).or_default().push(*v);
        }
    }
    let n: usize = groups.values().map(Vec::len).sum();
    let k = groups.len();
    if k < 2 || n <= k {
        return None;
    }
    let grand = groups.values().flatten().sum::<f64>() / n as f64;
    let mut between = 0.0;
    let mut within = 0.0;
    for g in groups.values() {
        let m = g.iter().sum::<f64>() / g.len() as f64;
        between += g.len() as f64 * (m - grand).powi(2);
        within += g.iter().map(|v| (v - m).powi(2)).sum::<f64>();
    }
    let f = (between / (k - 1) as f64) / (within / (n - k) as f64);
    Some(if f.is_nan() { 0.0 } else { f })
}

/// scikit-learn's `chi2`: observed per-class sums of a non-negative feature against the sums
/// expected from the class frequencies. `Err` names a negative value.
pub fn chi2(x: &[Option<f64>], classes: &[Option<String>]) -> std::result::Result<Option<f64>, f64> {
    let mut observed: BTreeMap<&str, f64> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut total, mut n) = (0.0, 0usize);
    for (v, c) in x.iter().zip(classes) {
        if let (Some(v), Some(c)) = (v, c) {
            if *v < 0.0 {
                return Err(*v);
            }
            *observed.entry(c.as_str()).or_insert(0.0) += v;
            *counts.entry(c.as_str()).or_insert(0) += 1;
            total += v;
            n += 1;
        }
    }
    if n == 0 || total == 0.0 {
        return Ok(None);
    }
    Ok(Some(
        observed
            .iter()
            .map(|(c, o)| {
                let expected = counts[c] as f64 / n as f64 * total;
                (o - expected).powi(2) / expected
            })
            .sum(),
    ))
}

/// Equal-frequency bin of every value (`bins` bins; nulls stay null).
fn discretize(x: &[Option<f64>], bins: usize) -> Vec<Option<String>> {
    let mut sorted: Vec<f64> = x.iter().flatten().copied().collect();
    sorted.sort_unstable_by(f64::total_cmp);
    if sorted.is_empty() {
        return vec![None; x.len()];
    }
    let cuts: Vec<f64> = (1..bins).map(|i| sorted[(i * sorted.len() / bins).min(sorted.len() - 1)]).collect();
    x.iter().map(|v| v.map(|v| cuts.partition_point(|&c| c <= v).to_string())).collect()
}

/// Mutual information in nats between two discrete variables (rows where both are present).
fn mutual_information(a: &[Option<String>], b: &[Option<String>]) -> f64 {
    let mut joint: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    let mut pa: BTreeMap<&str, f64> = BTreeMap::new();
    let mut pb: BTreeMap<&str, f64> = BTreeMap::new();
    let mut n = 0.0;
    for (x, y) in a.iter().zip(b) {
        if let (Some(x), Some(y)) = (x, y) {
            *joint.entry((x, y)).or_insert(0.0) += 1.0;
            *pa.entry(x).or_insert(0.0) += 1.0;
            *pb.entry(y).or_insert(0.0) += 1.0;
            n += 1.0;
        }
    }
    joint.iter().map(|((x, y), c)| c / n * (c * n / (pa[x] * pb[y])).ln()).sum::<f64>().max(0.0)
}

/// scikit-learn's `f_regression`: `r² / (1 - r²) · (n - 2)`.
pub fn f_regression(x: &[Option<f64>], y: &[Option<f64>]) -> Option<f64> {
    let n = x.iter().zip(y).filter(|(a, b)| a.is_some() && b.is_some()).count();
    let r = pearson(x, y)?;
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
        return Err(crate::fit::missing(df, "select.target", &spec.target));
    }
    let mut kept: Vec<String> = features.iter().filter(|f| **f != spec.target).cloned().collect();
    let mut out = Selected::default();
    let mut cache: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for f in &kept {
        cache.insert(f.clone(), values(df, f)?);
    }
    let protected = |c: &String| spec.keep.contains(c);
    if let Some(threshold) = spec.variance {
        kept.retain(|c| {
            let present: Vec<f64> = cache[c].iter().flatten().copied().collect();
            let v = variance(&present);
            let keep = v > threshold || protected(c);
            if !keep {
                out.dropped.push(Dropped { column: c.clone(), reason: format!("variance {v:.4} <= {threshold}") });
            }
            keep
        });
    }
    if let Some(threshold) = spec.correlation {
        let mut chosen: Vec<String> = Vec::new();
        for c in kept {
            let clash = chosen
                .iter()
                .find_map(|k| pearson(&cache[k], &cache[&c]).filter(|r| r.abs() > threshold).map(|r| (k.clone(), r)));
            match clash {
                Some((other, r)) if !protected(&c) => out
                    .dropped
                    .push(Dropped { column: c.clone(), reason: format!("|r| = {:.3} with `{other}`", r.abs()) }),
                _ => chosen.push(c),
            }
        }
        kept = chosen;
    }
    if let Some(kb) = &spec.k_best {
        if kb.k == 0 {
            return Err(FeatureError::Invalid { key: format!("{key}.k_best.k"), message: "must be at least 1".into() });
        }
        let classes = keys(df, &spec.target)?;
        let numeric_target = || values(df, &spec.target);
        let mut scored = Vec::new();
        for c in &kept {
            let x = &cache[c];
            let s = match kb.score {
                Score::AnovaF => anova_f(x, &classes),
                Score::Chi2 => chi2(x, &classes).map_err(|v| FeatureError::Invalid {
                    key: format!("{key}.k_best.score"),
                    message: format!("chi2 needs non-negative features; `{c}` has {v}"),
                })?,
                Score::MutualInfo => {
                    let target_is_number =
                        df.column(&spec.target).ok().and_then(|t| mlops_core::frame::dtype_of(t.dtype()))
                            == Some(mlops_core::DType::Float);
                    let y = if target_is_number { discretize(&numeric_target()?, 10) } else { classes.clone() };
                    Some(mutual_information(&discretize(x, 10), &y))
                }
                Score::FRegression => f_regression(x, &numeric_target()?),
            };
            scored.push((c.clone(), s.unwrap_or(0.0)));
        }
        rank_and_cut(&mut kept, scored, kb.k, &format!("{} score", kb.score.name()), &mut out);
    }
    if let Some(imp) = &spec.importance {
        let model = model.ok_or(FeatureError::NoImportanceModel)?;
        let rows: Vec<usize> = (0..df.height()).filter(|&i| kept.iter().all(|c| cache[c][i].is_some())).collect();
        let mut x = Array2::<f64>::zeros((rows.len(), kept.len()));
        for (j, c) in kept.iter().enumerate() {
            for (r, &i) in rows.iter().enumerate() {
                x[[r, j]] = cache[c][i].unwrap_or(0.0);
            }
        }
        let labels = keys(df, &spec.target)?;
        let classes: Vec<&String> = {
            let mut v: Vec<&String> = labels.iter().flatten().collect();
            v.sort();
            v.dedup();
            v
        };
        let target = values(df, &spec.target).ok();
        let y: Vec<f64> = rows
            .iter()
            .map(|&i| match target.as_ref().and_then(|t| t[i]) {
                Some(v) => v,
                None => {
                    labels[i].as_ref().and_then(|l| classes.iter().position(|c| *c == l)).map_or(f64::NAN, |p| p as f64)
                }
            })
            .collect();
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
