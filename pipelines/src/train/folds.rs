//! The cross-validation folds of the training run: the candidates to try, and per fold its
//! training and validation parts with the features refitted on the fold's training rows only
//! (reused from the cache when the features' inputs, the folds and the feature list are the
//! same). [`Folds`] is the objective that step 13's search scores candidates with.

use std::path::Path;
use std::time::Instant;

use step11_candidates::ModelSpec;
use step13_tuning::{Cv, Objective, TuneError};
use step14_evaluate::Metric;

use super::Plan;
use crate::error::{PipelineError, Result};
use crate::features::fit_features;
use crate::prepare::{Progress, StepSummary};
use crate::run_key::RunKey;
use step11_candidates::Labels;

use crate::target::{FoldPart, Part, TargetInfo, feature_columns, matrix};

/// The folds, each with its own features, and how a candidate is scored on them.
pub(super) struct Folds {
    pub(super) parts: Vec<FoldPart>,
    target: TargetInfo,
    metric: Metric,
}

impl Objective for Folds {
    fn score(&self, spec: &ModelSpec, fold: usize) -> std::result::Result<(f64, f64), String> {
        let part = self.parts.get(fold).ok_or("no such fold")?;
        let started = Instant::now();
        let model =
            step11_candidates::fit(spec, &part.train.x, &part.train.y, &part.features).map_err(|e| e.to_string())?;
        let fit_seconds = started.elapsed().as_secs_f64();
        let eval = crate::evaluate::assess(&model, &part.validation.x, &part.validation.y, &self.target)?;
        let score = eval
            .metrics()
            .get(&self.metric.name())
            .copied()
            .ok_or_else(|| format!("metric `{}` is undefined on this fold", self.metric.name()))?;
        Ok((score, fit_seconds))
    }
}

/// What a fresh search needs: the candidates and the folds.
pub(super) struct Fresh {
    pub(super) candidates: Vec<ModelSpec>,
    pub(super) objective: Folds,
}

/// The candidates and the folds of `plan`'s training rows, the folds' features from the cache
/// under `features_key` when they were fitted before.
pub(super) fn prepare(
    plan: &Plan<'_>,
    features_key: Option<&str>,
    cache_dir: &Path,
    progress: &mut dyn Progress,
) -> Result<Fresh> {
    let started = Instant::now();
    progress.started("folds");
    let (tune, target, train_raw) = (&plan.model.tuning, plan.target, &plan.engineered.train_raw);
    let cv = tune.cv_for(target.classification());
    let raw_labels = target.labels(train_raw, "training")?;
    let strata = match &raw_labels {
        Labels::Classes { y, .. } => Some(y.as_slice()),
        Labels::Values(_) => None,
    };
    let tuning_error = |e: TuneError| match e {
        TuneError::Invalid { key, message } => plan.invalid(&format!("model.tuning.{key}"), message),
        other => plan.invalid("model.tuning", other.to_string()),
    };
    let folds = cv.folds(train_raw.height(), strata, plan.config.seed).map_err(tuning_error)?;
    let smallest = folds.iter().map(|f| f.train.len()).min().unwrap_or(0);
    let candidates = tune.candidates(target.classification(), smallest, plan.config.seed).map_err(tuning_error)?;
    if candidates.is_empty() {
        return Err(plan.invalid("model.tuning.candidates", "no candidates to try".into()));
    }
    // The folds' features depend on the features' inputs, the folds and the model's feature list.
    let key = features_key.and_then(|k| {
        RunKey::new("folds")
            .with(&k)
            .with(&cv)
            .with(&folds.iter().map(|f| &f.train).collect::<Vec<_>>())
            .with(&plan.model.features)
            .finish()
    });
    let cached = key.as_deref().and_then(|k| crate::cache::load_folds(cache_dir, k));
    let reused = cached.is_some();
    let parts = match cached {
        Some(parts) => parts,
        None => {
            let parts = mlops_core::par::map(&folds, |fold| fold_part(plan, &fold.train, &fold.validation))
                .ok_or(PipelineError::Worker { step: "train" })?
                .into_iter()
                .collect::<Result<Vec<_>>>()?;
            if let Some(k) = &key {
                crate::cache::save_folds(cache_dir, k, &parts)?;
            }
            parts
        }
    };
    progress.finished(&StepSummary {
        step: "folds",
        rows: train_raw.height(),
        columns: folds.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: format!(
            "{} folds ({}), features refitted in each{}",
            folds.len(),
            cv_name(&cv),
            if reused { " (reused)" } else { "" }
        ),
    });
    Ok(Fresh { candidates, objective: Folds { parts, target: target.clone(), metric: plan.metric } })
}

/// One fold: features fitted on its training rows, then both parts' checked model input.
fn fold_part(plan: &Plan<'_>, train_rows: &[usize], validation_rows: &[usize]) -> Result<FoldPart> {
    let take = |rows: &[usize]| {
        let idx = polars::prelude::IdxCa::from_vec("rows".into(), rows.iter().map(|&r| r as _).collect());
        plan.engineered
            .train_raw
            .take(&idx)
            .map_err(|e| PipelineError::step("train", mlops_core::CoreError::polars("cannot take fold rows", e)))
    };
    let (fitted, mut others) = fit_features(plan.config, take(train_rows)?, vec![take(validation_rows)?], None)?;
    let validation = others.pop().unwrap_or_default();
    let (features, _) = feature_columns(&fitted.frame, &plan.model.target, plan.model.features.as_ref());
    let target = plan.target;
    Ok(FoldPart {
        train: Part {
            x: matrix(&fitted.frame, &features, "fold training")?,
            y: target.labels(&fitted.frame, "fold training")?,
        },
        validation: Part {
            x: matrix(&validation, &features, "fold validation")?,
            y: target.labels(&validation, "fold validation")?,
        },
        features,
    })
}

fn cv_name(cv: &Cv) -> String {
    match cv {
        Cv::KFold { shuffle: true, .. } => "shuffled k-fold".into(),
        Cv::KFold { .. } => "k-fold".into(),
        Cv::StratifiedKFold { .. } => "stratified k-fold".into(),
        Cv::TimeSeries { .. } => "time-series".into(),
    }
}
