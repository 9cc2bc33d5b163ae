//! Step 16 in the training run: the chosen model's package, with its signature and reference
//! profile computed from the training rows before the features (what a server is sent).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlops_core::{ColumnSchema, DType, FeaturePipeline, Op, Row, Signature, TaskKind};
use polars::prelude::DataFrame;
use step16_package::{Lineage, ModelInfo, PackageContents, ReferenceProfile};

use crate::error::{PipelineError, Result};

/// Distinct values up to which a text column's categories go into the signature, and categories
/// kept per column in the profile.
const MAX_CATEGORIES: usize = 50;

/// The input signature and the reference profile of the training rows before the features
/// (without the target): the signature of a package whose dataset version records no source.
pub(crate) fn signature_and_profile(
    train_raw: &DataFrame,
    target: &str,
    outputs: Vec<ColumnSchema>,
) -> Result<(Signature, ReferenceProfile)> {
    let names: Vec<String> =
        train_raw.get_column_names().iter().map(|c| c.to_string()).filter(|c| c != target).collect();
    let inputs = names.iter().map(|name| describe(train_raw, name, &[])).collect::<Result<Vec<_>>>()?;
    Ok((Signature { inputs, outputs }, profile(train_raw, target)?))
}

/// The reference profile of the training rows before the features, without the target.
pub(crate) fn profile(train_raw: &DataFrame, target: &str) -> Result<ReferenceProfile> {
    let err = |e| PipelineError::step("package", e);
    let mut columns = BTreeMap::new();
    for col in train_raw.columns().iter().filter(|c| c.name().as_str() != target) {
        let name = col.name().to_string();
        let profile = if matches!(mlops_core::frame::dtype_of(col.dtype()), Some(DType::Int | DType::Float)) {
            let values: Vec<Option<f64>> =
                mlops_core::frame::f64_column(train_raw, &name).map_err(err)?.iter().collect();
            step16_package::numeric_profile(&values)
        } else {
            step16_package::categorical_profile(
                &mlops_core::frame::keys(train_raw, &name).map_err(err)?,
                MAX_CATEGORIES,
            )
        };
        columns.insert(name, profile);
    }
    Ok(ReferenceProfile { rows: train_raw.height(), columns })
}

/// Column `name` of `df` as a model input: its type, whether it has nulls, the smallest and
/// largest number or the categories of a text column with few of them; `null_values` are the
/// texts its source reads as missing.
pub(crate) fn describe(df: &DataFrame, name: &str, null_values: &[String]) -> Result<ColumnSchema> {
    let err = |e| PipelineError::step("package", e);
    let col = mlops_core::frame::column(df, name).map_err(err)?;
    let dtype = mlops_core::frame::dtype_of(col.dtype()).unwrap_or(DType::Str);
    let mut schema = ColumnSchema::new(name, dtype, col.null_count() > 0);
    schema.null_values = null_values.to_vec();
    match dtype {
        DType::Int | DType::Float => {
            let (lo, hi) = mlops_core::frame::f64_column(df, name)
                .map_err(err)?
                .iter()
                .flatten()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            schema.range = lo.is_finite().then_some((lo, hi));
        }
        DType::Str => {
            let distinct = col.n_unique().map_err(|e| err(mlops_core::CoreError::polars(name.to_string(), e)))?;
            if distinct <= MAX_CATEGORIES + 1 {
                let values = mlops_core::frame::keys(df, name).map_err(err)?;
                let categories: std::collections::BTreeSet<String> = values.into_iter().flatten().collect();
                schema.categories = (categories.len() <= MAX_CATEGORIES).then(|| categories.into_iter().collect());
            }
        }
        _ => {}
    }
    Ok(schema)
}

/// What a package transforms and from what: the operations from a caller's record to the model's
/// features, and the columns the caller sends (`None`: the training rows' columns, for a dataset
/// version that records no source), with what is worth a warning.
pub(crate) struct Road {
    pub pipeline: FeaturePipeline,
    pub inputs: Option<Vec<ColumnSchema>>,
    pub warnings: Vec<String>,
    /// How many of the pipeline's first operations are the prepare run's.
    pub source_ops: Option<usize>,
}

/// The road from the source's columns to `features`: the prepare run's operations (`prepared`,
/// read from the dataset version) in front of the feature pipeline, cut down to what the model's
/// features depend on. The inputs are the source columns that road reads, without the ones the
/// target comes from (a served record does not carry them).
pub(crate) fn road(
    prepared: Option<&FeaturePipeline>,
    engineered: &FeaturePipeline,
    features: &[String],
    target: &str,
) -> Result<Road> {
    let Some((prepared, source)) = prepared.and_then(|p| p.source.as_ref().map(|s| (p, s))) else {
        return Ok(Road {
            pipeline: engineered.clone(),
            inputs: None,
            source_ops: None,
            warnings: vec![
                "the dataset version records no source columns (prepared by an earlier toolkit): the package takes curated rows; run `mlops prepare` again for raw records".into(),
            ],
        });
    };
    let mut whole = FeaturePipeline::new();
    whole.extend(prepared.ops.iter().cloned());
    whole.extend(engineered.ops.iter().cloned());
    let road = whole.road_to(features.iter().map(String::as_str));
    // Walking back, the features' part of the road is what the features alone need.
    let source_ops = road.ops.len() - engineered.road_to(features.iter().map(String::as_str)).ops.len();
    let from_target = prepared.road_to([target]).inputs;
    let mut warnings = Vec::new();
    for op in &road.ops {
        let reads: Vec<String> = op.inputs().into_iter().filter(|c| from_target.contains(c)).collect();
        if !reads.is_empty() && prepared.ops.contains(op) {
            warnings.push(format!(
                "prepare: `{}` reads `{}`, which the target comes from; served records do not carry it, so there the operation works without it (move it to `features` or drop it)",
                op.describe(),
                reads.join("`, `")
            ));
        }
        if prepared.ops.contains(op)
            && matches!(op, Op::Scale { .. } | Op::OneHot { .. } | Op::Ordinal { .. } | Op::TargetEncode { .. })
        {
            warnings.push(format!(
                "prepare: `{}` learned from every prepared row, the test part's too; learn it in `features` (fitted on the training part) so that the test score is honest",
                op.describe()
            ));
        }
    }
    let mut inputs = Vec::new();
    for name in road.inputs.iter().filter(|c| !from_target.contains(*c)) {
        match source.columns.iter().find(|c| &c.name == name) {
            // Text that the road parses (dates, numbers) has values, not categories.
            Some(c) if parsed(&road.ops, name) => inputs.push(ColumnSchema { categories: None, ..c.clone() }),
            Some(c) => inputs.push(c.clone()),
            None => {
                return Err(PipelineError::step(
                    "package",
                    mlops_core::CoreError::MissingColumn {
                        column: name.clone(),
                        available: source.columns.iter().map(|c| c.name.clone()).collect(),
                    },
                ));
            }
        }
    }
    // In the source's column order.
    inputs.sort_by_key(|c| source.columns.iter().position(|s| s.name == c.name));
    Ok(Road {
        pipeline: FeaturePipeline { ops: road.ops, ..FeaturePipeline::new() },
        inputs: Some(inputs),
        warnings,
        source_ops: Some(source_ops),
    })
}

/// Whether `ops` cast column `name` (under its later names) to a type other than text.
fn parsed(ops: &[Op], name: &str) -> bool {
    let mut current = name.to_string();
    for op in ops {
        match op {
            Op::Rename { mapping } => {
                if let Some((_, to)) = mapping.iter().find(|(from, _)| *from == current) {
                    current = to.clone();
                }
            }
            Op::Cast { column, to, .. } if *column == current => return to.dtype() != DType::Str,
            _ => {}
        }
    }
    false
}

/// The outputs of a model: the label and one probability per class, or the predicted value.
pub(crate) fn outputs(task: TaskKind, classes: &[String]) -> Vec<ColumnSchema> {
    let column = |name: String, dtype, categories| ColumnSchema { categories, ..ColumnSchema::new(name, dtype, false) };
    match task {
        TaskKind::Regression => vec![column("prediction".into(), DType::Float, None)],
        _ => std::iter::once(column("label".into(), DType::Str, Some(classes.to_vec())))
            .chain(classes.iter().map(|c| ColumnSchema {
                range: Some((0.0, 1.0)),
                ..column(format!("probability_{c}"), DType::Float, None)
            }))
            .collect(),
    }
}

/// The versions of the crates that read a package.
pub(crate) fn lineage(run_id: &str, training_run: &str, dataset: &str, config_sha256: Option<String>) -> Lineage {
    let version = env!("CARGO_PKG_VERSION").to_string();
    Lineage {
        dataset_version: Some(dataset.to_string()),
        config_sha256,
        run_id: run_id.to_string(),
        training_run_id: Some(training_run.to_string()),
        source_commit: crate::run_key::source_commit(),
        toolkit_version: version.clone(),
        crates: ["mlops-core", "step11-candidates", "step16-package", "pipelines"]
            .into_iter()
            .map(|c| (c.to_string(), version.clone()))
            .collect(),
        split: None,
    }
}

/// Writes `contents` to `dir` (replacing an earlier package there).
pub(crate) fn write(dir: &Path, contents: &PackageContents) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| PipelineError::step("package", mlops_core::CoreError::io("cannot replace", dir, e)))?;
    }
    step16_package::write(dir, contents).map_err(|e| PipelineError::step("package", e))?;
    Ok(dir.to_path_buf())
}

/// A few raw rows as an input example.
pub(crate) fn example(rows: &[Row]) -> Vec<Row> {
    rows.iter().take(5).cloned().collect()
}

/// What the package's model info says.
pub(crate) fn info(
    family: &str,
    params: BTreeMap<String, String>,
    target: &crate::target::TargetInfo,
    features: &[String],
) -> ModelInfo {
    ModelInfo {
        family: family.to_string(),
        params,
        task: target.task,
        target: target.name.clone(),
        classes: target.classes.clone(),
        features: features.to_vec(),
        source_ops: None,
    }
}
