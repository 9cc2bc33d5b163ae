//! Step 10, features: turn raw columns into useful ones, fitted on training rows, and choose
//! which to keep.
//!
//! In: the training part of a split (a `DataFrame`), [`FeatureParams`] and a seed. Out:
//! [`Features`]: the training frame with the features added, the fitted [`mlops_core::Op`]s (date
//! parts, text statistics, labelled bins, derived and polynomial columns, lags and rolling means,
//! group statistics, target encodings, and a final drop of unselected features) that join the
//! FeaturePipeline, and a [`FeatureReport`] (columns created, selection scores and reasons).
//!
//! Invariants:
//! - every statistic comes from the training rows given; validation, test and served rows only
//!   pass through the fitted ops, whose frame and single-row paths agree (property-tested);
//! - target encodings of training rows are out-of-fold (each row encoded by the other folds,
//!   seeded), while the fitted op encodes new rows with all training rows;
//! - lags look back within training rows; at inference they look back at the last training values
//!   of the row's group, so one row alone gives the same numbers as in a batch.
//!
//! Model-based selection goes through the [`Importance`] trait: the model crates implement it.
//!
//! ```
//! use mlops_core::Seed;
//! use polars::prelude::*;
//! use step10_features::{FeatureParams, fit};
//!
//! let df = df!("text" => ["Great!", "ok then", "fine"], "price" => [10.0, 20.0, 30.0], "qty" => [1.0, 2.0, 4.0])?;
//! let params: FeatureParams = mlops_core::config::parse_yaml(
//!     "text: {text: [length, word_count, has_special]}\nderive: [{name: total, expr: price * qty}]\n",
//!     std::path::Path::new("features.yaml"),
//! )?;
//! let features = fit(&params, df, Seed(42), None)?;
//! assert_eq!(features.report.created, ["text_length", "text_word_count", "text_has_special", "total"]);
//! assert_eq!(features.frame.column("total")?.f64()?.get(2), Some(120.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod fit;
mod params;
mod select;

pub use error::{FeatureError, Result};
pub use fit::{FeatureReport, Features, fit};
pub use params::{
    BinSpec, Derived, FeatureParams, GroupSpec, ImportanceSpec, ImputeSpec, Imputer, KBest, LagSpec, Polynomial,
    ScaleSpec, Score, SelectSpec, TargetSpec,
};
pub use select::{Dropped, Importance, Selected, anova_f, chi2, class_codes, f_regression};

#[cfg(test)]
mod tests;
