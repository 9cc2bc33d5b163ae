//! Derived columns: an expression of other columns, evaluated by the expression language's row
//! evaluator or compiled for a frame.

use super::*;
use crate::Result;
#[cfg(feature = "frame")]
use crate::frame::*;
use crate::value::{DType, Row, Value};
#[cfg(feature = "frame")]
use polars::prelude::{DataFrame, DataType};

pub(super) fn derive_row(row: &mut Row, output: &str, expr: &Expr, dtype: &Option<DType>) -> Result<()> {
    let v = expr.eval_row(row);
    let v = match (v, dtype) {
        (Value::Int(i), Some(DType::Float)) => Value::Float(i as f64),
        (Value::Bool(b), Some(DType::Float)) => Value::Float(f64::from(u8::from(b))),
        (v, _) => v,
    };
    row.insert(output.to_string(), v);
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn derive_frame(df: DataFrame, output: &str, expr: &Expr, dtype: &Option<DType>) -> Result<DataFrame> {
    let schema = schema_of(&df);
    let names = column_names(&df);
    let mut checked = expr.clone();
    checked.check(&|c: &str| schema.get(c).copied(), &names)?;
    if let Some(values) = checked.eval_arith_frame(&df) {
        let values = values.map_err(pe(format!("cannot compute `{output} = {expr}`")))?;
        return put(df, values.with_name(output.into()));
    }
    let e = checked.to_polars(&|c: &str| schema.get(c).copied());
    let df = single_node(df)
        .with_column(e.alias(output))
        .collect()
        .map_err(pe(format!("cannot compute `{output} = {expr}`")))?;
    // A float expression whose operands happen to be whole numbers stays float, as
    // the row path widens it.
    let out = column(&df, output)?;
    if *dtype == Some(DType::Float) && matches!(dtype_of(out.dtype()), Some(DType::Int | DType::Bool)) {
        let widened = out.cast(&DataType::Float64).map_err(pe(output))?;
        return put(df, widened);
    }
    Ok(df)
}
