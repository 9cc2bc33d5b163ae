//! Fitting the clean parameters on training rows, applying each operation as it is learned.

use std::collections::BTreeMap;

use mlops_core::frame::{self, Stage, column_names, column_values, dtype_of};
use mlops_core::ops::{CastTo, FillDirection, Op, parse_date, parse_datetime};
use mlops_core::{DType, Scalar, Value, stats};
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};

use crate::error::{CleanError, Result};
use crate::params::{CleanParams, Fill, OutlierAction, OutlierMethod, TypeSpec};

/// What cleaning did, for the run summary and the dataset metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanReport {
    /// Rows before cleaning.
    pub rows_in: usize,
    /// Rows after cleaning.
    pub rows_out: usize,
    /// Values per column that did not convert to the requested type and became null.
    pub coerced: BTreeMap<String, usize>,
    /// Categories seen per categorical column.
    pub categories: BTreeMap<String, Vec<String>>,
    /// Duplicate rows removed.
    pub duplicates_dropped: usize,
    /// Columns removed for having too many nulls.
    pub columns_dropped: Vec<String>,
    /// Rows removed for having nulls.
    pub rows_dropped_for_nulls: usize,
    /// Per filled column: how many nulls were filled, and with what.
    pub filled: BTreeMap<String, FillReport>,
    /// Per outlier column: fitted bounds and how many values were outside them.
    pub outliers: BTreeMap<String, OutlierReport>,
}

/// One column's fill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FillReport {
    /// Nulls filled.
    pub count: usize,
    /// The fill, as text (`median 44.45`, `per species`).
    pub value: String,
}

/// One column's outliers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutlierReport {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Values outside the bounds.
    pub count: usize,
    /// Clip or drop.
    pub action: OutlierAction,
}

/// A cleaned frame, the fitted operations that produced it, and what they did.
#[derive(Debug, Clone)]
pub struct Cleaned {
    /// The cleaned training frame.
    pub frame: DataFrame,
    /// Fitted operations, in order; they join the `FeaturePipeline`.
    pub ops: Vec<Op>,
    /// What cleaning did.
    pub report: CleanReport,
}

fn null_count(df: &DataFrame, name: &str) -> usize {
    df.column(name).map(|c| c.null_count()).unwrap_or(0)
}

fn require(df: &DataFrame, key: &str, name: &str) -> Result<()> {
    if df.column(name).is_err() {
        return Err(CleanError::MissingColumn {
            key: key.to_string(),
            column: name.to_string(),
            available: column_names(df),
        });
    }
    Ok(())
}

/// An error naming `key.name` unless the column is numeric.
fn require_numeric(df: &DataFrame, key: &str, name: &str) -> Result<()> {
    match frame::not_numeric(df, name) {
        Some(message) => Err(CleanError::Invalid { key: format!("{key}.{name}"), message }),
        None => Ok(()),
    }
}

fn numbers(df: &DataFrame, key: &str, name: &str) -> Result<Vec<f64>> {
    require_numeric(df, key, name)?;
    Ok(frame::numbers(df, name)?)
}

/// The first (or last) non-null value of a column.
fn edge_value(df: &DataFrame, name: &str, last: bool) -> Result<Option<Value>> {
    let col = frame::column(df, name)?.drop_nulls();
    if col.is_empty() {
        return Ok(None);
    }
    let at = if last { col.len() as i64 - 1 } else { 0 };
    Ok(column_values(&col.slice(at, 1))?.into_iter().next())
}

fn no_values(key: &str, name: &str, what: &str) -> CleanError {
    CleanError::Invalid {
        key: format!("{key}.{name}"),
        message: format!("no values in the training rows to learn a {what} from"),
    }
}

/// A constant made to fit the column's type.
fn constant_for(df: &DataFrame, name: &str, c: &Scalar) -> Result<Value> {
    let t = df.column(name).ok().and_then(|col| dtype_of(col.dtype()));
    let v = c.value();
    let bad = || CleanError::Invalid {
        key: format!("missing.fill.{name}"),
        message: format!("constant {v} does not fit a {} column", t.map_or_else(|| "?".into(), |t| t.to_string())),
    };
    Ok(match (t, &v) {
        (None, _) => v.clone(),
        (Some(DType::Float), _) => Value::Float(v.as_f64().ok_or_else(bad)?),
        (Some(DType::Int), Value::Int(_) | Value::Float(_)) => v.clone(),
        (Some(DType::Str), _) => Value::Str(v.to_string()),
        (Some(DType::Bool), Value::Bool(_)) => v.clone(),
        (Some(DType::Date), Value::Str(s)) => Value::Date(parse_date(s, &["%Y-%m-%d".into()]).ok_or_else(bad)?),
        (Some(DType::Datetime), Value::Str(s)) => {
            Value::Datetime(parse_datetime(s, &crate::params::default_datetime_formats()).ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    })
}

fn group_fill(df: &DataFrame, name: &str, by: &str, use_median: bool) -> Result<(BTreeMap<String, Value>, Value)> {
    let key = "missing.fill";
    require_numeric(df, key, name)?;
    let learn = |mut xs: Vec<f64>| if use_median { stats::quantile_of(&mut xs, 0.5) } else { stats::mean(&xs) };
    let what = if use_median { "median" } else { "mean" };
    // One copy of the column serves both: by row for the groups, its numbers for the fallback.
    // It is read beside the groups' codes.
    let (vals, keys) = mlops_core::par::join(|| frame::numbers_by_row(df, name), || frame::key_codes(df, by));
    let (vals, (groups, distinct)) = (vals?, keys?);
    // The whole column's statistic (the fallback) is learned beside the groups' ones.
    let (fallback, table) = mlops_core::par::join(
        || learn(vals.iter().copied().filter(|x| !x.is_nan()).collect()),
        || {
            let mut per_group: Vec<Vec<f64>> = vec![Vec::new(); distinct.len()];
            for (g, &x) in groups.iter().zip(&vals) {
                if let Some(g) = g
                    && !x.is_nan()
                {
                    per_group[*g as usize].push(x);
                }
            }
            per_group
                .into_iter()
                .zip(distinct)
                .filter_map(|(xs, k)| Some((k, Value::Float(learn(xs)?))))
                .collect::<BTreeMap<String, Value>>()
        },
    );
    let fallback = fallback.ok_or_else(|| no_values(key, name, what))?;
    Ok((table, Value::Float(fallback)))
}

impl CleanParams {
    /// Checks ranges that do not depend on the data.
    pub fn check(&self) -> Result<()> {
        let fraction = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(CleanError::Invalid { key: key.into(), message: format!("{v} is not a fraction between 0 and 1") })
            }
        };
        if let Some(v) = self.missing.drop_columns_over {
            fraction("missing.drop_columns_over", v)?;
        }
        if let Some(rows) = &self.missing.drop_rows {
            fraction("missing.drop_rows.max_null_fraction", rows.max_null_fraction)?;
        }
        for (name, o) in &self.outliers {
            let (what, v) = match o.method {
                OutlierMethod::Iqr { k } => ("k", k),
                OutlierMethod::Zscore { threshold } => ("threshold", threshold),
            };
            if !(v.is_finite() && v > 0.0) {
                return Err(CleanError::Invalid {
                    key: format!("outliers.{name}.method.{what}"),
                    message: format!("{v} must be a positive number"),
                });
            }
        }
        Ok(())
    }

    /// Fits every part on `train` in order and applies it, returning the cleaned frame, the fitted
    /// operations and a report. Fitting sees only the rows it is given.
    pub fn fit_transform(&self, train: DataFrame) -> Result<Cleaned> {
        self.check()?;
        let mut df = train;
        let mut ops = Vec::new();
        let mut report = CleanReport { rows_in: df.height(), ..CleanReport::default() };
        let apply = |df: DataFrame, op: Op, ops: &mut Vec<Op>| -> Result<DataFrame> {
            let started = std::time::Instant::now();
            let out = op.apply_frame(df, Stage::Training)?;
            tracing::debug!(op = %op.describe(), ms = started.elapsed().as_secs_f64() * 1e3, "clean");
            ops.push(op);
            Ok(out)
        };

        for (name, spec) in &self.types {
            require(&df, "types", name)?;
            let to = match spec {
                TypeSpec::Int => CastTo::Int,
                TypeSpec::Float => CastTo::Float,
                TypeSpec::String | TypeSpec::Categorical => CastTo::Str,
                TypeSpec::Bool { true_values, false_values } => {
                    CastTo::Bool { true_values: true_values.clone(), false_values: false_values.clone() }
                }
                TypeSpec::Date { formats } => CastTo::Date { formats: formats.clone() },
                TypeSpec::Datetime { formats } => CastTo::Datetime { formats: formats.clone() },
            };
            let before = null_count(&df, name);
            df = apply(df, Op::Cast { column: name.clone(), to, on_error: self.type_errors }, &mut ops)?;
            let coerced = null_count(&df, name) - before;
            if coerced > 0 {
                tracing::warn!(column = %name, coerced, "values did not convert and became null");
                report.coerced.insert(name.clone(), coerced);
            }
            if *spec == TypeSpec::Categorical {
                report.categories.insert(name.clone(), frame::categories(&df, name)?);
            }
        }

        for (name, steps) in &self.text {
            require(&df, "text", name)?;
            df = apply(df, Op::Text { column: name.clone(), steps: steps.clone() }, &mut ops)?;
        }

        if let Some(dups) = &self.duplicates {
            let subset = dups.subset.clone().unwrap_or_default();
            for c in &subset {
                require(&df, "duplicates.subset", c)?;
            }
            let before = df.height();
            df = apply(df, Op::Deduplicate { subset, keep: dups.keep }, &mut ops)?;
            report.duplicates_dropped = before - df.height();
        }

        if let Some(limit) = self.missing.drop_columns_over {
            let n = df.height().max(1) as f64;
            let drop: Vec<String> =
                column_names(&df).into_iter().filter(|c| null_count(&df, c) as f64 / n > limit).collect();
            if !drop.is_empty() {
                report.columns_dropped.clone_from(&drop);
                df = apply(df, Op::Drop { columns: drop }, &mut ops)?;
            }
        }

        if let Some(rows) = &self.missing.drop_rows {
            let columns = rows.columns.clone().unwrap_or_default();
            for c in &columns {
                require(&df, "missing.drop_rows.columns", c)?;
            }
            let before = df.height();
            df = apply(df, Op::DropNullRows { columns, max_null_fraction: rows.max_null_fraction }, &mut ops)?;
            report.rows_dropped_for_nulls = before - df.height();
        }

        let fills: Vec<(&String, &Fill)> = self
            .missing
            .fill
            .iter()
            .filter(|(name, _)| {
                let dropped = report.columns_dropped.contains(name);
                if dropped {
                    tracing::warn!(column = %name, "not filled: dropped for having too many nulls");
                }
                !dropped
            })
            .collect();
        // Fills are learned in waves: a run of fills none of which reads a column an earlier one
        // in the run fills is learned at once over the cores, then applied in order. The ops
        // and the report are those of learning and applying one fill after the other.
        let mut next = 0;
        while next < fills.len() {
            let mut end = next;
            let mut filled: Vec<&String> = Vec::new();
            while let Some(&(name, fill)) = fills.get(end) {
                let by = match fill {
                    Fill::GroupMedian { by } | Fill::GroupMean { by } => Some(by),
                    _ => None,
                };
                if filled.contains(&name) || by.is_some_and(|b| filled.contains(&b)) {
                    break;
                }
                filled.push(name);
                end += 1;
            }
            let wave = &fills[next..end];
            let learned = mlops_core::par::map(wave, |&(name, fill)| learn_fill(&df, name, fill)).ok_or_else(|| {
                CleanError::Invalid { key: "missing.fill".into(), message: "a fitting thread failed".into() }
            })?;
            let learned: Vec<(Op, String, usize)> = learned.into_iter().collect::<Result<_>>()?;
            // A fill reads and writes only its own columns, which no other fill of the wave
            // writes: the wave's fills are applied side by side, each to the columns it reads.
            let jobs: Vec<(&String, &Op)> =
                wave.iter().zip(&learned).map(|(&(name, _), (op, _, _))| (name, op)).collect();
            let applied = mlops_core::par::map(&jobs, |&(name, op)| -> Result<(Column, f64)> {
                let started = std::time::Instant::now();
                let failed = |e| mlops_core::CoreError::polars(format!("cannot fill `{name}`"), e);
                let inputs = df.select(op.inputs()).map_err(failed)?;
                let filled = op.apply_frame(inputs, Stage::Training)?.column(name).map_err(failed)?.clone();
                Ok((filled, started.elapsed().as_secs_f64() * 1e3))
            })
            .ok_or_else(|| CleanError::Invalid {
                key: "missing.fill".into(),
                message: "a filling thread failed".into(),
            })?;
            for ((&(name, _), (op, value, count)), applied) in wave.iter().zip(learned).zip(applied) {
                let (filled, ms) = applied?;
                df.with_column(filled)
                    .map_err(|e| mlops_core::CoreError::polars(format!("cannot fill `{name}`"), e))?;
                tracing::debug!(op = %op.describe(), ms, "clean");
                ops.push(op);
                report.filled.insert(name.clone(), FillReport { count, value });
            }
            next = end;
        }

        for (name, outliers) in &self.outliers {
            require(&df, "outliers", name)?;
            let xs = numbers(&df, "outliers", name)?;
            let (lower, upper) = match outliers.method {
                OutlierMethod::Iqr { k } => {
                    let (q1, q3) = mlops_core::par::join(
                        || stats::quantile_of(&mut xs.clone(), 0.25),
                        || stats::quantile_of(&mut xs.clone(), 0.75),
                    );
                    let (q1, q3) = q1.zip(q3).ok_or_else(|| no_values("outliers", name, "quartile"))?;
                    (q1 - k * (q3 - q1), q3 + k * (q3 - q1))
                }
                OutlierMethod::Zscore { threshold } => {
                    let m = stats::mean(&xs).ok_or_else(|| no_values("outliers", name, "mean"))?;
                    let s = stats::std_dev(&xs).unwrap_or(0.0);
                    (m - threshold * s, m + threshold * s)
                }
            };
            let count = xs.iter().filter(|x| **x < lower || **x > upper).count();
            let op = match outliers.action {
                OutlierAction::Clip => Op::Clip { column: name.clone(), lower, upper },
                OutlierAction::Drop => Op::FilterRange { column: name.clone(), lower, upper },
            };
            df = apply(df, op, &mut ops)?;
            report.outliers.insert(name.clone(), OutlierReport { lower, upper, count, action: outliers.action });
        }

        report.rows_out = df.height();
        tracing::info!(rows_in = report.rows_in, rows_out = report.rows_out, ops = ops.len(), "cleaned");
        Ok(Cleaned { frame: df, ops, report })
    }
}

/// Learns one column's fill from `df`: the op, how it is described, and the nulls it fills.
fn learn_fill(df: &DataFrame, name: &str, fill: &Fill) -> Result<(Op, String, usize)> {
    let key = "missing.fill";
    require(df, key, name)?;
    let count = null_count(df, name);
    let column = name.to_string();
    let (op, described) = match fill {
        Fill::Mean => {
            let m = stats::mean(&numbers(df, key, name)?).ok_or_else(|| no_values(key, name, "mean"))?;
            (Op::FillNull { column, value: Value::Float(m) }, format!("mean {m}"))
        }
        Fill::Median => {
            let m =
                stats::quantile_of(&mut numbers(df, key, name)?, 0.5).ok_or_else(|| no_values(key, name, "median"))?;
            (Op::FillNull { column, value: Value::Float(m) }, format!("median {m}"))
        }
        Fill::Mode => {
            let m = frame::mode(df, name)?.ok_or_else(|| no_values(key, name, "mode"))?;
            let described = format!("mode {m}");
            (Op::FillNull { column, value: m }, described)
        }
        Fill::Constant(c) => {
            let v = constant_for(df, name, c)?;
            let described = format!("constant {v}");
            (Op::FillNull { column, value: v }, described)
        }
        Fill::GroupMedian { by } | Fill::GroupMean { by } => {
            require(df, &format!("missing.fill.{name}.by"), by)?;
            let median = matches!(fill, Fill::GroupMedian { .. });
            let (values, fallback) = group_fill(df, name, by, median)?;
            let described = format!("{} per {by}", if median { "median" } else { "mean" });
            (Op::FillNullByGroup { column, by: by.clone(), values, fallback }, described)
        }
        Fill::Forward | Fill::Backward => {
            let forward = *fill == Fill::Forward;
            let direction = if forward { FillDirection::Forward } else { FillDirection::Backward };
            let fallback = edge_value(df, name, forward)?.ok_or_else(|| no_values(key, name, "fill value"))?;
            let described = format!("{direction:?} fill").to_lowercase();
            (Op::FillSequence { column, direction, fallback }, described)
        }
    };
    Ok((op, described, count))
}

impl mlops_core::Fit for CleanParams {
    type Fitted = Vec<Op>;
    type Error = CleanError;

    fn fit(&self, train: &DataFrame) -> Result<Vec<Op>> {
        Ok(self.fit_transform(train.clone())?.ops)
    }
}
