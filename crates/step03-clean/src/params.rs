//! Clean parameters, as written under `clean:` in a data config.

use std::collections::BTreeMap;

use mlops_core::Scalar;
use mlops_core::ops::{Keep, OnError, TextStep};
use serde::{Deserialize, Serialize};

/// Everything the clean step can do; each part is optional. Applied in this order: types, text,
/// duplicates, missing values (drop columns, drop rows, fill), outliers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanParams {
    /// Type conversions per column.
    #[serde(default, deserialize_with = "mlops_core::config::bare_or_tagged_values")]
    pub types: BTreeMap<String, TypeSpec>,
    /// What a value that does not convert becomes: null (`coerce`, counted in the report) or an
    /// error (`raise`).
    #[serde(default)]
    pub type_errors: OnError,
    /// Text clean-up steps per column.
    #[serde(default)]
    pub text: BTreeMap<String, Vec<TextStep>>,
    /// Duplicate removal; absent keeps duplicates.
    #[serde(default)]
    pub duplicates: Option<Duplicates>,
    /// Missing values.
    #[serde(default)]
    pub missing: Missing,
    /// Outlier handling per numeric column.
    #[serde(default)]
    pub outliers: BTreeMap<String, Outliers>,
}

/// Target type of a conversion: a name (`int`, `bool`, `date`, ...) or, for the types with
/// options, a one-key map (`bool: {true_values: [Y]}`, `date: {formats: ['%d/%m/%Y']}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TypeSpec {
    /// Whole numbers.
    Int,
    /// Numbers.
    Float,
    /// Text.
    String,
    /// Text with few distinct values; the categories seen are recorded in the report.
    Categorical,
    /// Booleans from text such as Yes/No.
    Bool {
        /// Text read as true (case-insensitive). Default: yes, y, true, t, 1.
        #[serde(default = "default_true_values")]
        true_values: Vec<String>,
        /// Text read as false (case-insensitive). Default: no, n, false, f, 0.
        #[serde(default = "default_false_values")]
        false_values: Vec<String>,
    },
    /// Dates, trying each chrono format in order.
    Date {
        /// Formats such as `%Y-%m-%d`, `%d/%m/%Y`.
        #[serde(default = "default_date_formats")]
        formats: Vec<String>,
    },
    /// Date-times, trying each chrono format in order.
    Datetime {
        /// Formats such as `%Y-%m-%d %H:%M:%S`.
        #[serde(default = "default_datetime_formats")]
        formats: Vec<String>,
    },
}

fn default_true_values() -> Vec<String> {
    ["yes", "y", "true", "t", "1"].into_iter().map(String::from).collect()
}
fn default_false_values() -> Vec<String> {
    ["no", "n", "false", "f", "0"].into_iter().map(String::from).collect()
}
/// ISO 8601 date first, then common day-first and month-first forms.
pub fn default_date_formats() -> Vec<String> {
    ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y"].into_iter().map(String::from).collect()
}
/// ISO 8601 date-times, with and without fractions and the `T`.
pub fn default_datetime_formats() -> Vec<String> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// Which rows count as duplicates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Duplicates {
    /// Columns that define a duplicate; all columns when absent.
    #[serde(default)]
    pub subset: Option<Vec<String>>,
    /// Occurrence to keep: first, last, or none.
    #[serde(default)]
    pub keep: Keep,
}

/// Missing-value handling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Missing {
    /// Drop columns whose share of nulls is above this (0-1).
    #[serde(default)]
    pub drop_columns_over: Option<f64>,
    /// Drop rows with nulls.
    #[serde(default)]
    pub drop_rows: Option<DropRows>,
    /// Fill strategy per column.
    #[serde(default)]
    pub fill: BTreeMap<String, Fill>,
}

/// Which rows with nulls to drop.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRows {
    /// Columns to look at; all when absent (pandas' `dropna(subset=...)`).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Keep rows whose share of nulls is at most this; 0 drops any row with a null.
    #[serde(default)]
    pub max_null_fraction: f64,
}

/// How to fill a column's nulls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fill {
    /// Mean of the training values.
    Mean,
    /// Median of the training values.
    Median,
    /// Most frequent training value.
    Mode,
    /// A fixed value.
    Constant(Scalar),
    /// Median within each group of another column (salary by department).
    GroupMedian {
        /// The grouping column.
        by: String,
    },
    /// Mean within each group of another column.
    GroupMean {
        /// The grouping column.
        by: String,
    },
    /// Carry the previous value forward (time series).
    Forward,
    /// Carry the next value backward.
    Backward,
}

/// How outliers are found and what happens to them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outliers {
    /// Detection method.
    pub method: OutlierMethod,
    /// Clip to the bounds or drop the rows.
    #[serde(default)]
    pub action: OutlierAction,
}

/// Outlier detection, fitted on the training rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OutlierMethod {
    /// Outside `[q1 - k * iqr, q3 + k * iqr]`.
    Iqr {
        /// Multiplier of the inter-quartile range; 1.5 by default.
        #[serde(default = "default_k")]
        k: f64,
    },
    /// More than `threshold` population standard deviations from the mean.
    Zscore {
        /// Standard deviations; 3 by default.
        #[serde(default = "default_threshold")]
        threshold: f64,
    },
}

fn default_k() -> f64 {
    1.5
}
fn default_threshold() -> f64 {
    3.0
}

/// What to do with outliers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlierAction {
    /// Limit values to the bounds (kept at inference).
    #[default]
    Clip,
    /// Drop the rows from the training set (inference keeps every row).
    Drop,
}
