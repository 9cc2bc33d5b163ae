//! Numbers changed in place: clipped to bounds, rounded, a linear change of units, standard
//! scaling.

use super::*;
use crate::Result;
#[cfg(feature = "frame")]
use crate::frame::*;
use crate::stats::round_to;
use crate::value::{Row, Value};
#[cfg(feature = "frame")]
use polars::prelude::{ChunkApply, DataFrame};

/// Clamp that keeps NaN as NaN.
pub(crate) fn clip(x: f64, lower: f64, upper: f64) -> f64 {
    if x < lower {
        lower
    } else if x > upper {
        upper
    } else {
        x
    }
}

pub(super) fn clip_row(row: &mut Row, column: &str, lower: &f64, upper: &f64) -> Result<()> {
    let v = cell(row, column);
    if let Some(x) = v.as_f64() {
        row.insert(column.to_string(), Value::Float(clip(x, *lower, *upper)));
    } else if !v.is_null() {
        return Err(wrong_type(column, &v, "number"));
    }
    Ok(())
}

pub(super) fn round_row(row: &mut Row, column: &str, decimals: &i32) -> Result<()> {
    let v = cell(row, column);
    if let Some(x) = v.as_f64() {
        row.insert(column.to_string(), Value::Float(round_to(x, *decimals)));
    } else if !v.is_null() {
        return Err(wrong_type(column, &v, "number"));
    }
    Ok(())
}

pub(super) fn linear_row(
    row: &mut Row,
    column: &str,
    output: &Option<String>,
    factor: &f64,
    offset: &f64,
) -> Result<()> {
    let v = cell(row, column);
    let out = match v.as_f64() {
        Some(x) => Value::Float(x * factor + offset),
        None if v.is_null() => Value::Null,
        None => return Err(wrong_type(column, &v, "number")),
    };
    row.insert(output.clone().unwrap_or_else(|| column.to_string()), out);
    Ok(())
}

pub(super) fn scale_row(row: &mut Row, column: &str, center: &f64, scale: &f64) -> Result<()> {
    let v = cell(row, column);
    let out = match v.as_f64() {
        Some(x) => Value::Float((x - center) / scale),
        None if v.is_null() => Value::Null,
        None => return Err(wrong_type(column, &v, "number")),
    };
    row.insert(column.to_string(), out);
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn clip_frame(df: DataFrame, name: &str, lower: &f64, upper: &f64) -> Result<DataFrame> {
    let ca = f64_column(&df, name)?.apply_values(|x| clip(x, *lower, *upper));
    put(df, ca.with_name(name.into()))
}

#[cfg(feature = "frame")]
pub(super) fn round_frame(df: DataFrame, name: &str, decimals: &i32) -> Result<DataFrame> {
    let ca = f64_column(&df, name)?.apply_values(|x| crate::stats::round_to(x, *decimals));
    put(df, ca.with_name(name.into()))
}

#[cfg(feature = "frame")]
pub(super) fn linear_frame(
    df: DataFrame,
    name: &str,
    output: &Option<String>,
    factor: &f64,
    offset: &f64,
) -> Result<DataFrame> {
    let ca = f64_column(&df, name)?.apply_values(|x| x * factor + offset);
    put(df, ca.with_name(output.as_deref().unwrap_or(name).into()))
}

#[cfg(feature = "frame")]
pub(super) fn scale_frame(df: DataFrame, name: &str, center: &f64, scale: &f64) -> Result<DataFrame> {
    let ca = f64_column(&df, name)?.apply_values(|x| (x - center) / scale);
    put(df, ca.with_name(name.into()))
}
