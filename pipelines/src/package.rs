//! Step 16 in the training run: the chosen model's package, with its signature and reference
//! profile computed from the training rows before the features (what a server is sent).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlops_core::{ColumnSchema, DType, Row, Signature, TaskKind};
use polars::prelude::DataFrame;
use step16_package::{ColumnProfile, Lineage, ModelInfo, PackageContents, ReferenceProfile};

use crate::error::{PipelineError, Result};

/// Distinct values up to which a text column's categories go into the signature, and categories
/// kept per column in the profile.
const MAX_CATEGORIES: usize = 50;

/// The input signature and the reference profile of the raw training rows (without the target).
pub(crate) fn signature_and_profile(
    train_raw: &DataFrame,
    target: &str,
    outputs: Vec<ColumnSchema>,
) -> Result<(Signature, ReferenceProfile)> {
    let err = |e| PipelineError::step("package", e);
    let mut inputs = Vec::new();
    let mut columns = BTreeMap::new();
    for col in train_raw.columns() {
        let name = col.name().to_string();
        if name == target {
            continue;
        }
        let dtype = mlops_core::frame::dtype_of(col.dtype()).unwrap_or(DType::Str);
        let nullable = col.null_count() > 0;
        let (categories, range, profile) = if matches!(dtype, DType::Int | DType::Float) {
            let values: Vec<Option<f64>> =
                mlops_core::frame::f64_column(train_raw, &name).map_err(err)?.iter().collect();
            let profile = step16_package::numeric_profile(&values);
            let range = match &profile {
                ColumnProfile::Numeric { min, max, .. } if min.is_finite() => Some((*min, *max)),
                _ => None,
            };
            (None, range, profile)
        } else {
            let values = mlops_core::frame::keys(train_raw, &name).map_err(err)?;
            let distinct: std::collections::BTreeSet<&String> = values.iter().flatten().collect();
            let categories = (dtype == DType::Str && distinct.len() <= MAX_CATEGORIES)
                .then(|| distinct.into_iter().cloned().collect());
            (categories, None, step16_package::categorical_profile(&values, MAX_CATEGORIES))
        };
        inputs.push(ColumnSchema { name: name.clone(), dtype, nullable, categories, range });
        columns.insert(name, profile);
    }
    Ok((Signature { inputs, outputs }, ReferenceProfile { rows: train_raw.height(), columns }))
}

/// The outputs of a model: the label and one probability per class, or the predicted value.
pub(crate) fn outputs(task: TaskKind, classes: &[String]) -> Vec<ColumnSchema> {
    let column =
        |name: String, dtype, categories| ColumnSchema { name, dtype, nullable: false, categories, range: None };
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
    }
}
