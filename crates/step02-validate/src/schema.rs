//! The validation schema, as written in YAML.

use std::collections::BTreeMap;

use mlops_core::{DType, Scalar};
use serde::{Deserialize, Serialize};

/// How much a failed check matters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Report and continue.
    Warn,
    /// Stop the run before any output is written.
    #[default]
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        })
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_error(s: &Severity) -> bool {
    *s == Severity::Error
}

/// Checks on one column.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// Expected type: bool, int, float, string, date, datetime.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub dtype: Option<DType>,
    /// The column must exist.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
    /// Nulls are allowed.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub nullable: bool,
    /// Smallest allowed value (numbers, or dates as `YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Scalar>,
    /// Largest allowed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Scalar>,
    /// The only values allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Scalar>>,
    /// Text must match this regular expression (anywhere; anchor with `^...$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Shortest allowed text, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Longest allowed text, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// No two non-null values may be equal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// Severity of every check on this column.
    #[serde(default, skip_serializing_if = "is_error")]
    pub severity: Severity,
}

/// Bounds on the number of rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowCount {
    /// At least this many rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<usize>,
    /// At most this many rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
    /// Severity.
    #[serde(default, skip_serializing_if = "is_error")]
    pub severity: Severity,
}

/// Columns whose combined values must be unique.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompoundUnique {
    /// The columns.
    pub columns: Vec<String>,
    /// Severity.
    #[serde(default, skip_serializing_if = "is_error")]
    pub severity: Severity,
}

/// Values of `columns` must appear in `references` of another source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKey {
    /// Referencing columns in this data.
    pub columns: Vec<String>,
    /// Name of the referenced source.
    pub source: String,
    /// Referenced columns there (same count and order).
    pub references: Vec<String>,
    /// Severity.
    #[serde(default, skip_serializing_if = "is_error")]
    pub severity: Severity,
}

/// A business rule: an expression between columns that must hold on every row (a null result
/// is not a failure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Short name for reports.
    pub name: String,
    /// The condition, e.g. `arr_time >= dep_time`.
    pub expr: String,
    /// Severity.
    #[serde(default, skip_serializing_if = "is_error")]
    pub severity: Severity,
}

/// A validation schema.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Checks per column.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnRule>,
    /// Columns not listed in `columns`: allowed unless this says `warn` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_columns: Option<Severity>,
    /// Compound uniqueness constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<CompoundUnique>,
    /// Bounds on the row count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowCount>,
    /// Referential integrity with other sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKey>,
    /// Business rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// A scalar as an expression literal.
pub(crate) fn literal(s: &Scalar) -> String {
    match s {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => format!("{f:?}"),
        Scalar::Str(s) => format!("'{}'", s.replace('\'', "''")),
    }
}
