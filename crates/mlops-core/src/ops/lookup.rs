//! Lookups: a step 5 join with a small source (a table of islands), embedded in the pipeline so
//! that a served record is joined as the training rows were. A key missing from the table gives
//! nulls, and every row is kept, whatever the join type was in training.

use std::collections::BTreeMap;

use super::cell;
use crate::Result;
#[cfg(feature = "frame")]
use crate::frame::*;
#[cfg(feature = "frame")]
use crate::value::DType;
use crate::value::{Row, Value};
#[cfg(feature = "frame")]
use polars::prelude::DataFrame;

/// Separates the key columns' texts in a composite key (a unit separator, never in a name).
const SEPARATOR: char = '\u{1f}';

/// A key value as text: whole numbers alike whether they arrive as integers or floats (a join may
/// match an int key with a float one), other values as [`Value::key`] writes them.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some((*f as i64).to_string()),
        other => other.key(),
    }
}

/// The table key of a row's key values; `None` when any of them is null (a null never matches, as
/// in a join).
pub fn lookup_key<'a>(values: impl IntoIterator<Item = &'a Value>) -> Option<String> {
    let mut key = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            key.push(SEPARATOR);
        }
        key.push_str(&key_text(v)?);
    }
    Some(key)
}

pub(super) fn lookup_row(
    row: &mut Row,
    on: &[String],
    outputs: &[String],
    table: &BTreeMap<String, Vec<Value>>,
) -> Result<()> {
    let keys: Vec<Value> = on.iter().map(|c| cell(row, c)).collect();
    let found = lookup_key(&keys).and_then(|k| table.get(&k));
    for (j, out) in outputs.iter().enumerate() {
        let v = found.and_then(|values| values.get(j)).cloned().unwrap_or(Value::Null);
        row.insert(out.clone(), v);
    }
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn lookup_frame(
    df: DataFrame,
    on: &[String],
    outputs: &[String],
    dtypes: &[DType],
    table: &BTreeMap<String, Vec<Value>>,
) -> Result<DataFrame> {
    let keys: Vec<Vec<Value>> = on.iter().map(|c| column_values(column(&df, c)?)).collect::<Result<_>>()?;
    let found: Vec<Option<&Vec<Value>>> =
        (0..df.height()).map(|i| lookup_key(keys.iter().map(|k| &k[i])).and_then(|k| table.get(&k))).collect();
    let mut df = df;
    for (j, out) in outputs.iter().enumerate() {
        let values: Vec<Value> =
            found.iter().map(|f| f.and_then(|values| values.get(j)).cloned().unwrap_or(Value::Null)).collect();
        let dtype = dtypes.get(j).copied().unwrap_or_else(|| infer_dtype(&values));
        df = put(df, column_from_values(out, dtype, &values))?;
    }
    Ok(df)
}
