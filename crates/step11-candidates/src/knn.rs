//! k-nearest neighbours by brute force (Euclidean distance; ties broken by training order, as
//! scikit-learn's brute-force search does).

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::{ParamGuard, Result, bad};

/// `knn_classifier`'s and `knn_regressor`'s hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnnParams {
    /// Neighbours (between 1 and the training rows).
    pub k: usize,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams { k: 5 }
    }
}

impl ParamGuard for KnnParams {
    fn check_ref(&self, model: &'static str, rows: usize) -> Result<()> {
        let k = self.k;
        // Checked before the rows are known (a tuning space), `rows` is `usize::MAX`.
        if k == 0 && rows == usize::MAX {
            return bad(model, "k", format!("{k} must be at least 1"));
        }
        if k == 0 || k > rows {
            return bad(model, "k", format!("{k} must be between 1 and the {rows} training rows"));
        }
        Ok(())
    }
}

fn neighbours(row: &[f64], train: &[Vec<f64>], k: usize) -> Vec<usize> {
    let mut d: Vec<(f64, usize)> = train
        .iter()
        .enumerate()
        .map(|(i, t)| (t.iter().zip(row).map(|(a, b)| (a - b) * (a - b)).sum::<f64>(), i))
        .collect();
    let k = k.min(d.len());
    if k < d.len() {
        d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        d.truncate(k);
    }
    d.into_iter().map(|(_, i)| i).collect()
}

pub(crate) fn proba(x: &Array2<f64>, train: &[Vec<f64>], y: &[f64], k: usize, classes: usize) -> Vec<Vec<f64>> {
    x.rows()
        .into_iter()
        .map(|row| {
            let row = row.to_vec();
            let near = neighbours(&row, train, k);
            let mut p = vec![0.0; classes];
            for i in &near {
                p[y[*i] as usize] += 1.0 / near.len() as f64;
            }
            p
        })
        .collect()
}

pub(crate) fn regress(x: &Array2<f64>, train: &[Vec<f64>], y: &[f64], k: usize) -> Vec<f64> {
    x.rows()
        .into_iter()
        .map(|row| {
            let near = neighbours(&row.to_vec(), train, k);
            near.iter().map(|&i| y[i]).sum::<f64>() / near.len() as f64
        })
        .collect()
}
