//! Step 22: watch a served model.
//!
//! In: the reference data (the training rows a model learned from) and the current data (the
//! inputs and predictions the server logged). Out: reports a person or a cron job acts on.
//!
//! - [`drift`]: data drift per column with Evidently's tests and thresholds, as
//!   `DataDriftPreset` chooses them (Kolmogorov-Smirnov, Wasserstein, chi-squared, Z,
//!   Jensen-Shannon), plus the population stability index and the workflow seed's KS-or-PSI rule;
//!   every value equals scipy's (`ks_2samp`, `chisquare`, `wasserstein_distance`,
//!   `jensenshannon`) to 1e-9, which `tests/reference/drift_scipy.py` checks.
//!
//! - [`read_current`]: one model's logged inputs and predictions over a time window, with the
//!   volume per hour, latencies and the values unlike the training data, read from the prediction
//!   log one request at a time.
//! - [`health`]: requests, rows and latency percentiles over the window and per hour.
//! - [`quality`]: missing values per input column against the reference's share, and the
//!   values unlike the training data the server counted.
//! - [`read_accuracy`]: the actual outcomes recorded as feedback joined to the logged
//!   predictions, scored with step 14's metrics over the window and per hour.
//! - [`alerts`]: rules over a run's findings, with their state in the store (an alert fires
//!   once, stays open while its rule holds, and is resolved when it no longer does), and the
//!   JSON-lines sink.
//!
//! Invariants: a column that cannot be compared is reported with the reason and never stops the
//! others; nothing here panics on data, prints, or reads a clock.
//!
//! ```
//! use step22_monitor::drift::{DriftConfig, Numbers, Sample, data_drift};
//!
//! let reference = Sample::Numeric(Numbers::new((0..200).map(|i| Some(f64::from(i)))));
//! let current = Sample::Numeric(Numbers::new((0..200).map(|i| Some(f64::from(i) + 50.0))));
//! let report = data_drift([("age", &reference, &current)], &DriftConfig::default());
//! assert_eq!(report.columns[0].method.name(), "ks");
//! assert!(report.dataset_drift);
//! ```

mod accuracy;
pub mod alerts;
mod cell;
mod config;
pub mod drift;
mod error;
pub mod export;
mod health;
mod quality;
mod window;

pub use accuracy::{Accuracy, Labelled, LabelledRow, Outcomes, read_accuracy, read_labelled_rows};
pub use cell::LoggedValue;
pub use config::{MonitorConfig, Sinks, WindowConfig, parse_span};
pub use error::{MonitorError, Result};
pub use health::{Health, HourHealth, Latency, health};
pub use quality::{ColumnQuality, quality};
pub use window::{
    Current, ModelRef, Novelty, Refused, Timeline, Volume, Window, find_by_key, read_current, read_current_with,
};

#[cfg(test)]
mod tests;
