//! Step 8, select: cut a dataset down to the columns and rows that matter, sample it, and split
//! it into train / validation / test parts.
//!
//! In: a `DataFrame`, the `select:`, `sample:` and `split:` settings and a seed. Out: the selected
//! frame ([`Selection::apply`]), sampled rows ([`Sample::rows`]), and a [`Split`]: row numbers per
//! part plus a [`SplitReport`] (method, seed, rows per part, class balance per part, time
//! cut-offs, groups per part) for the run record.
//!
//! Invariants:
//! - the parts of a split partition the rows: every row in exactly one part;
//! - the same frame, settings and seed give the same selection, sample and split;
//! - stratified splits keep every class's share in each part within one row of exact;
//! - a group split never puts one group in two parts; a time split never puts a later row in
//!   training than in test;
//! - filters parse once, against the frame's columns, and answer errors with a position.
//!
//! ```
//! use mlops_core::Seed;
//! use polars::prelude::*;
//! use step08_select::{SplitMethod, SplitParams};
//!
//! let df = df!("species" => ["a", "a", "a", "a", "b", "b", "b", "b", "b", "b"], "x" => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])?;
//! let params = SplitParams { method: SplitMethod::Stratified { by: "species".into() }, test: 0.5, ..SplitParams::default() };
//! let split = params.split(&df, Seed(42))?;
//! assert_eq!((split.train.len(), split.test.len()), (5, 5));
//! let balance = &split.report.class_balance.as_ref().unwrap().parts["test"];
//! assert_eq!((balance["a"], balance["b"]), (2, 3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod columns;
mod error;
mod rows;
mod sample;
mod split;

use mlops_core::Seed;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

pub use columns::{Columns, TypeSet};
pub use error::{Result, SelectError};
pub use rows::{Labels, Positions, Rows, compile_filter, filter};
pub use sample::{Sample, apportion, apportion_table};
pub use split::{ClassBalance, Split, SplitMethod, SplitParams, SplitReport};

/// The `select:` section: columns, then rows, then an optional sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Selection {
    /// Which columns to keep (all by default).
    pub columns: Columns,
    /// Which rows to keep (all by default).
    pub rows: Rows,
    /// A sample of what is left.
    pub sample: Option<Sample>,
}

impl Selection {
    /// Applies the selection. Rows are filtered before columns are dropped, so a filter may use a
    /// column the selection leaves out.
    pub fn apply(&self, df: &DataFrame, seed: Seed) -> Result<DataFrame> {
        let rows = self.rows.apply(df, "select.rows")?;
        let columns = self.columns.resolve(&rows, "select.columns")?;
        let selected =
            rows.select(columns.iter().map(String::as_str)).map_err(error::polars_error("select.columns"))?;
        let out = match &self.sample {
            Some(sample) => sample.apply(&selected, seed, "select.sample")?,
            None => selected,
        };
        tracing::info!(rows = out.height(), columns = out.width(), "selected");
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
