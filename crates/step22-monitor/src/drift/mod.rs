//! Data drift per column, with Evidently's tests and thresholds (as `DataDriftPreset` chooses
//! them), and dataset drift from the share of drifted columns.
//!
//! `auto` picks what Evidently picks, from the reference's size and the distinct values of both
//! samples together:
//!
//! | reference rows | numeric, > 5 values | numeric, 3-5 values | numeric, <= 2 values | categorical, > 2 | categorical, <= 2 |
//! | --- | --- | --- | --- | --- | --- |
//! | <= 1,000 | `ks` (p <= 0.05) | `chisquare` (p < 0.05) | `z` (p < 0.05) | `chisquare` | `z` |
//! | > 1,000 | `wasserstein` (>= 0.1) | `jensenshannon` (>= 0.1) | `jensenshannon` | `jensenshannon` | `jensenshannon` |
//!
//! `psi` (reference deciles or categories; drift at >= 0.1, "significant" from 0.25) and the
//! workflow seed's `ks_or_psi` (KS p < 0.05 or PSI > 0.2) can be chosen for any column.

mod ks;
mod sample;
mod stats;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use ks::{KsTest, ks_2samp, kstwo_sf};
pub use sample::{Categories, ColumnKind, Numbers, Sample};

use sample::Aligned;

pub(crate) use stats::quantile_sorted;

/// How a column's reference and current values are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftMethod {
    /// Evidently's choice for the column (the table in the module's documentation).
    #[default]
    Auto,
    /// Two-sample Kolmogorov-Smirnov test (`scipy.stats.ks_2samp`); drift at p <= threshold
    /// (0.05). Numeric columns.
    Ks,
    /// Wasserstein distance divided by the reference's standard deviation; drift at >= threshold
    /// (0.1). Numeric columns.
    Wasserstein,
    /// Chi-squared test of the current counts against the reference's proportions; drift at
    /// p < threshold (0.05).
    Chisquare,
    /// Two-proportion Z-test (two values); drift at p < threshold (0.05).
    Z,
    /// Jensen-Shannon distance of the binned shares; drift at >= threshold (0.1).
    Jensenshannon,
    /// Population stability index over the reference's deciles (numbers) or the categories; drift
    /// at >= threshold (0.1).
    Psi,
    /// The workflow seed's rule: drift when the KS p-value is below `threshold` (0.05) or the PSI
    /// above `psi_threshold` (0.2). Numeric columns.
    KsOrPsi,
}

impl DriftMethod {
    /// The threshold used when none is configured.
    pub fn default_threshold(self) -> f64 {
        match self {
            DriftMethod::Auto | DriftMethod::Ks | DriftMethod::Chisquare | DriftMethod::Z | DriftMethod::KsOrPsi => {
                0.05
            }
            DriftMethod::Wasserstein | DriftMethod::Jensenshannon | DriftMethod::Psi => 0.1,
        }
    }

    /// Whether the score is a p-value (drift when small) rather than a distance (drift when large).
    pub fn is_test(self) -> bool {
        matches!(self, DriftMethod::Ks | DriftMethod::Chisquare | DriftMethod::Z | DriftMethod::KsOrPsi)
    }

    /// The name in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            DriftMethod::Auto => "auto",
            DriftMethod::Ks => "ks",
            DriftMethod::Wasserstein => "wasserstein",
            DriftMethod::Chisquare => "chisquare",
            DriftMethod::Z => "z",
            DriftMethod::Jensenshannon => "jensenshannon",
            DriftMethod::Psi => "psi",
            DriftMethod::KsOrPsi => "ks_or_psi",
        }
    }

    fn numeric_only(self) -> bool {
        matches!(self, DriftMethod::Ks | DriftMethod::Wasserstein | DriftMethod::KsOrPsi)
    }
}

/// The PSI threshold of the seed's `ks_or_psi` rule.
pub const SEED_PSI_THRESHOLD: f64 = 0.2;

/// From this PSI on, a shift is "significant" (below it and from the threshold on, "moderate").
pub const PSI_SIGNIFICANT: f64 = 0.25;

/// How one column is compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftRule {
    /// The method.
    pub method: DriftMethod,
    /// The method's threshold (its default when unset).
    pub threshold: Option<f64>,
    /// The PSI threshold of `ks_or_psi` (0.2 when unset).
    pub psi_threshold: Option<f64>,
}

/// The drift section of `configs/monitoring.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// The method for every column without a rule of its own.
    pub method: DriftMethod,
    /// Its threshold (the method's default when unset).
    pub threshold: Option<f64>,
    /// The dataset drifts when at least this share of its columns drifted.
    pub share: f64,
    /// Rules for single columns, by name.
    pub columns: BTreeMap<String, DriftRule>,
    /// Whether the model's features are compared too (each logged row through the package's
    /// pipeline), besides the columns a caller sends.
    pub features: bool,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig { method: DriftMethod::Auto, threshold: None, share: 0.5, columns: BTreeMap::new(), features: true }
    }
}

impl DriftConfig {
    /// The rule for a column.
    pub fn rule(&self, column: &str) -> DriftRule {
        self.columns.get(column).copied().unwrap_or(DriftRule {
            method: self.method,
            threshold: self.threshold,
            psi_threshold: None,
        })
    }

    /// Checks the values: thresholds of tests are p-values in (0, 1), of distances positive, the
    /// share in (0, 1]; `psi_threshold` only with `ks_or_psi`.
    pub fn check(&self) -> Result<(), DriftError> {
        if !(self.share > 0.0 && self.share <= 1.0) {
            return Err(DriftError::Config {
                key: "drift.share".into(),
                message: format!("{} is not in (0, 1]", self.share),
            });
        }
        let top = DriftRule { method: self.method, threshold: self.threshold, psi_threshold: None };
        check_rule("drift", &top)?;
        for (column, rule) in &self.columns {
            check_rule(&format!("drift.columns.{column}"), rule)?;
        }
        Ok(())
    }
}

fn check_rule(key: &str, rule: &DriftRule) -> Result<(), DriftError> {
    if let Some(t) = rule.threshold {
        let ok = if rule.method.is_test() || rule.method == DriftMethod::Auto {
            t > 0.0 && t < 1.0
        } else {
            t > 0.0 && t.is_finite()
        };
        if !ok {
            let want = if rule.method.is_test() || rule.method == DriftMethod::Auto {
                "a p-value in (0, 1)"
            } else {
                "a positive distance"
            };
            return Err(DriftError::Config { key: format!("{key}.threshold"), message: format!("{t} is not {want}") });
        }
    }
    if let Some(t) = rule.psi_threshold {
        if rule.method != DriftMethod::KsOrPsi {
            return Err(DriftError::Config {
                key: format!("{key}.psi_threshold"),
                message: format!("only `ks_or_psi` takes a PSI threshold (the method is `{}`)", rule.method.name()),
            });
        }
        if !(t > 0.0 && t.is_finite()) {
            return Err(DriftError::Config {
                key: format!("{key}.psi_threshold"),
                message: format!("{t} is not positive"),
            });
        }
    }
    Ok(())
}

/// Why a column could not be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DriftError {
    /// A side has no value to compare.
    #[error("column `{column}`: the {side} data has no value (only nulls or no rows)")]
    Empty {
        /// The column.
        column: String,
        /// `reference` or `current`.
        side: &'static str,
    },
    /// The sides are not of the same kind.
    #[error("column `{column}`: the reference is {reference:?} and the current data {current:?}")]
    KindMismatch {
        /// The column.
        column: String,
        /// The reference's kind.
        reference: ColumnKind,
        /// The current data's kind.
        current: ColumnKind,
    },
    /// The method does not apply to the column's kind.
    #[error("column `{column}`: `{}` compares numbers; the column is categorical (use chisquare, z, jensenshannon or psi)", method.name())]
    MethodNotForKind {
        /// The column.
        column: String,
        /// The method.
        method: DriftMethod,
    },
    /// A drift setting is out of range.
    #[error("{key}: {message}")]
    Config {
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// One score of a column.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The method that gave it (never `auto`).
    pub method: DriftMethod,
    /// A p-value for tests, a distance otherwise.
    pub value: f64,
    /// The threshold it was held against.
    pub threshold: f64,
    /// Whether it says the column drifted.
    pub drifted: bool,
}

/// The comparison of one column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    /// The column.
    pub column: String,
    /// Numbers or categories.
    pub kind: ColumnKind,
    /// The method used (`auto` resolved; `ks_or_psi` gives two scores).
    pub method: DriftMethod,
    /// The scores.
    pub scores: Vec<Score>,
    /// Whether the column drifted.
    pub drifted: bool,
    /// Values present in the reference.
    pub reference_values: u64,
    /// Values missing in the reference.
    pub reference_missing: u64,
    /// Values present in the current data.
    pub current_values: u64,
    /// Values missing in the current data.
    pub current_missing: u64,
}

/// Evidently's default method for a column (the table in the module's documentation).
pub fn auto_method(reference: &Sample, current: &Sample) -> DriftMethod {
    let values = match (reference, current) {
        // Only "more than 5" matters.
        (Sample::Numeric(r), Sample::Numeric(c)) => sample::distinct_union_up_to(r.values(), c.values(), 5),
        (Sample::Categorical(r), Sample::Categorical(c)) => Aligned::categories(r, c).keys(),
        _ => 0,
    };
    let small = reference.len() <= 1000;
    match (reference.kind(), small) {
        (ColumnKind::Numeric, true) if values > 5 => DriftMethod::Ks,
        (_, true) if values > 2 => DriftMethod::Chisquare,
        (_, true) => DriftMethod::Z,
        (ColumnKind::Numeric, false) if values > 5 => DriftMethod::Wasserstein,
        (_, false) => DriftMethod::Jensenshannon,
    }
}

/// Compares one column's current values with its reference values.
pub fn column_drift(
    column: &str,
    reference: &Sample,
    current: &Sample,
    rule: &DriftRule,
) -> Result<ColumnDrift, DriftError> {
    if reference.kind() != current.kind() {
        return Err(DriftError::KindMismatch {
            column: column.into(),
            reference: reference.kind(),
            current: current.kind(),
        });
    }
    for (side, s) in [("reference", reference), ("current", current)] {
        if s.is_empty() {
            return Err(DriftError::Empty { column: column.into(), side });
        }
    }
    let method = if rule.method == DriftMethod::Auto { auto_method(reference, current) } else { rule.method };
    if method.numeric_only() && reference.kind() != ColumnKind::Numeric {
        return Err(DriftError::MethodNotForKind { column: column.into(), method });
    }
    let threshold = rule.threshold.unwrap_or(method.default_threshold());
    let scores = match method {
        DriftMethod::KsOrPsi => {
            let ks = score(DriftMethod::Ks, reference, current, threshold);
            let psi = score(DriftMethod::Psi, reference, current, rule.psi_threshold.unwrap_or(SEED_PSI_THRESHOLD));
            // The seed's rule is strict on both sides.
            vec![Score { drifted: ks.value < threshold, ..ks }, Score { drifted: psi.value > psi.threshold, ..psi }]
        }
        m => vec![score(m, reference, current, threshold)],
    };
    tracing::debug!(column, method = method.name(), score = scores[0].value, "drift");
    Ok(ColumnDrift {
        column: column.into(),
        kind: reference.kind(),
        method,
        drifted: scores.iter().any(|s| s.drifted),
        scores,
        reference_values: reference.len(),
        reference_missing: reference.missing(),
        current_values: current.len(),
        current_missing: current.missing(),
    })
}

/// One method's score (`method` is neither `auto` nor `ks_or_psi`; kinds are checked).
fn score(method: DriftMethod, reference: &Sample, current: &Sample, threshold: f64) -> Score {
    let aligned = || match (reference, current) {
        (Sample::Numeric(r), Sample::Numeric(c)) => Aligned::distinct(r.values(), c.values()),
        (Sample::Categorical(r), Sample::Categorical(c)) => Aligned::categories(r, c),
        _ => Aligned { reference: Vec::new(), current: Vec::new() },
    };
    let value = match (method, reference, current) {
        (DriftMethod::Ks, Sample::Numeric(r), Sample::Numeric(c)) => {
            ks_2samp(r.values(), c.values()).map_or(f64::NAN, |k| k.p_value)
        }
        (DriftMethod::Wasserstein, Sample::Numeric(r), Sample::Numeric(c)) => {
            stats::wasserstein_norm(r.values(), c.values())
        }
        (DriftMethod::Chisquare, ..) => stats::chisquare_p(&aligned()),
        (DriftMethod::Z, ..) => stats::z_p(&aligned()),
        (DriftMethod::Jensenshannon, Sample::Numeric(r), Sample::Numeric(c)) => {
            let (p, q) = stats::evidently_bins(r.values(), c.values());
            stats::jensenshannon(&p, &q)
        }
        (DriftMethod::Psi, Sample::Numeric(r), Sample::Numeric(c)) => {
            let edges = stats::decile_edges(r.values());
            let (rc, cc) = (stats::decile_counts(r.values(), &edges), stats::decile_counts(c.values(), &edges));
            stats::psi(&stats::shares(&rc, r.values().len()), &stats::shares(&cc, c.values().len()))
        }
        (DriftMethod::Jensenshannon | DriftMethod::Psi, ..) => {
            let a = aligned();
            let (p, q) = (
                stats::shares(&a.reference, reference.len() as usize),
                stats::shares(&a.current, current.len() as usize),
            );
            if method == DriftMethod::Psi { stats::psi(&p, &q) } else { stats::jensenshannon(&p, &q) }
        }
        _ => f64::NAN,
    };
    let drifted = match method {
        DriftMethod::Ks => value <= threshold,
        m if m.is_test() => value < threshold,
        _ => value >= threshold,
    };
    Score { method, value, threshold, drifted }
}

/// Every compared column and whether the dataset drifted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataDrift {
    /// The compared columns, in the order given.
    pub columns: Vec<ColumnDrift>,
    /// Columns that could not be compared, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Drifted columns.
    pub drifted: usize,
    /// Drifted columns as a share of the compared ones.
    pub share: f64,
    /// The share from which the dataset drifts.
    pub share_threshold: f64,
    /// Whether the dataset drifted.
    pub dataset_drift: bool,
}

/// Compares every column (name, reference, current) under `config`'s rules: a column that cannot
/// be compared is listed in `skipped` with the reason, and the others still count.
pub fn data_drift<'a>(
    columns: impl IntoIterator<Item = (&'a str, &'a Sample, &'a Sample)>,
    config: &DriftConfig,
) -> DataDrift {
    let columns: Vec<_> = columns.into_iter().collect();
    let compare = |(name, reference, current): &(&str, &Sample, &Sample)| {
        column_drift(name, reference, current, &config.rule(name)).map_err(|e| (name.to_string(), e.to_string()))
    };
    // Columns are compared side by side; a worker that stopped leaves its columns to this thread.
    let compared = mlops_core::par::map(&columns, compare).unwrap_or_else(|| columns.iter().map(compare).collect());
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for c in compared {
        match c {
            Ok(d) => out.push(d),
            Err(e) => skipped.push(e),
        }
    }
    let drifted = out.iter().filter(|c| c.drifted).count();
    let share = if out.is_empty() { 0.0 } else { drifted as f64 / out.len() as f64 };
    DataDrift {
        dataset_drift: !out.is_empty() && share >= config.share,
        columns: out,
        skipped,
        drifted,
        share,
        share_threshold: config.share,
    }
}

#[cfg(test)]
mod tests;
