//! Inferring a starting schema from a dataset (`mlops validate --infer`).

use std::collections::BTreeMap;

use mlops_core::frame::{column_values, dtype_of};
use mlops_core::{DType, Scalar, Value};
use polars::prelude::DataFrame;

use crate::schema::{ColumnRule, Schema};

/// Text columns with at most this many distinct values get an `allowed` list.
const MAX_CATEGORIES: usize = 20;

fn scalar(v: &Value) -> Option<Scalar> {
    Some(match v {
        Value::Int(i) => Scalar::Int(*i),
        Value::Float(f) => Scalar::Float(*f),
        Value::Date(_) | Value::Datetime(_) => Scalar::Str(v.to_string()),
        _ => return None,
    })
}

/// A schema that the given data passes: types, nullability, observed ranges, small category sets
/// and unique identifier columns. Review it before relying on it.
pub fn infer(df: &DataFrame) -> mlops_core::Result<Schema> {
    let mut columns = BTreeMap::new();
    for col in df.columns() {
        let Some(dtype) = dtype_of(col.dtype()) else { continue };
        let values = column_values(col)?;
        let non_null: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
        let mut rule = ColumnRule {
            dtype: Some(dtype),
            required: true,
            nullable: non_null.len() < values.len(),
            ..ColumnRule::default()
        };
        let ordered = |a: &&Value, b: &&Value| match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => a.to_string().cmp(&b.to_string()),
        };
        // Bounds only when every value is finite: NaN and infinities would fail any bound.
        let all_finite = non_null.iter().all(|v| v.as_f64().is_none_or(f64::is_finite));
        if matches!(dtype, DType::Int | DType::Float | DType::Date | DType::Datetime) && all_finite {
            let (lo, hi) = (non_null.iter().copied().min_by(ordered), non_null.iter().copied().max_by(ordered));
            rule.min = lo.and_then(scalar);
            rule.max = hi.and_then(scalar);
        }
        let distinct: std::collections::BTreeSet<String> = non_null.iter().map(|v| v.to_string()).collect();
        if dtype == DType::Str
            && !distinct.is_empty()
            && distinct.len() <= MAX_CATEGORIES
            && distinct.len() * 2 <= non_null.len()
        {
            rule.allowed = Some(distinct.iter().cloned().map(Scalar::Str).collect());
        }
        let is_identifier =
            matches!(dtype, DType::Str | DType::Int) && non_null.len() == values.len() && values.len() > 1;
        if is_identifier && distinct.len() == values.len() {
            rule.unique = true;
        }
        columns.insert(col.name().to_string(), rule);
    }
    Ok(Schema { columns, ..Schema::default() })
}
