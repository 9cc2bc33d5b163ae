//! Criterion benches of the paired bootstrap: 1,000 resamples of 100,000 test rows, ROC-AUC of
//! two binary classifiers and accuracy of two five-class classifiers (with probabilities, as the
//! training run passes them).
//!
//! `cargo bench -p step15-select-best --bench bootstrap`
//!
//! `paired_bootstrap_metric` is measured always. The closure path (`paired_bootstrap` with step
//! 14's metrics on the materialised rows, as the training run called it before) takes about half
//! a minute per iteration and runs only with `STEP15_BENCH_CLOSURE=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use mlops_core::Seed;
use step14_evaluate::Metric;
use step15_select_best::{ClassifierOutputs, CompareParams, PairedOutputs, paired_bootstrap, paired_bootstrap_metric};

const ROWS: usize = 100_000;
const RESAMPLES: usize = 1_000;

/// Two classifiers' outputs on the same rows: predicted classes and probabilities rounded to
/// three decimals (ties, as trees and forests give them).
struct Problem {
    truth: Vec<usize>,
    classes: usize,
    predicted: [Vec<usize>; 2],
    proba: [Vec<Vec<f64>>; 2],
}

fn problem(classes: usize, seed: u64) -> Problem {
    let mut draws = Seed(seed).draws();
    let truth: Vec<usize> = (0..ROWS).map(|_| draws.below(classes as u64) as usize).collect();
    let mut model = |skill: f64| {
        let proba: Vec<Vec<f64>> = truth
            .iter()
            .map(|&t| {
                let raw: Vec<f64> =
                    (0..classes).map(|c| draws.unit() + if c == t { skill * draws.unit() } else { 0.0 }).collect();
                let sum: f64 = raw.iter().sum();
                raw.iter().map(|v| (v / sum * 1000.0).round() / 1000.0).collect()
            })
            .collect();
        let predicted =
            proba.iter().map(|p| (0..classes).fold(0, |best, c| if p[c] > p[best] { c } else { best })).collect();
        (predicted, proba)
    };
    let (pa, qa) = model(1.0);
    let (pb, qb) = model(0.8);
    Problem { truth, classes, predicted: [pa, pb], proba: [qa, qb] }
}

/// The metric on some rows (repeats allowed), as the training run computed it before step 15
/// had its own weighted metrics: the rows materialised, then every classification metric.
fn on_rows(p: &Problem, model: usize, metric: Metric, rows: &[usize]) -> Option<f64> {
    let t: Vec<usize> = rows.iter().map(|&r| p.truth[r]).collect();
    let pred: Vec<usize> = rows.iter().map(|&r| p.predicted[model][r]).collect();
    let proba: Vec<Vec<f64>> = rows.iter().map(|&r| p.proba[model][r].clone()).collect();
    let m = step14_evaluate::classification(&t, &pred, Some(&proba), p.classes).ok()?;
    metric.of_classification(&m)
}

fn bootstrap(c: &mut Criterion) {
    let params = CompareParams { bootstrap_samples: RESAMPLES, confidence: 0.95 };
    let mut group = c.benchmark_group("paired_bootstrap_100k_rows_1k_resamples");
    group.sample_size(10);
    let closure = std::env::var_os("STEP15_BENCH_CLOSURE").is_some_and(|v| v == "1");
    for (label, classes, metric) in [("roc_auc_binary", 2, Metric::RocAuc), ("accuracy_5_classes", 5, Metric::Accuracy)]
    {
        let p = problem(classes, 7);
        let model = |m: usize| ClassifierOutputs { predicted: &p.predicted[m], proba: Some(&p.proba[m]) };
        let outputs = PairedOutputs::Classes { truth: &p.truth, classes, a: model(0), b: model(1) };
        group.bench_function(format!("metric/{label}"), |b| {
            b.iter(|| paired_bootstrap_metric(metric, &outputs, &params, Seed(42)).unwrap())
        });
        if closure {
            let both = |rows: &[usize]| Some((on_rows(&p, 0, metric, rows)?, on_rows(&p, 1, metric, rows)?));
            group.bench_function(format!("closure/{label}"), |b| {
                b.iter(|| paired_bootstrap(&metric.name(), ROWS, &params, Seed(42), &both).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bootstrap);
criterion_main!(benches);
