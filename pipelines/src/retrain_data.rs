//! The data a lifecycle retraining runs on (step 23): the data config's sources as they are, or
//! with the labelled rows the server logged appended to the primary source, as records a caller
//! sent plus their actual outcome in the source's own target column.
//!
//! The label in the feedback is the model's class (`Adelie`), while the source holds the raw
//! value the prepare run mapped to it (`Adelie Penguin (Pygoscelis adeliae)`) in a raw column
//! (`Species`). Which column and which value are read off the source itself: every source row
//! goes through the dataset version's prepare operations (the row path), and the source column
//! whose values pair one to one with the prepared target is the target's raw column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mlops_core::{DType, FeaturePipeline, Row, Transform, Value};
use polars::prelude::DataFrame;
use step01_ingest::{ParquetSource, SourceConfig};
use step22_monitor::LabelledRow;
use step23_lifecycle::RetrainData;

use crate::config::{DataConfig, TrainingConfig};
use crate::error::{PipelineError, Result};
use crate::prepare::{Silent, prepare};

/// What a retraining runs on.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RetrainingData {
    /// The training config to run (the policy's own for `sources`, else a derived one).
    pub training: PathBuf,
    /// Rows of the primary source it trains on (before the prepare run).
    pub rows: usize,
    /// Labelled rows appended.
    pub appended: usize,
    /// Labelled rows left out: their label is none the source knows.
    pub unknown_labels: usize,
    /// The source column the labels went into.
    pub target_column: Option<String>,
    /// Checks of the primary source's schema eased for the columns the logged rows do not carry
    /// (the server only sees the signature's columns: the others are null in appended rows).
    pub eased: Vec<String>,
}

fn failed(message: String) -> PipelineError {
    PipelineError::Retraining { message }
}

/// Writes the data and the configs a retraining runs on into `dir` and answers the training
/// config to run. `base` is the policy's training config; `labelled` the logged rows with their
/// actual outcomes (for `append` and `window`). For `sources` nothing is written: the answer is
/// `base` and the primary source's row count (the prepare run that counts them is reused by the
/// training run when nothing changed).
pub fn retraining_data(base: &Path, mode: RetrainData, labelled: &[LabelledRow], dir: &Path) -> Result<RetrainingData> {
    let training = TrainingConfig::load(base)?.resolved(Path::new(""));
    let data_path = training.data.clone();
    let data = DataConfig::load(&data_path)?.resolved(Path::new(""));
    let prepared = prepare(&data, &data_path, &mut Silent)?;
    let source = prepared.source.as_ref().ok_or_else(|| {
        failed(format!("{}: the prepare run kept no rows of the primary source", data_path.display()))
    })?;
    if mode == RetrainData::Sources {
        return Ok(RetrainingData {
            training: base.to_path_buf(),
            rows: source.height(),
            appended: 0,
            unknown_labels: 0,
            target_column: None,
            eased: Vec::new(),
        });
    }
    let target = training
        .model
        .as_ref()
        .map(|m| m.target.clone())
        .ok_or_else(|| failed(format!("{}: no `model.target` to put the labels in", base.display())))?;
    let pipeline: FeaturePipeline = {
        let path = prepared.path.join("pipeline.json");
        let text = std::fs::read_to_string(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| failed(format!("{}: {e}", path.display())))?
    };
    let columns: Vec<(String, DType)> = source
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), mlops_core::frame::dtype_of(c.dtype()).unwrap_or(DType::Str)))
        .collect();
    let (raw_target, labels) = raw_target(source, &pipeline, &target)?;
    let mut rows: Vec<Row> = Vec::with_capacity(labelled.len());
    let mut unknown_labels = 0;
    for l in labelled {
        let Some(raw) =
            l.actual.as_str().map(str::to_string).or_else(|| Some(l.actual.to_string())).and_then(|a| labels.get(&a))
        else {
            unknown_labels += 1;
            continue;
        };
        let mut row: Row = columns
            .iter()
            .filter_map(|(name, _)| l.inputs.get(name).map(|v| (name.clone(), Value::from_json(v))))
            .collect();
        row.insert(raw_target.clone(), raw.clone());
        rows.push(row);
    }
    let appended =
        mlops_core::frame::frame_from_rows(&rows, &columns).map_err(|e| PipelineError::step("lifecycle", e))?;
    let mut all = source
        .vstack(&appended)
        .map_err(|e| failed(format!("the labelled rows do not fit the source's columns: {e}")))?;
    if let RetrainData::Window { rows: keep } = mode {
        all = all.tail(Some(keep));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| PipelineError::step("lifecycle", mlops_core::CoreError::io("cannot create directory", dir, e)))?;
    let parquet = dir.join("primary.parquet");
    crate::features::write_frame(&all, &parquet)?;
    // The derived configs: the primary source read from that file, everything else as it was.
    let primary = data.primary_name(&data_path)?;
    let mut derived = data.clone();
    let carried: BTreeSet<&String> = rows.iter().flat_map(|r| r.keys()).collect();
    let absent = |c: &String| !rows.is_empty() && !carried.contains(c);
    let mut eased = Vec::new();
    if let Some(schema) = derived.validate.get_mut(&primary) {
        for (name, rule) in schema.columns.iter_mut().filter(|(name, _)| absent(name)) {
            if !rule.nullable {
                rule.nullable = true;
                eased.push(format!("`{name}` may be null"));
            }
            if rule.unique {
                rule.unique = false;
                eased.push(format!("`{name}` need not be unique"));
            }
        }
        schema.unique.retain(|u| {
            let keep = !u.columns.iter().any(absent);
            if !keep {
                eased.push(format!("({}) need not be unique", u.columns.join(", ")));
            }
            keep
        });
    }
    derived.sources.insert(primary, SourceConfig::Parquet(ParquetSource { path: parquet, columns: None, limit: None }));
    let data_yaml = dir.join("data.yaml");
    write_json_yaml(&data_yaml, &derived)?;
    let mut derived_training = training.clone();
    derived_training.data = data_yaml;
    let training_yaml = dir.join("training.yaml");
    write_json_yaml(&training_yaml, &derived_training)?;
    tracing::info!(rows = all.height(), appended = rows.len(), unknown_labels, "retraining data written");
    Ok(RetrainingData {
        training: training_yaml,
        rows: all.height(),
        appended: rows.len(),
        unknown_labels,
        target_column: Some(raw_target),
        eased,
    })
}

/// A config as JSON, which is YAML too (so `load_yaml` reads it back with file/key/line errors).
fn write_json_yaml(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    mlops_core::io::atomic_write(path, text.as_bytes()).map_err(|e| PipelineError::step("lifecycle", e))
}

/// The source column that holds `target` before the prepare run, and each prepared label's raw
/// value: the column whose values pair one to one with the prepared target's over the source's
/// rows (the one whose name reads like the target's when several do).
fn raw_target(
    source: &DataFrame,
    pipeline: &FeaturePipeline,
    target: &str,
) -> Result<(String, BTreeMap<String, Value>)> {
    let rows = mlops_core::frame::rows_from_frame(source).map_err(|e| PipelineError::step("lifecycle", e))?;
    // column -> raw key -> prepared labels, and column -> label -> raw keys (with a raw value each).
    let mut forward: BTreeMap<&str, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut backward: BTreeMap<&str, BTreeMap<String, BTreeMap<String, Value>>> = BTreeMap::new();
    for row in &rows {
        let mut prepared = row.clone();
        if pipeline.transform_row(&mut prepared).is_err() {
            continue;
        }
        let Some(label) = prepared.get(target).and_then(Value::key) else { continue };
        for (column, value) in row {
            let Some(raw) = value.key() else { continue };
            forward.entry(column).or_default().entry(raw.clone()).or_default().insert(label.clone());
            backward.entry(column).or_default().entry(label.clone()).or_default().insert(raw, value.clone());
        }
    }
    let labels: BTreeSet<&String> = backward.values().flat_map(|m| m.keys()).collect();
    let squash = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    let mut candidates: Vec<&str> = forward
        .iter()
        .filter(|(c, f)| {
            f.values().all(|l| l.len() == 1)
                && backward[*c].values().all(|r| r.len() == 1)
                && backward[*c].len() == labels.len()
        })
        .map(|(c, _)| *c)
        .collect();
    candidates.sort_by_key(|c| squash(c) != squash(target));
    let Some(column) = candidates.first() else {
        return Err(failed(format!(
            "no column of the primary source pairs one to one with the target `{target}` after the prepare run, so the labels cannot be put back into the source's terms"
        )));
    };
    let map = backward[column]
        .iter()
        .filter_map(|(label, raws)| raws.values().next().map(|v| (label.clone(), v.clone())))
        .collect();
    Ok((column.to_string(), map))
}
