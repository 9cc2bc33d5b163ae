//! The reference profile of the training inputs, against which drift is measured.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Quantile bins per numeric column.
const BINS: usize = 10;

/// Every input column's distribution in the training rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceProfile {
    /// Training rows profiled.
    pub rows: usize,
    /// Per column.
    pub columns: BTreeMap<String, ColumnProfile>,
}

/// One column's distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ColumnProfile {
    /// A number: summary statistics and counts in equal-frequency bins.
    Numeric {
        /// Missing values.
        nulls: usize,
        /// Smallest value. (NaN, written as null, when no value is present).
        #[serde(deserialize_with = "nan_if_null")]
        min: f64,
        /// Largest value. (NaN, written as null, when no value is present).
        #[serde(deserialize_with = "nan_if_null")]
        max: f64,
        /// Mean. (NaN, written as null, when no value is present).
        #[serde(deserialize_with = "nan_if_null")]
        mean: f64,
        /// Sample standard deviation. (NaN, written as null, when no value is present).
        #[serde(deserialize_with = "nan_if_null")]
        std: f64,
        /// Inner bin edges (the deciles, duplicates removed): bin `i` holds values up to
        /// `edges[i]`, the last bin the rest.
        edges: Vec<f64>,
        /// Values per bin (`edges.len() + 1` bins).
        counts: Vec<usize>,
    },
    /// Text, booleans, dates: how often each value occurs.
    Categorical {
        /// Missing values.
        nulls: usize,
        /// Count of each of the most frequent values.
        frequencies: BTreeMap<String, usize>,
        /// Values beyond those kept.
        other: usize,
    },
}

/// A statistic JSON wrote as null (JSON has no NaN): read back as NaN, so a package whose
/// training part had a column without values still loads.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The profile of a numeric column (`None` and NaN are missing).
pub fn numeric_profile(values: &[Option<f64>]) -> ColumnProfile {
    let mut xs: Vec<f64> = values.iter().flatten().copied().filter(|v| v.is_finite()).collect();
    let nulls = values.len() - xs.len();
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let mean = if n > 0 { xs.iter().sum::<f64>() / n as f64 } else { f64::NAN };
    let std = if n > 1 { (xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    let mut edges: Vec<f64> =
        (1..BINS).filter_map(|i| mlops_core::stats::quantile_of(&mut xs.clone(), i as f64 / BINS as f64)).collect();
    edges.dedup();
    let mut counts = vec![0usize; edges.len() + 1];
    for v in &xs {
        counts[edges.partition_point(|e| e < v)] += 1;
    }
    ColumnProfile::Numeric {
        nulls,
        min: xs.first().copied().unwrap_or(f64::NAN),
        max: xs.last().copied().unwrap_or(f64::NAN),
        mean,
        std,
        edges,
        counts,
    }
}

/// The profile of a categorical column: the `top` most frequent values and a count of the rest.
pub fn categorical_profile(values: &[Option<String>], top: usize) -> ColumnProfile {
    let mut all: BTreeMap<&str, usize> = BTreeMap::new();
    let mut nulls = 0;
    for v in values {
        match v {
            Some(v) => *all.entry(v.as_str()).or_default() += 1,
            None => nulls += 1,
        }
    }
    let mut by_count: Vec<(&str, usize)> = all.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let other = by_count.iter().skip(top).map(|(_, c)| c).sum();
    ColumnProfile::Categorical {
        nulls,
        frequencies: by_count.into_iter().take(top).map(|(k, c)| (k.to_string(), c)).collect(),
        other,
    }
}
