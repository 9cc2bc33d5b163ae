//! Conversions between polars frames and the toolkit's types: column types, values, rows,
//! matrices, numbers and category keys, and the small frame helpers the ops' frame paths share.

use std::borrow::Cow;
use std::collections::BTreeMap;

use ndarray::Array2;
use polars::prelude::{
    self as pl, BooleanChunked, Column, DataFrame, DataType, Float64Chunked, Int32Chunked, Int64Chunked, IntoColumn,
    IntoLazy, IntoSeries, PlSmallStr, Series, StringChunked, TimeUnit,
};

use super::*;
use crate::value::{DType, Row, Value};
use crate::{CoreError, Result};

/// The logical type of a polars type, `None` for types the toolkit does not handle (lists, structs).
pub fn dtype_of(dt: &DataType) -> Option<DType> {
    Some(match dt {
        DataType::Boolean => DType::Bool,
        dt if dt.is_integer() => DType::Int,
        dt if dt.is_float() => DType::Float,
        DataType::String | DataType::Categorical(..) | DataType::Enum(..) => DType::Str,
        DataType::Date => DType::Date,
        DataType::Datetime(..) => DType::Datetime,
        DataType::Null => DType::Str,
        _ => return None,
    })
}

/// The polars type a logical type is stored as.
pub fn polars_dtype(t: DType) -> DataType {
    match t {
        DType::Bool => DataType::Boolean,
        DType::Int => DataType::Int64,
        DType::Float => DataType::Float64,
        DType::Str => DataType::String,
        DType::Date => DataType::Date,
        DType::Datetime => DataType::Datetime(TimeUnit::Microseconds, None),
    }
}

pub(crate) fn pe(context: impl Into<String>) -> impl FnOnce(pl::PolarsError) -> CoreError {
    let context = context.into();
    move |e| CoreError::polars(context, e)
}

/// The logical type of each column, for expression checks; `None` for unsupported columns.
pub fn schema_of(df: &DataFrame) -> BTreeMap<String, DType> {
    df.columns().iter().filter_map(|c| Some((c.name().to_string(), dtype_of(c.dtype())?))).collect()
}

/// Column names, as owned strings.
pub fn column_names(df: &DataFrame) -> Vec<String> {
    df.columns().iter().map(|c| c.name().to_string()).collect()
}

/// The column, or an error listing the available ones.
pub fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    df.column(name).map_err(|_| CoreError::missing_column(name, column_names(df)))
}

/// Every value of a column, in row order.
pub fn column_values(col: &Column) -> Result<Vec<Value>> {
    let name = col.name().to_string();
    let t = dtype_of(col.dtype()).ok_or_else(|| CoreError::WrongType {
        column: name.clone(),
        found: col.dtype().to_string(),
        expected: "bool, number, text, date or datetime".into(),
    })?;
    let series = col.as_materialized_series();
    Ok(match t {
        DType::Bool => series.bool().map_err(pe(&name))?.iter().map(Value::from).collect(),
        DType::Int => {
            let s = series.cast(&DataType::Int64).map_err(pe(&name))?;
            s.i64().map_err(pe(&name))?.iter().map(Value::from).collect()
        }
        DType::Float => {
            let s = series.cast(&DataType::Float64).map_err(pe(&name))?;
            s.f64().map_err(pe(&name))?.iter().map(Value::from).collect()
        }
        DType::Str => {
            let s = series.cast(&DataType::String).map_err(pe(&name))?;
            s.str().map_err(pe(&name))?.iter().map(|o| o.map_or(Value::Null, |s| Value::Str(s.to_string()))).collect()
        }
        DType::Date => {
            let s = series.cast(&DataType::Int32).map_err(pe(&name))?;
            s.i32().map_err(pe(&name))?.iter().map(|o| o.map_or(Value::Null, Value::Date)).collect()
        }
        DType::Datetime => {
            let s = series
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .and_then(|s| s.cast(&DataType::Int64))
                .map_err(pe(&name))?;
            s.i64().map_err(pe(&name))?.iter().map(|o| o.map_or(Value::Null, Value::Datetime)).collect()
        }
    })
}

/// A typed column from values. Values of another type than `dtype` become null, except ints in a
/// float column, which widen.
pub fn column_from_values(name: &str, dtype: DType, values: &[Value]) -> Column {
    let name = PlSmallStr::from(name);
    let series: Series = match dtype {
        DType::Bool => values
            .iter()
            .map(|v| match v {
                Value::Bool(b) => Some(*b),
                _ => None,
            })
            .collect::<BooleanChunked>()
            .with_name(name)
            .into_series(),
        DType::Int => values
            .iter()
            .map(|v| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            })
            .collect::<Int64Chunked>()
            .with_name(name)
            .into_series(),
        DType::Float => values
            .iter()
            .map(|v| match v {
                Value::Float(_) | Value::Int(_) => v.as_f64(),
                _ => None,
            })
            .collect::<Float64Chunked>()
            .with_name(name)
            .into_series(),
        DType::Str => values.iter().map(|v| v.as_str()).collect::<StringChunked>().with_name(name).into_series(),
        DType::Date => values
            .iter()
            .map(|v| match v {
                Value::Date(d) => Some(*d),
                _ => None,
            })
            .collect::<Int32Chunked>()
            .with_name(name)
            .into_date()
            .into_series(),
        DType::Datetime => values
            .iter()
            .map(|v| match v {
                Value::Datetime(us) => Some(*us),
                _ => None,
            })
            .collect::<Int64Chunked>()
            .with_name(name)
            .into_datetime(TimeUnit::Microseconds, None)
            .into_series(),
    };
    series.into_column()
}

/// The type a list of values fits: the first non-null one, widened to float when ints and floats
/// mix; text when nothing is known.
pub fn infer_dtype(values: &[Value]) -> DType {
    let mut found: Option<DType> = None;
    for t in values.iter().filter_map(Value::dtype) {
        found = Some(match found {
            None => t,
            Some(f) if f == t => f,
            Some(f) if f.is_numeric() && t.is_numeric() => DType::Float,
            Some(_) => DType::Str,
        });
    }
    found.unwrap_or(DType::Str)
}

/// Splits a frame into rows.
pub fn rows_from_frame(df: &DataFrame) -> Result<Vec<Row>> {
    let mut rows = vec![Row::new(); df.height()];
    for col in df.columns() {
        let name = col.name().to_string();
        for (row, v) in rows.iter_mut().zip(column_values(col)?) {
            row.insert(name.clone(), v);
        }
    }
    Ok(rows)
}

/// Builds a frame from rows with the given columns and types; missing keys are nulls.
pub fn frame_from_rows(rows: &[Row], columns: &[(String, DType)]) -> Result<DataFrame> {
    let cols = columns
        .iter()
        .map(|(name, t)| {
            let values: Vec<Value> = rows.iter().map(|r| r.get(name).cloned().unwrap_or(Value::Null)).collect();
            column_from_values(name, *t, &values)
        })
        .collect();
    DataFrame::new(rows.len(), cols).map_err(pe("cannot build frame from rows"))
}

/// The named numeric columns as a row-major `f64` matrix, the one place frames become model input.
///
/// Booleans read 0/1; a null or a non-numeric column is an error naming the column.
pub fn to_matrix(df: &DataFrame, columns: &[String]) -> Result<Array2<f64>> {
    let mut out = Array2::<f64>::zeros((df.height(), columns.len()));
    for (j, name) in columns.iter().enumerate() {
        let col = column(df, name)?;
        if !matches!(dtype_of(col.dtype()), Some(DType::Int | DType::Float | DType::Bool)) {
            return Err(CoreError::WrongType {
                column: name.clone(),
                found: col.dtype().to_string(),
                expected: "number or bool".into(),
            });
        }
        let floats = col.cast(&DataType::Float64).map_err(pe(name.as_str()))?;
        let ca = floats.f64().map_err(pe(name.as_str()))?;
        for (i, v) in ca.iter().enumerate() {
            out[[i, j]] = v.ok_or_else(|| CoreError::Conversion {
                column: name.clone(),
                row: Some(i),
                value: "null".into(),
                target: "number (impute missing values before training)".into(),
            })?;
        }
    }
    Ok(out)
}

/// A numeric (or boolean) column as floats; an error naming the column otherwise.
pub fn f64_column(df: &DataFrame, name: &str) -> Result<Float64Chunked> {
    let col = column(df, name)?;
    if !matches!(dtype_of(col.dtype()), Some(DType::Int | DType::Float | DType::Bool)) {
        return Err(CoreError::WrongType {
            column: name.into(),
            found: col.dtype().to_string(),
            expected: "number".into(),
        });
    }
    let cast = col.cast(&DataType::Float64).map_err(pe(name))?;
    Ok(cast.f64().map_err(pe(name))?.clone())
}

/// A query on `df` of one node (a column added or replaced): planned without the optimizer,
/// which has nothing to gain there and costs more than the node itself on small frames (the
/// server's batches). Type coercion still runs.
pub(crate) fn single_node(df: DataFrame) -> pl::LazyFrame {
    df.lazy().without_optimizations()
}

pub(crate) fn put(mut df: DataFrame, col: impl IntoColumn) -> Result<DataFrame> {
    df.with_column(col.into_column()).map_err(pe("cannot add column"))?;
    Ok(df)
}

/// Why a column cannot be used as numbers (`` `name` is string, not a number ``), or `None` when it
/// can: the message steps put under their config key.
pub fn not_numeric(df: &DataFrame, name: &str) -> Option<String> {
    let t = df.column(name).ok().map(|c| (dtype_of(c.dtype()), c.dtype().to_string()));
    match t {
        Some((Some(t), _)) if t.is_numeric() => None,
        Some((Some(t), _)) => Some(format!("`{name}` is {t}, not a number")),
        Some((None, storage)) => Some(format!("`{name}` is {storage}, not a number")),
        None => Some(format!("column `{name}` not found")),
    }
}

/// The non-null, non-NaN numbers of a numeric column (booleans read 0/1), for fitting statistics.
pub fn numbers(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let mut values = valid_values(&f64_column(df, name)?);
    values.retain(|x| !x.is_nan());
    Ok(values)
}

/// Every row's number in a numeric column (booleans read 0/1), NaN for a null: the values
/// grouped fits walk beside the group keys. Copied straight from each chunk's buffer (the
/// per-value iterator of a chunked array costs several times more).
pub fn numbers_by_row(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let ca = f64_column(df, name)?;
    let mut out = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => out.extend_from_slice(arr.values()),
            Some(valid) => {
                out.extend(arr.values().iter().zip(valid.iter()).map(|(x, ok)| if ok { *x } else { f64::NAN }))
            }
        }
    }
    Ok(out)
}

/// The non-null values of a numeric column in row order.
pub(crate) fn valid_values<T: pl::PolarsNumericType>(ca: &pl::ChunkedArray<T>) -> Vec<T::Native> {
    valid_parts(ca).concat()
}

/// The distinct category keys of a column ([`Value::key`]), sorted.
pub fn categories(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let col = column(df, name)?;
    let set: std::collections::BTreeSet<String> = match col.str() {
        Ok(text) => {
            let distinct: pl::PlHashSet<&str> = text.iter().flatten().collect();
            distinct.into_iter().map(str::to_string).collect()
        }
        Err(_) => column_values(col)?.iter().filter_map(Value::key).collect(),
    };
    Ok(set.into_iter().collect())
}

/// The most frequent non-null value of a column; ties go to the smallest (pandas' `mode()[0]`).
pub fn mode(df: &DataFrame, name: &str) -> Result<Option<Value>> {
    let col = column(df, name)?;
    if let Ok(text) = col.str() {
        let mut counts: pl::PlHashMap<&str, usize> = pl::PlHashMap::default();
        for s in text.iter().flatten() {
            *counts.entry(s).or_insert(0) += 1;
        }
        let best = counts.values().copied().max();
        return Ok(best.and_then(|best| {
            counts.iter().filter(|(_, n)| **n == best).map(|(s, _)| *s).min().map(|s| Value::Str(s.to_string()))
        }));
    }
    Ok(crate::stats::mode(&column_values(col)?))
}

/// Each row's category key ([`Value::key`]) as a code into the column's distinct keys, which
/// come in order of first appearance (`None` for a null). A text column's short keys are looked
/// up once per distinct value (see [`map_texts`]).
pub fn key_codes(df: &DataFrame, name: &str) -> Result<(Vec<Option<u32>>, Vec<String>)> {
    let col = column(df, name)?;
    let mut distinct: Vec<String> = Vec::new();
    let mut index: pl::PlHashMap<String, u32> = pl::PlHashMap::default();
    let mut code_of = |k: &str| -> u32 {
        if let Some(&code) = index.get(k) {
            return code;
        }
        let code = distinct.len() as u32;
        distinct.push(k.to_string());
        index.insert(k.to_string(), code);
        code
    };
    let codes = match col.str() {
        Ok(text) => map_texts(text, &mut code_of).collect(),
        Err(_) => column_values(col)?.iter().map(|v| v.key().map(|k| code_of(&k))).collect(),
    };
    Ok((codes, distinct))
}

/// Category keys of a column, as [`Value::key`] gives them, in row order.
pub fn keys(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let col = column(df, name)?;
    if matches!(col.dtype(), DataType::String) {
        return Ok(col.str().map_err(pe(name))?.iter().map(|o| o.map(str::to_string)).collect());
    }
    Ok(column_values(col)?.iter().map(Value::key).collect())
}

pub(crate) fn map_values(
    df: DataFrame,
    name: &str,
    out_name: &str,
    f: impl Fn(usize, Value) -> Result<Value>,
) -> Result<DataFrame> {
    let values = column_values(column(&df, name)?)?;
    let out: Vec<Value> = values.into_iter().enumerate().map(|(i, v)| f(i, v)).collect::<Result<_>>()?;
    let t = infer_dtype(&out);
    put(df, column_from_values(out_name, t, &out))
}

/// The error of a helper thread that panicked (`what` names the work: "a hashing").
pub(crate) fn thread_failed(what: &str) -> CoreError {
    CoreError::polars(format!("{what} thread failed"), pl::PolarsError::ComputeError("thread panicked".into()))
}

/// A polars literal of a value, typed as the frame path stores it.
pub(crate) fn literal(v: &Value) -> pl::Expr {
    use pl::lit;
    match v {
        Value::Null => lit(pl::NULL),
        Value::Bool(b) => lit(*b),
        Value::Int(i) => lit(*i),
        Value::Float(f) => lit(*f),
        Value::Str(s) => lit(s.clone()),
        Value::Date(d) => lit(*d).cast(DataType::Date),
        Value::Datetime(us) => lit(*us).cast(DataType::Datetime(TimeUnit::Microseconds, None)),
    }
}

/// The non-null values of a numeric column, a part per chunk: a chunk without nulls as its
/// buffer, uncopied; the valid values of one with nulls copied out.
pub(crate) fn valid_parts<T: pl::PolarsNumericType>(ca: &pl::ChunkedArray<T>) -> Vec<Cow<'_, [T::Native]>> {
    ca.downcast_iter()
        .map(|arr| match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => Cow::Borrowed(arr.values().as_slice()),
            Some(valid) => {
                Cow::Owned(arr.values().iter().zip(valid.iter()).filter_map(|(x, ok)| ok.then_some(*x)).collect())
            }
        })
        .collect()
}
