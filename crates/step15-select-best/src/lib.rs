//! Step 15: select the best model.
//!
//! [`select`] ranks candidates by a weighted score over criteria (any metric of step 14, the
//! fit time and the p99 single-row latency), each normalised over the candidates so that higher
//! is better for all; candidates breaking a hard constraint (slowest fit, slowest p99 latency,
//! a metric's floor or ceiling) are ranked out with the reason; scores within a tolerance are a
//! tie, won by the simpler model (the smaller fitted model).
//!
//! [`compare`] puts a champion and a challenger side by side on the same test rows: the
//! workflow's two-proportion z-test on accuracy, McNemar's test on the rows only one of them gets
//! right, and a seeded paired bootstrap confidence interval for the difference in any metric.
//! [`paired_bootstrap_metric`] bootstraps one of step 14's metrics from both models' outputs: the
//! rows are ranked once per model and each resample is scored from its counts per row, on every
//! core; the interval depends on the seed alone, not on the number of cores.
//! [`paired_bootstrap`] takes any metric as a function of the drawn rows, on the same resamples.
//!
//! ```
//! use std::collections::BTreeMap;
//! use step15_select_best::{Entry, SelectParams, select};
//! use step14_evaluate::Metric;
//!
//! let entry = |name: &str, auc: f64, fit: f64, size: f64| Entry {
//!     name: name.into(),
//!     metrics: BTreeMap::from([("roc_auc".to_string(), auc)]),
//!     fit_seconds: fit,
//!     latency_p99_ms: None,
//!     complexity: size,
//!     cv: None,
//! };
//! let entries = [entry("boosting", 0.91, 4.0, 90_000.0), entry("logistic", 0.90, 0.2, 500.0)];
//! let params: SelectParams = serde_json::from_str(r#"{"weights": {"roc_auc": 0.8, "fit_seconds": 0.2}}"#).unwrap();
//! let chosen = select(&entries, &params, Metric::RocAuc).unwrap();
//! // Boosting's 0.01 of ROC-AUC is worth 0.8 of the score, logistic's speed 0.2.
//! assert_eq!(chosen.winner.as_deref(), Some("boosting"));
//! ```

mod bootstrap;
mod compare;
mod select;
#[cfg(test)]
mod tests;
mod weighted;

pub use bootstrap::{Bootstrap, ClassifierOutputs, PairedOutputs, paired_bootstrap, paired_bootstrap_metric};
pub use compare::{Comparison, McNemar, ProportionTest, mcnemar, two_proportion_z};
pub use select::{
    Choice, CompareParams, Constraints, Criterion, Entry, RankOn, Ranked, SelectParams, TieBreak, select,
};

/// What goes wrong in selection and comparison.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectBestError {
    /// A setting is out of range or names something unknown.
    #[error("{key}: {message}")]
    Invalid {
        /// The config key (`weights.roc_auc`, `constraints.max_fit_seconds`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Inputs that should line up do not.
    #[error("{what}: {message}")]
    Mismatch {
        /// What was given.
        what: &'static str,
        /// How.
        message: String,
    },
}

/// Result with [`SelectBestError`].
pub type Result<T, E = SelectBestError> = std::result::Result<T, E>;
