//! Data quality of the current window per input column: missing values against the reference's
//! share, and the values unlike the training data the server counted (unseen categories, numbers
//! outside the training range).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::drift::Sample;
use crate::window::Current;

/// One input column's quality in the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnQuality {
    /// The column.
    pub column: String,
    /// Values present.
    pub values: u64,
    /// Values missing (null, or not sent).
    pub missing: u64,
    /// Missing values as a share of the rows (0 when there were none).
    pub missing_share: f64,
    /// The reference's share of missing values, when a reference is given.
    pub reference_missing_share: Option<f64>,
    /// Categories the model was not trained on.
    pub unseen: u64,
    /// Numbers outside the training range.
    pub out_of_range: u64,
    /// Requests refused for a value of this column (they are not among the values).
    pub rejected: u64,
}

/// Each input column's quality in `current`, in name order, with the reference's missing share
/// where `reference` has the column.
pub fn quality(current: &Current, reference: Option<&BTreeMap<String, Sample>>) -> Vec<ColumnQuality> {
    let share = |missing: u64, values: u64| {
        let rows = missing + values;
        if rows == 0 { 0.0 } else { missing as f64 / rows as f64 }
    };
    current
        .columns
        .iter()
        .map(|(name, sample)| {
            let novel = current.novel.get(name).copied().unwrap_or_default();
            ColumnQuality {
                column: name.clone(),
                values: sample.len(),
                missing: sample.missing(),
                missing_share: share(sample.missing(), sample.len()),
                reference_missing_share: reference.and_then(|r| r.get(name)).map(|r| share(r.missing(), r.len())),
                unseen: novel.unseen,
                out_of_range: novel.out_of_range,
                rejected: current.refused.by_column.get(name).copied().unwrap_or(0),
            }
        })
        .collect()
}
