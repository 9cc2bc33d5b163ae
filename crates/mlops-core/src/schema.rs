//! Column schemas, model signatures and task kinds.

use serde::{Deserialize, Serialize};

use crate::value::{DType, Row, Value};
use crate::{CoreError, Result};

/// What a model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Two classes.
    BinaryClassification,
    /// More than two classes.
    MulticlassClassification,
    /// A continuous target.
    Regression,
}

/// One column as a dataset or a model input describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// Logical type.
    pub dtype: DType,
    /// Whether nulls are allowed.
    #[serde(default)]
    pub nullable: bool,
    /// Categories seen, for text columns with few distinct values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Smallest and largest value seen, for numeric columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(f64, f64)>,
    /// Text read as missing in a text cell (a CSV body or file), as the source was read in
    /// training (`NA`); besides the empty cell, which is always missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub null_values: Vec<String>,
}

impl ColumnSchema {
    /// A column of `dtype` with nothing else known.
    pub fn new(name: impl Into<String>, dtype: DType, nullable: bool) -> ColumnSchema {
        ColumnSchema { name: name.into(), dtype, nullable, categories: None, range: None, null_values: Vec::new() }
    }
}

/// The inputs a model package expects and the outputs it produces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Input columns, in order.
    pub inputs: Vec<ColumnSchema>,
    /// Output columns.
    pub outputs: Vec<ColumnSchema>,
}

impl Signature {
    /// Checks one input row: every required column present, types compatible, no null where none is
    /// allowed. The error names the first offending column.
    pub fn check_row(&self, row: &Row) -> Result<()> {
        for col in &self.inputs {
            let value = row.get(&col.name).unwrap_or(&Value::Null);
            match value.dtype() {
                None if !col.nullable => {
                    return Err(CoreError::Conversion {
                        column: col.name.clone(),
                        row: None,
                        value: "null".into(),
                        target: format!("non-null {}", col.dtype),
                    });
                }
                None => {}
                Some(found) if !compatible(found, col.dtype) => {
                    return Err(CoreError::WrongType {
                        column: col.name.clone(),
                        found: found.to_string(),
                        expected: col.dtype.to_string(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Whether a value of type `found` may stand in a column of type `expected` (ints widen to floats,
/// dates arrive as text).
fn compatible(found: DType, expected: DType) -> bool {
    found == expected
        || matches!((found, expected), (DType::Int, DType::Float) | (DType::Str, DType::Date | DType::Datetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature() -> Signature {
        Signature {
            inputs: vec![ColumnSchema::new("mass", DType::Float, false), ColumnSchema::new("island", DType::Str, true)],
            outputs: vec![],
        }
    }

    #[test]
    fn rows_are_checked_and_errors_name_the_column() {
        let ok = Row::from([("mass".to_string(), Value::Int(4000)), ("island".to_string(), Value::Null)]);
        signature().check_row(&ok).unwrap();
        let missing = Row::from([("island".to_string(), Value::Str("Dream".into()))]);
        let err = signature().check_row(&missing).unwrap_err().to_string();
        assert!(err.contains("`mass`") && err.contains("non-null float"), "{err}");
        let wrong = Row::from([("mass".to_string(), Value::Str("heavy".into()))]);
        let err = signature().check_row(&wrong).unwrap_err().to_string();
        assert_eq!(err, "column `mass` has type string, expected float");
    }
}
