//! Transform parameters, as written under `transform:` in a data config.

use std::collections::BTreeMap;

use mlops_core::ops::{Closed, UnknownPolicy};
use serde::{Deserialize, Serialize};
use step04_standardize::ValueMap;

/// Everything transform can do, applied in this order: concatenation, joins, derived columns,
/// value maps, bins, encodings, scaling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformParams {
    /// Sources whose rows are appended (columns matched by name; missing ones become null).
    #[serde(default)]
    pub concat: Vec<String>,
    /// Joins with other sources, in order.
    #[serde(default)]
    pub joins: Vec<Join>,
    /// Derived columns, in order; later ones may use earlier ones.
    #[serde(default)]
    pub derive: Vec<Derive>,
    /// Value maps (pandas' `map`/`replace`) per column.
    #[serde(default)]
    pub maps: BTreeMap<String, ValueMap>,
    /// Binned maps (pandas' `cut`, the seed's `apply` of an age-group function) per column.
    #[serde(default)]
    pub bins: BTreeMap<String, Bins>,
    /// Encodings per categorical column.
    #[serde(default, deserialize_with = "mlops_core::config::bare_or_tagged_values")]
    pub encode: BTreeMap<String, Encoding>,
    /// Scaling per numeric column.
    #[serde(default)]
    pub scale: BTreeMap<String, Scaler>,
}

/// How rows of two sources are matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// Only rows with a match on both sides.
    Inner,
    /// Every row of the left side (the data so far).
    #[default]
    Left,
    /// Every row of the right side.
    Right,
    /// Every row of both sides.
    Outer,
}

fn default_suffix() -> String {
    "_right".into()
}

/// A join with another source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// Name of the source to join.
    pub right: String,
    /// Join type.
    #[serde(default)]
    pub how: How,
    /// Key columns with the same name on both sides.
    #[serde(default)]
    pub on: Vec<String>,
    /// Key columns on the left, when names differ.
    #[serde(default)]
    pub left_on: Vec<String>,
    /// Key columns on the right, when names differ.
    #[serde(default)]
    pub right_on: Vec<String>,
    /// Added to right-side columns whose names clash with the left side.
    #[serde(default = "default_suffix")]
    pub suffix: String,
}

/// A derived column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derive {
    /// Name of the new column.
    pub name: String,
    /// Expression, e.g. `quantity * unit_price`.
    pub expr: String,
}

/// Bins for a numeric column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bins {
    /// Increasing edges, one more than labels.
    pub edges: Vec<f64>,
    /// Label per bin.
    pub labels: Vec<String>,
    /// Column to write; `<column>_bin` when absent.
    #[serde(default)]
    pub output: Option<String>,
    /// Which edge a bin includes.
    #[serde(default)]
    pub closed: Closed,
}

/// A categorical encoding: a name (`one_hot`, `ordinal`, `label`) or a one-key map with options
/// (`one_hot: {unknown: error}`, `target: {target: species}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Encoding {
    /// One 0/1 column per training category, named `<column>_<category>`.
    OneHot {
        /// Unseen categories: all zeros (`ignore`) or an error.
        #[serde(default)]
        unknown: UnknownPolicy,
        /// Keep the original column beside the indicators.
        #[serde(default)]
        keep_input: bool,
    },
    /// Integer codes in a given or sorted order; unseen categories get -1 or an error.
    Ordinal {
        /// Category order; sorted training categories when absent.
        #[serde(default)]
        categories: Option<Vec<String>>,
        /// Unseen categories.
        #[serde(default)]
        unknown: UnknownPolicy,
    },
    /// Integer codes of the sorted training categories (scikit-learn's `LabelEncoder`).
    Label,
    /// Smoothed target mean per category, fitted on training rows only.
    Target {
        /// The target column.
        target: String,
        /// Weight of the prior: `(n * mean + m * prior) / (n + m)`.
        #[serde(default = "default_smoothing")]
        smoothing: f64,
        /// Keep the original column beside the encoding.
        #[serde(default)]
        keep_input: bool,
    },
}

fn default_smoothing() -> f64 {
    10.0
}

/// A scaler for a numeric column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaler {
    /// `(x - mean) / std` (population std).
    Standard,
    /// `(x - min) / (max - min)`.
    Minmax,
    /// `(x - median) / iqr`.
    Robust,
}
