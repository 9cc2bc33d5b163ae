//! Row filters (the expression language of `mlops-core`, with `q(p)` quantile bounds) and
//! position- and label-based slices.

use mlops_core::frame::{column_names, numbers, schema_of};
use mlops_core::{DType, Expr, Scalar, Value};
use polars::prelude::{BooleanChunked, DataFrame, IntoLazy, NamedFrom, Series, lit};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SelectError, missing, polars_error};

/// Which rows to keep. The filter runs first, then the slices, each on what is left.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rows {
    /// Keep rows where this is true (a null result drops the row, like pandas' `na=False`), e.g.
    /// `age > 18 and income > 50000`, `email contains "@gmail.com"`, `date >= 2023-01-01`,
    /// `is_null(x)`, `score >= q(0.9)`.
    pub filter: Option<String>,
    /// Rows by position, like `df.iloc[start:stop]` (negative counts from the end).
    pub positions: Option<Positions>,
    /// Rows by the labels in a key column, like `df.loc[...]` on an index.
    pub labels: Option<Labels>,
}

/// `iloc[start:stop]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Positions {
    /// First row (default 0).
    pub start: Option<i64>,
    /// One past the last row (default: the end).
    pub stop: Option<i64>,
}

/// `loc` on a key column: the rows whose key is one of `values`, or lies in `from..=to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// The key column.
    pub column: String,
    /// Keys to keep, in any order (rows keep their order).
    #[serde(default)]
    pub values: Vec<Scalar>,
    /// Lowest key kept (inclusive, as `loc` slices are).
    #[serde(default)]
    pub from: Option<Scalar>,
    /// Highest key kept (inclusive).
    #[serde(default)]
    pub to: Option<Scalar>,
}

/// Parses and checks a filter against a frame's columns, with `q(p)` resolved on its rows.
pub fn compile_filter(df: &DataFrame, text: &str, key: &str) -> Result<Expr> {
    let filter_error = |source| SelectError::Filter { key: key.to_string(), source: Box::new(source) };
    let mut expr = Expr::parse(text).map_err(filter_error)?;
    expr.resolve_quantiles(&mut |column, p| {
        let mut values = numbers(df, column)?;
        mlops_core::stats::quantile_of(&mut values, p).ok_or_else(|| mlops_core::CoreError::WrongType {
            column: column.to_string(),
            found: "no numbers".into(),
            expected: "numbers for q()".into(),
        })
    })
    .map_err(filter_error)?;
    let schema = schema_of(df);
    let out = expr.check(&|c| schema.get(c).copied(), &column_names(df)).map_err(filter_error)?;
    if out.is_some_and(|t| t != DType::Bool) {
        return Err(SelectError::Invalid {
            key: key.to_string(),
            message: format!("`{text}` gives {}, not true or false", out.map_or("null".into(), |t| t.to_string())),
        });
    }
    Ok(expr)
}

/// The rows of `df` where the filter holds.
pub fn filter(df: &DataFrame, text: &str, key: &str) -> Result<DataFrame> {
    let expr = compile_filter(df, text, key)?;
    let schema = schema_of(df);
    let predicate = expr.to_polars(&|c| schema.get(c).copied()).fill_null(lit(false));
    df.clone().lazy().filter(predicate).collect().map_err(polars_error(key))
}

fn clamp(i: i64, n: usize) -> usize {
    let n = n as i64;
    (if i < 0 { n + i } else { i }).clamp(0, n) as usize
}

/// Equal keys: numbers by value (`3` finds `3.0`), everything else by its text.
fn same(v: &Value, w: &Value) -> bool {
    match (v.as_f64(), w.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => !v.is_null() && v.key() == w.key(),
    }
}

fn in_range(v: &Value, from: Option<&Value>, to: Option<&Value>) -> bool {
    let ge = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x >= y,
        _ => a.key() >= b.key(),
    };
    !v.is_null() && from.is_none_or(|f| ge(v, f)) && to.is_none_or(|t| ge(t, v))
}

impl Rows {
    /// Applies the filter, then the slices; `key` prefixes errors (`select.rows`).
    pub fn apply(&self, df: &DataFrame, key: &str) -> Result<DataFrame> {
        let mut out = match &self.filter {
            Some(text) => filter(df, text, &format!("{key}.filter"))?,
            None => df.clone(),
        };
        if let Some(p) = &self.positions {
            let n = out.height();
            let start = clamp(p.start.unwrap_or(0), n);
            let stop = clamp(p.stop.unwrap_or(n as i64), n).max(start);
            out = out.slice(start as i64, stop - start);
        }
        if let Some(l) = &self.labels {
            let key = format!("{key}.labels");
            let col = out.column(&l.column).map_err(|_| missing(&out, &format!("{key}.column"), &l.column))?.clone();
            if l.values.is_empty() && l.from.is_none() && l.to.is_none() {
                return Err(SelectError::Invalid { key, message: "give `values`, or `from` and/or `to`".into() });
            }
            let keys = mlops_core::frame::column_values(&col)?;
            let values: Vec<Value> = l.values.iter().map(Scalar::value).collect();
            let (from, to) = (l.from.as_ref().map(Scalar::value), l.to.as_ref().map(Scalar::value));
            let keep: BooleanChunked = keys
                .iter()
                .map(|v| {
                    Some(if values.is_empty() {
                        in_range(v, from.as_ref(), to.as_ref())
                    } else {
                        values.iter().any(|w| same(v, w))
                    })
                })
                .collect();
            out = out.filter(&keep).map_err(polars_error(&key))?;
        }
        Ok(out)
    }
}

/// Row numbers as a polars series, for taking rows in a given order.
pub(crate) fn take(df: &DataFrame, rows: &[usize], context: &str) -> Result<DataFrame> {
    let idx: Vec<u32> = rows.iter().map(|&i| i as u32).collect();
    let idx = Series::new("idx".into(), idx);
    let idx = idx.u32().map_err(polars_error(context))?;
    df.take(idx).map_err(polars_error(context))
}
