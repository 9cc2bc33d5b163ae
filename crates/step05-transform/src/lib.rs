//! Step 5, transform: scaling, categorical encodings, derived columns, value and bin maps, joins
//! and concatenation.
//!
//! In: a frame, [`TransformParams`] and the other ingested sources by name (for joins and
//! concatenation). Out: [`Transformed`] — the frame, the fitted operations for the
//! `FeaturePipeline` (scalers, encoders, derived columns, maps, bins) and a [`TransformReport`]
//! (join sizes and fan-out warnings, encoded and scaled columns).
//!
//! Invariants:
//! - every statistic (means, quantiles, categories, target means) comes from the frame given to
//!   `fit_transform`, the training rows;
//! - joins keep the left side's row order and warn when duplicate right-side keys repeat rows;
//! - a missing join key, an unknown source or a bad expression is a [`TransformError`] naming the
//!   config key and the column.
//!
//! ```
//! use std::collections::BTreeMap;
//! use polars::prelude::df;
//! use step05_transform::TransformParams;
//!
//! let data = df!("quantity" => [2, 3], "unit_price" => [1.5, 2.0]).unwrap();
//! let params: TransformParams = mlops_core::config::parse_yaml(
//!     "derive:\n  - {name: total, expr: quantity * unit_price}\nscale:\n  total: minmax\n",
//!     std::path::Path::new("transform.yaml"),
//! ).unwrap();
//! let out = params.fit_transform(data, &BTreeMap::new()).unwrap();
//! assert_eq!(out.report.scaled["total"], (3.0, 3.0));
//! ```

mod error;
mod fit;
mod params;

pub use error::{Result, TransformError};
pub use fit::{JoinReport, LOOKUP_ROWS, TransformReport, Transformed, fit_encoding, fit_scaler, fit_target_encoding};
pub use params::{Bins, Derive, Encoding, How, Join, Scaler, TransformParams};

#[cfg(test)]
mod tests;
