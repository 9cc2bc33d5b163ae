//! Values mapped and categories encoded: value maps, bins, one-hot, ordinal and target encodings,
//! and the policy for categories training never saw.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::Result;
#[cfg(feature = "frame")]
use crate::frame::*;
use crate::value::{Row, Value};
#[cfg(feature = "frame")]
use polars::prelude::{self as pl, DataFrame, Float64Chunked, Int64Chunked, StringChunked};

/// What [`Op::MapValues`] does with a value not in its map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmapped {
    /// Keep the value as it is (pandas' `replace`).
    #[default]
    Keep,
    /// Make it null (pandas' `map`).
    Null,
    /// Put this value instead.
    Value(Value),
}

/// What an encoder does with a category it did not see in training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPolicy {
    /// Encode as "none of the known" (all zeros for one-hot, -1 for ordinal, the prior for target
    /// encoding).
    #[default]
    Ignore,
    /// Fail, naming the column and the value.
    Error,
}

/// Which side of a bin includes its edge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Closed {
    /// Bins are `(a, b]` (pandas' `cut` default).
    #[default]
    Right,
    /// Bins are `[a, b)`.
    Left,
}

/// Index of the bin holding `x`, if any.
pub(crate) fn bin_index(x: f64, edges: &[f64], closed: Closed) -> Option<usize> {
    if x.is_nan() {
        return None;
    }
    edges.windows(2).position(|w| match closed {
        Closed::Right => x > w[0] && x <= w[1],
        Closed::Left => x >= w[0] && x < w[1],
    })
}

pub(crate) fn map_value(v: &Value, mapping: &BTreeMap<String, Value>, unmapped: &Unmapped) -> Value {
    let Some(k) = v.key() else { return Value::Null };
    match mapping.get(&k) {
        Some(out) => out.clone(),
        None => match unmapped {
            Unmapped::Keep => v.clone(),
            Unmapped::Null => Value::Null,
            Unmapped::Value(x) => x.clone(),
        },
    }
}

pub(super) fn map_values_row(
    row: &mut Row,
    column: &str,
    output: &Option<String>,
    mapping: &BTreeMap<String, Value>,
    unmapped: &Unmapped,
) -> Result<()> {
    let v = cell(row, column);
    let out = map_value(&v, mapping, unmapped);
    row.insert(output.clone().unwrap_or_else(|| column.to_string()), out);
    Ok(())
}

pub(super) fn bin_row(
    row: &mut Row,
    column: &str,
    output: &str,
    edges: &[f64],
    labels: &[String],
    closed: &Closed,
) -> Result<()> {
    let v = cell(row, column);
    let out = match v.as_f64() {
        Some(x) => bin_index(x, edges, *closed).map_or(Value::Null, |i| Value::Str(labels[i].clone())),
        None if v.is_null() => Value::Null,
        None => return Err(wrong_type(column, &v, "number")),
    };
    row.insert(output.to_string(), out);
    Ok(())
}

pub(super) fn one_hot_row(
    row: &mut Row,
    column: &str,
    categories: &[String],
    outputs: &[String],
    unknown: &UnknownPolicy,
    drop_input: &bool,
) -> Result<()> {
    let v = cell(row, column);
    let key = v.key();
    if let (Some(k), UnknownPolicy::Error) = (&key, unknown)
        && !categories.contains(k)
    {
        return Err(unknown_category(column, k, categories));
    }
    for (cat, out) in categories.iter().zip(outputs) {
        let hit = key.as_deref() == Some(cat.as_str());
        row.insert(out.to_string(), Value::Float(if hit { 1.0 } else { 0.0 }));
    }
    if *drop_input {
        row.remove(column);
    }
    Ok(())
}

pub(super) fn ordinal_row(
    row: &mut Row,
    column: &str,
    output: &Option<String>,
    categories: &[String],
    unknown: &UnknownPolicy,
) -> Result<()> {
    let v = cell(row, column);
    let out = match v.key() {
        None => Value::Null,
        Some(k) => match categories.iter().position(|c| *c == k) {
            Some(i) => Value::Int(i as i64),
            None if *unknown == UnknownPolicy::Error => {
                return Err(unknown_category(column, &k, categories));
            }
            None => Value::Int(-1),
        },
    };
    row.insert(output.clone().unwrap_or_else(|| column.to_string()), out);
    Ok(())
}

pub(super) fn target_encode_row(
    row: &mut Row,
    column: &str,
    outputs: &[String],
    table: &BTreeMap<String, Vec<f64>>,
    prior: &[f64],
    unknown: &UnknownPolicy,
    drop_input: &bool,
) -> Result<()> {
    let v = cell(row, column);
    let encoded = match v.key() {
        None => prior,
        Some(k) => match table.get(&k) {
            Some(values) => values,
            None if *unknown == UnknownPolicy::Error => {
                return Err(unknown_category(column, &k, &table.keys().cloned().collect::<Vec<_>>()));
            }
            None => prior,
        },
    };
    for (out, x) in outputs.iter().zip(encoded) {
        row.insert(out.to_string(), Value::Float(*x));
    }
    if *drop_input {
        row.remove(column);
    }
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn map_values_frame(
    df: DataFrame,
    name: &str,
    output: &Option<String>,
    mapping: &BTreeMap<String, Value>,
    unmapped: &Unmapped,
) -> Result<DataFrame> {
    let out_name = output.as_deref().unwrap_or(name);
    map_values(df, name, out_name, |_, v| Ok(map_value(&v, mapping, unmapped)))
}

#[cfg(feature = "frame")]
pub(super) fn bin_frame(
    df: DataFrame,
    name: &str,
    output: &str,
    edges: &[f64],
    labels: &[String],
    closed: &Closed,
) -> Result<DataFrame> {
    let ca = f64_column(&df, name)?;
    let out: StringChunked =
        ca.iter().map(|o| o.and_then(|x| bin_index(x, edges, *closed)).map(|i| labels[i].as_str())).collect();
    put(df, out.with_name(output.into()))
}

#[cfg(feature = "frame")]
pub(super) fn one_hot_frame(
    df: DataFrame,
    name: &str,
    categories: &[String],
    outputs: &[String],
    unknown: &UnknownPolicy,
    drop_input: &bool,
) -> Result<DataFrame> {
    let (keys, distinct) = key_codes(&df, name)?;
    check_unknown(name, &distinct, categories, *unknown)?;
    // One pass finds each row's category; each output is then a plain 0/1 column.
    let slots = category_slots(&distinct, categories);
    let codes: Vec<usize> = keys.iter().map(|k| k.and_then(|k| slots[k as usize]).unwrap_or(usize::MAX)).collect();
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

#[cfg(feature = "frame")]
pub(super) fn ordinal_frame(
    df: DataFrame,
    name: &str,
    output: &Option<String>,
    categories: &[String],
    unknown: &UnknownPolicy,
) -> Result<DataFrame> {
    let (keys, distinct) = key_codes(&df, name)?;
    check_unknown(name, &distinct, categories, *unknown)?;
    let slots = category_slots(&distinct, categories);
    let ca: Int64Chunked = keys.iter().map(|k| k.map(|k| slots[k as usize].map_or(-1, |i| i as i64))).collect();
    put(df, ca.with_name(output.as_deref().unwrap_or(name).into()))
}

#[cfg(feature = "frame")]
pub(super) fn target_encode_frame(
    df: DataFrame,
    name: &str,
    outputs: &[String],
    table: &BTreeMap<String, Vec<f64>>,
    prior: &[f64],
    unknown: &UnknownPolicy,
    drop_input: &bool,
) -> Result<DataFrame> {
    let (keys, distinct) = key_codes(&df, name)?;
    let known: Vec<String> = table.keys().cloned().collect();
    check_unknown(name, &distinct, &known, *unknown)?;
    let encoded: Vec<&[f64]> = distinct.iter().map(|k| table.get(k).map_or(prior, Vec::as_slice)).collect();
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

#[cfg(feature = "frame")]
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

#[cfg(feature = "frame")]
/// For each of a column's distinct keys, its position among `categories` (`None` if absent).
fn category_slots(distinct: &[String], categories: &[String]) -> Vec<Option<usize>> {
    let index: pl::PlHashMap<&str, usize> = categories.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    distinct.iter().map(|k| index.get(k.as_str()).copied()).collect()
}
