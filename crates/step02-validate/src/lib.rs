//! Step 2, validate: check a frame against a schema written in YAML and report every failure.
//!
//! In: a polars `DataFrame`, a [`Schema`] (required columns, types, nullability, ranges, allowed
//! sets, regexes, lengths, unique and compound-unique keys, row-count bounds, foreign keys into
//! other sources, and business rules as expressions between columns), and the other sources
//! foreign keys refer to. Out: a [`Report`] listing each failed check with its severity, the count
//! and share of failing rows and a few sample rows, printable as a table or serializable as JSON.
//!
//! Invariants:
//! - every check runs (Pandera's lazy mode): one bad column never hides another;
//! - data problems are findings in the report, never errors; [`ValidateError`] means the schema
//!   itself is wrong (bad regex, unparsable rule, unknown foreign-key source);
//! - [`Report::passed`] is false exactly when an `error`-severity check failed; callers stop
//!   before writing anything then.
//!
//! ```
//! use std::collections::BTreeMap;
//! use polars::prelude::df;
//! use step02_validate::{Schema, validate};
//!
//! let data = df!("dep_time" => [900, 1000], "arr_time" => [1100, 950]).unwrap();
//! let schema: Schema = mlops_core::config::parse_yaml(
//!     "rules:\n  - {name: arrives_after_departure, expr: 'arr_time >= dep_time'}\n",
//!     std::path::Path::new("schema.yaml"),
//! ).unwrap();
//! let report = validate(&data, &schema, &BTreeMap::new()).unwrap();
//! assert!(!report.passed());
//! assert_eq!(report.failures[0].samples[0].row, 1);
//! ```

mod check;
mod error;
mod infer;
mod report;
mod schema;

pub use check::validate;
pub use error::{Result, ValidateError};
pub use infer::infer;
pub use mlops_core::Scalar;
pub use report::{Failure, Report, Sample};
pub use schema::{ColumnRule, CompoundUnique, ForeignKey, RowCount, Rule, Schema, Severity};

/// Reads a schema file, naming the file, key and line on a bad key or type.
pub fn load_schema(path: &std::path::Path) -> Result<Schema> {
    Ok(mlops_core::config::load_yaml(path)?)
}

/// The schema as YAML, for `--infer`.
pub fn schema_to_yaml(schema: &Schema) -> Result<String> {
    serde_yaml::to_string(schema).map_err(|e| ValidateError::Invalid(format!("cannot write schema as YAML: {e}")))
}

#[cfg(test)]
mod tests;
