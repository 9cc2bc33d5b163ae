//! Candidate families chosen by task and data size, as the workflow describes.

use crate::{BoostParams, ForestParams, GaussianNbParams, LogisticParams, ModelSpec, RidgeParams};

/// Rows below which a dataset counts as small.
pub const SMALL: usize = 1_000;
/// Rows from which a dataset counts as large.
pub const LARGE: usize = 10_000;

/// The families worth trying, with default hyperparameters: small data (under [`SMALL`] rows)
/// gets linear models and naive Bayes, medium data forests and boosting, large data (from
/// [`LARGE`] rows) boosting alone.
pub fn suggest(classification: bool, rows: usize) -> Vec<ModelSpec> {
    let boost = BoostParams::default();
    match (classification, rows) {
        (true, r) if r < SMALL => {
            vec![
                ModelSpec::LogisticRegression(LogisticParams { c: 1.0, max_iter: 100, tol: 1e-4 }),
                ModelSpec::GaussianNb(GaussianNbParams { var_smoothing: 1e-9 }),
            ]
        }
        (true, r) if r < LARGE => vec![
            ModelSpec::RandomForestClassifier(ForestParams::default()),
            ModelSpec::GradientBoostingClassifier(boost),
        ],
        (true, _) => vec![ModelSpec::GradientBoostingClassifier(boost)],
        (false, r) if r < SMALL => vec![ModelSpec::Linear, ModelSpec::Ridge(RidgeParams { alpha: 1.0 })],
        (false, r) if r < LARGE => {
            vec![ModelSpec::RandomForestRegressor(ForestParams::default()), ModelSpec::GradientBoostingRegressor(boost)]
        }
        (false, _) => vec![ModelSpec::GradientBoostingRegressor(boost)],
    }
}
