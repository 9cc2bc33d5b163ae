//! Row filters: rows out of range, rows with too many nulls, duplicate rows. They filter training
//! frames only; at inference every row passes, so the row path has nothing to do.

use super::*;
use crate::Result;
use crate::frame::*;
use polars::prelude::{self as pl, BooleanChunked, DataFrame};

pub(super) fn filter_range_frame(
    df: DataFrame,
    stage: Stage,
    name: &str,
    lower: &f64,
    upper: &f64,
) -> Result<DataFrame> {
    let ca = f64_column(&df, name)?;
    if stage == Stage::Inference {
        return Ok(df);
    }
    let keep: BooleanChunked = ca.iter().map(|o| Some(o.is_none_or(|x| !(x < *lower || x > *upper)))).collect();
    df.filter(&keep).map_err(pe("cannot filter rows"))
}

pub(super) fn drop_null_rows_frame(
    df: DataFrame,
    stage: Stage,
    columns: &[String],
    max_null_fraction: &f64,
) -> Result<DataFrame> {
    let cols: Vec<String> = if columns.is_empty() { column_names(&df) } else { columns.to_vec() };
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
    let keep: BooleanChunked = nulls.iter().map(|n| Some(*n as f64 / total <= *max_null_fraction)).collect();
    df.filter(&keep).map_err(pe("cannot drop rows with nulls"))
}

pub(super) fn deduplicate_frame(df: DataFrame, stage: Stage, subset: &[String], keep: &Keep) -> Result<DataFrame> {
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
