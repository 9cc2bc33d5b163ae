//! Classification metrics.

use serde::{Deserialize, Serialize};

use crate::curves::roc_auc;
use crate::{EvalError, Result, same_length};

/// A score averaged over classes three ways.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    /// For the positive class (class 1) of a binary task; `None` with more classes.
    pub binary: Option<f64>,
    /// The unweighted mean over the classes present in the truth or the predictions.
    pub macro_avg: f64,
    /// The mean weighted by each class's true count.
    pub weighted: f64,
}

/// One row of the classification report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    /// Class index.
    pub class: usize,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// True rows of the class.
    pub support: usize,
}

/// Everything scikit-learn's classification metrics report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Share of rows predicted right.
    pub accuracy: f64,
    /// Mean recall over the classes present in the truth.
    pub balanced_accuracy: f64,
    /// Precision.
    pub precision: Averages,
    /// Recall.
    pub recall: Averages,
    /// F1.
    pub f1: Averages,
    /// ROC-AUC: binary, or one-vs-rest macro for more classes (with probabilities).
    pub roc_auc: Option<f64>,
    /// Log loss (with probabilities).
    pub log_loss: Option<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Per class.
    pub report: Vec<ClassReport>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn f1_of(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

fn check_labels(labels: &[usize], classes: usize) -> Result<()> {
    match labels.iter().find(|&&l| l >= classes) {
        Some(&label) => Err(EvalError::BadLabel { label, classes }),
        None => Ok(()),
    }
}

fn check_proba(proba: &[Vec<f64>], rows: usize, classes: usize) -> Result<()> {
    same_length("probabilities", rows, proba.len())?;
    let bad = |message: String| Err(EvalError::BadInput { what: "probabilities", message });
    if let Some((i, row)) = proba.iter().enumerate().find(|(_, r)| r.len() != classes) {
        return bad(format!("row {i} has {} values for {classes} classes", row.len()));
    }
    if let Some(i) = proba.iter().position(|r| r.iter().any(|p| !p.is_finite() || *p < 0.0)) {
        return bad(format!("row {i} has a value that is not a probability"));
    }
    Ok(())
}

/// scikit-learn's `log_loss`: rows are normalised to sum to 1 and clipped to `[ε, 1 - ε]`.
pub fn log_loss(truth: &[usize], proba: &[Vec<f64>]) -> Result<f64> {
    let classes = proba.first().map_or(0, Vec::len);
    check_proba(proba, truth.len(), classes)?;
    check_labels(truth, classes)?;
    let eps = f64::EPSILON;
    let total: f64 = truth
        .iter()
        .zip(proba)
        .map(|(&t, row)| {
            let sum: f64 = row.iter().sum();
            let p = if sum > 0.0 { row[t] / sum } else { 1.0 / classes as f64 };
            -p.clamp(eps, 1.0 - eps).ln()
        })
        .sum();
    Ok(total / truth.len() as f64)
}

/// Metrics of predicted class indices against the true ones (`0..classes`), with class
/// probabilities (`proba[row][class]`) when the model gives them.
pub fn classification(
    truth: &[usize],
    predicted: &[usize],
    proba: Option<&[Vec<f64>]>,
    classes: usize,
) -> Result<ClassificationMetrics> {
    same_length("predictions", truth.len(), predicted.len())?;
    check_labels(truth, classes)?;
    check_labels(predicted, classes)?;
    let n = truth.len();
    let mut confusion = vec![vec![0usize; classes]; classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        confusion[t][p] += 1;
    }
    let support: Vec<usize> = confusion.iter().map(|row| row.iter().sum()).collect();
    let predicted_count: Vec<usize> = (0..classes).map(|c| confusion.iter().map(|row| row[c]).sum()).collect();
    let report: Vec<ClassReport> = (0..classes)
        .map(|c| {
            let tp = confusion[c][c];
            let (precision, recall) = (ratio(tp, predicted_count[c]), ratio(tp, support[c]));
            ClassReport { class: c, precision, recall, f1: f1_of(precision, recall), support: support[c] }
        })
        .collect();
    // Macro averages run over the labels seen in the truth or the predictions, as
    // scikit-learn's `unique_labels` does.
    let seen: Vec<&ClassReport> = report.iter().filter(|r| r.support > 0 || predicted_count[r.class] > 0).collect();
    let present: Vec<&ClassReport> = report.iter().filter(|r| r.support > 0).collect();
    let avg = |pick: fn(&ClassReport) -> f64| Averages {
        binary: (classes == 2).then(|| pick(&report[1])),
        macro_avg: seen.iter().map(|r| pick(r)).sum::<f64>() / seen.len().max(1) as f64,
        weighted: report.iter().map(|r| pick(r) * r.support as f64).sum::<f64>() / n as f64,
    };
    let (roc_auc, log_loss) = match proba {
        Some(p) => {
            check_proba(p, n, classes)?;
            let auc = if classes == 2 {
                let positive: Vec<bool> = truth.iter().map(|&t| t == 1).collect();
                roc_auc(&positive, &p.iter().map(|r| r[1]).collect::<Vec<_>>())?
            } else {
                // One-vs-rest, macro: every class's AUC against the rest, averaged.
                let mut aucs = Vec::with_capacity(classes);
                for c in 0..classes {
                    let positive: Vec<bool> = truth.iter().map(|&t| t == c).collect();
                    aucs.push(roc_auc(&positive, &p.iter().map(|r| r[c]).collect::<Vec<_>>())?);
                }
                aucs.iter().copied().collect::<Option<Vec<f64>>>().map(|a| a.iter().sum::<f64>() / a.len() as f64)
            };
            (auc, Some(self::log_loss(truth, p)?))
        }
        None => (None, None),
    };
    Ok(ClassificationMetrics {
        accuracy: ratio(truth.iter().zip(predicted).filter(|(t, p)| t == p).count(), n),
        balanced_accuracy: present.iter().map(|r| r.recall).sum::<f64>() / present.len().max(1) as f64,
        precision: avg(|r| r.precision),
        recall: avg(|r| r.recall),
        f1: avg(|r| r.f1),
        roc_auc,
        log_loss,
        confusion,
        report,
    })
}
