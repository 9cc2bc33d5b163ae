//! Casts: a column converted to a type, with the parsers the row and frame paths share (text to
//! number, boolean, date and timestamp).

use serde::{Deserialize, Serialize};

use super::*;
#[cfg(feature = "frame")]
use crate::frame::*;
use crate::value::{DType, Row, Value};
use crate::{CoreError, Result};
#[cfg(feature = "frame")]
use polars::prelude::{
    BooleanChunked, DataFrame, DataType, Float64Chunked, Int32Chunked, Int64Chunked, IntoSeries, Series, TimeUnit,
};

/// Target type of [`Op::Cast`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CastTo {
    /// 64-bit integer; text is parsed, floats must be whole.
    Int,
    /// 64-bit float; text is parsed.
    Float,
    /// Text; other values are formatted.
    Str,
    /// Boolean from text: values in `true_values` / `false_values` (compared case-insensitively
    /// after trimming); numbers 1 and 0.
    Bool {
        /// Text read as true.
        true_values: Vec<String>,
        /// Text read as false.
        false_values: Vec<String>,
    },
    /// Calendar date from text, trying each chrono format in order (`%Y-%m-%d`, `%d/%m/%Y`, ...).
    Date {
        /// Formats to try, in order.
        formats: Vec<String>,
    },
    /// Date and time from text, trying each chrono format in order.
    Datetime {
        /// Formats to try, in order.
        formats: Vec<String>,
    },
}

impl CastTo {
    /// The type the cast produces.
    pub fn dtype(&self) -> DType {
        match self {
            CastTo::Int => DType::Int,
            CastTo::Float => DType::Float,
            CastTo::Str => DType::Str,
            CastTo::Bool { .. } => DType::Bool,
            CastTo::Date { .. } => DType::Date,
            CastTo::Datetime { .. } => DType::Datetime,
        }
    }
}

/// What a conversion does with a value it cannot convert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Make it null and go on (pandas' `errors="coerce"`); the step reports how many.
    #[default]
    Coerce,
    /// Stop with an error naming the column, row and value.
    Raise,
}

/// A value that does not convert to the requested type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotConvertible;

/// Converts one value; [`NotConvertible`] when it cannot be converted. Null stays null.
pub fn cast_value(v: &Value, to: &CastTo) -> std::result::Result<Value, NotConvertible> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match to {
        CastTo::Str => Ok(Value::Str(v.to_string())),
        CastTo::Float => match v {
            Value::Str(s) => parse_float(s).map(Value::Float).ok_or(NotConvertible),
            other => other.as_f64().map(Value::Float).ok_or(NotConvertible),
        },
        CastTo::Int => match v {
            Value::Int(i) => Ok(Value::Int(*i)),
            Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
            Value::Float(f) => float_to_int(*f).map(Value::Int).ok_or(NotConvertible),
            Value::Str(s) => parse_int(s).map(Value::Int).ok_or(NotConvertible),
            _ => Err(NotConvertible),
        },
        CastTo::Bool { true_values, false_values } => match v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::Int(1) => Ok(Value::Bool(true)),
            Value::Int(0) => Ok(Value::Bool(false)),
            Value::Str(s) => parse_bool(s, true_values, false_values).map(Value::Bool).ok_or(NotConvertible),
            _ => Err(NotConvertible),
        },
        CastTo::Date { formats } => match v {
            Value::Date(d) => Ok(Value::Date(*d)),
            Value::Datetime(us) => {
                Ok(Value::Date(i32::try_from(us.div_euclid(crate::value::MICROS_PER_DAY)).map_err(|_| NotConvertible)?))
            }
            Value::Str(s) => parse_date(s, formats).map(Value::Date).ok_or(NotConvertible),
            _ => Err(NotConvertible),
        },
        CastTo::Datetime { formats } => match v {
            Value::Datetime(us) => Ok(Value::Datetime(*us)),
            Value::Date(d) => Ok(Value::Datetime(i64::from(*d) * crate::value::MICROS_PER_DAY)),
            Value::Str(s) => parse_datetime(s, formats).map(Value::Datetime).ok_or(NotConvertible),
            _ => Err(NotConvertible),
        },
    }
}

/// Parses a float from trimmed text; empty text is not a number.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Parses an integer from trimmed text; `"3.0"` is 3, `"3.5"` is not an integer.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    t.parse::<i64>().ok().or_else(|| parse_float(t).and_then(float_to_int))
}

#[allow(clippy::cast_possible_truncation)]
fn float_to_int(f: f64) -> Option<i64> {
    // i64::MAX as f64 rounds up to 2^63, so the upper bound is exclusive.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    (f.is_finite() && f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f)).then_some(f as i64)
}

/// Reads a boolean from text through the true and false lists, case-insensitively.
pub fn parse_bool(s: &str, true_values: &[String], false_values: &[String]) -> Option<bool> {
    let t = s.trim();
    if true_values.iter().any(|x| x.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if false_values.iter().any(|x| x.eq_ignore_ascii_case(t)) {
        Some(false)
    } else {
        None
    }
}

/// Days since the epoch of the first format that parses the trimmed text.
pub fn parse_date(s: &str, formats: &[String]) -> Option<i32> {
    let t = s.trim();
    formats.iter().find_map(|f| {
        // `YYYY-MM-DD` is by far the most common case; read it without chrono's format parser.
        // Text the shortcut does not take falls through to chrono, which reads it the same way.
        if f == "%Y-%m-%d"
            && let Some(days) = iso_date(t)
        {
            return Some(days);
        }
        chrono::NaiveDate::parse_from_str(t, f)
            .ok()
            .or_else(|| chrono::NaiveDateTime::parse_from_str(t, f).ok().map(|dt| dt.date()))
            .map(Value::days_from_date)
    })
}

/// Days since the epoch of a strict `YYYY-MM-DD`.
fn iso_date(t: &str) -> Option<i32> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    Some(Value::days_from_date(date))
}

/// Microseconds since the epoch of the first format that parses the trimmed text; a format
/// without a time reads midnight.
pub fn parse_datetime(s: &str, formats: &[String]) -> Option<i64> {
    let t = s.trim();
    formats.iter().find_map(|f| {
        chrono::NaiveDateTime::parse_from_str(t, f)
            .ok()
            .or_else(|| chrono::NaiveDate::parse_from_str(t, f).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(|dt| dt.and_utc().timestamp_micros())
    })
}

pub(super) fn cast_row(row: &mut Row, column: &str, to: &CastTo, on_error: &OnError) -> Result<()> {
    let v = cell(row, column);
    let out = cast_value(&v, to).or_else(|NotConvertible| match on_error {
        OnError::Coerce => Ok(Value::Null),
        OnError::Raise => Err(CoreError::Conversion {
            column: column.to_string(),
            row: None,
            value: v.to_string(),
            target: to.dtype().to_string(),
        }),
    })?;
    row.insert(column.to_string(), out);
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn cast_frame(df: DataFrame, name: &str, to: &CastTo, on_error: OnError) -> Result<DataFrame> {
    let col = column(&df, name)?;
    // Text is the usual input; convert it straight into typed arrays with the row path's parsers.
    if matches!(col.dtype(), DataType::String) {
        let ca = col.str().map_err(pe(name))?.clone();
        let out: Series = match to {
            CastTo::Str => return Ok(df),
            // Each distinct short text is parsed once (see `map_texts`).
            CastTo::Float => par_text(&ca, |part| {
                map_texts(part, super::parse_float).map(Option::flatten).collect::<Float64Chunked>().into_series()
            })?,
            CastTo::Int => par_text(&ca, |part| {
                map_texts(part, super::parse_int).map(Option::flatten).collect::<Int64Chunked>().into_series()
            })?,
            CastTo::Bool { true_values, false_values } => par_text(&ca, |part| {
                map_texts(part, |s| super::parse_bool(s, true_values, false_values))
                    .map(Option::flatten)
                    .collect::<BooleanChunked>()
                    .into_series()
            })?,
            CastTo::Date { formats } => par_text(&ca, |part| {
                map_texts(part, |s| super::parse_date(s, formats))
                    .map(Option::flatten)
                    .collect::<Int32Chunked>()
                    .into_date()
                    .into_series()
            })?,
            CastTo::Datetime { formats } => par_text(&ca, |part| {
                map_texts(part, |s| super::parse_datetime(s, formats))
                    .map(Option::flatten)
                    .collect::<Int64Chunked>()
                    .into_datetime(TimeUnit::Microseconds, None)
                    .into_series()
            })?,
        };
        if on_error == OnError::Raise {
            first_failure(name, ca.iter().zip(out.is_not_null().iter().map(|v| v == Some(true))), to)?;
        }
        return put(df, out.with_name(name.into()));
    }
    let target = to.dtype();
    map_values(df, name, name, |i, v| {
        cast_value(&v, to).or_else(|super::NotConvertible| match on_error {
            OnError::Coerce => Ok(Value::Null),
            OnError::Raise => Err(CoreError::Conversion {
                column: name.to_string(),
                row: Some(i),
                value: v.to_string(),
                target: target.to_string(),
            }),
        })
    })
    .and_then(|df| {
        // `map_values` infers the type from the values; an all-null result must still have the
        // target type.
        let col = column(&df, name)?;
        if dtype_of(col.dtype()) == Some(target) {
            return Ok(df);
        }
        let casted = col.cast(&polars_dtype(target)).map_err(pe(name))?;
        put(df, casted)
    })
}

#[cfg(feature = "frame")]
fn first_failure<'a>(name: &str, pairs: impl Iterator<Item = (Option<&'a str>, bool)>, to: &CastTo) -> Result<()> {
    for (i, (input, converted)) in pairs.enumerate() {
        if let (Some(s), false) = (input, converted) {
            return Err(CoreError::Conversion {
                column: name.to_string(),
                row: Some(i),
                value: s.to_string(),
                target: to.dtype().to_string(),
            });
        }
    }
    Ok(())
}
