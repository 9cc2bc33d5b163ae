//! Steps 8 and 10 of the training run: select the rows and columns to learn from, split them,
//! fit the features on the training part and pass the other parts through the fitted ops.

use std::path::{Path, PathBuf};

use mlops_core::frame::Stage;
use mlops_core::{FeaturePipeline, Op, Seed};
use polars::prelude::{CsvWriter, DataFrame, ParquetCompression, SerWriter};
use serde::Serialize;
use step08_select::SplitReport;
use step10_features::{FeatureReport, Importance};

use crate::config::TrainingConfig;
use crate::error::{PipelineError, Result};

/// The parts of a split, with features.
#[derive(Clone, Debug)]
pub struct Engineered {
    /// Training rows (target encodings out-of-fold).
    pub train: DataFrame,
    /// Validation rows, through the fitted ops.
    pub validation: DataFrame,
    /// Test rows, through the fitted ops.
    pub test: DataFrame,
    /// The fitted feature ops, in order.
    pub pipeline: FeaturePipeline,
    /// How the rows were split.
    pub split: SplitReport,
    /// What the features step built and kept.
    pub features: FeatureReport,
    /// Training rows before the features (cross-validation refits the features on its folds).
    pub train_raw: DataFrame,
    /// Test rows before the features (what a server would be sent).
    pub test_raw: DataFrame,
}

/// Summary of [`engineer`], for output.
#[derive(Clone, Debug, Serialize)]
pub struct EngineeredSummary {
    /// Rows and columns per part.
    pub parts: Vec<(String, usize, usize)>,
    /// The split's record.
    pub split: SplitReport,
    /// The features' record.
    pub features: FeatureReport,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Selects, splits and fits features as `config` says. `model` ranks features when the config
/// selects by importance.
pub fn engineer(frame: &DataFrame, config: &TrainingConfig, model: Option<&dyn Importance>) -> Result<Engineered> {
    let seed: Seed = config.seed;
    let selected = config.select.apply(frame, seed).map_err(|e| PipelineError::step("select", e))?;
    let split = config.split.split(&selected, seed).map_err(|e| PipelineError::step("split", e))?;
    let (train, validation, test) = split.frames(&selected).map_err(|e| PipelineError::step("split", e))?;
    let (raw, test_raw) = (train.clone(), test.clone());
    let (fitted, mut others) = fit_features(config, train, vec![validation, test], model)?;
    let (test, validation) = (others.pop().unwrap_or_default(), others.pop().unwrap_or_default());
    let mut pipeline = FeaturePipeline::new();
    pipeline.extend(fitted.ops);
    Ok(Engineered {
        train: fitted.frame,
        validation,
        test,
        pipeline,
        split: split.report,
        features: fitted.report,
        train_raw: raw,
        test_raw,
    })
}

/// The feature params of a training config: the model's target, like the targets of `select`
/// and `target_encode`, is never imputed or scaled (served rows do not have it).
fn features_for(config: &TrainingConfig) -> std::borrow::Cow<'_, step10_features::FeatureParams> {
    let Some(target) = config.model.as_ref().map(|m| &m.target) else {
        return std::borrow::Cow::Borrowed(&config.features);
    };
    let mut params = config.features.clone();
    if let Some(spec) = params.impute.as_mut().filter(|s| !s.exclude.contains(target)) {
        spec.exclude.push(target.clone());
    }
    if let Some(spec) = params.scale.as_mut().filter(|s| !s.exclude.contains(target)) {
        spec.exclude.push(target.clone());
    }
    std::borrow::Cow::Owned(params)
}

/// Fits the features on `train` and passes each of `others` through the fitted ops (as
/// validation, test and served rows are).
pub(crate) fn fit_features(
    config: &TrainingConfig,
    train: DataFrame,
    others: Vec<DataFrame>,
    model: Option<&dyn Importance>,
) -> Result<(step10_features::Features, Vec<DataFrame>)> {
    let params = features_for(config);
    let fitted =
        step10_features::fit(&params, train, config.seed, model).map_err(|e| PipelineError::step("features", e))?;
    let others = others
        .into_iter()
        .map(|df| {
            fitted
                .ops
                .iter()
                .try_fold(df, |df, op: &Op| op.apply_frame(df, Stage::Inference))
                .map_err(|e| PipelineError::step("features", e))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((fitted, others))
}

/// Writes a frame as Parquet or CSV (by extension), to a temporary name first.
pub fn write_frame(df: &DataFrame, path: &Path) -> Result<()> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if !matches!(ext.as_str(), "parquet" | "csv") {
        return Err(PipelineError::BadOutput { path: path.to_path_buf() });
    }
    if ext == "parquet" {
        // polars' defaults: zstd at its default level, row groups of about 512 x 512 rows.
        return mlops_core::io::atomic_write_to(path, |tmp| {
            mlops_core::frame::write_parquet(df, tmp, ParquetCompression::default(), None).map_err(|e| match e {
                // Name the file the user asked for, not its temporary sibling.
                mlops_core::CoreError::Polars { source, .. } => {
                    mlops_core::CoreError::polars(format!("cannot write {}", path.display()), source)
                }
                other => other,
            })
        })
        .map_err(|e| PipelineError::step("write", e));
    }
    let mut df = df.clone();
    let failed = |e: polars::prelude::PolarsError| {
        PipelineError::step("write", mlops_core::CoreError::polars(format!("cannot write {}", path.display()), e))
    };
    mlops_core::io::atomic_write_with(path, |w| -> std::result::Result<(), Wrapped> {
        CsvWriter::new(w).finish(&mut df).map_err(|e| Wrapped(failed(e)))
    })
    .map_err(|w| w.0)
}

/// A run error passed through [`mlops_core::io::atomic_write_with`], which needs `From<CoreError>`.
struct Wrapped(PipelineError);

impl From<mlops_core::CoreError> for Wrapped {
    fn from(e: mlops_core::CoreError) -> Self {
        Wrapped(PipelineError::step("write", e))
    }
}

impl Engineered {
    /// Writes `train.parquet`, `validation.parquet`, `test.parquet`, `pipeline.json` (the fitted
    /// feature ops), `split.json` and `features.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<EngineeredSummary> {
        let mut files = Vec::new();
        let mut parts = Vec::new();
        for (name, df) in [("train", &self.train), ("validation", &self.validation), ("test", &self.test)] {
            let path = dir.join(format!("{name}.parquet"));
            write_frame(df, &path)?;
            parts.push((name.to_string(), df.height(), df.width()));
            files.push(path);
        }
        let io = |e| PipelineError::step("write", e);
        let pipeline = dir.join("pipeline.json");
        self.pipeline.save(&pipeline).map_err(io)?;
        let split = dir.join("split.json");
        mlops_core::io::atomic_write_json(&split, &self.split).map_err(io)?;
        let features = dir.join("features.json");
        mlops_core::io::atomic_write_json(&features, &self.features).map_err(io)?;
        files.extend([pipeline, split, features]);
        Ok(EngineeredSummary { parts, split: self.split.clone(), features: self.features.clone(), files })
    }
}
