//! ROC, precision-recall and calibration curves of binary scores.

use serde::{Deserialize, Serialize};

use crate::{EvalError, Result, same_length};

/// Points of a ROC curve, thresholds descending (the first is +∞), as scikit-learn's `roc_curve`
/// with `drop_intermediate=True` gives them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False-positive rates.
    pub fpr: Vec<f64>,
    /// True-positive rates.
    pub tpr: Vec<f64>,
    /// Score thresholds (`f64::INFINITY` first; JSON writes it as null).
    pub thresholds: Vec<f64>,
}

/// Points of a precision-recall curve, as scikit-learn's `precision_recall_curve`: thresholds
/// ascending, and a last point (precision 1, recall 0) without a threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    /// Precision per threshold, then 1.
    pub precision: Vec<f64>,
    /// Recall per threshold, then 0.
    pub recall: Vec<f64>,
    /// Distinct scores, ascending.
    pub thresholds: Vec<f64>,
}

/// A reliability diagram: per non-empty bin, the share of positives and the mean predicted
/// probability (scikit-learn's `calibration_curve`, uniform bins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Observed share of positives.
    pub prob_true: Vec<f64>,
    /// Mean predicted probability.
    pub prob_pred: Vec<f64>,
    /// Rows per bin.
    pub counts: Vec<usize>,
}

fn check(truth: &[bool], scores: &[f64]) -> Result<()> {
    same_length("scores", truth.len(), scores.len())?;
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(EvalError::BadInput { what: "scores", message: format!("row {i} is not a finite number") });
    }
    Ok(())
}

/// Cumulative false and true positives at each distinct score, scores descending.
fn cumulative(truth: &[bool], scores: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut fps, mut tps, mut thresholds) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fp, mut tp) = (0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if truth[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_its_score = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_its_score {
            fps.push(fp);
            tps.push(tp);
            thresholds.push(scores[i]);
        }
    }
    (fps, tps, thresholds)
}

/// The ROC curve of scores for the positive class.
pub fn roc_curve(truth: &[bool], scores: &[f64]) -> Result<RocCurve> {
    check(truth, scores)?;
    let (fps, tps, thresholds) = cumulative(truth, scores);
    // Drop points on a straight segment between their neighbours (`drop_intermediate`).
    let keep: Vec<usize> = if fps.len() > 2 {
        let mut k = vec![0];
        for i in 1..fps.len() - 1 {
            let bend = |v: &[f64]| v[i - 1] - 2.0 * v[i] + v[i + 1] != 0.0;
            if bend(&fps) || bend(&tps) {
                k.push(i);
            }
        }
        k.push(fps.len() - 1);
        k
    } else {
        (0..fps.len()).collect()
    };
    let (p, n) = (tps.last().copied().unwrap_or(0.0), fps.last().copied().unwrap_or(0.0));
    let rate = |v: f64, total: f64| if total == 0.0 { f64::NAN } else { v / total };
    let mut curve = RocCurve { fpr: vec![0.0], tpr: vec![0.0], thresholds: vec![f64::INFINITY] };
    for i in keep {
        curve.fpr.push(rate(fps[i], n));
        curve.tpr.push(rate(tps[i], p));
        curve.thresholds.push(thresholds[i]);
    }
    Ok(curve)
}

/// The area under the ROC curve (trapezoids; ties in scores count half); `None` when the truth has
/// only one class.
pub fn roc_auc(truth: &[bool], scores: &[f64]) -> Result<Option<f64>> {
    check(truth, scores)?;
    let (fps, tps, _) = cumulative(truth, scores);
    let (p, n) = (tps.last().copied().unwrap_or(0.0), fps.last().copied().unwrap_or(0.0));
    if p == 0.0 || n == 0.0 {
        return Ok(None);
    }
    let (mut area, mut prev) = (0.0, (0.0, 0.0));
    for (&f, &t) in fps.iter().zip(&tps) {
        area += (f - prev.0) * (t + prev.1) / 2.0;
        prev = (f, t);
    }
    Ok(Some(area / (p * n)))
}

/// The precision-recall curve of scores for the positive class.
pub fn pr_curve(truth: &[bool], scores: &[f64]) -> Result<PrCurve> {
    check(truth, scores)?;
    let (fps, tps, thresholds) = cumulative(truth, scores);
    let positives = tps.last().copied().unwrap_or(0.0);
    let mut curve = PrCurve { precision: Vec::new(), recall: Vec::new(), thresholds: Vec::new() };
    for i in (0..tps.len()).rev() {
        let predicted = tps[i] + fps[i];
        curve.precision.push(if predicted == 0.0 { 0.0 } else { tps[i] / predicted });
        curve.recall.push(if positives == 0.0 { 0.0 } else { tps[i] / positives });
        curve.thresholds.push(thresholds[i]);
    }
    curve.precision.push(1.0);
    curve.recall.push(0.0);
    Ok(curve)
}

/// Average precision: `Σ (Rₙ - Rₙ₋₁) Pₙ` over the precision-recall curve (no interpolation).
pub fn average_precision(truth: &[bool], scores: &[f64]) -> Result<f64> {
    let c = pr_curve(truth, scores)?;
    Ok((0..c.recall.len() - 1).map(|i| (c.recall[i] - c.recall[i + 1]) * c.precision[i]).sum())
}

/// A calibration curve over `bins` uniform bins of predicted probability (empty bins left out).
pub fn calibration_curve(truth: &[bool], proba: &[f64], bins: usize) -> Result<Calibration> {
    check(truth, proba)?;
    if bins == 0 {
        return Err(EvalError::BadInput { what: "bins", message: "must be at least 1".into() });
    }
    if let Some(i) = proba.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(EvalError::BadInput { what: "probabilities", message: format!("row {i} is outside [0, 1]") });
    }
    let (mut sums, mut trues, mut counts) = (vec![0.0; bins], vec![0.0; bins], vec![0usize; bins]);
    for (&t, &p) in truth.iter().zip(proba) {
        // numpy's searchsorted on the inner edges: a value on an edge falls in the lower bin.
        let b = (1..bins).take_while(|&k| (k as f64 / bins as f64) < p).count();
        sums[b] += p;
        trues[b] += f64::from(u8::from(t));
        counts[b] += 1;
    }
    let mut out = Calibration { prob_true: Vec::new(), prob_pred: Vec::new(), counts: Vec::new() };
    for b in (0..bins).filter(|&b| counts[b] > 0) {
        out.prob_true.push(trues[b] / counts[b] as f64);
        out.prob_pred.push(sums[b] / counts[b] as f64);
        out.counts.push(counts[b]);
    }
    Ok(out)
}
