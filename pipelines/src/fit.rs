//! One model on parts that already hold features (`mlops fit`): fit it on the training part,
//! time the fit (median of repeats) and score the test part. A quick experiment, and the
//! toolkit's side of the model benchmark; `mlops train` is the tracked, tuned run.

use std::collections::BTreeMap;
use std::time::Instant;

use mlops_core::TaskKind;
use polars::prelude::DataFrame;
use serde::Serialize;
use step11_candidates::ModelSpec;

use crate::error::{PipelineError, Result};
use crate::evaluate::assess;
use crate::target::{TargetInfo, TaskChoice, feature_columns, target_info};

/// What to fit and on what.
pub struct FitRequest<'a> {
    /// The training part.
    pub train: &'a DataFrame,
    /// The part to score.
    pub test: &'a DataFrame,
    /// The column to predict.
    pub target: &'a str,
    /// Classification or regression (`auto` decides from the column).
    pub task: TaskChoice,
    /// The model and its hyperparameters.
    pub spec: &'a ModelSpec,
    /// Fits to time (the last one is scored).
    pub repeats: usize,
}

/// One model fitted and scored.
#[derive(Clone, Debug, Serialize)]
pub struct FitOutcome {
    /// Family.
    pub model: String,
    /// The model with every hyperparameter.
    pub spec: ModelSpec,
    /// The target column.
    pub target: String,
    /// The task.
    pub task: TaskKind,
    /// Class names, in index order (classification).
    pub classes: Vec<String>,
    /// Feature columns, in order.
    pub features: Vec<String>,
    /// Rows: training, test.
    pub rows: (usize, usize),
    /// Seconds of each fit.
    pub fit_seconds: Vec<f64>,
    /// Their median.
    pub fit_seconds_median: f64,
    /// Seconds to predict and score the test part, median over the repeats.
    pub predict_seconds_median: f64,
    /// Every metric of the task on the test part.
    pub metrics: BTreeMap<String, f64>,
}

/// Fits `request.spec` on the training part `request.repeats` times and scores the test part.
pub fn fit_parts(request: &FitRequest<'_>) -> Result<FitOutcome> {
    let argument = |argument: &'static str| move |message: String| PipelineError::Argument { argument, message };
    if request.repeats == 0 {
        return Err(argument("--repeats")("must be at least 1".into()));
    }
    let target: TargetInfo = target_info(request.train, request.target, request.task, &argument("--target"))?;
    if request.spec.is_classifier() != target.classification() {
        return Err(argument("--model")(format!(
            "`{}` is a {}, but `{}` needs a {}",
            request.spec.name(),
            if request.spec.is_classifier() { "classifier" } else { "regressor" },
            target.name,
            if target.classification() { "classifier" } else { "regressor" }
        )));
    }
    let (features, _) = feature_columns(request.train, request.target, None);
    if features.is_empty() {
        return Err(argument("--target")(format!("no numeric feature columns beside `{}`", request.target)));
    }
    let (train, test) =
        (target.part(request.train, &features, "training")?, target.part(request.test, &features, "test")?);
    request.spec.check(train.x.nrows()).map_err(|e| argument("--model")(e.to_string()))?;
    let failed =
        |message: String| PipelineError::Scoring { step: "fit", model: request.spec.name().to_string(), message };
    let (mut fits, mut predicts, mut metrics) = (Vec::new(), Vec::new(), BTreeMap::new());
    for _ in 0..request.repeats {
        let started = Instant::now();
        let model =
            step11_candidates::fit(request.spec, &train.x, &train.y, &features).map_err(|e| failed(e.to_string()))?;
        fits.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        metrics = assess(&model, &test.x, &test.y, &target).map_err(failed)?.metrics();
        predicts.push(started.elapsed().as_secs_f64());
        tracing::info!(model = request.spec.name(), fit_seconds = fits[fits.len() - 1], "fitted");
    }
    Ok(FitOutcome {
        model: request.spec.name().to_string(),
        spec: request.spec.clone(),
        target: target.name.clone(),
        task: target.task,
        classes: target.classes.clone(),
        features,
        rows: (train.x.nrows(), test.x.nrows()),
        fit_seconds_median: median(&fits),
        fit_seconds: fits,
        predict_seconds_median: median(&predicts),
        metrics,
    })
}

fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    mlops_core::stats::quantile_of(&mut xs, 0.5).unwrap_or(f64::NAN)
}
