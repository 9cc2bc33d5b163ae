//! What a deduplication keeps of a group of equal rows: a leaf that the row filters of
//! [`crate::ops`] and the duplicate search of `frame` both read.

use serde::{Deserialize, Serialize};

/// Which duplicate to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The first occurrence.
    #[default]
    First,
    /// The last occurrence.
    Last,
    /// Drop every row that has a duplicate.
    None,
}
