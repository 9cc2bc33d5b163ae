//! Linear models: logistic regression by L-BFGS, least squares with an L2 penalty in closed form,
//! and L1 / elastic-net penalties by coordinate descent.

use ndarray::Array2;

use serde::{Deserialize, Serialize};

use crate::{Checked, Model, ParamGuard, Result, bad};

/// `logistic_regression`'s hyperparameters (scikit-learn's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticParams {
    /// Inverse penalty strength (> 0).
    pub c: f64,
    /// L-BFGS iterations at most (scikit-learn's `max_iter`).
    pub max_iter: usize,
    /// Stops when the largest gradient component of the mean loss falls below this
    /// (scikit-learn's `tol`, > 0).
    pub tol: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams { c: 1.0, max_iter: 100, tol: 1e-4 }
    }
}

impl ParamGuard for LogisticParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        let LogisticParams { c, max_iter, tol } = *self;
        if !(c.is_finite() && c > 0.0) {
            return bad(model, "c", format!("{c} must be a positive number"));
        }
        if max_iter == 0 {
            return bad(model, "max_iter", "must be at least 1".into());
        }
        if !(tol.is_finite() && tol > 0.0) {
            return bad(model, "tol", format!("{tol} must be a positive number"));
        }
        Ok(())
    }
}

/// `ridge`'s hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RidgeParams {
    /// Penalty (>= 0).
    pub alpha: f64,
}

impl Default for RidgeParams {
    fn default() -> Self {
        RidgeParams { alpha: 1.0 }
    }
}

impl ParamGuard for RidgeParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        check_alpha(model, self.alpha)
    }
}

/// `lasso`'s hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LassoParams {
    /// Penalty (>= 0).
    pub alpha: f64,
    /// Passes at most.
    pub max_iter: usize,
}

impl Default for LassoParams {
    fn default() -> Self {
        LassoParams { alpha: 1.0, max_iter: 1000 }
    }
}

impl ParamGuard for LassoParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        check_alpha(model, self.alpha)
    }
}

impl LassoParams {
    /// The lasso is the elastic net with an L1 share of 1.
    pub(crate) fn as_elastic_net(&self) -> ElasticNetParams {
        ElasticNetParams { alpha: self.alpha, l1_ratio: 1.0, max_iter: self.max_iter }
    }
}

/// `elastic_net`'s hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticNetParams {
    /// Penalty (>= 0).
    pub alpha: f64,
    /// Share of L1 in the penalty, 0 to 1.
    pub l1_ratio: f64,
    /// Passes at most.
    pub max_iter: usize,
}

impl Default for ElasticNetParams {
    fn default() -> Self {
        ElasticNetParams { alpha: 1.0, l1_ratio: 0.5, max_iter: 1000 }
    }
}

impl ParamGuard for ElasticNetParams {
    fn check_ref(&self, model: &'static str, _rows: usize) -> Result<()> {
        check_alpha(model, self.alpha)?;
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return bad(model, "l1_ratio", format!("{} must be between 0 and 1", self.l1_ratio));
        }
        Ok(())
    }
}

fn check_alpha(model: &'static str, alpha: f64) -> Result<()> {
    if !(alpha.is_finite() && alpha >= 0.0) {
        return bad(model, "alpha", format!("{alpha} must be zero or more"));
    }
    Ok(())
}

fn softmax_in_place(z: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    z.iter_mut().for_each(|v| *v /= sum);
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) }
}

/// Fits scikit-learn's `LogisticRegression(C, max_iter, tol)` with its `lbfgs` solver: one
/// coefficient row for two classes (a sigmoid), one per class otherwise (a softmax). The solver
/// minimises the mean loss plus `‖W‖² / (2 C n)`, as scikit-learn does, stopping after
/// `max_iter` iterations or when no gradient component exceeds `tol`. The rows are shared out
/// over the cores for every evaluation of the loss.
pub(crate) fn logistic(x: &Array2<f64>, y: &[usize], classes: usize, p: &Checked<'_, LogisticParams>) -> Model {
    let LogisticParams { c, max_iter, tol } = **p;
    let (n, d) = x.dim();
    let outputs = if classes == 2 { 1 } else { classes };
    let width = d + 1;
    let owned: Vec<f64>;
    let flat: &[f64] = match x.as_slice() {
        Some(flat) => flat,
        None => {
            owned = x.iter().copied().collect();
            &owned
        }
    };
    // Row blocks, enough for every core and small enough to balance.
    let block = n.div_ceil(8).max(1024);
    let blocks: Vec<(usize, usize)> = (0..n).step_by(block).map(|start| (start, (start + block).min(n))).collect();
    let scale = 1.0 / n as f64;
    let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
        let part = |&(start, end): &(usize, usize)| -> (f64, Vec<f64>) {
            let mut grad = vec![0.0; theta.len()];
            let mut loss = 0.0;
            let mut z = vec![0.0; outputs];
            for (row, &label) in flat[start * d..end * d].chunks_exact(d.max(1)).zip(&y[start..end]) {
                for (k, zk) in z.iter_mut().enumerate() {
                    *zk = dot(&theta[k * width..k * width + d], row) + theta[k * width + d];
                }
                if outputs == 1 {
                    let t = if label == 1 { 1.0 } else { 0.0 };
                    // log(1 + e^z) - t z, computed stably.
                    loss += z[0].max(0.0) + (-z[0].abs()).exp().ln_1p() - t * z[0];
                    axpy(sigmoid(z[0]) - t, row, &mut grad[..width]);
                } else {
                    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                    loss += lse - z[label];
                    softmax_in_place(&mut z);
                    for (k, p) in z.iter().enumerate() {
                        let r = p - if k == label { 1.0 } else { 0.0 };
                        axpy(r, row, &mut grad[k * width..(k + 1) * width]);
                    }
                }
            }
            (loss, grad)
        };
        let parts = mlops_core::par::map(&blocks, part).unwrap_or_else(|| blocks.iter().map(part).collect());
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        for (l, g) in parts {
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        let mut penalty = 0.0;
        for k in 0..outputs {
            for j in 0..d {
                let w = theta[k * width + j];
                penalty += w * w;
                grad[k * width + j] += w / c;
            }
        }
        grad.iter_mut().for_each(|g| *g *= scale);
        (loss + penalty / (2.0 * c)) * scale
    };
    let (theta, converged) = crate::lbfgs::minimize(objective, vec![0.0; outputs * width], max_iter, tol);
    if !converged {
        tracing::warn!(max_iter, "logistic regression did not converge; raise max_iter or scale the features");
    }
    Model::Logistic {
        classes,
        coef: (0..outputs).map(|k| theta[k * width..k * width + d].to_vec()).collect(),
        intercept: (0..outputs).map(|k| theta[k * width + d]).collect(),
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four lanes, so the sum vectorises.
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    acc[0] + acc[1] + acc[2] + acc[3] + tail
}

/// `g[..d] += r * row`, `g[d] += r` (the intercept's slot).
fn axpy(r: f64, row: &[f64], g: &mut [f64]) {
    let d = row.len();
    g[..d].iter_mut().zip(row).for_each(|(gj, xj)| *gj += r * xj);
    g[d] += r;
}

pub(crate) fn logistic_proba(x: &Array2<f64>, classes: usize, coef: &[Vec<f64>], intercept: &[f64]) -> Vec<Vec<f64>> {
    x.rows()
        .into_iter()
        .map(|row| {
            let mut z: Vec<f64> = coef
                .iter()
                .zip(intercept)
                .map(|(w, b)| w.iter().zip(row.iter()).map(|(a, v)| a * v).sum::<f64>() + b)
                .collect();
            if classes == 2 {
                let p = sigmoid(z[0]);
                vec![1.0 - p, p]
            } else {
                softmax_in_place(&mut z);
                z
            }
        })
        .collect()
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; a singular system gets a tiny
/// ridge so that OLS on collinear features still answers (the minimum-norm direction).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    let trace: f64 = (0..n).map(|i| a[i][i].abs()).sum::<f64>().max(1.0);
    for i in 0..n {
        let p = (i..n).max_by(|&r, &s| a[r][i].abs().total_cmp(&a[s][i].abs())).unwrap_or(i);
        a.swap(i, p);
        b.swap(i, p);
        if a[i][i].abs() < 1e-12 * trace {
            a[i][i] += 1e-10 * trace;
        }
        for r in i + 1..n {
            let f = a[r][i] / a[i][i];
            if f != 0.0 {
                let pivot = a[i].clone();
                a[r].iter_mut().zip(&pivot).skip(i).for_each(|(v, p)| *v -= f * p);
                b[r] -= f * b[i];
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|c| a[i][c] * x[c]).sum();
        x[i] = (b[i] - s) / a[i][i];
    }
    x
}

fn centred(x: &Array2<f64>, y: &[f64]) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>, f64) {
    let (n, d) = x.dim();
    let means: Vec<f64> = (0..d).map(|j| x.column(j).sum() / n as f64).collect();
    let y_mean = y.iter().sum::<f64>() / n as f64;
    let cols: Vec<Vec<f64>> = (0..d).map(|j| x.column(j).iter().map(|v| v - means[j]).collect()).collect();
    let yc: Vec<f64> = y.iter().map(|v| v - y_mean).collect();
    (cols, yc, means, y_mean)
}

/// Least squares with penalty `alpha ‖w‖²` (0 for OLS), the intercept unpenalised (`Ridge`).
pub(crate) fn ridge(x: &Array2<f64>, y: &[f64], alpha: f64) -> Model {
    let d = x.ncols();
    let (cols, yc, means, y_mean) = centred(x, y);
    let a: Vec<Vec<f64>> = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| {
                    cols[i].iter().zip(&cols[j]).map(|(p, q)| p * q).sum::<f64>() + if i == j { alpha } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let b: Vec<f64> = (0..d).map(|j| cols[j].iter().zip(&yc).map(|(p, q)| p * q).sum()).collect();
    let coef = solve(a, b);
    let intercept = y_mean - coef.iter().zip(&means).map(|(w, m)| w * m).sum::<f64>();
    Model::Linear { coef, intercept }
}

/// scikit-learn's `ElasticNet` objective `1/(2n)‖y - Xw - b‖² + α ρ ‖w‖₁ + α (1 - ρ)/2 ‖w‖²` by
/// cyclic coordinate descent (`Lasso` is ρ = 1).
pub(crate) fn elastic_net(x: &Array2<f64>, y: &[f64], p: &ElasticNetParams) -> Model {
    let ElasticNetParams { alpha, l1_ratio, max_iter } = *p;
    let (n, d) = x.dim();
    let nf = n as f64;
    let (cols, yc, means, y_mean) = centred(x, y);
    let norms: Vec<f64> = cols.iter().map(|c| c.iter().map(|v| v * v).sum::<f64>() / nf).collect();
    let (l1, l2) = (alpha * l1_ratio, alpha * (1.0 - l1_ratio));
    let mut w = vec![0.0; d];
    let mut residual = yc;
    for _ in 0..max_iter.max(1) * 10 {
        let mut largest_step = 0.0f64;
        for j in 0..d {
            if norms[j] == 0.0 {
                continue;
            }
            let rho: f64 = cols[j].iter().zip(&residual).map(|(a, r)| a * r).sum::<f64>() / nf + norms[j] * w[j];
            let new = rho.signum() * (rho.abs() - l1).max(0.0) / (norms[j] + l2);
            let delta = new - w[j];
            if delta != 0.0 {
                residual.iter_mut().zip(&cols[j]).for_each(|(r, a)| *r -= delta * a);
                w[j] = new;
                largest_step = largest_step.max(delta.abs());
            }
        }
        if largest_step <= 1e-12 * w.iter().fold(1.0f64, |m, v| m.max(v.abs())) {
            break;
        }
    }
    let intercept = y_mean - w.iter().zip(&means).map(|(a, m)| a * m).sum::<f64>();
    Model::Linear { coef: w, intercept }
}
