//! Steps 10-17 of the training run, as a sequence of step calls: the split and features (step
//! 10, reused when unchanged), the target and the checks of the config, cross-validation folds
//! with the features refitted inside each ([`folds`]), the search, final fits and evaluation
//! (steps 11-14, [`search`]), and the choice, package and registration of the best (steps 15-17,
//! [`ship`]). An unchanged rerun gives back the last run's results ([`reuse`]).

mod folds;
mod reuse;
mod search;
mod ship;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlops_core::TaskKind;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use step12_training::{RunInfo, RunStatus, Store};
use step14_evaluate::Metric;

use crate::config::{ModelConfig, TrainingConfig};
use crate::error::{PipelineError, Result};
use crate::features::Engineered;
use crate::prepare::{Progress, StepSummary};
use crate::run_key::{RunKey, source_commit};
use crate::target::{Part, TargetInfo, default_metric, feature_columns, target_info, task_name};

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
    pub selection: step15_select_best::Choice,
    /// `validation`, `cv` (out of fold) or `test`: whose scores the selection ranked.
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
    /// What the run found worth a user's attention (operations of the prepare run that learned
    /// from the test rows, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Where a training run keeps its outputs.
pub struct TrainPaths<'a> {
    /// The config file (for its hash and for errors).
    pub origin: &'a Path,
    /// Dataset version (`name@version`) and its folder under reports (`name/version`).
    pub dataset: (&'a str, &'a Path),
    /// The operations that prepared the dataset version (its `pipeline.json`), which the
    /// package puts in front of the features; `None` for a plain file.
    pub prepared: Option<&'a mlops_core::FeaturePipeline>,
    /// The primary source's rows as read (when the run prepared the dataset): the package keeps
    /// the training part of them as its reference rows for monitoring.
    pub source: Option<&'a DataFrame>,
    /// The run this training run belongs to (a lifecycle run), recorded as its parent.
    pub parent_run: Option<&'a str>,
}

/// What the steps after the features read: the config, where outputs go, the split and
/// features, the target, the ranking metric and the feature columns.
struct Plan<'a> {
    config: &'a TrainingConfig,
    model: &'a ModelConfig,
    paths: &'a TrainPaths<'a>,
    engineered: &'a Engineered,
    target: &'a TargetInfo,
    metric: Metric,
    features: &'a [String],
}

impl Plan<'_> {
    /// A config error naming the file and the key.
    fn invalid(&self, key: &str, message: String) -> PipelineError {
        invalid(self.paths.origin, key, message)
    }
}

fn invalid(origin: &Path, key: &str, message: String) -> PipelineError {
    PipelineError::Config(mlops_core::config::invalid(origin, key, message))
}

/// Where the run's steps are recorded: the run store and what every child run shares.
struct Tracking<'a> {
    store: &'a Store,
    child: &'a RunInfo,
}

/// The parts' model input: the training part, the validation part (when the split has one) and
/// the test part.
struct Holdout {
    train: Part,
    validation: Option<Part>,
    test: Part,
}

/// The keys under which the run's outputs are reused (see [`RunKey`]).
struct Keys {
    /// The whole run: everything but the EDA and chart sections, which only shape the report.
    run: Option<String>,
    /// The split and features: the dataset, the seed, `select`, `split`, `features` and the
    /// target (never imputed or scaled).
    features: Option<String>,
    /// Tuning, final fits and evaluation: the dataset, the split, the features and the model
    /// section.
    fits: Option<String>,
}

impl Keys {
    fn of(config: &TrainingConfig, model: &ModelConfig, dataset: &str) -> Keys {
        let data = |step| RunKey::new(step).with(&dataset).with(&config.seed);
        Keys {
            run: data("train")
                .with(&(&config.select, &config.split, &config.features, &config.model))
                .with(&(&config.select_best, &config.register, &config.reports))
                .finish(),
            features: data("features").with(&(&config.select, &config.split, &config.features, &model.target)).finish(),
            fits: data("fits")
                .with(&(&config.select, &config.split, &config.features))
                .with(&(&model.target, &model.task, &model.metric, &model.features, &model.tuning))
                .finish(),
        }
    }
}

/// What the search and the final fits give the training run.
struct Board {
    trials: Vec<step13_tuning::Trial>,
    leaderboard: Vec<LeaderRow>,
    failed: Vec<(String, String)>,
    shipped: ship::Shipped,
}

/// Trains the candidates of `config.model` on `frame`: select and split, features, a
/// cross-validated search with every trial a child run, a final fit of each family's best on the
/// training part (scored on validation), an evaluation on the test part with an HTML report per
/// final run, then the choice, its package and its registration. Everything the config can get
/// wrong is checked before the first fit.
pub fn train(
    frame: &DataFrame,
    config: &TrainingConfig,
    paths: &TrainPaths<'_>,
    progress: &mut dyn Progress,
    tick: &(dyn Fn(usize, usize) + Sync),
) -> Result<Trained> {
    let model = config.model.as_ref().ok_or_else(|| {
        invalid(paths.origin, "model", "missing: say what to learn (`model: {target: COLUMN}`)".into())
    })?;
    let keys = Keys::of(config, model, paths.dataset.0);
    if let Some(done) = keys.run.as_deref().and_then(|key| reuse::unchanged(&model.store, key)) {
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
    let cache_dir = crate::cache::dir(&config.interim, paths.dataset.1);
    let (engineered, features_reused) = features(frame, config, keys.features.as_deref(), &cache_dir)?;
    let target = target_info(&engineered.train_raw, &model.target, model.task, &|message| {
        invalid(paths.origin, "model.target", message)
    })?;
    let (features, ignored) = feature_columns(&engineered.train, &model.target, model.features.as_ref());
    let plan = Plan {
        config,
        model,
        paths,
        engineered: &engineered,
        target: &target,
        metric: model.metric.unwrap_or(default_metric(target.task)),
        features: &features,
    };
    let experiment = check(&plan)?;
    let holdout = Holdout {
        train: target.part(&engineered.train, &features, "training")?,
        validation: (engineered.validation.height() > 0)
            .then(|| target.part(&engineered.validation, &features, "validation"))
            .transpose()?,
        test: target.part(&engineered.test, &features, "test")?,
    };
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

    // When only later sections changed, an earlier run's fits serve; otherwise the folds.
    let earlier = keys.fits.as_deref().and_then(|key| reuse::fits(&model.store, key));
    let fresh = match earlier {
        Some(_) => None,
        None => Some(folds::prepare(&plan, keys.features.as_deref(), &cache_dir, progress)?),
    };
    let n_folds = match (&earlier, &fresh) {
        (Some(e), _) => e.trained.folds,
        (None, Some(f)) => f.objective.parts.len(),
        (None, None) => 0,
    };

    let store = Store::open(&model.store).map_err(|e| PipelineError::step("train", e))?;
    let info = RunInfo {
        experiment: experiment.clone(),
        name: "training".into(),
        parent: paths.parent_run.map(str::to_string),
        dataset_version: Some(paths.dataset.0.to_string()),
        config_sha256: std::fs::read(paths.origin)
            .ok()
            .map(|b| mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&b))),
        source_commit: source_commit(),
    };
    let parent = store.start_run(&info).map_err(|e| PipelineError::step("train", e))?;
    let child = RunInfo { parent: Some(parent.clone()), ..info };
    let tracking = Tracking { store: &store, child: &child };
    let outcome = match (earlier, fresh) {
        (Some(earlier), _) => reuse::ship_earlier(&plan, &tracking, &holdout, earlier, progress),
        (None, Some(fresh)) => search::search_and_fit(&plan, &tracking, &holdout, &fresh, progress, tick),
        (None, None) => Err(PipelineError::Worker { step: "train" }),
    };
    finish_parent(&plan, &tracking, &outcome)?;
    let Board { trials, leaderboard, failed, shipped } = outcome?;
    let trained = Trained {
        experiment,
        run_id: parent,
        dataset: paths.dataset.0.to_string(),
        target: target.name.clone(),
        task: target.task,
        classes: target.classes.clone(),
        metric: plan.metric.name(),
        greater_is_better: plan.metric.greater_is_better(),
        folds: n_folds,
        rows: (engineered.train.height(), engineered.validation.height(), engineered.test.height()),
        features,
        ignored,
        trials,
        leaderboard,
        failed,
        selection: shipped.selection,
        selected_on: ship::selected_on(&config.select_best, engineered.validation.height() > 0).name().to_string(),
        comparison: shipped.comparison,
        package: shipped.package,
        registered: shipped.registered,
        eda_report: None,
        reused: None,
        warnings: shipped.warnings,
    };
    reuse::record(&store, &model.artifacts, &keys, &trained)?;
    Ok(trained)
}

/// The split and features (step 10), from the cache when an earlier run had the same key;
/// whether they were reused.
fn features(
    frame: &DataFrame,
    config: &TrainingConfig,
    key: Option<&str>,
    cache_dir: &Path,
) -> Result<(Engineered, bool)> {
    if let Some(engineered) = key.and_then(|k| crate::cache::load_features(cache_dir, k)) {
        return Ok((engineered, true));
    }
    let engineered = crate::features::engineer(frame, config, None)?;
    if let Some(k) = key {
        crate::cache::save_features(cache_dir, k, &engineered)?;
    }
    Ok((engineered, false))
}

/// Checks the metric, `select_best`, `register` and the feature list against the target before
/// anything is fitted; gives the experiment's name.
fn check(plan: &Plan<'_>) -> Result<String> {
    let (model, target) = (plan.model, plan.target);
    plan.metric.check(target.task).map_err(|e| plan.invalid("model.metric", e.to_string()))?;
    let select = &plan.config.select_best;
    select.check(plan.metric).map_err(|e| match e {
        step15_select_best::SelectBestError::Invalid { key, message } => {
            plan.invalid(&format!("select_best.{key}"), message)
        }
        other => plan.invalid("select_best", other.to_string()),
    })?;
    for (key, m) in select.metrics() {
        m.check(target.task).map_err(|e| plan.invalid(&format!("select_best.{key}"), e.to_string()))?;
    }
    let experiment = model
        .experiment
        .clone()
        .unwrap_or_else(|| format!("{}-{}", plan.paths.dataset.0.split('@').next().unwrap_or("data"), target.name));
    plan.config.register.check(&experiment).map_err(|(key, message)| plan.invalid(&key, message))?;
    if plan.features.is_empty() {
        return Err(plan.invalid("model.features", "no numeric feature columns to learn from".into()));
    }
    Ok(experiment)
}

/// Records the outcome on the parent run: its params and tags, the chosen and the best run, and
/// its status.
fn finish_parent(plan: &Plan<'_>, tracking: &Tracking<'_>, outcome: &Result<Board>) -> Result<()> {
    let (store, metric) = (tracking.store, plan.metric);
    let parent = tracking.child.parent.as_deref().unwrap_or_default();
    let store_err = |e| PipelineError::step("train", e);
    let board = match outcome {
        Ok(board) => board,
        Err(e) => return store.finish(parent, RunStatus::Failed, Some(&e.to_string())).map_err(store_err),
    };
    store.log_param(parent, "target", &plan.target.name).map_err(store_err)?;
    store.log_param(parent, "metric", &metric.name()).map_err(store_err)?;
    store.set_tag(parent, "kind", "training").map_err(store_err)?;
    let winner = board.shipped.selection.winner.as_ref();
    if let Some(chosen) = winner.and_then(|w| board.leaderboard.iter().find(|r| &r.model == w)) {
        store.set_tag(parent, "selected_run", &chosen.run_id).map_err(store_err)?;
        store.set_tag(&chosen.run_id, "selected", "true").map_err(store_err)?;
    }
    if let Some(best) = board.leaderboard.first() {
        store.set_tag(parent, "best_run", &best.run_id).map_err(store_err)?;
        store.log_metric(parent, &format!("best_cv_{}", metric.name()), best.cv_mean, None).map_err(store_err)?;
    }
    store.finish(parent, RunStatus::Finished, None).map_err(store_err)
}
