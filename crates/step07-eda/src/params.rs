//! The `eda:` section of a config.

use serde::{Deserialize, Serialize};

use crate::{EdaError, Result};

/// What to profile and when to warn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdaParams {
    /// Only these columns (all when empty).
    pub columns: Vec<String>,
    /// Bins of each numeric and date histogram.
    pub histogram_bins: usize,
    /// Most frequent values kept per column.
    pub top_values: usize,
    /// Categories listed per text or boolean column; the rest are counted as "other".
    pub max_categories: usize,
    /// Whisker factor of the IQR outlier rule: outside `[q1 - k·IQR, q3 + k·IQR]`.
    pub iqr_k: f64,
    /// Pairs whose |Pearson| or |Spearman| correlation reaches this are listed and warned about.
    pub correlation_threshold: f64,
    /// When to warn.
    pub warn: WarnAt,
}

impl Default for EdaParams {
    fn default() -> Self {
        EdaParams {
            columns: Vec::new(),
            histogram_bins: 30,
            top_values: 10,
            max_categories: 20,
            iqr_k: 1.5,
            correlation_threshold: 0.7,
            warn: WarnAt::default(),
        }
    }
}

/// Thresholds of the report's warnings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarnAt {
    /// A column with at least this percentage of nulls.
    pub nulls_percent: f64,
    /// A text column whose distinct values are at least this percentage of its non-null values
    /// (and at least `cardinality_min` of them): an identifier or free text, not a category.
    pub cardinality_percent: f64,
    /// The fewest distinct values that count as high cardinality.
    pub cardinality_min: usize,
    /// A numeric column whose |skewness| reaches this.
    pub skew: f64,
}

impl Default for WarnAt {
    fn default() -> Self {
        WarnAt { nulls_percent: 20.0, cardinality_percent: 50.0, cardinality_min: 50, skew: 1.0 }
    }
}

impl EdaParams {
    /// Checks the settings once, before any work.
    pub fn check(&self) -> Result<()> {
        let invalid = |key, message: &str| Err(EdaError::Invalid { key, message: message.to_string() });
        if !(1..=1000).contains(&self.histogram_bins) {
            return invalid("histogram_bins", "must be between 1 and 1000");
        }
        if self.top_values == 0 || self.max_categories == 0 {
            return invalid("top_values", "top_values and max_categories must be at least 1");
        }
        if !(self.iqr_k.is_finite() && self.iqr_k >= 0.0) {
            return invalid("iqr_k", "must be a number >= 0");
        }
        if !(0.0..=1.0).contains(&self.correlation_threshold) {
            return invalid("correlation_threshold", "must be between 0 and 1");
        }
        if !(0.0..=100.0).contains(&self.warn.nulls_percent) || !(0.0..=100.0).contains(&self.warn.cardinality_percent)
        {
            return invalid("warn", "percentages must be between 0 and 100");
        }
        if !(self.warn.skew.is_finite() && self.warn.skew >= 0.0) {
            return invalid("warn.skew", "must be a number >= 0");
        }
        Ok(())
    }
}
