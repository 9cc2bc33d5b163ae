//! Missing values filled: with a value, with a value per group, or with the previous or next value
//! in a training frame.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
#[cfg(feature = "frame")]
use crate::frame::*;
#[cfg(feature = "frame")]
use crate::value::DType;
use crate::value::{Row, Value};
use crate::{CoreError, Result};
#[cfg(feature = "frame")]
use polars::prelude::{self as pl, ChunkFillNullValue, DataFrame, DataType, Float64Chunked, IntoColumn};

/// Direction of a sequence fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillDirection {
    /// Carry the last seen value forward.
    Forward,
    /// Carry the next value backward.
    Backward,
}

/// A cell after a fill: nulls take `fill`, other values are converted to the fill's type (an int
/// column filled with a float median becomes float). A value that cannot live in a column of the
/// fill's type is an error, on both paths.
pub(crate) fn fill_cell(column: &str, v: Value, fill: &Value) -> Result<Value> {
    Ok(match (v, fill) {
        (Value::Null, fill) => fill.clone(),
        (v, Value::Null) => v,
        (Value::Int(i), Value::Float(_)) => Value::Float(i as f64),
        (Value::Bool(b), Value::Float(_)) => Value::Float(f64::from(u8::from(b))),
        (Value::Bool(b), Value::Int(_)) => Value::Int(i64::from(b)),
        (v, fill) if v.dtype() == fill.dtype() => v,
        (v, fill) => {
            return Err(CoreError::WrongType {
                column: column.to_string(),
                found: v.dtype().map_or_else(|| "null".into(), |t| t.to_string()),
                expected: format!("values that the fill value {fill} can stand beside"),
            });
        }
    })
}

pub(super) fn fill_null_row(row: &mut Row, column: &str, value: &Value) -> Result<()> {
    let out = fill_cell(column, cell(row, column), value)?;
    row.insert(column.to_string(), out);
    Ok(())
}

pub(super) fn fill_null_by_group_row(
    row: &mut Row,
    column: &str,
    by: &str,
    values: &BTreeMap<String, Value>,
    fallback: &Value,
) -> Result<()> {
    let fill = cell(row, by).key().and_then(|k| values.get(&k)).unwrap_or(fallback);
    let out = fill_cell(column, cell(row, column), fill)?;
    row.insert(column.to_string(), out);
    Ok(())
}

pub(super) fn fill_sequence_row(row: &mut Row, column: &str, fallback: &Value) -> Result<()> {
    let out = fill_cell(column, cell(row, column), fallback)?;
    row.insert(column.to_string(), out);
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn fill_null_frame(df: DataFrame, name: &str, value: &Value) -> Result<DataFrame> {
    let col = column(&df, name)?;
    let current = dtype_of(col.dtype());
    let target = value.dtype();
    let lines_up = match (current, target) {
        (Some(c), Some(t)) => c == t || (t == DType::Float && matches!(c, DType::Int | DType::Bool)),
        _ => false,
    };
    if lines_up && let Some(t) = target {
        // Same result as the row path: the column cast to the fill's type (ints to
        // floats exactly), nulls replaced by the value. Numbers and booleans are
        // filled in place: a query plan per op costs more than the fill on a
        // thousand rows.
        let failed = pe(format!("cannot fill `{name}`"));
        let filled = match value {
            Value::Float(f) => f64_column(&df, name)?.fill_null_with_values(*f).map(IntoColumn::into_column),
            Value::Int(i) => {
                col.cast(&DataType::Int64).and_then(|c| c.i64()?.fill_null_with_values(*i)).map(IntoColumn::into_column)
            }
            Value::Bool(b) => col.bool().and_then(|c| c.fill_null_with_values(*b)).map(IntoColumn::into_column),
            _ => {
                let filled = pl::col(name).cast(polars_dtype(t)).fill_null(literal(value));
                return single_node(df).with_column(filled).collect().map_err(failed);
            }
        };
        return put(df, filled.map_err(failed)?.with_name(name.into()));
    }
    let values = column_values(col)?;
    let out: Vec<Value> = values.into_iter().map(|v| fill_cell(name, v, value)).collect::<Result<_>>()?;
    put(df, column_from_values(name, value.dtype().unwrap_or_else(|| infer_dtype(&out)), &out))
}

#[cfg(feature = "frame")]
pub(super) fn fill_null_by_group_frame(
    df: DataFrame,
    name: &str,
    by: &str,
    table: &BTreeMap<String, Value>,
    fallback: &Value,
) -> Result<DataFrame> {
    let numeric = matches!(dtype_of(column(&df, name)?.dtype()), Some(DType::Int | DType::Float | DType::Bool));
    if let (Value::Float(fb), true) = (fallback, numeric)
        && table.values().all(|v| matches!(v, Value::Float(_)))
    {
        // Numbers filled with float statistics: stay on typed arrays.
        let xs = f64_column(&df, name)?;
        let (groups, distinct) = key_codes(&df, by)?;
        let fills: Vec<f64> = distinct
            .iter()
            .map(|k| match table.get(k) {
                Some(Value::Float(x)) => *x,
                _ => *fb,
            })
            .collect();
        let out: Float64Chunked =
            xs.iter().zip(groups).map(|(x, g)| x.or_else(|| Some(g.map_or(*fb, |g| fills[g as usize])))).collect();
        return put(df, out.with_name(name.into()));
    }
    let groups = keys(&df, by)?;
    let values = column_values(column(&df, name)?)?;
    let out: Vec<Value> = values
        .into_iter()
        .zip(groups)
        .map(|(v, g)| fill_cell(name, v, g.and_then(|k| table.get(&k)).unwrap_or(fallback)))
        .collect::<Result<_>>()?;
    let t = fallback.dtype().unwrap_or_else(|| infer_dtype(&out));
    put(df, column_from_values(name, t, &out))
}

#[cfg(feature = "frame")]
pub(super) fn fill_sequence_frame(
    df: DataFrame,
    stage: Stage,
    name: &str,
    direction: &FillDirection,
    fallback: &Value,
) -> Result<DataFrame> {
    let mut values = column_values(column(&df, name)?)?;
    let fill = |iter: &mut dyn Iterator<Item = &mut Value>| {
        let mut last: Option<Value> = None;
        for v in iter {
            if v.is_null() {
                if let Some(l) = &last {
                    *v = l.clone();
                }
            } else {
                last = Some(v.clone());
            }
        }
    };
    // Neighbours only exist within a training frame; at inference every row stands
    // alone and takes the fallback, exactly as a single served row does.
    match (stage, direction) {
        (Stage::Inference, _) => {}
        (Stage::Training, FillDirection::Forward) => fill(&mut values.iter_mut()),
        (Stage::Training, FillDirection::Backward) => fill(&mut values.iter_mut().rev()),
    }
    let out: Vec<Value> = values.into_iter().map(|v| fill_cell(name, v, fallback)).collect::<Result<_>>()?;
    let t = fallback.dtype().unwrap_or_else(|| infer_dtype(&out));
    put(df, column_from_values(name, t, &out))
}
