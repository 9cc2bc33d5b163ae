//! Step 15 in the training run: each final model's single-row latency (feature pipeline and
//! model, as a server answers one request), the choice of the best by the weighted criteria of
//! `select_best`, and the chosen model against the runner-up on the same test rows.

use std::time::Instant;

use mlops_core::{FeaturePipeline, Row, Seed, Transform};
use ndarray::Array2;
use step11_candidates::{Labels, Model};
use step14_evaluate::Metric;
use step15_select_best::{Choice, ClassifierOutputs, CompareParams, Comparison, Entry, PairedOutputs, SelectParams};

use crate::error::{PipelineError, Result};

/// Single-row predictions timed per final model.
const LATENCY_CALLS: usize = 200;

/// Single-row latency of `model` (family `name`) behind `pipeline`, in milliseconds: (p50, p99) over
/// [`LATENCY_CALLS`] calls cycling through `rows` (raw rows, before the features).
pub(crate) fn latency(
    pipeline: &FeaturePipeline,
    (name, model): (&str, &Model),
    rows: &[Row],
    features: &[String],
) -> Result<(f64, f64)> {
    if rows.is_empty() {
        return Ok((f64::NAN, f64::NAN));
    }
    let failed = |message: String| PipelineError::Scoring { step: "select", model: name.to_string(), message };
    let mut times = Vec::with_capacity(LATENCY_CALLS);
    for row in rows.iter().cycle().take(LATENCY_CALLS) {
        let mut row = row.clone();
        let started = Instant::now();
        pipeline.transform_row(&mut row).map_err(|e| failed(e.to_string()))?;
        let x = Array2::from_shape_fn((1, features.len()), |(_, j)| {
            row.get(&features[j]).and_then(|v| v.as_f64()).unwrap_or(f64::NAN)
        });
        let out = match model.predict_proba(&x).map_err(|e| failed(e.to_string()))? {
            Some(p) => p.first().map_or(0.0, |p| p.iter().sum()),
            None => model.predict(&x).map_err(|e| failed(e.to_string()))?.first().copied().unwrap_or(0.0),
        };
        std::hint::black_box(out);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let p50 = mlops_core::stats::quantile_of(&mut times.clone(), 0.5).unwrap_or(f64::NAN);
    let p99 = mlops_core::stats::quantile_of(&mut times, 0.99).unwrap_or(f64::NAN);
    Ok((p50, p99))
}

/// Chooses among the final models.
pub(crate) fn choose(entries: &[Entry], params: &SelectParams, metric: Metric) -> Result<Choice> {
    step15_select_best::select(entries, params, metric).map_err(|e| PipelineError::step("select", e))
}

/// One model's outputs on the test rows.
pub(crate) struct Outputs {
    pub name: String,
    pub predicted: Vec<f64>,
    pub proba: Option<Vec<Vec<f64>>>,
}

impl Outputs {
    pub(crate) fn of(name: &str, model: &Model, x: &Array2<f64>) -> Result<Outputs> {
        let failed = |message: String| PipelineError::Scoring { step: "select", model: name.to_string(), message };
        let p = model.predict_with_proba(x).map_err(|e| failed(e.to_string()))?;
        Ok(Outputs { name: name.to_string(), predicted: p.predicted, proba: p.proba })
    }

    fn classes(&self) -> Vec<usize> {
        self.predicted.iter().map(|&c| c as usize).collect()
    }

    /// The metric on some rows (repeats allowed).
    pub(crate) fn metric(&self, metric: Metric, truth: &Labels, rows: &[usize], classes: usize) -> Option<f64> {
        match truth {
            Labels::Classes { y: t, .. } => {
                let t: Vec<usize> = rows.iter().map(|&r| t[r]).collect();
                let p: Vec<usize> = rows.iter().map(|&r| self.predicted[r] as usize).collect();
                let proba: Option<Vec<Vec<f64>>> =
                    self.proba.as_ref().map(|pr| rows.iter().map(|&r| pr[r].clone()).collect());
                let m = step14_evaluate::classification(&t, &p, proba.as_deref(), classes).ok()?;
                metric.of_classification(&m)
            }
            Labels::Values(t) => {
                let t: Vec<f64> = rows.iter().map(|&r| t[r]).collect();
                let p: Vec<f64> = rows.iter().map(|&r| self.predicted[r]).collect();
                metric.of_regression(&step14_evaluate::regression(&t, &p).ok()?)
            }
        }
    }
}

/// How two models' outputs are compared: by the ranking metric over the task's classes, with the
/// tests of `select_best.compare`, the bootstrap seeded from the config.
pub(crate) struct Comparing<'a> {
    pub(crate) metric: Metric,
    pub(crate) classes: usize,
    pub(crate) params: &'a CompareParams,
    pub(crate) seed: Seed,
}

/// Test rows of the truth.
fn t_len(truth: &Labels) -> usize {
    match truth {
        Labels::Classes { y, .. } => y.len(),
        Labels::Values(v) => v.len(),
    }
}

/// `a` against `b` on the test rows: z-test and McNemar for classifiers, and a paired bootstrap
/// of the ranking metric.
pub(crate) fn compare((a, b): (&Outputs, &Outputs), truth: &Labels, how: &Comparing<'_>) -> Result<Comparison> {
    let (metric, classes, params) = (how.metric, how.classes, how.params);
    let err = |e| PipelineError::step("select", e);
    let (z_test, mcnemar) = match truth {
        Labels::Classes { y: t, .. } => {
            let (pa, pb) = (a.classes(), b.classes());
            let right = |p: &[usize]| p.iter().zip(t).filter(|(p, t)| p == t).count();
            (
                Some(
                    step15_select_best::two_proportion_z(right(&pa), right(&pb), t.len(), params.confidence)
                        .map_err(err)?,
                ),
                Some(step15_select_best::mcnemar(t, &pa, &pb, params.confidence).map_err(err)?),
            )
        }
        Labels::Values(_) => (None, None),
    };
    // Resampled by counts over rows sorted once, on every core (step 15).
    let (pa, pb) = (a.classes(), b.classes());
    let outputs = match truth {
        Labels::Classes { y, .. } => PairedOutputs::Classes {
            truth: y,
            classes,
            a: ClassifierOutputs { predicted: &pa, proba: a.proba.as_deref() },
            b: ClassifierOutputs { predicted: &pb, proba: b.proba.as_deref() },
        },
        Labels::Values(t) => PairedOutputs::Values { truth: t, a: &a.predicted, b: &b.predicted },
    };
    let started = std::time::Instant::now();
    let bootstrap = step15_select_best::paired_bootstrap_metric(metric, &outputs, params, how.seed).map_err(err)?;
    tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, rows = t_len(truth), "paired bootstrap");
    Ok(Comparison { a: a.name.clone(), b: b.name.clone(), z_test, mcnemar, bootstrap })
}
