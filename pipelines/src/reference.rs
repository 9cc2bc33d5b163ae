//! The reference data a package keeps for monitoring (step 22): the training rows as a caller
//! sends them, and the model's predictions on the test part.
//!
//! The training part is a split of the curated dataset, whose rows no longer look like the
//! source's: the prepare run renamed, parsed, cleaned and encoded them. To keep training rows as
//! they arrived, the source's rows go through the package's own prepare operations (the row path a
//! server takes) and a source row is kept when what comes out equals a training row on every
//! column both have (each training row matched once). The source's rows are visited in a seeded
//! order, and the visit stops at [`MAX_ROWS`] kept rows: the same data and seed keep the same
//! rows.

use std::collections::HashMap;
use std::io::Cursor;

use mlops_core::{FeaturePipeline, Row, Transform, Value};
use polars::prelude::{DataFrame, IdxCa, NamedFrom, ParquetReader, ParquetWriter, SerReader, Series};

use crate::error::{PipelineError, Result};

/// Training rows kept at most.
pub const MAX_ROWS: usize = 100_000;

/// Source rows transformed at a time.
const CHUNK: usize = 16_384;

fn failed(e: mlops_core::CoreError) -> PipelineError {
    PipelineError::step("package", e)
}

fn polars_failed(what: &str) -> impl Fn(polars::prelude::PolarsError) -> PipelineError + '_ {
    move |e| failed(mlops_core::CoreError::polars(what.to_string(), e))
}

/// What [`training_rows`] found.
pub(crate) struct Kept {
    /// The kept source rows, in the source's order (the signature's input columns).
    pub frame: DataFrame,
    /// Source rows visited.
    pub visited: usize,
}

/// Up to [`MAX_ROWS`] rows of `source` (the primary source as read), cut to `inputs`, whose
/// prepared form (`prepare`, the package's first operations) is a row of `train_raw` (the
/// training part before the features) on every column both have but `target`. `None` when the
/// source lacks an input column (one a joined source brings, which the caller sends) or when no
/// column can be compared.
pub(crate) fn training_rows(
    source: &DataFrame,
    inputs: &[String],
    prepare: &FeaturePipeline,
    train_raw: &DataFrame,
    target: &str,
    seed: mlops_core::Seed,
) -> Result<Option<Kept>> {
    let names = mlops_core::frame::column_names(source);
    if let Some(missing) = inputs.iter().find(|c| !names.contains(c)) {
        tracing::warn!(column = %missing, "the source lacks an input column; the package keeps no reference rows");
        return Ok(None);
    }
    let source = source.select(inputs.iter().map(String::as_str)).map_err(polars_failed("reference rows"))?;
    let order = seed.derive("reference").draws().permutation(source.height());
    let mut wanted: Option<(Vec<String>, HashMap<String, u32>)> = None;
    let mut kept: Vec<u32> = Vec::new();
    let mut visited = 0;
    for chunk in order.chunks(CHUNK) {
        if kept.len() >= MAX_ROWS {
            break;
        }
        let part = take(&source, chunk.iter().copied())?;
        let raw = mlops_core::frame::rows_from_frame(&part).map_err(failed)?;
        for (row, &at) in raw.into_iter().zip(chunk) {
            if kept.len() >= MAX_ROWS {
                break;
            }
            visited += 1;
            let mut prepared = row;
            // A row the prepare operations refuse is not one the model was trained on.
            if prepare.transform_row(&mut prepared).is_err() {
                continue;
            }
            let (columns, counts) = match &mut wanted {
                Some(w) => w,
                None => {
                    let columns: Vec<String> = mlops_core::frame::column_names(train_raw)
                        .into_iter()
                        .filter(|c| c != target && prepared.contains_key(c))
                        .collect();
                    if columns.is_empty() {
                        tracing::warn!("no training column survives the prepare operations; no reference rows");
                        return Ok(None);
                    }
                    let counts = multiset(train_raw, &columns)?;
                    wanted.insert((columns, counts))
                }
            };
            let key = row_key(&prepared, columns);
            if let Some(n) = counts.get_mut(&key).filter(|n| **n > 0) {
                *n -= 1;
                kept.push(at as u32);
            }
        }
    }
    kept.sort_unstable();
    let frame = take(&source, kept.iter().map(|&i| i as usize))?;
    Ok(Some(Kept { frame, visited }))
}

/// Up to [`MAX_ROWS`] rows of `frame` (training rows that are what a caller sends), cut to
/// `inputs`: a seeded sample, in the frame's order.
pub(crate) fn sampled_rows(frame: &DataFrame, inputs: &[String], seed: mlops_core::Seed) -> Result<Kept> {
    let columns = frame.select(inputs.iter().map(String::as_str)).map_err(polars_failed("reference rows"))?;
    let n = columns.height();
    let mut rows: Vec<usize> = seed.derive("reference").draws().permutation(n).into_iter().take(MAX_ROWS).collect();
    rows.sort_unstable();
    Ok(Kept { frame: take(&columns, rows.into_iter())?, visited: n })
}

/// The rows of `frame` at `rows`, in that order.
fn take(frame: &DataFrame, rows: impl Iterator<Item = usize>) -> Result<DataFrame> {
    let idx = IdxCa::new("idx".into(), rows.map(|i| i as polars::prelude::IdxSize).collect::<Vec<_>>());
    frame.take(&idx).map_err(polars_failed("reference rows"))
}

/// How many training rows have each key.
fn multiset(train_raw: &DataFrame, columns: &[String]) -> Result<HashMap<String, u32>> {
    let values: Vec<Vec<Value>> = columns
        .iter()
        .map(|c| mlops_core::frame::column(train_raw, c).and_then(mlops_core::frame::column_values))
        .collect::<std::result::Result<_, _>>()
        .map_err(failed)?;
    let mut counts = HashMap::with_capacity(train_raw.height());
    for i in 0..train_raw.height() {
        let mut key = String::new();
        for column in &values {
            push_value(&mut key, column.get(i).unwrap_or(&Value::Null));
        }
        *counts.entry(key).or_insert(0) += 1;
    }
    Ok(counts)
}

fn row_key(row: &Row, columns: &[String]) -> String {
    let mut key = String::new();
    for c in columns {
        push_value(&mut key, row.get(c).unwrap_or(&Value::Null));
    }
    key
}

/// A value as key text: numbers to 12 significant digits whatever their type (the frame path and
/// the row path may round the last bit differently), a separator that text cannot hold.
fn push_value(key: &mut String, v: &Value) {
    use std::fmt::Write;
    let _ = match v {
        Value::Null => write!(key, "∅"),
        Value::Bool(b) => write!(key, "b{b}"),
        Value::Int(i) => write!(key, "n{:.11e}", *i as f64),
        Value::Float(f) if f.is_nan() => write!(key, "∅"),
        Value::Float(f) => write!(key, "n{f:.11e}"),
        Value::Str(s) => write!(key, "s{s}"),
        Value::Date(d) => write!(key, "d{d}"),
        Value::Datetime(t) => write!(key, "t{t}"),
    };
    key.push('\u{1f}');
}

/// The model's predictions on the test part as a frame: `label` (class names) or `prediction`.
pub(crate) fn predictions_frame(predicted: &[f64], classes: &[String]) -> DataFrame {
    let column = if classes.is_empty() {
        Series::new("prediction".into(), predicted.to_vec())
    } else {
        let labels: Vec<Option<&str>> =
            predicted.iter().map(|&p| classes.get(p.max(0.0) as usize).map(String::as_str)).collect();
        Series::new("label".into(), labels)
    };
    DataFrame::new(predicted.len(), vec![column.into()]).unwrap_or_default()
}

/// A frame as Parquet bytes (zstd).
pub(crate) fn to_parquet(frame: &DataFrame) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut frame = frame.clone();
    ParquetWriter::new(Cursor::new(&mut bytes))
        .with_compression(polars::prelude::ParquetCompression::Zstd(None))
        .finish(&mut frame)
        .map_err(polars_failed("reference parquet"))?;
    Ok(bytes)
}

/// Parquet bytes as a frame; `what` names them in an error.
pub fn from_parquet(bytes: &[u8], what: &str) -> Result<DataFrame> {
    ParquetReader::new(Cursor::new(bytes)).finish().map_err(polars_failed(what))
}
