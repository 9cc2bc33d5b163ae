//! Criterion benches for the model families' hot paths: fitting gradient boosting, a random
//! forest and a logistic regression, and predicting with the boosted trees, on a generated
//! binary problem shaped like bench/generate_models.py after its features (54 columns: 22
//! continuous, 28 one-hot, 2 ordinal codes, 2 flags).
//!
//! `cargo bench -p step11-candidates --bench models` (ROWS=200000 for the benchmark's size;
//! the default is 50,000 rows).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use mlops_core::Seed;
use ndarray::Array2;
use rand_core::Rng;
use step11_candidates::{BoostParams, EarlyStopping, ForestParams, Labels, LogisticParams, ModelSpec, fit};

fn rows() -> usize {
    std::env::var("ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(50_000)
}

fn uniform(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn normal(rng: &mut impl Rng) -> f64 {
    // Box-Muller.
    let (u, v) = (uniform(rng).max(1e-300), uniform(rng));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Features and a label with a nonlinear signal in a few of them.
fn generate(n: usize) -> (Array2<f64>, Vec<usize>) {
    let mut rng = Seed(7).rng();
    let d = 54;
    let mut x = Array2::zeros((n, d));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        for j in 0..22 {
            x[[i, j]] = normal(&mut rng);
        }
        // Four categoricals of 3, 5, 8 and 12 levels, one-hot.
        let mut col = 22;
        for levels in [3usize, 5, 8, 12] {
            let level = (rng.next_u64() % levels as u64) as usize;
            x[[i, col + level]] = 1.0;
            col += levels;
        }
        x[[i, 50]] = (rng.next_u64() % 25) as f64;
        x[[i, 51]] = (rng.next_u64() % 50) as f64;
        x[[i, 52]] = f64::from(uniform(&mut rng) < 0.4);
        x[[i, 53]] = f64::from(uniform(&mut rng) < 0.6);
        let logit = 0.7 * x[[i, 0]] + 0.9 * x[[i, 1]] * x[[i, 2]] + 1.2 * f64::from(x[[i, 3]] > 1.0) - 0.8 * x[[i, 22]]
            + 0.05 * (x[[i, 51]] - 25.0)
            + 0.8 * x[[i, 52]] * f64::from(x[[i, 0]] > 0.0)
            - 0.8;
        y.push(usize::from(uniform(&mut rng) < 1.0 / (1.0 + (-logit).exp())));
    }
    (x, y)
}

fn models(c: &mut Criterion) {
    let n = rows();
    let (x, y) = generate(n);
    let names: Vec<String> = (0..x.ncols()).map(|j| format!("f{j}")).collect();
    let target = Labels::Classes { y: y.to_vec(), classes: 2 };
    let mut group = c.benchmark_group(format!("models_{n}_rows"));
    group.sample_size(10);
    // 100 rounds of depth-6 trees, as docs/performance.md times them: without the limit and with
    // `auto` early stopping (on at these row counts) the work per fit would change.
    let boosting = ModelSpec::GradientBoostingClassifier(BoostParams {
        max_depth: Some(6),
        early_stopping: EarlyStopping::Off,
        ..BoostParams::default()
    });
    group.bench_function("gradient_boosting_fit_100_rounds", |b| {
        b.iter(|| fit(&boosting, &x, &target, &names).unwrap())
    });
    let forest = ModelSpec::RandomForestClassifier(ForestParams { max_depth: Some(12), ..ForestParams::default() });
    group.bench_function("random_forest_fit_100_trees_depth_12", |b| {
        b.iter(|| fit(&forest, &x, &target, &names).unwrap())
    });
    let logistic = ModelSpec::LogisticRegression(LogisticParams { c: 1.0, max_iter: 100, tol: 1e-4 });
    group.bench_function("logistic_regression_fit", |b| b.iter(|| fit(&logistic, &x, &target, &names).unwrap()));
    let model = fit(&boosting, &x, &target, &names).unwrap();
    group.bench_function("gradient_boosting_predict_proba", |b| b.iter(|| model.predict_proba(&x).unwrap()));
    group.finish();
}

criterion_group!(benches, models);
criterion_main!(benches);
