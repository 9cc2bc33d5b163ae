//! A model's metric on a resample given as a count per row, in one pass and without sorting.
//!
//! A bootstrap resample of `n` rows is a multiset: what a metric needs is how often each row was
//! drawn. Everything that depends on the data alone (the rows ranked by score, per-row losses) is
//! computed once here; a resample then costs one pass over the rows with the counts as weights.
//! Each metric follows step 14's definition on the materialised resample, operation for
//! operation where it can: ROC-AUC and the confusion-matrix metrics come out bit for bit equal,
//! the means of per-row terms differ only by the order of summation.

use step14_evaluate::Metric;

use crate::{ClassifierOutputs, PairedOutputs};

/// One model's metric, prepared for resamples.
pub(crate) enum Weighted<'a> {
    /// Accuracy, balanced accuracy, precision, recall and F1: functions of the confusion matrix.
    Confusion { truth: &'a [usize], predicted: &'a [usize], classes: usize, metric: Metric },
    /// ROC-AUC: the positive class's ranking for a binary task, one ranking per class (one
    /// against the rest, macro average) for more.
    RocAuc(Vec<Ranking>),
    /// The mean of a per-row term (log loss, MAE, MSE, MAPE), or its square root (RMSE).
    Mean { terms: Vec<f64>, root: bool },
    /// R², from the truth and the squared errors.
    R2 { truth: &'a [f64], squared_errors: Vec<f64> },
}

impl<'a> Weighted<'a> {
    /// `metric` of both models of `outputs`, or `None` when the task cannot have it (a
    /// regression metric of classifiers, ROC-AUC without probabilities). The inputs must be
    /// valid, as step 14 checks them: same lengths, labels below `classes`, probability rows of
    /// `classes` finite values, finite regression values.
    pub(crate) fn pair(metric: Metric, outputs: &PairedOutputs<'a>) -> Option<(Weighted<'a>, Weighted<'a>)> {
        match *outputs {
            PairedOutputs::Classes { truth, classes, a, b } => Some((
                Self::classification(metric, truth, classes, &a)?,
                Self::classification(metric, truth, classes, &b)?,
            )),
            PairedOutputs::Values { truth, a, b } => {
                Some((Self::regression(metric, truth, a)?, Self::regression(metric, truth, b)?))
            }
        }
    }

    fn classification(
        metric: Metric,
        truth: &'a [usize],
        classes: usize,
        model: &ClassifierOutputs<'a>,
    ) -> Option<Weighted<'a>> {
        match metric {
            Metric::Accuracy
            | Metric::BalancedAccuracy
            | Metric::Precision
            | Metric::Recall
            | Metric::F1
            | Metric::F1Macro
            | Metric::F1Weighted => Some(Weighted::Confusion { truth, predicted: model.predicted, classes, metric }),
            Metric::RocAuc => {
                let proba = model.proba?;
                let scored: Vec<usize> = if classes == 2 { vec![1] } else { (0..classes).collect() };
                let rankings = scored
                    .into_iter()
                    .map(|c| {
                        let scores: Vec<f64> =
                            proba.iter().map(|row| row.get(c).copied().unwrap_or(f64::NAN)).collect();
                        Ranking::of(truth, c, &scores)
                    })
                    .collect::<Option<Vec<Ranking>>>()?;
                Some(Weighted::RocAuc(rankings))
            }
            Metric::LogLoss => {
                // Step 14's `log_loss`: each row normalised to sum to 1, clipped to [ε, 1 - ε].
                let proba = model.proba?;
                let eps = f64::EPSILON;
                let terms = truth
                    .iter()
                    .zip(proba)
                    .map(|(&t, row)| {
                        let sum: f64 = row.iter().sum();
                        let p = if sum > 0.0 { row.get(t).copied()? / sum } else { 1.0 / row.len() as f64 };
                        Some(-p.clamp(eps, 1.0 - eps).ln())
                    })
                    .collect::<Option<Vec<f64>>>()?;
                Some(Weighted::Mean { terms, root: false })
            }
            Metric::Mae | Metric::Mse | Metric::Rmse | Metric::R2 | Metric::Mape => None,
        }
    }

    fn regression(metric: Metric, truth: &'a [f64], predicted: &[f64]) -> Option<Weighted<'a>> {
        let residuals = truth.iter().zip(predicted).map(|(y, p)| (y, y - p));
        let mean = |term: fn((&f64, f64)) -> f64, root: bool| Weighted::Mean {
            terms: residuals.clone().map(term).collect(),
            root,
        };
        match metric {
            Metric::Mae => Some(mean(|(_, e)| e.abs(), false)),
            Metric::Mse => Some(mean(|(_, e)| e * e, false)),
            Metric::Rmse => Some(mean(|(_, e)| e * e, true)),
            Metric::Mape => Some(mean(|(y, e)| e.abs() / y.abs().max(f64::EPSILON), false)),
            Metric::R2 => Some(Weighted::R2 { truth, squared_errors: residuals.map(|(_, e)| e * e).collect() }),
            _ => None,
        }
    }

    /// The metric on the resample that draws row `r` `counts[r]` times: `counts` has one entry
    /// per row of the data and, as a bootstrap resample is as large as the data, sums to its
    /// length. `None` where the metric is undefined (one class only, for ROC-AUC).
    pub(crate) fn on(&self, counts: &[u32]) -> Option<f64> {
        let n = counts.len() as u64;
        if n == 0 {
            return None;
        }
        match self {
            Weighted::Confusion { truth, predicted, classes, metric } => {
                let k = *classes;
                let mut confusion = vec![0u64; k * k];
                for ((&t, &p), &w) in truth.iter().zip(predicted.iter()).zip(counts) {
                    if let Some(cell) = confusion.get_mut(t * k + p) {
                        *cell += u64::from(w);
                    }
                }
                of_confusion(&confusion, k, n, *metric)
            }
            Weighted::RocAuc(rankings) => {
                let aucs = rankings.iter().map(|r| r.auc(counts)).collect::<Option<Vec<f64>>>()?;
                Some(aucs.iter().sum::<f64>() / aucs.len() as f64)
            }
            Weighted::Mean { terms, root } => {
                let mean = weighted_sum(terms, counts) / n as f64;
                Some(if *root { mean.sqrt() } else { mean })
            }
            Weighted::R2 { truth, squared_errors } => {
                let nf = n as f64;
                let mean = weighted_sum(truth, counts) / nf;
                let ss_tot: f64 = truth.iter().zip(counts).map(|(y, &w)| f64::from(w) * (y - mean) * (y - mean)).sum();
                let ss_res = weighted_sum(squared_errors, counts);
                // Step 14 (scikit-learn's `force_finite`): a constant truth scores 1 when
                // predicted exactly, else 0.
                Some(if ss_tot == 0.0 { if ss_res == 0.0 { 1.0 } else { 0.0 } } else { 1.0 - ss_res / ss_tot })
            }
        }
    }
}

fn weighted_sum(values: &[f64], counts: &[u32]) -> f64 {
    values.iter().zip(counts).map(|(v, &w)| f64::from(w) * v).sum()
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn f1_of(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

/// A classification metric from `confusion[true * classes + predicted]` over `n` rows, in step
/// 14's order of operations.
fn of_confusion(confusion: &[u64], classes: usize, n: u64, metric: Metric) -> Option<f64> {
    let cell = |t: usize, p: usize| confusion[t * classes + p];
    let support: Vec<u64> = (0..classes).map(|t| (0..classes).map(|p| cell(t, p)).sum()).collect();
    let predicted: Vec<u64> = (0..classes).map(|p| (0..classes).map(|t| cell(t, p)).sum()).collect();
    // Per class: (precision, recall, f1).
    let report: Vec<(f64, f64, f64)> = (0..classes)
        .map(|c| {
            let (precision, recall) = (ratio(cell(c, c), predicted[c]), ratio(cell(c, c), support[c]));
            (precision, recall, f1_of(precision, recall))
        })
        .collect();
    let binary = |pick: fn(&(f64, f64, f64)) -> f64| (classes == 2).then(|| pick(&report[1]));
    match metric {
        Metric::Accuracy => Some(ratio((0..classes).map(|c| cell(c, c)).sum(), n)),
        Metric::BalancedAccuracy => {
            let present: Vec<f64> = (0..classes).filter(|&c| support[c] > 0).map(|c| report[c].1).collect();
            Some(present.iter().sum::<f64>() / present.len().max(1) as f64)
        }
        Metric::Precision => binary(|r| r.0),
        Metric::Recall => binary(|r| r.1),
        Metric::F1 => binary(|r| r.2),
        Metric::F1Macro => {
            // Over the labels seen in the truth or the predictions, as scikit-learn's
            // `unique_labels` (and step 14) do.
            let seen: Vec<f64> =
                (0..classes).filter(|&c| support[c] > 0 || predicted[c] > 0).map(|c| report[c].2).collect();
            Some(seen.iter().sum::<f64>() / seen.len().max(1) as f64)
        }
        Metric::F1Weighted => Some((0..classes).map(|c| report[c].2 * support[c] as f64).sum::<f64>() / n as f64),
        _ => None,
    }
}

/// One row in a ranking: the row, whether it is of the positive class, and whether it is the last
/// of its score (the next row ranks lower).
#[derive(Clone, Copy)]
struct Ranked {
    row: u32,
    positive: bool,
    last: bool,
}

/// Rows by score, highest first, as step 14's ROC curve walks them.
pub(crate) struct Ranking(Vec<Ranked>);

impl Ranking {
    /// The rows ranked by `scores` for class `positive`; `None` when there are more rows than a
    /// `u32` counts.
    fn of(truth: &[usize], positive: usize, scores: &[f64]) -> Option<Ranking> {
        let mut order: Vec<u32> = (0..u32::try_from(scores.len()).ok()?).collect();
        order.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
        let ranked = order
            .iter()
            .enumerate()
            .map(|(k, &row)| {
                let score = scores[row as usize];
                Ranked {
                    row,
                    positive: truth.get(row as usize) == Some(&positive),
                    last: order.get(k + 1).is_none_or(|&next| scores[next as usize] != score),
                }
            })
            .collect();
        Some(Ranking(ranked))
    }

    /// The area under the ROC curve of the resample (trapezoids; tied scores count half), as step
    /// 14's `roc_auc` computes it on the materialised rows: a score no drawn row has adds a point
    /// on top of the previous one, a trapezoid of width 0, which leaves the sum as it was. `None`
    /// with one class.
    fn auc(&self, counts: &[u32]) -> Option<f64> {
        let (mut fp, mut tp, mut previous) = (0u64, 0u64, (0u64, 0u64));
        let mut area = 0.0;
        for r in &self.0 {
            let w = u64::from(counts.get(r.row as usize).copied().unwrap_or(0));
            // Without a branch: whether a row is positive is as good as random.
            let positive = w * u64::from(r.positive);
            tp += positive;
            fp += w - positive;
            if r.last {
                // Adds exactly 0 when no row of this score was drawn.
                area += (fp - previous.0) as f64 * (tp + previous.1) as f64 / 2.0;
                previous = (fp, tp);
            }
        }
        if tp == 0 || fp == 0 {
            return None;
        }
        Some(area / (tp as f64 * fp as f64))
    }
}
