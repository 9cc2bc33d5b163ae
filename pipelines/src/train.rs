//! Steps 11-14 of the training run: candidates, cross-validated search (the features refitted
//! inside every fold), a final fit of each family's best candidate on the training part, and an
//! evaluation of each on the test part with an HTML report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlops_core::{Seed, TaskKind};
use ndarray::Array2;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use step11_candidates::{Model, ModelSpec, Target};
use step12_training::{Candidate, RunInfo, Status, Store, TrainingData};
use step13_tuning::{Objective, TuneParams};
use step14_evaluate::{Evaluation, Metric, Outputs, ReportMeta};

use crate::config::TrainingConfig;
use crate::error::{PipelineError, Result};
use crate::features::{Engineered, fit_features};
use crate::prepare::{Progress, StepSummary};

/// What the target is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskChoice {
    /// Classification for text and boolean targets and for whole numbers with at most 10
    /// distinct values; regression otherwise.
    #[default]
    Auto,
    /// Classes, binary or multiclass.
    Classification,
    /// A number.
    Regression,
}

/// The `model` section of the training config: what to learn and how candidates are compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The column to predict.
    pub target: String,
    /// Classification or regression (`auto` decides from the column).
    #[serde(default)]
    pub task: TaskChoice,
    /// The metric candidates are tuned and ranked by (default: `roc_auc` for binary targets,
    /// `f1_macro` for multiclass, `r2` for regression).
    #[serde(default)]
    pub metric: Option<Metric>,
    /// Feature columns (default: every numeric and boolean column but the target; booleans read 0/1).
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Experiment the runs are grouped under (default: `<dataset>-<target>`).
    #[serde(default)]
    pub experiment: Option<String>,
    /// Search, cross-validation and candidates (step 13).
    #[serde(default)]
    pub tuning: TuneParams,
    /// The run store (SQLite).
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// Folder for fitted models: `<artifacts>/<run id>/model.bin` and `pipeline.json`.
    #[serde(default = "default_artifacts")]
    pub artifacts: PathBuf,
}

/// The default run store.
pub fn default_store() -> PathBuf {
    PathBuf::from("models/registry/registry.db")
}

fn default_artifacts() -> PathBuf {
    PathBuf::from("models/runs")
}

/// Class indices (with the class count) or values, one per row.
#[derive(Clone, Debug)]
pub(crate) enum Labels {
    Classes(Vec<usize>),
    Values(Vec<f64>),
}

/// One part's model input.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub(crate) x: Array2<f64>,
    pub(crate) y: Labels,
}

/// The target as the model sees it: task, class names in index order.
#[derive(Clone, Debug)]
pub(crate) struct TargetInfo {
    pub(crate) name: String,
    pub(crate) task: TaskKind,
    pub(crate) classes: Vec<String>,
}

impl TargetInfo {
    pub(crate) fn classification(&self) -> bool {
        self.task != TaskKind::Regression
    }

    /// The labels of a part.
    pub(crate) fn labels(&self, df: &DataFrame, part: &str) -> Result<Labels> {
        let bad = |message: String| PipelineError::step("train", TargetError(message));
        if !self.classification() {
            let values = mlops_core::frame::f64_column(df, &self.name).map_err(|e| PipelineError::step("train", e))?;
            return values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Some(v) if v.is_finite() => Ok(v),
                    _ => Err(bad(format!(
                        "target `{}` has no number in row {i} of the {part} part; drop or fill it in `select` or `clean`",
                        self.name
                    ))),
                })
                .collect::<Result<Vec<f64>>>()
                .map(Labels::Values);
        }
        let keys = mlops_core::frame::keys(df, &self.name).map_err(|e| PipelineError::step("train", e))?;
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                let k = k.as_ref().ok_or_else(|| {
                    bad(format!(
                        "target `{}` is empty in row {i} of the {part} part; drop such rows in `select`",
                        self.name
                    ))
                })?;
                self.classes.iter().position(|c| c == k).ok_or_else(|| {
                    bad(format!(
                        "target `{}` has class `{k}` in the {part} part that the training part never shows",
                        self.name
                    ))
                })
            })
            .collect::<Result<Vec<usize>>>()
            .map(Labels::Classes)
    }

    pub(crate) fn target<'a>(&self, y: &'a Labels) -> Target<'a> {
        match y {
            Labels::Classes(y) => Target::Classes { y, classes: self.classes.len() },
            Labels::Values(v) => Target::Values(v),
        }
    }
}

/// A target error, named by column.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TargetError(pub(crate) String);

/// Decides the task and the classes from the training rows.
/// `invalid` turns a message into the error that names where the target was given.
pub(crate) fn target_info(
    train: &DataFrame,
    name: &str,
    task: TaskChoice,
    invalid: &dyn Fn(String) -> PipelineError,
) -> Result<TargetInfo> {
    let name = name.to_string();
    let Ok(col) = train.column(&name) else {
        return Err(invalid(format!(
            "no column `{name}` in the training rows (columns: {})",
            mlops_core::frame::column_names(train).join(", ")
        )));
    };
    let dtype = mlops_core::frame::dtype_of(col.dtype());
    let numeric = dtype.is_some_and(|t| t.is_numeric() && t != mlops_core::DType::Bool);
    let keys = mlops_core::frame::keys(train, &name).map_err(|e| PipelineError::step("train", e))?;
    let mut classes: Vec<String> =
        keys.iter().flatten().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if classes.len() < 2 {
        return Err(invalid(format!(
            "`{name}` is constant in the training rows ({}); there is nothing to learn",
            classes.first().map_or("all empty".to_string(), |c| format!("always `{c}`"))
        )));
    }
    let whole = numeric
        && mlops_core::frame::numbers(train, &name)
            .map_err(|e| PipelineError::step("train", e))?
            .iter()
            .all(|v| v.fract() == 0.0);
    let classification = match task {
        TaskChoice::Classification => true,
        TaskChoice::Regression if !numeric => {
            return Err(invalid(format!(
                "a regression target must be numeric, but `{name}` is {}",
                dtype.map_or_else(|| col.dtype().to_string(), |t| t.to_string())
            )));
        }
        TaskChoice::Regression => false,
        TaskChoice::Auto => !numeric || (whole && classes.len() <= 10),
    };
    if !classification {
        return Ok(TargetInfo { name, task: TaskKind::Regression, classes: Vec::new() });
    }
    // Numbers as classes sort by value, not as text.
    if classes.iter().all(|c| c.parse::<f64>().is_ok()) {
        classes.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
    }
    let task = if classes.len() == 2 { TaskKind::BinaryClassification } else { TaskKind::MulticlassClassification };
    Ok(TargetInfo { name, task, classes })
}

/// The feature columns of a part: the configured ones, or every numeric and boolean column but
/// the target. Also returns the columns left out, with why.
pub(crate) fn feature_columns(
    df: &DataFrame,
    target: &str,
    listed: Option<&Vec<String>>,
) -> (Vec<String>, Vec<(String, String)>) {
    if let Some(list) = listed {
        return (list.clone(), Vec::new());
    }
    let (mut used, mut ignored) = (Vec::new(), Vec::new());
    for col in df.columns() {
        let name = col.name().to_string();
        if name == target {
            continue;
        }
        match mlops_core::frame::dtype_of(col.dtype()) {
            Some(t) if t.is_numeric() || t == mlops_core::DType::Bool => used.push(name),
            t => ignored.push((
                name,
                format!("{} is not a number", t.map_or_else(|| col.dtype().to_string(), |t| t.to_string())),
            )),
        }
    }
    (used, ignored)
}

/// The model input of a part, checked: a missing, null, NaN or infinite feature value is an error
/// naming the column before any model is fitted.
pub(crate) fn matrix(df: &DataFrame, columns: &[String], part: &str) -> Result<Array2<f64>> {
    let x = mlops_core::frame::to_matrix(df, columns)
        .map_err(|e| PipelineError::step("train", TargetError(format!("{part} part: {e}"))))?;
    for ((row, col), v) in x.indexed_iter() {
        if !v.is_finite() {
            return Err(PipelineError::step(
                "train",
                TargetError(format!(
                    "feature `{}` is {} in row {row} of the {part} part; impute it (clean.missing) or leave the column out",
                    columns[col],
                    if v.is_nan() { "NaN" } else { "infinite" }
                )),
            ));
        }
    }
    Ok(x)
}

/// Every metric of a model on a part.
pub(crate) fn assess(
    model: &Model,
    x: &Array2<f64>,
    y: &Labels,
    target: &TargetInfo,
) -> std::result::Result<Evaluation, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match y {
        Labels::Classes(truth) => {
            let proba = model.predict_proba(x).map_err(|e| text(&e))?.ok_or("the model gives no probabilities")?;
            let predicted: Vec<usize> = model.predict(x).map_err(|e| text(&e))?.iter().map(|&c| c as usize).collect();
            step14_evaluate::evaluate(Outputs::Classes {
                truth,
                proba: &proba,
                labels: &target.classes,
                predicted: Some(&predicted),
            })
            .map_err(|e| text(&e))
        }
        Labels::Values(truth) => {
            let predicted = model.predict(x).map_err(|e| text(&e))?;
            step14_evaluate::evaluate(Outputs::Values { truth, predicted: &predicted }).map_err(|e| text(&e))
        }
    }
}

/// The folds of a cross-validation, features refitted on each fold's training rows.
/// A fold's training and validation parts, with its feature columns.
type FoldPart = (Part, Part, Vec<String>);

struct Folds {
    parts: Vec<FoldPart>,
    target: TargetInfo,
    metric: Metric,
}

impl Objective for Folds {
    fn score(&self, spec: &ModelSpec, fold: usize) -> std::result::Result<(f64, f64), String> {
        let (train, validation, names) = self.parts.get(fold).ok_or("no such fold")?;
        let started = Instant::now();
        let model =
            step11_candidates::fit(spec, &train.x, &self.target.target(&train.y), names).map_err(|e| e.to_string())?;
        let fit_seconds = started.elapsed().as_secs_f64();
        let eval = assess(&model, &validation.x, &validation.y, &self.target)?;
        let score = eval
            .metrics()
            .get(&self.metric.name())
            .copied()
            .ok_or_else(|| format!("metric `{}` is undefined on this fold", self.metric.name()))?;
        Ok((score, fit_seconds))
    }
}

/// One line of the leaderboard: a family's best candidate, refitted on the training part.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaderRow {
    /// Family.
    pub model: String,
    /// Hyperparameters of the best candidate.
    pub params: BTreeMap<String, String>,
    /// Cross-validation score of the ranking metric: mean and std over the folds.
    pub cv_mean: f64,
    /// Std over the folds.
    pub cv_std: f64,
    /// Metrics on the validation part (empty without one).
    pub validation: BTreeMap<String, f64>,
    /// Metrics on the test part.
    pub test: BTreeMap<String, f64>,
    /// Seconds to fit on the training part.
    pub fit_seconds: f64,
    /// The run of the final fit.
    pub run_id: String,
    /// Its evaluation report.
    pub report: PathBuf,
    /// The fitted model (postcard) and its feature pipeline.
    pub model_file: PathBuf,
    /// Size of the fitted model in bytes (ties in selection go to the smaller).
    pub model_bytes: usize,
    /// Median single-row latency through the feature pipeline and the model, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile of the same.
    pub latency_p99_ms: f64,
}

/// What a training run did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trained {
    /// Experiment of the runs.
    pub experiment: String,
    /// The parent run of the whole training.
    pub run_id: String,
    /// Dataset version trained on.
    pub dataset: String,
    /// The target column.
    pub target: String,
    /// The task.
    pub task: TaskKind,
    /// Class names (classification).
    pub classes: Vec<String>,
    /// Ranking metric.
    pub metric: String,
    /// Whether a higher metric is better.
    pub greater_is_better: bool,
    /// Folds per candidate.
    pub folds: usize,
    /// Rows per part: train, validation, test.
    pub rows: (usize, usize, usize),
    /// Feature columns the models saw.
    pub features: Vec<String>,
    /// Columns left out, with why.
    pub ignored: Vec<(String, String)>,
    /// Every trial (candidate across the folds).
    pub trials: Vec<step13_tuning::Trial>,
    /// Best candidate of each family, best first.
    pub leaderboard: Vec<LeaderRow>,
    /// Families whose final fit failed, with the error.
    pub failed: Vec<(String, String)>,
    /// Step 15: the chosen model and the ranking by the `select_best` criteria, whose metrics
    /// are measured on the validation part (the test part when there is none).
    pub selection: step15_select_best::Selection,
    /// `validation` or `test`: the part the selection's metrics come from.
    pub selected_on: String,
    /// The chosen model against the runner-up on the test rows (with two eligible models).
    pub comparison: Option<step15_select_best::Comparison>,
    /// Step 16: the chosen model's package directory.
    pub package: Option<PathBuf>,
    /// Step 17: the registered version and the alias it took.
    pub registered: Option<crate::register::Registered>,
    /// Step 7: the EDA report of the dataset, when the run wrote one (`mlops train` does).
    pub eda_report: Option<PathBuf>,
    /// The earlier training run whose results these are, when nothing changed since.
    #[serde(default)]
    pub reused: Option<String>,
}

/// Where a training run keeps its outputs.
pub struct TrainPaths<'a> {
    /// The config file (for its hash and for errors).
    pub origin: &'a Path,
    /// Dataset version (`name@version`) and its folder under reports (`name/version`).
    pub dataset: (&'a str, &'a Path),
}

/// The source commit of the working directory, when it is a git checkout.
pub(crate) fn source_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

/// Trains the candidates of `config.model` on `frame`: select and split, features, a
/// cross-validated search with every trial a child run, a final fit of each family's best on the
/// training part (scored on validation), and an evaluation on the test part with an HTML report
/// per final run. Everything the config can get wrong is checked before the first fit.
pub fn train(
    frame: &DataFrame,
    config: &TrainingConfig,
    paths: &TrainPaths<'_>,
    progress: &mut dyn Progress,
    tick: &(dyn Fn(usize, usize) + Sync),
) -> Result<Trained> {
    let origin = paths.origin;
    let invalid = |key: &str, message: String| PipelineError::Config(mlops_core::config::invalid(origin, key, message));
    let model_config = config
        .model
        .as_ref()
        .ok_or_else(|| invalid("model", "missing: say what to learn (`model: {target: COLUMN}`)".into()))?;
    let seed: Seed = config.seed;

    // An unchanged rerun (the same dataset version, config, toolkit version and source commit)
    // gives back the last run's results instead of training again.
    // (The EDA and chart sections only shape the report.)
    let cache_key = mlops_core::hash::sha256_json(&(
        paths.dataset.0,
        config.seed,
        (&config.select, &config.split, &config.features, &config.model),
        (&config.select_best, &config.register, &config.reports),
        (env!("CARGO_PKG_VERSION"), source_commit()),
    ))
    .ok();
    if let Some(done) = cache_key.as_deref().and_then(|key| reuse(&model_config.store, key)) {
        progress.started("cache");
        progress.finished(&StepSummary {
            step: "cache",
            rows: done.rows.0,
            columns: done.leaderboard.len(),
            seconds: 0.0,
            note: format!("unchanged dataset and config: the results of run {}", done.run_id),
        });
        return Ok(Trained { reused: Some(done.run_id.clone()), ..done });
    }
    let started = Instant::now();
    progress.started("features");
    // The split and features depend on the dataset, the seed, `select`, `split`, `features` and
    // the target (never imputed or scaled): an earlier run's serve when those are unchanged.
    let cache_dir = crate::cache::dir(&config.interim, paths.dataset.1);
    let features_key = mlops_core::hash::sha256_json(&(
        paths.dataset.0,
        config.seed,
        (&config.select, &config.split, &config.features, &model_config.target),
        (env!("CARGO_PKG_VERSION"), source_commit()),
    ))
    .ok();
    let cached = features_key.as_deref().and_then(|k| crate::cache::load_features(&cache_dir, k));
    let features_reused = cached.is_some();
    let engineered: Engineered = match cached {
        Some(e) => e,
        None => {
            let e = crate::features::engineer(frame, config, None)?;
            if let Some(k) = &features_key {
                crate::cache::save_features(&cache_dir, k, &e)?;
            }
            e
        }
    };
    let target = target_info(&engineered.train_raw, &model_config.target, model_config.task, &|message| {
        invalid("model.target", message)
    })?;
    let metric = model_config.metric.unwrap_or(match target.task {
        TaskKind::BinaryClassification => Metric::RocAuc,
        TaskKind::MulticlassClassification => Metric::F1Macro,
        TaskKind::Regression => Metric::R2,
    });
    metric.check(target.task).map_err(|e| invalid("model.metric", e.to_string()))?;
    check_select(&config.select_best, metric, target.task).map_err(|(key, message)| invalid(&key, message))?;
    let experiment = model_config
        .experiment
        .clone()
        .unwrap_or_else(|| format!("{}-{}", paths.dataset.0.split('@').next().unwrap_or("data"), target.name));
    config.register.check(&experiment).map_err(|(key, message)| invalid(&key, message))?;
    let (features, ignored) = feature_columns(&engineered.train, &model_config.target, model_config.features.as_ref());
    if features.is_empty() {
        return Err(invalid("model.features", "no numeric feature columns to learn from".into()));
    }
    let part = |df: &DataFrame, name: &str| -> Result<Part> {
        Ok(Part { x: matrix(df, &features, name)?, y: target.labels(df, name)? })
    };
    let train_part = part(&engineered.train, "training")?;
    let validation_part =
        if engineered.validation.height() > 0 { Some(part(&engineered.validation, "validation")?) } else { None };
    let test_part = part(&engineered.test, "test")?;
    progress.finished(&StepSummary {
        step: "features",
        rows: engineered.train.height(),
        columns: features.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: format!(
            "{} feature(s), {} task{}",
            features.len(),
            task_name(target.task),
            if features_reused { " (split and features reused)" } else { "" }
        ),
    });

    // Tuning, final fits and evaluation depend only on the dataset, the split, the features and
    // the model section: when only later sections changed, an earlier run's fits serve.
    let fit_key = mlops_core::hash::sha256_json(&(
        paths.dataset.0,
        config.seed,
        (&config.select, &config.split, &config.features),
        (&model_config.target, &model_config.task, &model_config.metric, &model_config.features, &model_config.tuning),
        (env!("CARGO_PKG_VERSION"), source_commit()),
    ))
    .ok();
    let earlier = fit_key.as_deref().and_then(|key| reuse_fits(&model_config.store, key));
    let fresh = match &earlier {
        Some(_) => None,
        None => Some({
            // Folds, each with its own features fitted on its training rows only.
            let started = Instant::now();
            progress.started("folds");
            let tune = &model_config.tuning;
            let classification = target.classification();
            let cv = tune.cv_for(classification);
            let raw_labels = target.labels(&engineered.train_raw, "training")?;
            let strata = match &raw_labels {
                Labels::Classes(y) => Some(y.as_slice()),
                Labels::Values(_) => None,
            };
            let tuning_error = |e: step13_tuning::TuneError| match e {
                step13_tuning::TuneError::Invalid { key, message } => invalid(&format!("model.tuning.{key}"), message),
                other => invalid("model.tuning", other.to_string()),
            };
            let folds = cv.folds(engineered.train_raw.height(), strata, seed).map_err(tuning_error)?;
            let smallest = folds.iter().map(|f| f.train.len()).min().unwrap_or(0);
            let candidates = tune.candidates(classification, smallest, seed).map_err(tuning_error)?;
            if candidates.is_empty() {
                return Err(invalid("model.tuning.candidates", "no candidates to try".into()));
            }
            // The folds' features depend on the features' inputs, the folds and the model's
            // feature list.
            let folds_key = features_key.as_ref().and_then(|k| {
                mlops_core::hash::sha256_json(&(
                    k,
                    &cv,
                    &folds.iter().map(|f| &f.train).collect::<Vec<_>>(),
                    &model_config.features,
                ))
                .ok()
            });
            let cached_folds = folds_key.as_deref().and_then(|k| crate::cache::load_folds(&cache_dir, k));
            let folds_reused = cached_folds.is_some();
            let fold_parts = match cached_folds {
                Some(parts) => parts,
                None => {
                    let fold_parts = mlops_core::par::map(&folds, |fold| -> Result<(Part, Part, Vec<String>)> {
                        let take = |rows: &[usize]| {
                            let idx =
                                polars::prelude::IdxCa::from_vec("rows".into(), rows.iter().map(|&r| r as _).collect());
                            engineered.train_raw.take(&idx).map_err(|e| {
                                PipelineError::step("train", mlops_core::CoreError::polars("cannot take fold rows", e))
                            })
                        };
                        let (fitted, mut others) =
                            fit_features(config, take(&fold.train)?, vec![take(&fold.validation)?], None)?;
                        let validation = others.pop().unwrap_or_default();
                        let (names, _) =
                            feature_columns(&fitted.frame, &model_config.target, model_config.features.as_ref());
                        let train = Part {
                            x: matrix(&fitted.frame, &names, "fold training")?,
                            y: target.labels(&fitted.frame, "fold training")?,
                        };
                        let validation = Part {
                            x: matrix(&validation, &names, "fold validation")?,
                            y: target.labels(&validation, "fold validation")?,
                        };
                        Ok((train, validation, names))
                    })
                    .ok_or_else(|| PipelineError::step("train", TargetError("a fold worker thread failed".into())))?
                    .into_iter()
                    .collect::<Result<Vec<_>>>()?;
                    if let Some(k) = &folds_key {
                        crate::cache::save_folds(&cache_dir, k, &fold_parts)?;
                    }
                    fold_parts
                }
            };
            progress.finished(&StepSummary {
                step: "folds",
                rows: engineered.train_raw.height(),
                columns: folds.len(),
                seconds: started.elapsed().as_secs_f64(),
                note: format!(
                    "{} folds ({}), features refitted in each{}",
                    folds.len(),
                    cv_name(&cv),
                    if folds_reused { " (reused)" } else { "" }
                ),
            });
            (folds, fold_parts, candidates)
        }),
    };
    let n_folds = match (&earlier, &fresh) {
        (Some((e, _)), _) => e.folds,
        (None, Some((folds, _, _))) => folds.len(),
        _ => 0,
    };

    // The store and the parent run.
    let store = Store::open(&model_config.store).map_err(|e| PipelineError::step("train", e))?;
    let config_sha256 =
        std::fs::read(origin).ok().map(|b| mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&b)));
    let info = RunInfo {
        experiment: experiment.clone(),
        name: "training".into(),
        parent: None,
        dataset_version: Some(paths.dataset.0.to_string()),
        config_sha256,
        source_commit: source_commit(),
    };
    let store_err = |e| PipelineError::step("train", e);
    let parent = store.start_run(&info).map_err(store_err)?;
    let child = RunInfo { parent: Some(parent.clone()), ..info };
    let outcome = match (earlier, fresh) {
        (Some((e, models)), _) => {
            progress.started("reuse");
            progress.finished(&StepSummary {
                step: "reuse",
                rows: train_part.x.nrows(),
                columns: e.leaderboard.len(),
                seconds: 0.0,
                note: format!("tuning, fits and evaluation of run {} (only later sections changed)", e.run_id),
            });
            store.set_tag(&parent, "reused_fits", &e.run_id).map_err(store_err)?;
            let finals: Vec<(String, &Model)> = models.iter().map(|(n, m)| (n.clone(), m)).collect();
            let raw_rows = server_rows(&engineered, &target.name)?;
            ship(
                &store,
                &child,
                (&e.leaderboard, &finals),
                (&test_part, &target, metric, &features),
                (&engineered, config, paths, model_config),
                &raw_rows,
                progress,
            )
            .map(|s| Board {
                trials: e.trials.clone(),
                leaderboard: e.leaderboard.clone(),
                failed: e.failed.clone(),
                selection: s.selection,
                comparison: s.comparison,
                package: s.package,
                registered: s.registered,
            })
        }
        (None, Some((_, fold_parts, candidates))) => search_and_fit(
            &store,
            &child,
            (&candidates, &Folds { parts: fold_parts, target: target.clone(), metric }),
            (&train_part, validation_part.as_ref(), &test_part, &features),
            (&engineered, config, paths, model_config),
            progress,
            tick,
        ),
        (None, None) => Err(PipelineError::step("train", TargetError("nothing to train".into()))),
    };
    match &outcome {
        Ok(board) => {
            store.log_param(&parent, "target", &target.name).map_err(store_err)?;
            store.log_param(&parent, "metric", &metric.name()).map_err(store_err)?;
            store.set_tag(&parent, "kind", "training").map_err(store_err)?;
            let chosen = board.selection.winner.as_ref().and_then(|w| board.leaderboard.iter().find(|r| &r.model == w));
            if let Some(chosen) = chosen {
                store.set_tag(&parent, "selected_run", &chosen.run_id).map_err(store_err)?;
                store.set_tag(&chosen.run_id, "selected", "true").map_err(store_err)?;
            }
            if let Some(best) = board.leaderboard.first() {
                store.set_tag(&parent, "best_run", &best.run_id).map_err(store_err)?;
                store
                    .log_metric(&parent, &format!("best_cv_{}", metric.name()), best.cv_mean, None)
                    .map_err(store_err)?;
            }
            store.finish(&parent, Status::Finished, None).map_err(store_err)?;
        }
        Err(e) => store.finish(&parent, Status::Failed, Some(&e.to_string())).map_err(store_err)?,
    }
    let Board { trials, leaderboard, failed, selection, comparison, package, registered } = outcome?;
    let trained = Trained {
        experiment,
        run_id: parent,
        dataset: paths.dataset.0.to_string(),
        target: target.name.clone(),
        task: target.task,
        classes: target.classes.clone(),
        metric: metric.name(),
        greater_is_better: metric.greater_is_better(),
        folds: n_folds,
        rows: (engineered.train.height(), engineered.validation.height(), engineered.test.height()),
        features,
        ignored,
        trials,
        leaderboard,
        failed,
        selection,
        selected_on: if engineered.validation.height() > 0 { "validation" } else { "test" }.to_string(),
        comparison,
        package,
        registered,
        eda_report: None,
        reused: None,
    };
    // What an unchanged rerun gives back.
    if let Some(key) = &cache_key {
        let path = model_config.artifacts.join(&trained.run_id).join("trained.json");
        let json = serde_json::to_vec_pretty(&trained)
            .map_err(|e| PipelineError::step("train", TargetError(format!("cannot encode the run: {e}"))))?;
        mlops_core::io::atomic_write(&path, &json).map_err(|e| PipelineError::step("train", e))?;
        store.log_artifact(&trained.run_id, "trained", &path).map_err(store_err)?;
        store.set_tag(&trained.run_id, "cache_key", key).map_err(store_err)?;
    }
    if let Some(key) = &fit_key {
        store.set_tag(&trained.run_id, "fit_key", key).map_err(store_err)?;
    }
    Ok(trained)
}

/// What the last finished training run tagged `tag = value` recorded (`trained.json`).
fn last_trained(store: &Path, (tag, value): (&str, &str)) -> Option<Trained> {
    if !store.is_file() {
        return None;
    }
    let runs = Store::open(store).ok()?.runs(None).ok()?;
    let run = runs
        .iter()
        .rev()
        .find(|r| r.status == Status::Finished && r.tags.get(tag).map(String::as_str) == Some(value))?;
    serde_json::from_slice(&std::fs::read(run.artifacts.get("trained")?).ok()?).ok()
}

/// The last finished training run whose fits had this key, with its final models, when every
/// model file is still there and decodes.
fn reuse_fits(store: &Path, key: &str) -> Option<(Trained, Vec<(String, Model)>)> {
    let trained = last_trained(store, ("fit_key", key))?;
    let models = trained
        .leaderboard
        .iter()
        .map(|r| Some((r.model.clone(), Model::from_bytes(&std::fs::read(&r.model_file).ok()?).ok()?)))
        .collect::<Option<Vec<_>>>()?;
    Some((trained, models))
}

/// The results of the last finished training run with this cache key, if its outputs are all
/// still there.
fn reuse(store: &Path, key: &str) -> Option<Trained> {
    let trained = last_trained(store, ("cache_key", key))?;
    let all_there = trained
        .leaderboard
        .iter()
        .flat_map(|r| [&r.model_file, &r.report])
        .chain(trained.package.iter())
        .all(|f| f.exists())
        && trained.package.as_ref().is_none_or(|p| step16_package::load(p).is_ok());
    all_there.then_some(trained)
}

/// What the search and the final fits give the training run.
struct Board {
    trials: Vec<step13_tuning::Trial>,
    leaderboard: Vec<LeaderRow>,
    failed: Vec<(String, String)>,
    selection: step15_select_best::Selection,
    comparison: Option<step15_select_best::Comparison>,
    package: Option<PathBuf>,
    registered: Option<crate::register::Registered>,
}

/// The `select_best` section, checked against the task: `(key, message)` of the first problem.
fn check_select(
    params: &step15_select_best::SelectParams,
    metric: Metric,
    task: TaskKind,
) -> std::result::Result<(), (String, String)> {
    params.check(metric).map_err(|e| match e {
        step15_select_best::SelectError::Invalid { key, message } => (format!("select_best.{key}"), message),
        other => ("select_best".to_string(), other.to_string()),
    })?;
    for (key, m) in params.metrics() {
        m.check(task).map_err(|e| (format!("select_best.{key}"), e.to_string()))?;
    }
    Ok(())
}

fn search_and_fit(
    store: &Store,
    child: &RunInfo,
    (candidates, objective): (&[ModelSpec], &Folds),
    (train, validation, test, features): (&Part, Option<&Part>, &Part, &[String]),
    (engineered, config, paths, model_config): (&Engineered, &TrainingConfig, &TrainPaths<'_>, &ModelConfig),
    progress: &mut dyn Progress,
    tick: &(dyn Fn(usize, usize) + Sync),
) -> Result<Board> {
    let store_err = |e| PipelineError::step("train", e);
    let started = Instant::now();
    progress.started("tuning");
    let (fold_parts, target, metric) = (&objective.parts, &objective.target, objective.metric);
    let tuned = step13_tuning::tune(
        store,
        child,
        candidates,
        fold_parts.len(),
        objective,
        (&metric.name(), metric.greater_is_better()),
        tick,
    )
    .map_err(store_err)?;
    let failed_trials = tuned.trials.iter().filter(|t| t.error.is_some()).count();
    progress.finished(&StepSummary {
        step: "tuning",
        rows: train.x.nrows(),
        columns: tuned.trials.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: format!("{} trial(s) x {} folds, {failed_trials} failed", tuned.trials.len(), fold_parts.len()),
    });

    let started = Instant::now();
    progress.started("fit");
    let best = tuned.best_per_family();
    let finals: Vec<Candidate> = best
        .iter()
        .map(|&i| Candidate { name: tuned.trials[i].model.clone(), spec: tuned.trials[i].spec.clone() })
        .collect();
    let cv_key = format!("cv_{}", metric.name());
    // Validation metrics by name, test metrics as `test_<name>`, the trial's cross-validation
    // score as `cv_<metric>_mean` / `_std`.
    let scorer =
        |candidate: &Candidate, model: &Model, x: &Array2<f64>| -> std::result::Result<BTreeMap<String, f64>, String> {
            let mut out = match validation {
                Some(v) if v.x.nrows() == x.nrows() => assess(model, x, &v.y, target)?.metrics(),
                _ => BTreeMap::new(),
            };
            let test_metrics = assess(model, &test.x, &test.y, target)?.metrics();
            out.extend(test_metrics.into_iter().map(|(k, v)| (format!("test_{k}"), v)));
            if let Some(&i) = best.iter().find(|&&i| tuned.trials[i].spec == candidate.spec) {
                out.insert(format!("{cv_key}_mean"), tuned.trials[i].mean);
                out.insert(format!("{cv_key}_std"), tuned.trials[i].std);
            }
            Ok(out)
        };
    let empty = Array2::<f64>::zeros((0, features.len()));
    let outcomes = step12_training::train(
        store,
        &RunInfo { name: "final".into(), ..child.clone() },
        &TrainingData { x: &train.x, target: target.target(&train.y), names: features },
        validation.map_or(&empty, |v| &v.x),
        &finals,
        &scorer,
    )
    .map_err(store_err)?;
    progress.finished(&StepSummary {
        step: "fit",
        rows: train.x.nrows(),
        columns: finals.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: format!("best of {} families refitted on the training part", finals.len()),
    });

    let started = Instant::now();
    progress.started("evaluate");
    let mut board = Vec::new();
    let mut failed = Vec::new();
    let dataset_dir = config.reports.join(paths.dataset.1);
    let raw_rows = server_rows(engineered, &target.name)?;
    let mut finals: Vec<(String, &Model)> = Vec::new();
    for (outcome, &trial) in outcomes.iter().zip(&best) {
        let trial = &tuned.trials[trial];
        let Some(model) = &outcome.model else {
            failed.push((outcome.name.clone(), outcome.error.clone().unwrap_or_default()));
            continue;
        };
        store.set_tag(&outcome.run_id, "kind", "final").map_err(store_err)?;
        store.set_tag(&outcome.run_id, "trial_run", &trial.run_id).map_err(store_err)?;
        let eval =
            assess(model, &test.x, &test.y, target).map_err(|e| PipelineError::step("evaluate", TargetError(e)))?;
        let test_metrics = eval.metrics();
        let validation_metrics: BTreeMap<String, f64> = outcome
            .metrics
            .iter()
            .filter(|(k, _)| !k.starts_with("test_") && !k.starts_with("cv_"))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut params = trial.params.clone();
        params.remove("model");
        let importances = named_importances(model, features);
        let meta = ReportMeta {
            title: format!("{} on {}", trial.model, paths.dataset.0),
            model: trial.model.clone(),
            params: params.clone(),
            run_id: outcome.run_id.clone(),
            dataset: paths.dataset.0.to_string(),
            part: "test".into(),
            cv: Some((metric.name(), trial.mean, trial.std)),
            fit_seconds: outcome.fit_seconds,
            importances,
            generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            toolkit_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let dir = dataset_dir.join("evaluation").join(&outcome.run_id);
        let report = crate::evaluate::write_report(&eval, &meta, &dir)?;
        let model_dir = model_config.artifacts.join(&outcome.run_id);
        let model_file = model_dir.join("model.bin");
        let io = |e| PipelineError::step("train", e);
        let blob = model.to_bytes().map_err(|e| PipelineError::step("train", e))?;
        mlops_core::io::atomic_write(&model_file, &blob).map_err(io)?;
        engineered.pipeline.save(&model_dir.join("pipeline.json")).map_err(io)?;
        for (name, path) in [("report", &report), ("model", &model_file)] {
            store.log_artifact(&outcome.run_id, name, path).map_err(store_err)?;
        }
        let (latency_p50_ms, latency_p99_ms) =
            crate::select::latency(&engineered.pipeline, model, &raw_rows, features)?;
        finals.push((trial.model.clone(), model));
        board.push(LeaderRow {
            model_bytes: blob.len(),
            latency_p50_ms,
            latency_p99_ms,
            model: trial.model.clone(),
            params,
            cv_mean: trial.mean,
            cv_std: trial.std,
            validation: validation_metrics,
            test: test_metrics,
            fit_seconds: outcome.fit_seconds,
            run_id: outcome.run_id.clone(),
            report,
            model_file,
        });
    }
    progress.finished(&StepSummary {
        step: "evaluate",
        rows: test.x.nrows(),
        columns: board.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: format!("{} report(s) on the test part", board.len()),
    });

    let Shipped { selection, comparison, package, registered } = ship(
        store,
        child,
        (&board, &finals),
        (test, target, metric, features),
        (engineered, config, paths, model_config),
        &raw_rows,
        progress,
    )?;
    Ok(Board { trials: tuned.trials, leaderboard: board, failed, selection, comparison, package, registered })
}

/// What steps 15-17 give.
struct Shipped {
    selection: step15_select_best::Selection,
    comparison: Option<step15_select_best::Comparison>,
    package: Option<PathBuf>,
    registered: Option<crate::register::Registered>,
}

/// Steps 15-17 on the final models: choose, package the choice, register it.
fn ship(
    store: &Store,
    child: &RunInfo,
    (board, finals): (&[LeaderRow], &[(String, &Model)]),
    (test, target, metric, features): (&Part, &TargetInfo, Metric, &[String]),
    (engineered, config, paths, model_config): (&Engineered, &TrainingConfig, &TrainPaths<'_>, &ModelConfig),
    raw_rows: &[mlops_core::Row],
    progress: &mut dyn Progress,
) -> Result<Shipped> {
    let store_err = |e| PipelineError::step("train", e);
    // Step 15: choose, and set the choice against the runner-up on the same test rows.
    let started = Instant::now();
    progress.started("select");
    let entries: Vec<step15_select_best::Entry> = board
        .iter()
        .map(|r| step15_select_best::Entry {
            name: r.model.clone(),
            metrics: if r.validation.is_empty() { r.test.clone() } else { r.validation.clone() },
            fit_seconds: r.fit_seconds,
            latency_p99_ms: Some(r.latency_p99_ms).filter(|v| v.is_finite()),
            complexity: r.model_bytes as f64,
        })
        .collect();
    let select_config = &config.select_best;
    let selection = crate::select::choose(&entries, select_config, metric)?;
    let eligible: Vec<&str> =
        selection.ranked.iter().filter(|r| r.score.is_some()).map(|r| r.name.as_str()).take(2).collect();
    let model_of = |name: &str| finals.iter().find(|(n, _)| n == name).map(|(_, m)| *m);
    let comparison = match eligible.as_slice() {
        [a, b] => match (model_of(a), model_of(b)) {
            (Some(ma), Some(mb)) => Some(crate::select::compare(
                (&crate::select::Outputs::of(a, ma, &test.x)?, &crate::select::Outputs::of(b, mb, &test.x)?),
                &test.y,
                (metric, target.classes.len()),
                &select_config.compare,
                config.seed,
            )?),
            _ => None,
        },
        _ => None,
    };
    progress.finished(&StepSummary {
        step: "select",
        rows: test.x.nrows(),
        columns: board.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: match &selection.winner {
            Some(w) => format!("{w} chosen{}", if selection.tie_broken { " (a tie, won on size)" } else { "" }),
            None => "every model breaks a constraint".into(),
        },
    });

    // Step 16: the chosen model's package.
    let started = Instant::now();
    progress.started("package");
    let chosen = selection.winner.as_ref().and_then(|w| board.iter().find(|r| &r.model == w));
    let package = match chosen.and_then(|row| model_of(&row.model).map(|m| (row, m))) {
        Some((row, model)) => {
            let (signature, profile) = crate::package::signature_and_profile(
                &engineered.train_raw,
                &target.name,
                crate::package::outputs(target.task, &target.classes),
            )?;
            let mut metrics: BTreeMap<String, f64> = row.test.iter().map(|(k, v)| (format!("test_{k}"), *v)).collect();
            metrics.extend(row.validation.iter().map(|(k, v)| (format!("validation_{k}"), *v)));
            metrics.insert(format!("cv_{}_mean", metric.name()), row.cv_mean);
            metrics.insert(format!("cv_{}_std", metric.name()), row.cv_std);
            let contents = step16_package::PackageContents {
                info: crate::package::info(
                    &row.model,
                    row.params.clone(),
                    target.task,
                    (&target.name, &target.classes),
                    features,
                ),
                model: model.clone(),
                pipeline: engineered.pipeline.clone(),
                signature,
                metrics,
                profile,
                lineage: crate::package::lineage(
                    &row.run_id,
                    child.parent.as_deref().unwrap_or_default(),
                    paths.dataset.0,
                    child.config_sha256.clone(),
                ),
                importances: named_importances(model, features),
                input_example: crate::package::example(raw_rows),
            };
            // One package per training run, next to its other outputs: never over an earlier one.
            let home = child.parent.as_deref().unwrap_or(&row.run_id);
            let dir = crate::package::write(&model_config.artifacts.join(home).join("package"), &contents)?;
            store.log_artifact(&row.run_id, "package", &dir).map_err(store_err)?;
            Some(dir)
        }
        None => None,
    };
    progress.finished(&StepSummary {
        step: "package",
        rows: engineered.train_raw.height(),
        columns: usize::from(package.is_some()),
        seconds: started.elapsed().as_secs_f64(),
        note: package.as_ref().map_or_else(|| "nothing chosen to package".into(), |p| p.display().to_string()),
    });

    // Step 17: register it; the alias moves only if it beats the champion on these test rows.
    let started = Instant::now();
    progress.started("register");
    let registered = match (&package, chosen.and_then(|row| model_of(&row.model).map(|m| (row, m)))) {
        (Some(dir), Some((row, model))) => {
            let outputs = crate::select::Outputs::of(&row.model, model, &test.x)?;
            let candidate = crate::register::Candidate {
                package: dir,
                outputs: &outputs,
                test_raw: &engineered.test_raw,
                truth: &test.y,
                classes: &target.classes,
                target: &target.name,
            };
            let registered = crate::register::register(
                &config.register,
                (&model_config.store, &child.experiment),
                &candidate,
                (metric, &config.select_best.compare, config.seed),
            )?;
            store.set_tag(&row.run_id, "registered", &registered.uri).map_err(store_err)?;
            Some(registered)
        }
        _ => None,
    };
    progress.finished(&StepSummary {
        step: "register",
        rows: test.x.nrows(),
        columns: usize::from(registered.is_some()),
        seconds: started.elapsed().as_secs_f64(),
        note: registered.as_ref().map_or_else(|| "nothing registered".into(), |r| format!("{} as {}", r.uri, r.alias)),
    });
    Ok(Shipped { selection, comparison, package, registered })
}

/// Raw test rows as a server would get them: before the features, without the target.
fn server_rows(engineered: &Engineered, target: &str) -> Result<Vec<mlops_core::Row>> {
    let mut rows = mlops_core::frame::rows_from_frame(&engineered.test_raw.head(Some(LATENCY_ROWS)))
        .map_err(|e| PipelineError::step("select", e))?;
    rows.iter_mut().for_each(|r| {
        r.remove(target);
    });
    Ok(rows)
}

/// Raw test rows whose single-row latency is measured (cycled through 200 calls).
const LATENCY_ROWS: usize = 50;

/// Feature importances by name, largest first (empty for families without them).
fn named_importances(model: &Model, features: &[String]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> =
        model.feature_importances().map(|v| features.iter().cloned().zip(v).collect()).unwrap_or_default();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// `binary classification`, `multiclass classification` or `regression`.
pub fn task_name(task: TaskKind) -> &'static str {
    match task {
        TaskKind::BinaryClassification => "binary classification",
        TaskKind::MulticlassClassification => "multiclass classification",
        TaskKind::Regression => "regression",
    }
}

fn cv_name(cv: &step13_tuning::Cv) -> String {
    match cv {
        step13_tuning::Cv::KFold { shuffle: true, .. } => "shuffled k-fold".into(),
        step13_tuning::Cv::KFold { .. } => "k-fold".into(),
        step13_tuning::Cv::StratifiedKFold { .. } => "stratified k-fold".into(),
        step13_tuning::Cv::TimeSeries { .. } => "time-series".into(),
    }
}
