//! The trainer: fits each candidate on the training part, scores it on the validation part, and
//! records every attempt as a run, failures included.

use std::collections::BTreeMap;
use std::time::Instant;

use ndarray::Array2;
use serde::Serialize;
use step11_candidates::{Labels, Model, ModelSpec};

use crate::{RunInfo, RunStatus, Store, StoreError};

/// A model family with its hyperparameters, under a name for the leaderboard.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Name of the run.
    pub name: String,
    /// Family and hyperparameters.
    pub spec: ModelSpec,
}

/// Scores a fitted model on the validation rows. Step 14's metrics do this in `pipelines` (a
/// higher step, so it comes in through this trait).
pub trait Evaluate {
    /// Metric name to value (the candidate may add others, such as test or cross-validation
    /// scores); an `Err` fails the run with that message.
    fn evaluate(&self, candidate: &Candidate, model: &Model, x: &Array2<f64>) -> Result<BTreeMap<String, f64>, String>;
}

impl<F: Fn(&Candidate, &Model, &Array2<f64>) -> Result<BTreeMap<String, f64>, String>> Evaluate for F {
    fn evaluate(&self, candidate: &Candidate, model: &Model, x: &Array2<f64>) -> Result<BTreeMap<String, f64>, String> {
        self(candidate, model, x)
    }
}

/// The training rows.
pub struct TrainingData<'a> {
    /// Features, one row per example.
    pub x: &'a Array2<f64>,
    /// What to learn.
    pub labels: &'a Labels,
    /// Feature names, for errors.
    pub names: &'a [String],
}

/// How one candidate went.
#[derive(Clone, Debug, Serialize)]
pub struct CandidateOutcome {
    /// Candidate name.
    pub name: String,
    /// Its run.
    pub run_id: String,
    /// Finished or failed.
    pub status: RunStatus,
    /// The fitted model, when the fit worked.
    #[serde(skip)]
    pub model: Option<Model>,
    /// Validation metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Seconds to fit.
    pub fit_seconds: f64,
    /// Seconds to predict and score the validation rows.
    pub predict_seconds: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// The hyperparameters of a spec as run params: `model` and one entry per setting.
pub fn spec_params(spec: &ModelSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([("model".to_string(), spec.name().to_string())]);
    if let Ok(serde_json::Value::Object(outer)) = serde_json::to_value(spec)
        && let Some(serde_json::Value::Object(inner)) = outer.values().next()
    {
        for (k, v) in inner {
            out.insert(k.clone(), v.to_string());
        }
    }
    out
}

/// Trains every candidate in turn. A candidate that fails to fit or to score is recorded as a
/// failed run and the others go on; only a store error stops the loop.
pub fn train(
    store: &Store,
    info: &RunInfo,
    data: &TrainingData<'_>,
    validation: &Array2<f64>,
    candidates: &[Candidate],
    evaluate: &dyn Evaluate,
) -> Result<Vec<CandidateOutcome>, StoreError> {
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        let run = store.start_run(&RunInfo { name: c.name.clone(), ..info.clone() })?;
        for (k, v) in spec_params(&c.spec) {
            store.log_param(&run, &k, &v)?;
        }
        let started = Instant::now();
        let fitted = step11_candidates::fit(&c.spec, data.x, data.labels, data.names);
        let fit_seconds = started.elapsed().as_secs_f64();
        let mut outcome = CandidateOutcome {
            name: c.name.clone(),
            run_id: run.clone(),
            status: RunStatus::Failed,
            model: None,
            metrics: BTreeMap::new(),
            fit_seconds,
            predict_seconds: 0.0,
            error: None,
        };
        match fitted {
            Err(e) => outcome.error = Some(e.to_string()),
            Ok(model) => {
                let started = Instant::now();
                let scored = evaluate.evaluate(c, &model, validation);
                outcome.predict_seconds = started.elapsed().as_secs_f64();
                match scored {
                    Ok(metrics) => {
                        for (k, v) in &metrics {
                            store.log_metric(&run, k, *v, None)?;
                        }
                        for (key, losses) in model.iteration_losses() {
                            store.log_metric_steps(&run, key, losses)?;
                        }
                        store.log_metric(&run, "fit_seconds", fit_seconds, None)?;
                        store.log_metric(&run, "predict_seconds", outcome.predict_seconds, None)?;
                        outcome.metrics = metrics;
                        outcome.status = RunStatus::Finished;
                        outcome.model = Some(model);
                    }
                    Err(e) => outcome.error = Some(e),
                }
            }
        }
        store.finish(&run, outcome.status, outcome.error.as_deref())?;
        match &outcome.error {
            Some(e) => tracing::warn!(candidate = %c.name, error = %e, "candidate failed; going on with the others"),
            None => tracing::info!(candidate = %c.name, fit_seconds, "candidate trained"),
        }
        out.push(outcome);
    }
    Ok(out)
}
