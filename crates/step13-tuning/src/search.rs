//! The tuning loop: every candidate on every fold, over the cores, each candidate a tracked child
//! run; the best by mean score.

use std::collections::BTreeMap;

use mlops_core::Seed;
use serde::{Deserialize, Serialize};
use step11_candidates::ModelSpec;
use step12_training::{RunInfo, RunStatus, Store, StoreError};

use crate::{Cv, Result, Space, TuneError};

/// How candidates are drawn from the spaces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Search {
    /// Every combination of the listed values.
    #[default]
    Grid,
    /// `n` seeded draws per space (lists and ranges).
    Random {
        /// Draws per space (>= 1).
        n: usize,
    },
}

/// The `tuning` section of a training config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneParams {
    /// Grid or random search.
    #[serde(default)]
    pub search: Search,
    /// Cross-validation (default: stratified 5-fold for classification, 5-fold for regression).
    #[serde(default)]
    pub cv: Option<Cv>,
    /// Model families and the hyperparameter values to try. Empty: step 11's suggestion for the
    /// task and the number of training rows, with default hyperparameters.
    #[serde(default)]
    pub candidates: Vec<Space>,
}

impl TuneParams {
    /// The cross-validation scheme for a task.
    pub fn cv_for(&self, classification: bool) -> Cv {
        self.cv.clone().unwrap_or(if classification {
            Cv::StratifiedKFold { k: 5 }
        } else {
            Cv::KFold { k: 5, shuffle: true }
        })
    }

    /// The candidates to try, each checked against its family and the task, before any fitting.
    pub fn candidates(&self, classification: bool, rows: usize, seed: Seed) -> Result<Vec<ModelSpec>> {
        if self.candidates.is_empty() {
            return Ok(step11_candidates::suggest(classification, rows));
        }
        let mut out = Vec::new();
        for (i, space) in self.candidates.iter().enumerate() {
            let at = |e: TuneError| match e {
                TuneError::Invalid { key, message } => {
                    TuneError::Invalid { key: format!("candidates[{i}].{key}"), message }
                }
                // The family's check names the parameter (`random_forest_classifier.n_estimators`).
                TuneError::Candidate { message, .. } => {
                    TuneError::Invalid { key: format!("candidates[{i}].params"), message }
                }
                other => other,
            };
            let specs = match self.search {
                Search::Grid => space.grid().map_err(at)?,
                Search::Random { n: 0 } => {
                    return Err(TuneError::Invalid {
                        key: "search.random.n".into(),
                        message: "must be at least 1".into(),
                    });
                }
                Search::Random { n } => {
                    let lists_only = space.params.values().all(|v| matches!(v, crate::Values::List(_)));
                    let specs = space.random(n, seed.derive(&format!("candidate{i}"))).map_err(at)?;
                    let mut unique: Vec<ModelSpec> = Vec::with_capacity(specs.len());
                    for s in specs {
                        // Draws from lists repeat; trying one twice only costs time.
                        if !(lists_only && unique.contains(&s)) {
                            unique.push(s);
                        }
                    }
                    unique
                }
            };
            for spec in specs {
                if spec.is_classifier() != classification {
                    return Err(TuneError::Invalid {
                        key: format!("candidates[{i}].model"),
                        message: format!(
                            "`{}` is a {}, but the target needs a {}",
                            space.model,
                            if classification { "regressor" } else { "classifier" },
                            if classification { "classifier" } else { "regressor" }
                        ),
                    });
                }
                spec.check(rows)
                    .map_err(|e| TuneError::Candidate { model: space.model.clone(), message: e.to_string() })?;
                out.push(spec);
            }
        }
        Ok(out)
    }
}

/// Scores one candidate on one fold. `pipelines` implements it: refit the FeaturePipeline on the
/// fold's training rows, fit the model, score the fold's validation rows with a step 14 metric.
pub trait Objective: Sync {
    /// The score and the seconds the fit took; an `Err` fails the trial with that message.
    fn score(&self, spec: &ModelSpec, fold: usize) -> std::result::Result<(f64, f64), String>;
}

/// One candidate across the folds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trial {
    /// Family.
    pub model: String,
    /// Family and hyperparameters.
    pub spec: ModelSpec,
    /// Hyperparameters as run params.
    pub params: BTreeMap<String, String>,
    /// Score per fold.
    pub scores: Vec<f64>,
    /// Mean of the fold scores (NaN for a failed trial).
    pub mean: f64,
    /// Standard deviation of the fold scores (population, as scikit-learn's `std_test_score`).
    pub std: f64,
    /// Mean fit seconds per fold.
    pub fit_seconds: f64,
    /// The trial's child run.
    pub run_id: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Every trial of a search.
#[derive(Clone, Debug, Serialize)]
pub struct Tuned {
    /// Metric the trials are scored by.
    pub metric: String,
    /// Whether a higher score is better.
    pub greater_is_better: bool,
    /// Trials in candidate order.
    pub trials: Vec<Trial>,
}

impl Tuned {
    fn better(&self, a: &Trial, b: &Trial) -> bool {
        if self.greater_is_better { a.mean > b.mean } else { a.mean < b.mean }
    }

    /// Index of the best trial that did not fail (the first on a tie).
    pub fn best(&self) -> Option<usize> {
        self.best_where(|_| true)
    }

    /// Index of the best trial of each family that has one, best family first.
    pub fn best_per_family(&self) -> Vec<usize> {
        let mut families: Vec<&str> = Vec::new();
        for t in &self.trials {
            if !families.contains(&t.model.as_str()) {
                families.push(&t.model);
            }
        }
        let mut best: Vec<usize> = families.iter().filter_map(|f| self.best_where(|t| t.model == *f)).collect();
        best.sort_by(|&a, &b| {
            let (a, b) = (&self.trials[a], &self.trials[b]);
            let order = a.mean.total_cmp(&b.mean);
            if self.greater_is_better { order.reverse() } else { order }
        });
        best
    }

    fn best_where(&self, keep: impl Fn(&Trial) -> bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, t) in self.trials.iter().enumerate() {
            if t.error.is_some() || !t.mean.is_finite() || !keep(t) {
                continue;
            }
            if best.is_none_or(|b| self.better(t, &self.trials[b])) {
                best = Some(i);
            }
        }
        best
    }
}

/// Scores every candidate on every fold (candidate × fold pairs spread over the cores), then
/// records each candidate as a child run of `parent` with its params, per-fold scores (metric
/// `cv_<metric>` with the fold as step), mean, std and fit time. A candidate failing on any fold
/// is a failed run; the others go on. Only a store error stops the search.
pub fn tune(
    store: &Store,
    parent: &RunInfo,
    candidates: &[ModelSpec],
    folds: usize,
    objective: &dyn Objective,
    (metric, greater_is_better): (&str, bool),
    done: &(dyn Fn(usize, usize) + Sync),
) -> std::result::Result<Tuned, StoreError> {
    let pairs: Vec<(usize, usize)> = (0..candidates.len()).flat_map(|c| (0..folds).map(move |f| (c, f))).collect();
    let total = pairs.len();
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let run = |&(c, f): &(usize, usize)| {
        let out = objective.score(&candidates[c], f);
        let n = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        done(n, total);
        out
    };
    // A worker thread that panicked loses its results: count them as failures of their trials.
    let results = mlops_core::par::map(&pairs, run)
        .unwrap_or_else(|| pairs.iter().map(|_| Err("a tuning worker thread failed".to_string())).collect());
    let mut trials = Vec::with_capacity(candidates.len());
    for (c, spec) in candidates.iter().enumerate() {
        let mine = &results[c * folds..(c + 1) * folds];
        let error = mine.iter().enumerate().find_map(|(f, r)| r.as_ref().err().map(|e| format!("fold {f}: {e}")));
        let scores: Vec<f64> = mine.iter().filter_map(|r| r.as_ref().ok().map(|s| s.0)).collect();
        let fit_seconds = mine.iter().filter_map(|r| r.as_ref().ok().map(|s| s.1)).sum::<f64>() / folds.max(1) as f64;
        let (mean, std) = if error.is_none() && !scores.is_empty() {
            let mean = scores.iter().sum::<f64>() / scores.len() as f64;
            (mean, (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt())
        } else {
            (f64::NAN, f64::NAN)
        };
        let params = step12_training::spec_params(spec);
        let id = store.start_run(&RunInfo { name: format!("{} trial {c}", spec.name()), ..parent.clone() })?;
        for (k, v) in &params {
            store.log_param(&id, k, v)?;
        }
        store.set_tag(&id, "kind", "trial")?;
        let key = format!("cv_{metric}");
        for (f, s) in scores.iter().enumerate() {
            store.log_metric(&id, &key, *s, Some(f as i64))?;
        }
        if error.is_none() {
            store.log_metric(&id, &format!("{key}_mean"), mean, None)?;
            store.log_metric(&id, &format!("{key}_std"), std, None)?;
            store.log_metric(&id, "fit_seconds", fit_seconds, None)?;
        }
        let status = if error.is_some() { RunStatus::Failed } else { RunStatus::Finished };
        store.finish(&id, status, error.as_deref())?;
        if let Some(e) = &error {
            tracing::warn!(model = spec.name(), error = %e, "trial failed; going on with the others");
        }
        trials.push(Trial {
            model: spec.name().to_string(),
            spec: spec.clone(),
            params,
            scores,
            mean,
            std,
            fit_seconds,
            run_id: id,
            error,
        });
    }
    tracing::info!(trials = trials.len(), folds, metric, "search done");
    Ok(Tuned { metric: metric.to_string(), greater_is_better, trials })
}
