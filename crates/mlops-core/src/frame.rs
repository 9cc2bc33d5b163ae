//! The frame side: conversions between polars frames, rows and matrices, the frame path of every
//! fitted [`Op`], and the content hash that versions a dataset.

use std::borrow::Cow;
use std::collections::BTreeMap;

use ndarray::Array2;
use polars::prelude::{
    self as pl, BooleanChunked, ChunkApply, ChunkFillNullValue, Column, DataFrame, DataType, Float64Chunked,
    Int32Chunked, Int64Chunked, IntoColumn, IntoLazy, IntoSeries, PlSmallStr, Series, StringChunked, TimeUnit,
};

use crate::ops::{
    CastTo, FillDirection, Keep, OnError, Op, UnknownPolicy, bin_index, cast_value, clean_text_into, clip, fill_cell,
    map_value, unknown_category,
};
use crate::value::{DType, Row, Value};
use crate::{CoreError, Result};

/// Where a frame is being transformed: training applies row filters, inference keeps every row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Building a training set: row filters drop rows.
    Training,
    /// Scoring: one output row per input row.
    Inference,
}

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

fn pe(context: impl Into<String>) -> impl FnOnce(pl::PolarsError) -> CoreError {
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
fn single_node(df: DataFrame) -> pl::LazyFrame {
    df.lazy().without_optimizations()
}

fn put(mut df: DataFrame, col: impl IntoColumn) -> Result<DataFrame> {
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
fn valid_values<T: pl::PolarsNumericType>(ca: &pl::ChunkedArray<T>) -> Vec<T::Native> {
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

fn map_values(
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

impl Op {
    /// Transforms a frame. At [`Stage::Inference`] row filters pass every row through, and the
    /// result equals [`Op::apply_row`] on each row.
    pub fn apply_frame(&self, df: DataFrame, stage: Stage) -> Result<DataFrame> {
        match self {
            Op::Rename { mapping } => {
                let names = column_names(&df);
                for (from, _) in mapping {
                    if !names.contains(from) {
                        return Err(CoreError::missing_column(from, &names));
                    }
                }
                let renamed: Vec<String> = names
                    .iter()
                    .map(|n| mapping.iter().find(|(from, _)| from == n).map_or_else(|| n.clone(), |(_, to)| to.clone()))
                    .collect();
                let mut df = df;
                df.set_column_names(&renamed).map_err(pe("cannot rename columns"))?;
                Ok(df)
            }
            Op::Drop { columns } => {
                for c in columns {
                    column(&df, c)?;
                }
                Ok(df.drop_many(columns.iter().map(String::as_str)))
            }
            Op::Cast { column: name, to, on_error } => cast_frame(df, name, to, *on_error),
            Op::FillNull { column: name, value } => {
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
                        Value::Float(f) => {
                            f64_column(&df, name)?.fill_null_with_values(*f).map(IntoColumn::into_column)
                        }
                        Value::Int(i) => col
                            .cast(&DataType::Int64)
                            .and_then(|c| c.i64()?.fill_null_with_values(*i))
                            .map(IntoColumn::into_column),
                        Value::Bool(b) => {
                            col.bool().and_then(|c| c.fill_null_with_values(*b)).map(IntoColumn::into_column)
                        }
                        _ => {
                            let filled = pl::col(name.as_str()).cast(polars_dtype(t)).fill_null(literal(value));
                            return single_node(df).with_column(filled).collect().map_err(failed);
                        }
                    };
                    return put(df, filled.map_err(failed)?.with_name(name.as_str().into()));
                }
                let values = column_values(col)?;
                let out: Vec<Value> = values.into_iter().map(|v| fill_cell(name, v, value)).collect::<Result<_>>()?;
                put(df, column_from_values(name, value.dtype().unwrap_or_else(|| infer_dtype(&out)), &out))
            }
            Op::FillNullByGroup { column: name, by, values: table, fallback } => {
                let numeric =
                    matches!(dtype_of(column(&df, name)?.dtype()), Some(DType::Int | DType::Float | DType::Bool));
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
                    let out: Float64Chunked = xs
                        .iter()
                        .zip(groups)
                        .map(|(x, g)| x.or_else(|| Some(g.map_or(*fb, |g| fills[g as usize]))))
                        .collect();
                    return put(df, out.with_name(name.as_str().into()));
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
            Op::FillSequence { column: name, direction, fallback } => {
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
                let out: Vec<Value> =
                    values.into_iter().map(|v| fill_cell(name, v, fallback)).collect::<Result<_>>()?;
                let t = fallback.dtype().unwrap_or_else(|| infer_dtype(&out));
                put(df, column_from_values(name, t, &out))
            }
            Op::Clip { column: name, lower, upper } => {
                let ca = f64_column(&df, name)?.apply_values(|x| clip(x, *lower, *upper));
                put(df, ca.with_name(name.as_str().into()))
            }
            Op::FilterRange { column: name, lower, upper } => {
                let ca = f64_column(&df, name)?;
                if stage == Stage::Inference {
                    return Ok(df);
                }
                let keep: BooleanChunked =
                    ca.iter().map(|o| Some(o.is_none_or(|x| !(x < *lower || x > *upper)))).collect();
                df.filter(&keep).map_err(pe("cannot filter rows"))
            }
            Op::DropNullRows { columns, max_null_fraction } => {
                let cols: Vec<String> = if columns.is_empty() { column_names(&df) } else { columns.clone() };
                let mut nulls = vec![0usize; df.height()];
                for c in &cols {
                    let col = column(&df, c)?;
                    let mask = col.is_null();
                    for (n, is_null) in nulls.iter_mut().zip(mask.iter()) {
                        *n += usize::from(is_null == Some(true));
                    }
                }
                if stage == Stage::Inference || cols.is_empty() {
                    return Ok(df);
                }
                let total = cols.len() as f64;
                let keep: BooleanChunked =
                    nulls.iter().map(|n| Some(*n as f64 / total <= *max_null_fraction)).collect();
                df.filter(&keep).map_err(pe("cannot drop rows with nulls"))
            }
            Op::Deduplicate { subset, keep } => {
                for c in subset {
                    column(&df, c)?;
                }
                if stage == Stage::Inference {
                    return Ok(df);
                }
                let keys = if subset.is_empty() {
                    df.clone()
                } else {
                    df.select(subset.iter().map(String::as_str)).map_err(pe("cannot drop duplicates"))?
                };
                let kept = distinct_rows(keys, *keep)?;
                if kept.iter().all(|k| *k) {
                    return Ok(df);
                }
                let mask = <BooleanChunked as pl::NewChunkedArray<_, bool>>::from_slice("kept".into(), &kept);
                df.filter(&mask).map_err(pe("cannot drop duplicates"))
            }
            Op::Text { column: name, steps } => {
                let col = column(&df, name)?;
                let ca = col.str().map_err(|_| CoreError::WrongType {
                    column: name.clone(),
                    found: col.dtype().to_string(),
                    expected: "text".into(),
                })?;
                let out = par_text(ca, |part| {
                    // A short text is cleaned once per distinct value; a long one into one buffer
                    // for every value: no allocation per text.
                    let mut cleaned = pl::StringChunkedBuilder::new(PlSmallStr::EMPTY, part.len());
                    let mut memo = ShortTextMemo::default();
                    let mut buf = String::new();
                    for (view, text) in text_views(part) {
                        let Some(s) = text else {
                            cleaned.append_null();
                            continue;
                        };
                        let known = memo.get_or(view, || clean_text_into(steps, s, &mut buf).then(|| buf.clone()));
                        match known {
                            Some(Some(c)) => cleaned.append_value(c),
                            Some(None) => cleaned.append_null(),
                            None if clean_text_into(steps, s, &mut buf) => cleaned.append_value(&buf),
                            None => cleaned.append_null(),
                        }
                    }
                    cleaned.finish().into_series()
                })?;
                put(df, out.with_name(name.as_str().into()))
            }
            Op::MapValues { column: name, output, mapping, unmapped } => {
                let out_name = output.as_deref().unwrap_or(name);
                map_values(df, name, out_name, |_, v| Ok(map_value(&v, mapping, unmapped)))
            }
            Op::Bin { column: name, output, edges, labels, closed } => {
                let ca = f64_column(&df, name)?;
                let out: StringChunked = ca
                    .iter()
                    .map(|o| o.and_then(|x| bin_index(x, edges, *closed)).map(|i| labels[i].as_str()))
                    .collect();
                put(df, out.with_name(output.as_str().into()))
            }
            Op::Round { column: name, decimals } => {
                let ca = f64_column(&df, name)?.apply_values(|x| crate::expr::round_to(x, *decimals));
                put(df, ca.with_name(name.as_str().into()))
            }
            Op::Linear { column: name, output, factor, offset } => {
                let ca = f64_column(&df, name)?.apply_values(|x| x * factor + offset);
                put(df, ca.with_name(output.as_deref().unwrap_or(name).into()))
            }
            Op::Scale { column: name, center, scale } => {
                let ca = f64_column(&df, name)?.apply_values(|x| (x - center) / scale);
                put(df, ca.with_name(name.as_str().into()))
            }
            Op::OneHot { column: name, categories, outputs, unknown, drop_input } => {
                let (keys, distinct) = key_codes(&df, name)?;
                check_unknown(name, &distinct, categories, *unknown)?;
                // One pass finds each row's category; each output is then a plain 0/1 column.
                let slots = category_slots(&distinct, categories);
                let codes: Vec<usize> =
                    keys.iter().map(|k| k.and_then(|k| slots[k as usize]).unwrap_or(usize::MAX)).collect();
                let columns: Vec<(usize, &String)> = outputs.iter().enumerate().take(categories.len()).collect();
                let hot = crate::par::map(&columns, |&(i, out)| {
                    let hot: Vec<f64> = codes.iter().map(|&c| if c == i { 1.0 } else { 0.0 }).collect();
                    Float64Chunked::from_vec(out.as_str().into(), hot)
                })
                .ok_or_else(|| thread_failed("a one-hot"))?;
                let mut df = df;
                for column in hot {
                    df = put(df, column)?;
                }
                if *drop_input {
                    df = df.drop(name).map_err(pe("cannot drop encoded column"))?;
                }
                Ok(df)
            }
            Op::Ordinal { column: name, output, categories, unknown } => {
                let (keys, distinct) = key_codes(&df, name)?;
                check_unknown(name, &distinct, categories, *unknown)?;
                let slots = category_slots(&distinct, categories);
                let ca: Int64Chunked =
                    keys.iter().map(|k| k.map(|k| slots[k as usize].map_or(-1, |i| i as i64))).collect();
                put(df, ca.with_name(output.as_deref().unwrap_or(name).into()))
            }
            Op::TargetEncode { column: name, outputs, table, prior, unknown, drop_input } => {
                let (keys, distinct) = key_codes(&df, name)?;
                let known: Vec<String> = table.keys().cloned().collect();
                check_unknown(name, &distinct, &known, *unknown)?;
                let encoded: Vec<&Vec<f64>> = distinct.iter().map(|k| table.get(k).unwrap_or(prior)).collect();
                let mut df = df;
                for (j, out) in outputs.iter().enumerate() {
                    let ca: Float64Chunked =
                        keys.iter().map(|k| k.map_or(prior, |k| encoded[k as usize]).get(j).copied()).collect();
                    df = put(df, ca.with_name(out.as_str().into()))?;
                }
                if *drop_input {
                    df = df.drop(name).map_err(pe("cannot drop encoded column"))?;
                }
                Ok(df)
            }
            Op::Derive { output, expr, dtype } => {
                let schema = schema_of(&df);
                let names = column_names(&df);
                let mut checked = expr.clone();
                checked.check(&|c: &str| schema.get(c).copied(), &names)?;
                if let Some(values) = checked.eval_arith_frame(&df) {
                    let values = values.map_err(pe(format!("cannot compute `{output} = {expr}`")))?;
                    return put(df, values.with_name(output.as_str().into()));
                }
                let e = checked.to_polars(&|c: &str| schema.get(c).copied());
                let df = single_node(df)
                    .with_column(e.alias(output.as_str()))
                    .collect()
                    .map_err(pe(format!("cannot compute `{output} = {expr}`")))?;
                // A float expression whose operands happen to be whole numbers stays float, as
                // the row path widens it.
                let out = column(&df, output)?;
                if *dtype == Some(DType::Float) && matches!(dtype_of(out.dtype()), Some(DType::Int | DType::Bool)) {
                    let widened = out.cast(&DataType::Float64).map_err(pe(output.as_str()))?;
                    return put(df, widened);
                }
                Ok(df)
            }
            Op::DateParts { column: name, parts, outputs } => {
                let outs: Vec<(&String, DType, _)> = parts
                    .iter()
                    .zip(outputs)
                    .map(|(part, out)| {
                        let t = if *part == crate::features::DatePart::IsWeekend { DType::Bool } else { DType::Int };
                        (out, t, move |v: &Value| crate::features::date_part(v, *part))
                    })
                    .collect();
                derive_columns(df, name, "date", outs)
            }
            Op::TextStats { column: name, stats, outputs } => {
                let outs: Vec<(&String, DType, _)> = stats
                    .iter()
                    .zip(outputs)
                    .map(|(stat, out)| {
                        let t = if *stat == crate::features::TextStat::HasSpecial { DType::Bool } else { DType::Int };
                        (out, t, move |v: &Value| crate::features::text_stat(v, *stat))
                    })
                    .collect();
                derive_columns(df, name, "text", outs)
            }
            Op::Lag { column: name, order_by, by, lags, windows, outputs, history } => {
                let values: Vec<Option<f64>> = column_values(column(&df, name)?)?
                    .iter()
                    .map(|v| {
                        if v.is_null() {
                            Ok(None)
                        } else {
                            v.as_f64().map(Some).ok_or_else(|| crate::ops::wrong_type(name, v, "number"))
                        }
                    })
                    .collect::<Result<_>>()?;
                let groups: Vec<Option<String>> = match by {
                    Some(b) => {
                        column_values(column(&df, b)?)?.iter().map(|v| crate::features::lag_key(Some(v))).collect()
                    }
                    None => vec![Some(String::new()); df.height()],
                };
                let columns: Vec<Vec<Value>> = match stage {
                    Stage::Training => {
                        let order: Vec<i64> =
                            column_values(column(&df, order_by)?)?.iter().map(crate::features::order_key).collect();
                        crate::features::lags_in_training(&values, &groups, &order, lags, windows)
                    }
                    Stage::Inference => {
                        column(&df, order_by)?;
                        let mut cols = vec![Vec::with_capacity(df.height()); outputs.len()];
                        for (v, k) in values.iter().zip(&groups) {
                            let h = k.as_ref().and_then(|k| history.get(k)).map_or(&[][..], Vec::as_slice);
                            for (c, x) in cols.iter_mut().zip(crate::features::lags_at_inference(*v, h, lags, windows))
                            {
                                c.push(x);
                            }
                        }
                        cols
                    }
                };
                let mut df = df;
                for (out, col) in outputs.iter().zip(columns) {
                    df = put(df, column_from_values(out, DType::Float, &col))?;
                }
                Ok(df)
            }
            Op::GroupStats { column: name, by, stats, outputs, table, fallback } => {
                let values = column_values(column(&df, name)?)?;
                if let Some(v) = values.iter().find(|v| !v.is_null() && v.as_f64().is_none()) {
                    return Err(crate::ops::wrong_type(name, v, "number"));
                }
                let groups = column_values(column(&df, by)?)?;
                let summaries: Vec<&crate::features::GroupSummary> =
                    groups.iter().map(|g| g.key().and_then(|k| table.get(&k)).unwrap_or(fallback)).collect();
                let mut df = df;
                for (stat, out) in stats.iter().zip(outputs) {
                    let col: Vec<Value> = values.iter().zip(&summaries).map(|(v, s)| s.stat(*stat, v)).collect();
                    df = put(df, column_from_values(out, DType::Float, &col))?;
                }
                Ok(df)
            }
        }
    }
}

/// Under [`UnknownPolicy::Error`], the first of a column's `distinct` keys (in row order) that is
/// not `known`, as an error.
fn check_unknown(name: &str, distinct: &[String], known: &[String], policy: UnknownPolicy) -> Result<()> {
    if policy == UnknownPolicy::Error {
        let known_set: pl::PlHashSet<&str> = known.iter().map(String::as_str).collect();
        if let Some(k) = distinct.iter().find(|k| !known_set.contains(k.as_str())) {
            return Err(unknown_category(name, k, known));
        }
    }
    Ok(())
}

/// For each of a column's distinct keys, its position among `categories` (`None` if absent).
fn category_slots(distinct: &[String], categories: &[String]) -> Vec<Option<usize>> {
    let index: pl::PlHashMap<&str, usize> = categories.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    distinct.iter().map(|k| index.get(k.as_str()).copied()).collect()
}

fn cast_frame(df: DataFrame, name: &str, to: &CastTo, on_error: OnError) -> Result<DataFrame> {
    let col = column(&df, name)?;
    // Text is the usual input; convert it straight into typed arrays with the row path's parsers.
    if matches!(col.dtype(), DataType::String) {
        let ca = col.str().map_err(pe(name))?.clone();
        let out: Series = match to {
            CastTo::Str => return Ok(df),
            // Each distinct short text is parsed once (see `map_texts`).
            CastTo::Float => par_text(&ca, |part| {
                map_texts(part, crate::ops::parse_float).map(Option::flatten).collect::<Float64Chunked>().into_series()
            })?,
            CastTo::Int => par_text(&ca, |part| {
                map_texts(part, crate::ops::parse_int).map(Option::flatten).collect::<Int64Chunked>().into_series()
            })?,
            CastTo::Bool { true_values, false_values } => par_text(&ca, |part| {
                map_texts(part, |s| crate::ops::parse_bool(s, true_values, false_values))
                    .map(Option::flatten)
                    .collect::<BooleanChunked>()
                    .into_series()
            })?,
            CastTo::Date { formats } => par_text(&ca, |part| {
                map_texts(part, |s| crate::ops::parse_date(s, formats))
                    .map(Option::flatten)
                    .collect::<Int32Chunked>()
                    .into_date()
                    .into_series()
            })?,
            CastTo::Datetime { formats } => par_text(&ca, |part| {
                map_texts(part, |s| crate::ops::parse_datetime(s, formats))
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
        cast_value(&v, to).or_else(|crate::ops::NotConvertible| match on_error {
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

/// The error of a helper thread that panicked (`what` names the work: "a hashing").
fn thread_failed(what: &str) -> CoreError {
    CoreError::polars(format!("{what} thread failed"), pl::PolarsError::ComputeError("thread panicked".into()))
}

pub use crate::parquet::{DEFAULT_ROW_GROUP, write_parquet};

/// Rows below which a column is mapped on one thread.
const PAR_MIN_ROWS: usize = 64 * 1024;

/// Maps a text column slice by slice, a slice per core, and joins the results in row order into
/// one contiguous column. Each slice gets the same function, so the result is the one a single
/// pass would give.
fn par_text(ca: &StringChunked, f: impl Fn(&StringChunked) -> Series + Sync) -> Result<Series> {
    let n = ca.len();
    let parts = crate::par::cores().min(n / PAR_MIN_ROWS).max(1);
    if parts == 1 {
        return Ok(f(ca));
    }
    let bounds: Vec<(usize, usize)> = (0..parts).map(|p| (p * n / parts, (p + 1) * n / parts)).collect();
    let failed = || thread_failed("a conversion");
    let pieces = crate::par::map(&bounds, |&(lo, hi)| f(&ca.slice(lo as i64, hi - lo))).ok_or_else(failed)?;
    let mut pieces = pieces.into_iter();
    let mut out = pieces.next().ok_or_else(failed)?;
    for piece in pieces {
        out.append(&piece).map_err(pe("cannot join converted parts"))?;
    }
    Ok(out.rechunk())
}

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

/// Null and distinct counts of one column (null counts as one distinct value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnStats {
    /// Nulls.
    pub nulls: usize,
    /// Distinct values.
    pub unique: usize,
}

/// The scheme of [`frame_hash`]; caches keyed on a dataset version include it, so that a change
/// of scheme recomputes versions instead of reusing ones made the old way. 3: numbers hashed as
/// their little-endian bytes, nulls as their row positions (2 tagged every value; 1 was SHA-256
/// throughout).
pub const FRAME_HASH_SCHEME: u32 = 3;

/// SHA-256 over a frame's logical content: its shape, then one BLAKE3 digest per column of the
/// column's name, type, values in row order and null positions.
///
/// BLAKE3 hashes the values (the bulk of the bytes) several times faster than SHA-256 here; the
/// outer SHA-256 only sees the shape and 32 bytes per column. Independent of how the frame is
/// chunked or how a file stores it (row groups, compression, partitioning), so the same data
/// always has the same version. Columns are hashed in parallel.
pub fn frame_hash(df: &DataFrame) -> Result<String> {
    Ok(fingerprint(df, false)?.0)
}

/// [`frame_hash`] and, in the same pass, every column's null and distinct counts.
pub fn frame_hash_and_stats(df: &DataFrame) -> Result<(String, Vec<ColumnStats>)> {
    let (hash, stats) = fingerprint(df, true)?;
    Ok((hash, stats.into_iter().map(Option::unwrap_or_default).collect()))
}

type ColumnDigest = ([u8; 32], Option<ColumnStats>);

fn fingerprint(df: &DataFrame, with_stats: bool) -> Result<(String, Vec<Option<ColumnStats>>)> {
    let columns = df.columns();
    let per_column: Vec<Result<ColumnDigest>> =
        crate::par::map(columns, |c| hash_column(c, with_stats)).ok_or_else(|| thread_failed("a hashing"))?;
    let mut total = crate::hash::Hasher::new();
    total.update(format!("rows={};cols={};", df.height(), columns.len()).as_bytes());
    let mut stats = Vec::with_capacity(columns.len());
    for digest in per_column {
        let (d, s) = digest?;
        total.update(&d);
        stats.push(s);
    }
    Ok((total.finish_hex(), stats))
}

/// A fast, fixed mixer for counting distinct 64-bit keys (not for anything adversarial).
#[derive(Default, Clone, Copy)]
pub(crate) struct MixHasher(u64);

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
}

pub(crate) type MixBuild = std::hash::BuildHasherDefault<MixHasher>;

/// Most distinct numbers counted in a small hash set before the count switches to partitions.
const SMALL_DISTINCT: usize = 2048;

/// Distinct values among a column's parts, each value counted by `key` (equal keys, equal
/// values): a small hash set while there are few (categories, codes); once there are many, the
/// keys' hashes are spread over parts by their top bits (equal keys share a part) and each part,
/// small enough to stay in cache, is counted in its own table. One hash set of a million keys
/// would miss the cache on every insert.
fn distinct_keys<T: Copy>(parts: &[Cow<'_, [T]>], key: impl Fn(T) -> u64) -> usize {
    let mut small: std::collections::HashSet<u64, MixBuild> =
        std::collections::HashSet::with_capacity_and_hasher(SMALL_DISTINCT * 2, MixBuild::default());
    for part in parts {
        for &x in part.iter() {
            small.insert(key(x));
            if small.len() > SMALL_DISTINCT {
                return distinct_by_parts(parts, key);
            }
        }
    }
    small.len()
}

fn distinct_by_parts<T: Copy>(parts: &[Cow<'_, [T]>], key: impl Fn(T) -> u64) -> usize {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    let bits = (n / 1024).max(1).ilog2().min(16);
    // `mix` is a bijection, so counting distinct hashes counts distinct keys; the part comes
    // from a hash's top bits, its slot in the part's table from the bottom ones.
    let hashes = || parts.iter().flat_map(|p| p.iter().map(|&x| mix(key(x))));
    let part_of = |h: u64| if bits == 0 { 0 } else { (h >> (64 - bits)) as usize };
    let mut starts = vec![0usize; (1 << bits) + 1];
    for h in hashes() {
        starts[part_of(h) + 1] += 1;
    }
    for p in 1..starts.len() {
        starts[p] += starts[p - 1];
    }
    let mut fill = starts.clone();
    let mut spread = vec![0u64; n];
    for h in hashes() {
        let p = part_of(h);
        spread[fill[p]] = h;
        fill[p] += 1;
    }
    // Open addressing with `EMPTY` for a free slot; the hash `EMPTY` itself is counted aside.
    const EMPTY: u64 = u64::MAX;
    let largest = starts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let mut table = vec![EMPTY; (largest * 2).next_power_of_two().max(16)];
    let mut distinct = 0;
    let mut saw_empty = false;
    for w in starts.windows(2) {
        let part = &spread[w[0]..w[1]];
        let mask = (part.len() * 2).next_power_of_two().max(16) - 1;
        table[..=mask].fill(EMPTY);
        for &h in part {
            if h == EMPTY {
                saw_empty = true;
                continue;
            }
            let mut slot = h as usize & mask;
            loop {
                let t = table[slot];
                if t == EMPTY {
                    table[slot] = h;
                    distinct += 1;
                    break;
                }
                if t == h {
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
    }
    distinct + usize::from(saw_empty)
}

/// Distinct integers given their least and greatest: a bitmap over the range when it is small
/// (codes, counts, dates, ids), else [`distinct_keys`].
fn distinct_in_range<T: Copy>(parts: &[Cow<'_, [T]>], lo: i64, hi: i64, int: impl Fn(T) -> i64) -> usize {
    if lo > hi {
        return 0;
    }
    let span = hi.abs_diff(lo);
    if span >= 1 << 26 {
        return distinct_keys(parts, |x| int(x) as u64);
    }
    let mut bits = vec![0u64; (span >> 6) as usize + 1];
    for part in parts {
        for &x in part.iter() {
            let i = int(x).abs_diff(lo);
            bits[(i >> 6) as usize] |= 1 << (i & 63);
        }
    }
    bits.iter().map(|w| w.count_ones() as usize).sum()
}

/// Distinct integers over a column's parts (see [`valid_parts`]).
fn distinct_integer_parts(parts: &[Cow<'_, [i64]>]) -> usize {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for part in parts {
        for &x in part.iter() {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    distinct_in_range(parts, lo, hi, |x| x)
}

/// Distinct floats, NaN counted once and `-0.0` as `0.0`: whole numbers (one-hot columns,
/// counts stored as floats) as integers, others by their bits.
fn distinct_floats(parts: &[Cow<'_, [f64]>]) -> usize {
    // `as` saturates and sends NaN to 0, so only whole numbers within ±9e15 come back equal;
    // one pass finds whether all are whole and their range.
    let (mut whole, mut lo, mut hi) = (true, f64::INFINITY, f64::NEG_INFINITY);
    for part in parts {
        for &x in part.iter() {
            whole &= x.abs() < 9e15 && (x as i64) as f64 == x;
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    if whole {
        return distinct_in_range(parts, lo as i64, hi as i64, |x| x as i64);
    }
    distinct_keys(parts, float_key)
}

/// A float as a key for telling values apart: every NaN one key, `-0.0` the key of `0.0`.
fn float_key(x: f64) -> u64 {
    if x.is_nan() { f64::NAN.to_bits() } else { (x + 0.0).to_bits() }
}

/// The non-null values of a numeric column, a part per chunk: a chunk without nulls as its
/// buffer, uncopied; the valid values of one with nulls copied out.
fn valid_parts<T: pl::PolarsNumericType>(ca: &pl::ChunkedArray<T>) -> Vec<Cow<'_, [T::Native]>> {
    ca.downcast_iter()
        .map(|arr| match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => Cow::Borrowed(arr.values().as_slice()),
            Some(valid) => {
                Cow::Owned(arr.values().iter().zip(valid.iter()).filter_map(|(x, ok)| ok.then_some(*x)).collect())
            }
        })
        .collect()
}

/// A text held inside its view (at most 12 bytes) as one key: its length and bytes, the unused
/// bytes masked off; `None` for a longer text.
fn inline_key(view: &polars_arrow::array::View) -> Option<u128> {
    (view.length <= polars_arrow::array::View::MAX_INLINE_SIZE).then(|| {
        let used = 32 + 8 * view.length;
        let bits = view.as_u128();
        if used >= 128 { bits } else { bits & ((1u128 << used) - 1) }
    })
}

/// Calls `f(row, view, text)` for each text of a column in row order (`None` for a null),
/// reading the chunks' views directly.
fn each_text<'a>(ca: &'a pl::StringChunked, mut f: impl FnMut(usize, &polars_arrow::array::View, Option<&'a str>)) {
    text_views(ca).enumerate().for_each(|(row, (view, text))| f(row, view, text));
}

/// Distinct texts: short ones (at most 12 bytes, most categories) by their inline view, longer
/// ones by reference.
fn distinct_texts(ca: &pl::StringChunked) -> usize {
    let mut seen: std::collections::HashSet<TextKey<'_>, MixBuild> = std::collections::HashSet::default();
    each_text(ca, |_, view, text| {
        if let Some(t) = text {
            seen.insert(TextKey::of(view, t));
        }
    });
    seen.len()
}

/// A text as a key for telling texts apart: a short one (at most 12 bytes) by its inline view,
/// a longer one by its bytes.
#[derive(PartialEq, Eq)]
pub(crate) enum TextKey<'a> {
    Short(u128),
    Long(&'a str),
}

impl<'a> TextKey<'a> {
    pub(crate) fn of(view: &polars_arrow::array::View, text: &'a str) -> TextKey<'a> {
        inline_key(view).map_or(TextKey::Long(text), TextKey::Short)
    }
}

impl std::hash::Hash for TextKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            TextKey::Short(key) => h.write_u128(*key),
            TextKey::Long(text) => text.hash(h),
        }
    }
}

/// Distinct short texts a [`ShortTextMemo`] remembers before it stops taking new ones (a few
/// under test, so that tests fill it and turn it off).
const MEMO_MAX: usize = if cfg!(test) { 4 } else { 4096 };

/// Results of a function of a text, remembered per distinct short text (at most 12 bytes,
/// held in its view: categories, codes, dates, flags), so that a column of few distinct values
/// computes each once and finds the rest by one lookup of the view. Longer texts, and new texts
/// once [`MEMO_MAX`] are remembered, are left to the caller; once as many again have missed, the
/// memo stops looking, so a column of distinct values pays for little more than a small table.
pub struct ShortTextMemo<T> {
    seen: std::collections::HashMap<u128, T, MixBuild>,
    misses: usize,
}

impl<T> Default for ShortTextMemo<T> {
    fn default() -> Self {
        ShortTextMemo { seen: std::collections::HashMap::default(), misses: 0 }
    }
}

impl<T> ShortTextMemo<T> {
    /// The result for the text of `view`, computed by `f` the first time; `None` when the text
    /// is long, or the memo is full and has not seen it.
    pub fn get_or(&mut self, view: &polars_arrow::array::View, f: impl FnOnce() -> T) -> Option<&T> {
        if self.misses > MEMO_MAX {
            return None;
        }
        let key = inline_key(view)?;
        if self.seen.len() < MEMO_MAX {
            return Some(self.seen.entry(key).or_insert_with(f));
        }
        let found = self.seen.get(&key);
        self.misses += usize::from(found.is_none());
        found
    }
}

/// Each text of a column in row order with its view (`None` for a null).
pub fn text_views(ca: &StringChunked) -> impl Iterator<Item = (&polars_arrow::array::View, Option<&str>)> {
    ca.downcast_iter().flat_map(|arr| {
        let valid = polars_arrow::array::Array::validity(arr).filter(|v| v.unset_bits() > 0);
        arr.views()
            .iter()
            .enumerate()
            .map(move |(i, view)| (view, if valid.is_some_and(|v| !v.get_bit(i)) { None } else { Some(arr.value(i)) }))
    })
}

/// `f` of each text of a column in row order (`None` for a null), computed once per distinct
/// short text (see [`ShortTextMemo`]).
pub fn map_texts<'a, T: Clone + 'a>(
    ca: &'a StringChunked,
    mut f: impl FnMut(&str) -> T + 'a,
) -> impl Iterator<Item = Option<T>> + 'a {
    let mut memo = ShortTextMemo::default();
    text_views(ca).map(move |(view, text)| {
        text.map(|t| match memo.get_or(view, || f(t)) {
            Some(v) => v.clone(),
            None => f(t),
        })
    })
}

/// Row positions of a column's nulls, hashed, whatever the chunking (gathered in a buffer
/// first: the hash of the same bytes, for a fraction of the cost of one update per null).
#[derive(Default)]
struct NullPositions {
    hasher: Option<blake3::Hasher>,
    pending: Vec<u8>,
    count: usize,
}

impl NullPositions {
    fn push(&mut self, row: usize) {
        self.pending.extend_from_slice(&(row as u64).to_le_bytes());
        self.count += 1;
        if self.pending.len() >= 1 << 16 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.hasher.get_or_insert_with(blake3::Hasher::new).update(&self.pending);
            self.pending.clear();
        }
    }

    fn finish(mut self, h: &mut blake3::Hasher) {
        self.flush();
        h.update(format!(";nulls={};", self.count).as_bytes());
        if let Some(positions) = self.hasher {
            h.update(positions.finalize().as_bytes());
        }
    }
}

/// A column's digest: name and type, then the values in row order (numbers as little-endian
/// bytes, a null's slot as zero; texts as length and bytes, nothing for a null; booleans as one
/// byte), then the nulls' row positions. Chunks without nulls are hashed straight from memory.
fn hash_column(col: &Column, with_stats: bool) -> Result<ColumnDigest> {
    let mut h = blake3::Hasher::new();
    let name = col.name().to_string();
    let t = dtype_of(col.dtype()).ok_or_else(|| CoreError::WrongType {
        column: name.clone(),
        found: col.dtype().to_string(),
        expected: "a type that can be versioned".into(),
    })?;
    h.update(format!("{}:{}:{};", name.len(), name, col.dtype()).as_bytes());
    let mut nulls = NullPositions::default();
    let series = col.as_materialized_series();
    let mut row = 0usize;
    macro_rules! numeric {
        ($ca:expr, $distinct:expr) => {{
            let ca = $ca;
            let mut buf = Vec::new();
            for arr in ca.downcast_iter() {
                let values: &[_] = arr.values();
                match arr.validity().filter(|v| v.unset_bits() > 0) {
                    None => {
                        if cfg!(target_endian = "little") {
                            h.update(bytemuck::cast_slice(values));
                        } else {
                            buf.clear();
                            buf.extend(values.iter().flat_map(|x| x.to_le_bytes()));
                            h.update(&buf);
                        }
                    }
                    Some(validity) => {
                        buf.clear();
                        for (i, (x, valid)) in values.iter().zip(validity.iter()).enumerate() {
                            if valid {
                                buf.extend_from_slice(&x.to_le_bytes());
                            } else {
                                buf.extend_from_slice(&[0u8; 8]);
                                nulls.push(row + i);
                            }
                        }
                        h.update(&buf);
                    }
                }
                row += values.len();
            }
            with_stats.then(|| $distinct(&valid_parts(ca)))
        }};
    }
    let unique = match t {
        DType::Bool => {
            let ca = series.bool().map_err(pe(&name))?;
            let mut buf = Vec::with_capacity(ca.len());
            let mut both = [false; 2];
            for (i, v) in ca.iter().enumerate() {
                buf.push(match v {
                    None => {
                        nulls.push(i);
                        0
                    }
                    Some(b) => {
                        both[usize::from(b)] = true;
                        1 + u8::from(b)
                    }
                });
            }
            h.update(&buf);
            with_stats.then(|| both.iter().filter(|b| **b).count())
        }
        DType::Int | DType::Date | DType::Datetime => {
            let phys = series.to_physical_repr().cast(&DataType::Int64).map_err(pe(&name))?;
            numeric!(phys.i64().map_err(pe(&name))?, distinct_integer_parts)
        }
        DType::Float => {
            let s = series.cast(&DataType::Float64).map_err(pe(&name))?;
            numeric!(s.f64().map_err(pe(&name))?, distinct_floats)
        }
        DType::Str => {
            let s = series.cast(&DataType::String).map_err(pe(&name))?;
            let text = s.str().map_err(pe(&name))?;
            let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
            each_text(text, |i, _, v| match v {
                None => nulls.push(i),
                Some(x) => {
                    buf.extend_from_slice(&(x.len() as u64).to_le_bytes());
                    if x.len() > 1 << 15 {
                        h.update(&buf);
                        buf.clear();
                        h.update(x.as_bytes());
                    } else {
                        buf.extend_from_slice(x.as_bytes());
                    }
                    if buf.len() > (1 << 16) - (1 << 15) - 16 {
                        h.update(&buf);
                        buf.clear();
                    }
                }
            });
            h.update(&buf);
            with_stats.then(|| distinct_texts(text))
        }
    };
    let null_count = nulls.count;
    nulls.finish(&mut h);
    let stats = unique.map(|u| ColumnStats { nulls: null_count, unique: u + usize::from(null_count > 0) });
    Ok((*h.finalize().as_bytes(), stats))
}

/// Whether two cells of a column hold the same value (nulls equal nulls, NaN equals NaN).
fn same_cell(col: &Column, i: usize, j: usize) -> bool {
    match (col.get(i), col.get(j)) {
        (Ok(a), Ok(b)) => match (a.extract::<f64>(), b.extract::<f64>()) {
            (Some(x), Some(y)) if x.is_nan() && y.is_nan() => true,
            _ => a == b,
        },
        _ => false,
    }
}

/// Folds one cell's key into a row's hash.
fn fold_cell(h: &mut u64, cell: u64) {
    *h = (h.rotate_left(5) ^ cell).wrapping_mul(0x9e37_79b9_7f4a_7c15);
}

/// The key of a null cell, whatever the column's type.
const NULL_CELL: u64 = 0x243f_6a88_85a3_08d3;

/// One hash per row of `keys`, equal for rows whose cells are equal as [`same_cell`] sees them
/// (nulls alike, every NaN alike, `-0.0` as `0.0`), mixed by [`mix`]. Row ranges are hashed on
/// all cores; numbers, booleans and texts are read from their buffers (a short text by its
/// inline view), other types through polars' hash with one seed for the whole frame.
fn row_hashes(keys: &DataFrame) -> Result<Vec<u64>> {
    let n = keys.height();
    let step = n.div_ceil(crate::par::cores() * 2).max(1);
    let ranges: Vec<(usize, usize)> = (0..n).step_by(step).map(|from| (from, (from + step).min(n))).collect();
    let seed = pl::PlSeedableRandomStateQuality::default();
    let hashed = crate::par::map(&ranges, |&(from, to)| -> Result<Vec<u64>> {
        let mut hashes = vec![0u64; to - from];
        for col in keys.columns() {
            let part = col.slice(from as i64, to - from);
            hash_cells(&part, &seed, &mut hashes)?;
        }
        hashes.iter_mut().for_each(|h| *h = mix(*h));
        Ok(hashes)
    })
    .ok_or_else(|| thread_failed("a row hashing"))?;
    let mut all = Vec::with_capacity(n);
    for part in hashed {
        all.extend(part?);
    }
    Ok(all)
}

/// Folds every cell of `col` into the hash of its row.
fn hash_cells(col: &Column, seed: &pl::PlSeedableRandomStateQuality, hashes: &mut [u64]) -> Result<()> {
    let series = col.as_materialized_series();
    let physical = series.to_physical_repr();
    // Each chunk's cells, as keys, in row order.
    macro_rules! fold_chunks {
        ($ca:expr, $key:expr) => {{
            let mut row = 0;
            for arr in $ca.downcast_iter() {
                let slots = &mut hashes[row..row + arr.len()];
                match arr.validity().filter(|v| v.unset_bits() > 0) {
                    None => slots.iter_mut().zip(arr.values().iter()).for_each(|(h, x)| fold_cell(h, $key(*x))),
                    Some(valid) => slots
                        .iter_mut()
                        .zip(arr.values().iter().zip(valid.iter()))
                        .for_each(|(h, (x, ok))| fold_cell(h, if ok { $key(*x) } else { NULL_CELL })),
                }
                row += arr.len();
            }
        }};
    }
    match physical.dtype() {
        DataType::Int8 => fold_chunks!(physical.i8().map_err(pe("cannot hash rows"))?, |x: i8| x as u64),
        DataType::Int16 => fold_chunks!(physical.i16().map_err(pe("cannot hash rows"))?, |x: i16| x as u64),
        DataType::Int32 => fold_chunks!(physical.i32().map_err(pe("cannot hash rows"))?, |x: i32| x as u64),
        DataType::Int64 => fold_chunks!(physical.i64().map_err(pe("cannot hash rows"))?, |x: i64| x as u64),
        DataType::UInt8 => fold_chunks!(physical.u8().map_err(pe("cannot hash rows"))?, u64::from),
        DataType::UInt16 => fold_chunks!(physical.u16().map_err(pe("cannot hash rows"))?, u64::from),
        DataType::UInt32 => fold_chunks!(physical.u32().map_err(pe("cannot hash rows"))?, u64::from),
        DataType::UInt64 => fold_chunks!(physical.u64().map_err(pe("cannot hash rows"))?, |x: u64| x),
        DataType::Float32 => {
            fold_chunks!(physical.f32().map_err(pe("cannot hash rows"))?, |x: f32| float_key(f64::from(x)))
        }
        DataType::Float64 => fold_chunks!(physical.f64().map_err(pe("cannot hash rows"))?, float_key),
        DataType::Boolean => {
            let ca = physical.bool().map_err(pe("cannot hash rows"))?;
            for (h, v) in hashes.iter_mut().zip(ca.iter()) {
                fold_cell(h, v.map_or(NULL_CELL, |b| u64::from(b) + 1));
            }
        }
        DataType::String => each_text(physical.str().map_err(pe("cannot hash rows"))?, |row, view, text| {
            let h = &mut hashes[row];
            match (text, inline_key(view)) {
                (None, _) => fold_cell(h, NULL_CELL),
                (Some(_), Some(key)) => {
                    fold_cell(h, key as u64);
                    fold_cell(h, (key >> 64) as u64);
                }
                (Some(t), None) => {
                    let mut bytes = MixHasher::default();
                    std::hash::Hasher::write(&mut bytes, t.as_bytes());
                    fold_cell(h, std::hash::Hasher::finish(&bytes) ^ t.len() as u64);
                }
            }
        }),
        _ => {
            let mut cells = Vec::with_capacity(hashes.len());
            col.vec_hash(seed.clone(), &mut cells).map_err(pe("cannot hash rows"))?;
            hashes.iter_mut().zip(cells).for_each(|(h, c)| fold_cell(h, c));
        }
    }
    Ok(())
}

/// Which rows to keep when dropping duplicates, one flag per row.
///
/// Every row gets a hash of all its cells; rows are then spread over parts by the top bits of
/// their hash (keeping row order inside each part), and each part, small enough for its table to
/// stay in cache, finds its repeats on its own, the parts spread over the cores. Rows that share
/// a hash are compared cell by cell, so a hash collision never merges different rows.
fn distinct_rows(keys: DataFrame, keep: Keep) -> Result<Vec<bool>> {
    let n = keys.height();
    if u32::try_from(n).is_err() {
        return Err(CoreError::polars(
            "cannot drop duplicates",
            pl::PolarsError::ComputeError(format!("{n} rows: at most {} rows can be deduplicated", u32::MAX).into()),
        ));
    }
    let hashes = row_hashes(&keys)?;
    let bits = (n / 2048).max(1).ilog2().min(12);
    let part_of = |h: u64| if bits == 0 { 0 } else { (h >> (64 - bits)) as usize };
    // A counting sort of the rows by part, stable, so each part lists its rows in order.
    let mut starts = vec![0usize; (1 << bits) + 1];
    for &h in &hashes {
        starts[part_of(h) + 1] += 1;
    }
    for p in 1..starts.len() {
        starts[p] += starts[p - 1];
    }
    let mut fill = starts.clone();
    let mut rows = vec![0u32; n];
    for (i, &h) in hashes.iter().enumerate() {
        let p = part_of(h);
        rows[fill[p]] = i as u32;
        fill[p] += 1;
    }
    let same_row = |i: usize, j: usize| keys.columns().iter().all(|c| same_cell(c, i, j));
    let parts: Vec<usize> = (0..1 << bits).collect();
    // Each part answers the rows it drops; repeats are few, so these lists are short.
    let dropped = crate::par::map(&parts, |&p| {
        let part = &rows[starts[p]..starts[p + 1]];
        let slots = (part.len() * 2).next_power_of_two().max(2);
        let mask = slots - 1;
        // Open addressing: (hash, row + 1), 0 for an empty slot.
        let mut table = vec![(0u64, 0u32); slots];
        let mut drop = Vec::new();
        let mut visit = |i: u32| {
            let h = hashes[i as usize];
            let mut s = h as usize & mask;
            loop {
                let (sh, r) = table[s];
                if r == 0 {
                    table[s] = (h, i + 1);
                    return;
                }
                if sh == h && same_row((r - 1) as usize, i as usize) {
                    drop.push(i);
                    if keep == Keep::None {
                        // The first of the group goes too (listed once per repeat; harmless).
                        drop.push(r - 1);
                    }
                    return;
                }
                s = (s + 1) & mask;
            }
        };
        match keep {
            Keep::Last => part.iter().rev().for_each(|&i| visit(i)),
            _ => part.iter().for_each(|&i| visit(i)),
        }
        drop
    })
    .ok_or_else(|| thread_failed("a deduplication"))?;
    let mut kept = vec![true; n];
    for i in dropped.into_iter().flatten() {
        kept[i as usize] = false;
    }
    Ok(kept)
}

/// Spreads a row hash's entropy over all its bits (the part comes from the top bits, the slot
/// from the bottom ones).
fn mix(h: u64) -> u64 {
    let mut x = h ^ (h >> 31);
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Adds one column per `(output, type, kernel)`, each computed from the values of `name` by the
/// kernel the row path uses (`None` from a kernel means a value of the wrong type).
fn derive_columns<F: Fn(&Value) -> Option<Value>>(
    df: DataFrame,
    name: &str,
    expected: &str,
    outputs: Vec<(&String, DType, F)>,
) -> Result<DataFrame> {
    let values = column_values(column(&df, name)?)?;
    let mut df = df;
    for (out, t, kernel) in outputs {
        let col: Vec<Value> = values
            .iter()
            .map(|v| kernel(v).ok_or_else(|| crate::ops::wrong_type(name, v, expected)))
            .collect::<Result<_>>()?;
        df = put(df, column_from_values(out, t, &col))?;
    }
    Ok(df)
}

/// How many rows repeat an earlier row in every column (pandas' `df.duplicated().sum()`); nulls
/// equal nulls and NaN equals NaN.
pub fn duplicate_rows(df: &DataFrame) -> Result<usize> {
    if df.width() == 0 {
        return Ok(0);
    }
    Ok(distinct_rows(df.clone(), Keep::First)?.iter().filter(|k| !**k).count())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_chunking() {
        let a = pl::df!("x" => [1i64, 2, 3, 4], "s" => ["a", "b", "c", "d"]).unwrap();
        let mut b = a.slice(0, 2);
        b.vstack_mut(&a.slice(2, 2)).unwrap();
        assert!(b.first_col_n_chunks() > 1);
        assert_eq!(frame_hash(&a).unwrap(), frame_hash(&b).unwrap());
        let c = pl::df!("x" => [1i64, 2, 3, 5], "s" => ["a", "b", "c", "d"]).unwrap();
        assert_ne!(frame_hash(&a).unwrap(), frame_hash(&c).unwrap());
    }

    proptest::proptest! {
        /// Numeric chunks without nulls are hashed block by block, chunks with nulls value by
        /// value; both write the bytes of one pass, so the hash and the counts ignore how the
        /// nulls fall into chunks.
        #[test]
        fn hash_and_counts_ignore_which_chunks_hold_nulls(
            head in proptest::collection::vec(-50i64..50, 0..6000),
            tail in proptest::collection::vec(proptest::option::of(-50i64..50), 0..6000),
        ) {
            let ints: Vec<Option<i64>> = head.iter().copied().map(Some).chain(tail.iter().copied()).collect();
            let floats: Vec<Option<f64>> = ints.iter().map(|v| v.map(|x| x as f64 / 4.0)).collect();
            let whole = pl::df!("i" => &ints, "f" => &floats).expect("frame");
            let mut split = whole.slice(0, head.len());
            split.vstack_mut(&whole.slice(head.len() as i64, tail.len())).expect("vstack");
            proptest::prop_assert_eq!(
                frame_hash_and_stats(&whole).expect("whole"),
                frame_hash_and_stats(&split).expect("split")
            );
        }
    }

    proptest::proptest! {
        /// Null and distinct counts are those of a plain count over the values, for few and
        /// many distinct numbers (the small hash set and the hash partitions), NaN and signed zeros, short and
        /// long texts; and the hash tells apart a null from a zero or an empty text.
        #[test]
        fn stats_count_nulls_and_distinct_values(
            ints in proptest::collection::vec(proptest::option::of(-3000i64..3000), 0..5000),
            spread in 1i64..4000,
            scale in proptest::prop_oneof![proptest::strategy::Just(1i64), proptest::strategy::Just(1 << 40)],
            texts in proptest::collection::vec(proptest::option::of("[ab]{0,3}|[ab]{14,17}"), 0..300),
        ) {
            let ints: Vec<Option<i64>> = ints.iter().map(|v| v.map(|x| (x % spread) * scale)).collect();
            let floats: Vec<Option<f64>> = ints
                .iter()
                .map(|v| v.map(|x| match x % 7 { 0 => f64::NAN, 1 => -0.0, 2 => 0.0, _ => x as f64 / (8 * scale) as f64 }))
                .collect();
            let df = pl::df!("i" => &ints, "f" => &floats).expect("frame");
            let t = pl::df!("t" => &texts).expect("frame");
            let (_, stats) = frame_hash_and_stats(&df).expect("stats");
            let (_, text_stats) = frame_hash_and_stats(&t).expect("stats");
            let count = |keys: Vec<Option<String>>| {
                let nulls = keys.iter().filter(|k| k.is_none()).count();
                let set: std::collections::HashSet<Option<String>> = keys.into_iter().collect();
                ColumnStats { nulls, unique: set.len() }
            };
            let float_key = |x: f64| if x.is_nan() { "nan".to_string() } else { (x + 0.0).to_string() };
            proptest::prop_assert_eq!(stats[0], count(ints.iter().map(|v| v.map(|x| x.to_string())).collect()));
            proptest::prop_assert_eq!(stats[1], count(floats.iter().map(|v| v.map(float_key)).collect()));
            proptest::prop_assert_eq!(text_stats[0], count(texts.clone()));
        }
    }

    #[test]
    fn distinct_counts_past_the_small_set_are_exact() {
        for n in [SMALL_DISTINCT - 1, SMALL_DISTINCT, SMALL_DISTINCT + 1, 10_000] {
            let keep = |i: &usize| !i.is_multiple_of(3);
            let fractions: Vec<Option<f64>> = (0..2 * n).map(|i| keep(&i).then_some((i % n) as f64 / 4.0)).collect();
            let whole: Vec<Option<f64>> = (0..2 * n).map(|i| keep(&i).then_some((i % n) as f64)).collect();
            let wide: Vec<Option<i64>> =
                (0..2 * n).map(|i| keep(&i).then_some((i % n) as i64 * 1_000_000_007 - 1)).collect();
            let narrow: Vec<Option<i64>> = (0..2 * n).map(|i| keep(&i).then_some((i % n) as i64 - 5)).collect();
            let df =
                pl::df!("fractions" => &fractions, "whole" => &whole, "wide" => &wide, "narrow" => &narrow).unwrap();
            let expected = (0..2 * n).filter(keep).map(|i| i % n).collect::<std::collections::HashSet<_>>().len();
            let nulls = (0..2 * n).filter(|i| !keep(i)).count();
            let (_, stats) = frame_hash_and_stats(&df).unwrap();
            for (name, s) in column_names(&df).iter().zip(stats) {
                assert_eq!(s, ColumnStats { nulls, unique: expected + 1 }, "{name} with {n} distinct");
            }
        }
    }

    /// The content hash is a dataset's version: the same data must keep its version from one
    /// build to the next, whatever the code that reads the values.
    #[test]
    fn content_hash_is_stable_across_builds() {
        let long = "a text longer than the twelve bytes a view holds";
        let mut df = pl::df!(
            "i" => [Some(1i64), None, Some(-3)],
            "f" => [Some(-0.0), Some(f64::NAN), None],
            "s" => [Some("short"), None, Some(long)],
            "b" => [Some(true), None, Some(false)],
        )
        .unwrap();
        let days = Column::new("d".into(), [Some(19_000i32), None, Some(-1)]).cast(&DataType::Date).unwrap();
        df.with_column(days).unwrap();
        let mut chunked = df.slice(0, 1);
        chunked.vstack_mut(&df.slice(1, 2)).unwrap();
        let (hash, stats) = frame_hash_and_stats(&chunked).unwrap();
        assert_eq!(hash, "57477860f7bc6e9f20128520ef8d8d5b7d4344d29f30fe96398e2b8b1ecc73c5");
        let counts: Vec<(usize, usize)> = stats.iter().map(|s| (s.nulls, s.unique)).collect();
        assert_eq!(counts, [(1, 3); 5]);
    }

    #[test]
    fn nulls_hash_apart_from_zeros_and_empty_texts() {
        let a = pl::df!("x" => [Some(0i64), Some(1)], "s" => [Some(""), Some("a")]).unwrap();
        let b = pl::df!("x" => [None, Some(1i64)], "s" => [Some(""), Some("a")]).unwrap();
        let c = pl::df!("x" => [Some(0i64), Some(1)], "s" => [None, Some("a")]).unwrap();
        let d = pl::df!("x" => [Some(0i64), None], "s" => [Some(""), Some("a")]).unwrap();
        let hashes: std::collections::HashSet<String> =
            [&a, &b, &c, &d].iter().map(|f| frame_hash(f).unwrap()).collect();
        assert_eq!(hashes.len(), 4);
    }

    #[test]
    fn matrix_names_null_column() {
        let df = pl::df!("a" => [Some(1.0), None]).unwrap();
        let err = to_matrix(&df, &["a".into()]).unwrap_err().to_string();
        assert!(err.contains("`a` row 1"), "{err}");
    }

    #[test]
    fn rows_round_trip() {
        let df = pl::df!("x" => [Some(1i64), None], "s" => [Some("a"), None], "f" => [0.5, 1.5]).unwrap();
        let rows = rows_from_frame(&df).unwrap();
        let back =
            frame_from_rows(&rows, &[("x".into(), DType::Int), ("s".into(), DType::Str), ("f".into(), DType::Float)])
                .unwrap();
        assert!(df.equals_missing(&back));
    }
}
