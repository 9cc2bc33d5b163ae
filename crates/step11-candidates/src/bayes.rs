//! Gaussian naive Bayes, as scikit-learn's `GaussianNB`.

use ndarray::Array2;

use serde::{Deserialize, Serialize};

use crate::{Checked, Model, ParamGuard, Result, bad};

/// `gaussian_nb`'s hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianNbParams {
    /// Share of the largest feature variance added to every variance (>= 0).
    pub var_smoothing: f64,
}

impl Default for GaussianNbParams {
    fn default() -> Self {
        GaussianNbParams { var_smoothing: 1e-9 }
    }
}

impl ParamGuard for GaussianNbParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        let v = self.var_smoothing;
        if !(v.is_finite() && v >= 0.0) {
            return bad(model, "var_smoothing", format!("{v} must be zero or more"));
        }
        Ok(())
    }
}

pub(crate) fn fit(x: &Array2<f64>, y: &[usize], classes: usize, p: &Checked<'_, GaussianNbParams>) -> Model {
    let var_smoothing = p.var_smoothing;
    let (n, d) = x.dim();
    // Smoothing: a share of the largest feature variance over all rows.
    let largest = (0..d)
        .map(|j| {
            let col = x.column(j);
            let m = col.sum() / n as f64;
            col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64
        })
        .fold(0.0f64, f64::max);
    let epsilon = var_smoothing * largest;
    let mut theta = vec![vec![0.0; d]; classes];
    let mut var = vec![vec![0.0; d]; classes];
    let mut count = vec![0usize; classes];
    for (row, &c) in x.rows().into_iter().zip(y) {
        count[c] += 1;
        for (t, v) in theta[c].iter_mut().zip(row.iter()) {
            *t += v;
        }
    }
    for c in 0..classes {
        theta[c].iter_mut().for_each(|t| *t /= count[c].max(1) as f64);
    }
    for (row, &c) in x.rows().into_iter().zip(y) {
        for ((s, v), m) in var[c].iter_mut().zip(row.iter()).zip(&theta[c]) {
            *s += (v - m).powi(2);
        }
    }
    for c in 0..classes {
        var[c].iter_mut().for_each(|s| *s = *s / count[c].max(1) as f64 + epsilon);
    }
    let prior = count.iter().map(|&k| k as f64 / n as f64).collect();
    Model::GaussianNb { theta, var, prior }
}

pub(crate) fn proba(x: &Array2<f64>, theta: &[Vec<f64>], var: &[Vec<f64>], prior: &[f64]) -> Vec<Vec<f64>> {
    x.rows()
        .into_iter()
        .map(|row| {
            let mut joint: Vec<f64> = (0..prior.len())
                .map(|c| {
                    if prior[c] == 0.0 {
                        return f64::NEG_INFINITY;
                    }
                    let ll: f64 = row
                        .iter()
                        .zip(&theta[c])
                        .zip(&var[c])
                        .map(|((v, m), s)| -0.5 * (2.0 * std::f64::consts::PI * s).ln() - (v - m).powi(2) / (2.0 * s))
                        .sum();
                    prior[c].ln() + ll
                })
                .collect();
            let max = joint.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = joint.iter().map(|j| (j - max).exp()).sum();
            joint.iter_mut().for_each(|j| *j = (*j - max).exp() / sum);
            joint
        })
        .collect()
}
