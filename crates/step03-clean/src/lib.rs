//! Step 3, clean: missing values, duplicates, type conversion, outliers and text clean-up, each
//! learned from training rows as a fitted operation.
//!
//! In: a frame and [`CleanParams`]. Out: [`Cleaned`] — the cleaned frame, the fitted
//! [`Op`](mlops_core::Op)s that join the `FeaturePipeline` (so serving repeats exactly what
//! training did: the same medians, modes and bounds), and a [`CleanReport`] of what changed
//! (coerced values, dropped duplicates, rows and columns, fills, outliers).
//!
//! Invariants:
//! - statistics come only from the frame given to `fit_transform` (the training rows);
//! - the order is fixed: types, text, duplicates, missing values (drop columns, drop rows, fill),
//!   outliers;
//! - a config naming an absent column, or a statistic that does not fit a column's type, is a
//!   [`CleanError`] naming the config key and the column; cleaning never panics on data.
//!
//! ```
//! use polars::prelude::df;
//! use step03_clean::CleanParams;
//!
//! let data = df!("salary" => [Some(50.0), None, Some(70.0)], "dept" => ["a", "a", "b"]).unwrap();
//! let params: CleanParams = mlops_core::config::parse_yaml(
//!     "missing:\n  fill:\n    salary: {group_median: {by: dept}}\n",
//!     std::path::Path::new("clean.yaml"),
//! ).unwrap();
//! let cleaned = params.fit_transform(data).unwrap();
//! assert_eq!(cleaned.frame.column("salary").unwrap().null_count(), 0);
//! assert_eq!(cleaned.report.filled["salary"].count, 1);
//! ```

mod error;
mod fit;
mod params;

pub use error::{CleanError, Result};
pub use fit::{CleanReport, Cleaned, FillReport, OutlierReport};
pub use params::{
    CleanParams, DropRows, Duplicates, Fill, Missing, OutlierAction, OutlierMethod, Outliers, TypeSpec,
    default_date_formats, default_datetime_formats,
};

#[cfg(test)]
mod tests;
