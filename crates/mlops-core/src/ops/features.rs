//! The feature operations of step 10 and their kernels: date parts, text statistics, lags and
//! rolling means, and statistics per group.

use std::collections::BTreeMap;

use chrono::{Datelike, Timelike};

use serde::{Deserialize, Serialize};

use super::*;
use crate::Result;
#[cfg(feature = "frame")]
use crate::frame::*;
#[cfg(feature = "frame")]
use crate::value::DType;
use crate::value::{Row, Value};
#[cfg(feature = "frame")]
use polars::prelude::DataFrame;

/// A part of a date or timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatePart {
    /// Year.
    Year,
    /// Month, 1-12.
    Month,
    /// Day of the month, 1-31.
    Day,
    /// Day of the week, Monday = 0 … Sunday = 6 (pandas' `dayofweek`).
    DayOfWeek,
    /// Hour, 0-23 (0 for dates).
    Hour,
    /// Saturday or Sunday.
    IsWeekend,
}

impl DatePart {
    /// Every part, in output order.
    pub const ALL: [DatePart; 6] =
        [DatePart::Year, DatePart::Month, DatePart::Day, DatePart::DayOfWeek, DatePart::Hour, DatePart::IsWeekend];

    /// The suffix of its output column.
    pub fn name(self) -> &'static str {
        match self {
            DatePart::Year => "year",
            DatePart::Month => "month",
            DatePart::Day => "day",
            DatePart::DayOfWeek => "day_of_week",
            DatePart::Hour => "hour",
            DatePart::IsWeekend => "is_weekend",
        }
    }
}

/// A statistic of a text value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextStat {
    /// Characters (pandas' `str.len()`).
    Length,
    /// Words separated by white space (`str.split().str.len()`).
    WordCount,
    /// Whether any of `!@#$%^&*()` occurs.
    HasSpecial,
}

impl TextStat {
    /// Every statistic, in output order.
    pub const ALL: [TextStat; 3] = [TextStat::Length, TextStat::WordCount, TextStat::HasSpecial];

    /// The suffix of its output column.
    pub fn name(self) -> &'static str {
        match self {
            TextStat::Length => "length",
            TextStat::WordCount => "word_count",
            TextStat::HasSpecial => "has_special",
        }
    }
}

/// A statistic of a value's group, learned on training rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupStat {
    /// The group's mean.
    Mean,
    /// The group's sample standard deviation.
    Std,
    /// Where the value falls in its group's training distribution, 0 to 1 (a percentile rank).
    Rank,
}

impl GroupStat {
    /// The word in its output column.
    pub fn name(self) -> &'static str {
        match self {
            GroupStat::Mean => "mean",
            GroupStat::Std => "std",
            GroupStat::Rank => "rank",
        }
    }
}

/// What a group's statistics need: mean, standard deviation and 101 quantiles (0%, 1%, … 100%).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (`None` for one value).
    pub std: Option<f64>,
    /// Quantiles at 0, 0.01, … 1 (linear interpolation).
    pub quantiles: Vec<f64>,
    /// Training values in the group.
    pub count: usize,
}

impl GroupSummary {
    /// The summary of some values (`None` when there are none).
    pub fn of(values: &mut [f64]) -> Option<GroupSummary> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        let quantiles = (0..=100)
            .map(|i| {
                let pos = i as f64 / 100.0 * (n - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = (lo + 1).min(n - 1);
                values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
            })
            .collect();
        Some(GroupSummary { mean, std, quantiles, count: n })
    }

    /// The percentile rank of `x` (0 to 1): its position among the quantiles, interpolated, and
    /// the middle of a run of equal quantiles (so ties share a rank, as average ranks do).
    pub fn rank(&self, x: f64) -> f64 {
        let q = &self.quantiles;
        let steps = (q.len().max(2) - 1) as f64;
        let below = q.partition_point(|&v| v < x);
        let upto = q.partition_point(|&v| v <= x);
        if below < upto {
            return ((below + upto - 1) as f64 / 2.0 / steps).clamp(0.0, 1.0);
        }
        match below {
            0 => 0.0,
            i if i >= q.len() => 1.0,
            i => {
                let (a, b) = (q[i - 1], q[i]);
                ((i - 1) as f64 + (x - a) / (b - a)) / steps
            }
        }
    }

    /// One statistic for a value of this group.
    pub fn stat(&self, stat: GroupStat, x: &Value) -> Value {
        match stat {
            GroupStat::Mean => Value::Float(self.mean),
            GroupStat::Std => self.std.map_or(Value::Null, Value::Float),
            GroupStat::Rank => x.as_f64().filter(|v| !v.is_nan()).map_or(Value::Null, |v| Value::Float(self.rank(v))),
        }
    }
}

/// A date part of a value; `None` when the value is not a date or timestamp.
pub fn date_part(v: &Value, part: DatePart) -> Option<Value> {
    let dt = match v {
        Value::Null => return Some(Value::Null),
        Value::Date(d) => Value::date_from_days(*d)?.and_hms_opt(0, 0, 0)?,
        Value::Datetime(us) => Value::datetime_from_micros(*us)?,
        _ => return None,
    };
    let weekday = i64::from(dt.weekday().num_days_from_monday());
    Some(match part {
        DatePart::Year => Value::Int(i64::from(dt.year())),
        DatePart::Month => Value::Int(i64::from(dt.month())),
        DatePart::Day => Value::Int(i64::from(dt.day())),
        DatePart::DayOfWeek => Value::Int(weekday),
        DatePart::Hour => Value::Int(i64::from(dt.hour())),
        DatePart::IsWeekend => Value::Bool(weekday >= 5),
    })
}

/// A text statistic of a value; `None` when the value is not text.
pub fn text_stat(v: &Value, stat: TextStat) -> Option<Value> {
    let s = match v {
        Value::Null => return Some(Value::Null),
        Value::Str(s) => s,
        _ => return None,
    };
    Some(match stat {
        TextStat::Length => Value::Int(s.chars().count() as i64),
        TextStat::WordCount => Value::Int(s.split_whitespace().count() as i64),
        TextStat::HasSpecial => Value::Bool(s.chars().any(|c| "!@#$%^&*()".contains(c))),
    })
}

/// The key of a lag's group (`""` without a group column).
pub fn lag_key(v: Option<&Value>) -> Option<String> {
    match v {
        None => Some(String::new()),
        Some(v) => v.key(),
    }
}

/// Lags and rolling means for one value at inference, from the last training values of its
/// group (`history`, oldest first): `lag k` is the k-th latest training value, and a rolling mean
/// over `w` is the mean of this value and the latest `w - 1` training values (null if any is
/// missing, as pandas' `rolling(w).mean()`).
pub fn lags_at_inference(value: Option<f64>, history: &[Option<f64>], lags: &[usize], windows: &[usize]) -> Vec<Value> {
    let num = |x: Option<f64>| x.filter(|v| !v.is_nan()).map_or(Value::Null, Value::Float);
    let mut out: Vec<Value> =
        lags.iter()
            .map(|&k| {
                if k == 0 { num(value) } else { history.len().checked_sub(k).map_or(Value::Null, |i| num(history[i])) }
            })
            .collect();
    for &w in windows {
        let need = w.saturating_sub(1);
        let window: Option<Vec<Option<f64>>> = (w > 0 && history.len() >= need)
            .then(|| history[history.len() - need..].iter().copied().chain([value]).collect());
        out.push(mean_of(window.as_deref()));
    }
    out
}

fn mean_of(window: Option<&[Option<f64>]>) -> Value {
    let Some(window) = window else { return Value::Null };
    let mut sum = 0.0;
    for v in window {
        match v {
            Some(x) if !x.is_nan() => sum += x,
            _ => return Value::Null,
        }
    }
    Value::Float(sum / window.len() as f64)
}

/// Lags and rolling means over training rows: rows are ordered by `order` (then by position)
/// within each group of `keys`, and each row looks back at the rows before it. Returns one
/// output column per lag, then per window, in row order.
pub fn lags_in_training(
    values: &[Option<f64>],
    keys: &[Option<String>],
    order: &[i64],
    lags: &[usize],
    windows: &[usize],
) -> Vec<Vec<Value>> {
    let n = values.len();
    let mut out = vec![vec![Value::Null; n]; lags.len() + windows.len()];
    let num = |x: Option<f64>| x.filter(|v| !v.is_nan()).map_or(Value::Null, Value::Float);
    for rows in lag_groups(keys, order).values() {
        for (p, &i) in rows.iter().enumerate() {
            for (j, &k) in lags.iter().enumerate() {
                if let Some(q) = p.checked_sub(k) {
                    out[j][i] = num(values[rows[q]]);
                }
            }
            for (j, &w) in windows.iter().enumerate() {
                if w > 0 && p + 1 >= w {
                    let window: Vec<Option<f64>> = rows[p + 1 - w..=p].iter().map(|&r| values[r]).collect();
                    out[lags.len() + j][i] = mean_of(Some(&window));
                }
            }
        }
    }
    out
}

/// Row numbers per group key, each group in time order (ties keep row order); rows with a null
/// key are left out.
pub fn lag_groups<'a>(keys: &'a [Option<String>], order: &[i64]) -> BTreeMap<&'a str, Vec<usize>> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            groups.entry(k.as_str()).or_default().push(i);
        }
    }
    for rows in groups.values_mut() {
        rows.sort_by_key(|&i| (order[i], i));
    }
    groups
}

/// An order key for a lag's time column: microseconds for dates and timestamps, the number
/// itself otherwise (floats by their total order); nulls first.
pub fn order_key(v: &Value) -> i64 {
    match v {
        Value::Date(d) => i64::from(*d) * crate::value::MICROS_PER_DAY,
        Value::Datetime(us) => *us,
        Value::Int(i) => *i,
        Value::Float(f) => {
            let bits = f.to_bits() as i64;
            if bits < 0 { bits ^ i64::MAX } else { bits }
        }
        _ => i64::MIN,
    }
}

pub(super) fn date_parts_row(row: &mut Row, column: &str, parts: &[DatePart], outputs: &[String]) -> Result<()> {
    let v = cell(row, column);
    for (part, out) in parts.iter().zip(outputs) {
        let x = date_part(&v, *part).ok_or_else(|| wrong_type(column, &v, "date"))?;
        row.insert(out.to_string(), x);
    }
    Ok(())
}

pub(super) fn text_stats_row(row: &mut Row, column: &str, stats: &[TextStat], outputs: &[String]) -> Result<()> {
    let v = cell(row, column);
    for (stat, out) in stats.iter().zip(outputs) {
        let x = text_stat(&v, *stat).ok_or_else(|| wrong_type(column, &v, "text"))?;
        row.insert(out.to_string(), x);
    }
    Ok(())
}

pub(super) fn lag_row(
    row: &mut Row,
    column: &str,
    by: &Option<String>,
    lags: &[usize],
    windows: &[usize],
    outputs: &[String],
    history: &BTreeMap<String, Vec<Option<f64>>>,
) -> Result<()> {
    let v = cell(row, column);
    if !v.is_null() && v.as_f64().is_none() {
        return Err(wrong_type(column, &v, "number"));
    }
    let key = lag_key(by.as_ref().map(|b| row.get(b).unwrap_or(&Value::Null)));
    let h = key.and_then(|k| history.get(&k)).map_or(&[][..], Vec::as_slice);
    for (out, x) in outputs.iter().zip(lags_at_inference(v.as_f64(), h, lags, windows)) {
        row.insert(out.to_string(), x);
    }
    Ok(())
}

pub(super) fn group_stats_row(
    row: &mut Row,
    column: &str,
    by: &str,
    stats: &[GroupStat],
    outputs: &[String],
    table: &BTreeMap<String, GroupSummary>,
    fallback: &GroupSummary,
) -> Result<()> {
    let v = cell(row, column);
    if !v.is_null() && v.as_f64().is_none() {
        return Err(wrong_type(column, &v, "number"));
    }
    let summary = cell(row, by).key().and_then(|k| table.get(&k)).unwrap_or(fallback);
    for (stat, out) in stats.iter().zip(outputs) {
        row.insert(out.to_string(), summary.stat(*stat, &v));
    }
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn date_parts_frame(df: DataFrame, name: &str, parts: &[DatePart], outputs: &[String]) -> Result<DataFrame> {
    let outs: Vec<(&String, DType, _)> = parts
        .iter()
        .zip(outputs)
        .map(|(part, out)| {
            let t = if *part == DatePart::IsWeekend { DType::Bool } else { DType::Int };
            (out, t, move |v: &Value| date_part(v, *part))
        })
        .collect();
    derive_columns(df, name, "date", outs)
}

#[cfg(feature = "frame")]
pub(super) fn text_stats_frame(df: DataFrame, name: &str, stats: &[TextStat], outputs: &[String]) -> Result<DataFrame> {
    let outs: Vec<(&String, DType, _)> = stats
        .iter()
        .zip(outputs)
        .map(|(stat, out)| {
            let t = if *stat == TextStat::HasSpecial { DType::Bool } else { DType::Int };
            (out, t, move |v: &Value| text_stat(v, *stat))
        })
        .collect();
    derive_columns(df, name, "text", outs)
}

/// What an [`Op::Lag`] computes: lags and rolling means of `column` within each `by` group in
/// `order_by` order, and at inference from the last training values of the row's group.
#[cfg(feature = "frame")]
pub(super) struct Lagging<'a> {
    pub(super) column: &'a str,
    pub(super) order_by: &'a str,
    pub(super) by: Option<&'a str>,
    pub(super) lags: &'a [usize],
    pub(super) windows: &'a [usize],
    pub(super) outputs: &'a [String],
    pub(super) history: &'a BTreeMap<String, Vec<Option<f64>>>,
}

#[cfg(feature = "frame")]
pub(super) fn lag_frame(df: DataFrame, stage: Stage, lagging: &Lagging<'_>) -> Result<DataFrame> {
    let Lagging { column: name, order_by, by, lags, windows, outputs, history } = *lagging;
    let values: Vec<Option<f64>> = column_values(column(&df, name)?)?
        .iter()
        .map(|v| {
            if v.is_null() {
                Ok(None)
            } else {
                v.as_f64().map(Some).ok_or_else(|| super::wrong_type(name, v, "number"))
            }
        })
        .collect::<Result<_>>()?;
    let groups: Vec<Option<String>> = match by {
        Some(b) => column_values(column(&df, b)?)?.iter().map(|v| lag_key(Some(v))).collect(),
        None => vec![Some(String::new()); df.height()],
    };
    let columns: Vec<Vec<Value>> = match stage {
        Stage::Training => {
            let order: Vec<i64> = column_values(column(&df, order_by)?)?.iter().map(order_key).collect();
            lags_in_training(&values, &groups, &order, lags, windows)
        }
        Stage::Inference => {
            column(&df, order_by)?;
            let mut cols = vec![Vec::with_capacity(df.height()); outputs.len()];
            for (v, k) in values.iter().zip(&groups) {
                let h = k.as_ref().and_then(|k| history.get(k)).map_or(&[][..], Vec::as_slice);
                for (c, x) in cols.iter_mut().zip(lags_at_inference(*v, h, lags, windows)) {
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

#[cfg(feature = "frame")]
pub(super) fn group_stats_frame(
    df: DataFrame,
    name: &str,
    by: &str,
    stats: &[GroupStat],
    outputs: &[String],
    table: &BTreeMap<String, GroupSummary>,
    fallback: &GroupSummary,
) -> Result<DataFrame> {
    let values = column_values(column(&df, name)?)?;
    if let Some(v) = values.iter().find(|v| !v.is_null() && v.as_f64().is_none()) {
        return Err(super::wrong_type(name, v, "number"));
    }
    let groups = column_values(column(&df, by)?)?;
    let summaries: Vec<&GroupSummary> =
        groups.iter().map(|g| g.key().and_then(|k| table.get(&k)).unwrap_or(fallback)).collect();
    let mut df = df;
    for (stat, out) in stats.iter().zip(outputs) {
        let col: Vec<Value> = values.iter().zip(&summaries).map(|(v, s)| s.stat(*stat, v)).collect();
        df = put(df, column_from_values(out, DType::Float, &col))?;
    }
    Ok(df)
}

#[cfg(feature = "frame")]
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
            .map(|v| kernel(v).ok_or_else(|| super::wrong_type(name, v, expected)))
            .collect::<Result<_>>()?;
        df = put(df, column_from_values(out, t, &col))?;
    }
    Ok(df)
}
