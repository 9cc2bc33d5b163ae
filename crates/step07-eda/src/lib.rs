//! Step 7, exploratory data analysis: profile a dataset into JSON and one self-contained HTML
//! report.
//!
//! In: a `DataFrame` (usually a curated version from step 6) and [`EdaParams`]. Out: a
//! [`Profile`]: shape, types and memory; per column the count, nulls, distinct values, top values,
//! and for numbers pandas' `describe()` statistics with skewness, kurtosis, a histogram and IQR
//! outliers; value counts of text columns; Pearson and Spearman matrices with the highly correlated
//! pairs; duplicate rows; constant columns; and warnings. [`render_html`] turns a profile and the
//! charts of step 9 into the report.
//!
//! Invariants:
//! - the profile holds aggregates only, never rows, so its size and the report's depend on the
//!   number of columns and bins, not on the number of rows;
//! - statistics follow pandas' conventions (sample standard deviation, linear-interpolated
//!   quantiles, bias-corrected skewness and kurtosis, pairwise-complete correlations), and the
//!   same frame always gives the same profile.
//!
//! This crate does not draw: charts arrive as [`Figure`]s, made by `step09-visualize` (a higher
//! step) in the `pipelines` crate.
//!
//! ```
//! use polars::prelude::*;
//! use step07_eda::{EdaParams, profile};
//!
//! let df = df!("mass" => [3750.0, 3800.0, 3250.0, 4100.0], "island" => ["Torgersen", "Dream", "Dream", "Biscoe"])?;
//! let p = profile(&df, &EdaParams::default())?;
//! assert_eq!(p.rows, 4);
//! let mass = p.variables[0].numeric.as_ref().unwrap();
//! assert_eq!(mass.median, 3775.0);
//! assert_eq!(p.variables[1].top[0].value, "Dream");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod params;
mod profile;
mod report;

pub use error::{EdaError, Result};
pub use params::{EdaParams, WarnAt};
pub use profile::{
    CategoryCounts, ColumnSummary, CorrelatedPair, Correlations, Frequency, Histogram, Kind, NumericStats, Outliers,
    PROFILE_FORMAT_VERSION, Profile, Share, TemporalStats, Warning, histogram, profile,
};
pub use report::{Figure, ReportMeta, SECTIONS, Slot, Written, anchor, escape, fmt_num, render_html, write_report};

#[cfg(test)]
mod tests;
