//! Steps 12-14 of a fresh training run: the cross-validated search over the candidates (every
//! trial a child run), a final fit of each family's best candidate on the training part (scored
//! on the validation part), and each final model's evaluation on the test part with its HTML
//! report, model file, feature pipeline and single-row latency.

use std::collections::BTreeMap;
use std::time::Instant;

use ndarray::Array2;
use step11_candidates::Model;
use step12_training::{Candidate, RunInfo, TrainingData};

use super::folds::Fresh;
use super::{Board, Holdout, LeaderRow, Plan, Tracking};
use crate::error::{PipelineError, Result};
use crate::evaluate::assess;
use crate::prepare::{Progress, StepSummary};

/// Tunes, refits, evaluates, then hands the final models to steps 15-17.
pub(super) fn search_and_fit(
    plan: &Plan<'_>,
    tracking: &Tracking<'_>,
    holdout: &Holdout,
    fresh: &Fresh,
    progress: &mut dyn Progress,
    tick: &(dyn Fn(usize, usize) + Sync),
) -> Result<Board> {
    let store_err = |e| PipelineError::step("train", e);
    let (store, child) = (tracking.store, tracking.child);
    let (target, metric, features) = (plan.target, plan.metric, plan.features);
    let (train, test) = (&holdout.train, &holdout.test);
    let folds = fresh.objective.parts.len();
    let started = Instant::now();
    progress.started("tuning");
    let tuned = step13_tuning::tune(
        store,
        child,
        &fresh.candidates,
        folds,
        &fresh.objective,
        (&metric.name(), metric.greater_is_better()),
        tick,
    )
    .map_err(store_err)?;
    let failed_trials = tuned.trials.iter().filter(|t| t.error.is_some()).count();
    progress.finished(&StepSummary {
        step: "tuning",
        rows: train.x.nrows(),
        columns: tuned.trials.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: format!("{} trial(s) x {folds} folds, {failed_trials} failed", tuned.trials.len()),
    });

    let started = Instant::now();
    progress.started("fit");
    let best = tuned.best_per_family();
    let finals: Vec<Candidate> = best
        .iter()
        .map(|&i| Candidate { name: tuned.trials[i].model.clone(), spec: tuned.trials[i].spec.clone() })
        .collect();
    let cv_key = format!("cv_{}", metric.name());
    // Validation metrics by name, test metrics as `test_<name>`, the trial's cross-validation
    // score as `cv_<metric>_mean` / `_std`.
    let scorer =
        |candidate: &Candidate, model: &Model, x: &Array2<f64>| -> std::result::Result<BTreeMap<String, f64>, String> {
            let mut out = match &holdout.validation {
                Some(v) if v.x.nrows() == x.nrows() => assess(model, x, &v.y, target)?.metrics(),
                _ => BTreeMap::new(),
            };
            let test_metrics = assess(model, &test.x, &test.y, target)?.metrics();
            out.extend(test_metrics.into_iter().map(|(k, v)| (format!("test_{k}"), v)));
            if let Some(&i) = best.iter().find(|&&i| tuned.trials[i].spec == candidate.spec) {
                out.insert(format!("{cv_key}_mean"), tuned.trials[i].mean);
                out.insert(format!("{cv_key}_std"), tuned.trials[i].std);
            }
            Ok(out)
        };
    let empty = Array2::<f64>::zeros((0, features.len()));
    let outcomes = step12_training::train(
        store,
        &RunInfo { name: "final".into(), ..child.clone() },
        &TrainingData { x: &train.x, labels: &train.y, names: features },
        holdout.validation.as_ref().map_or(&empty, |v| &v.x),
        &finals,
        &scorer,
    )
    .map_err(store_err)?;
    progress.finished(&StepSummary {
        step: "fit",
        rows: train.x.nrows(),
        columns: finals.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: format!("best of {} families refitted on the training part", finals.len()),
    });

    let started = Instant::now();
    progress.started("evaluate");
    let mut board = Vec::new();
    let mut failed = Vec::new();
    let raw_rows = super::ship::server_rows(plan.engineered, &target.name)?;
    let mut models: Vec<(String, &Model)> = Vec::new();
    for (outcome, &trial) in outcomes.iter().zip(&best) {
        let trial = &tuned.trials[trial];
        let Some(model) = &outcome.model else {
            failed.push((outcome.name.clone(), outcome.error.clone().unwrap_or_default()));
            continue;
        };
        store.set_tag(&outcome.run_id, "kind", "final").map_err(store_err)?;
        store.set_tag(&outcome.run_id, "trial_run", &trial.run_id).map_err(store_err)?;
        let final_run = FinalRun { trial, run_id: &outcome.run_id, fit_seconds: outcome.fit_seconds, model };
        let validation: BTreeMap<String, f64> = outcome
            .metrics
            .iter()
            .filter(|(k, _)| !k.starts_with("test_") && !k.starts_with("cv_"))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        board.push(evaluate(plan, tracking, holdout, &final_run, (validation, &raw_rows))?);
        models.push((trial.model.clone(), model));
    }
    progress.finished(&StepSummary {
        step: "evaluate",
        rows: test.x.nrows(),
        columns: board.len(),
        seconds: started.elapsed().as_secs_f64(),
        note: format!("{} report(s) on the test part", board.len()),
    });

    let shipped = super::ship::ship(plan, tracking, holdout, (&board, &models), &raw_rows, progress)?;
    Ok(Board { trials: tuned.trials, leaderboard: board, failed, shipped })
}

/// A final fit: the trial it refits, its run, and the fitted model.
struct FinalRun<'a> {
    trial: &'a step13_tuning::Trial,
    run_id: &'a str,
    fit_seconds: f64,
    model: &'a Model,
}

/// Step 14 for one final model: its metrics and report on the test part, its files, and its
/// single-row latency on raw test rows; its line of the leaderboard.
fn evaluate(
    plan: &Plan<'_>,
    tracking: &Tracking<'_>,
    holdout: &Holdout,
    run: &FinalRun<'_>,
    (validation, raw_rows): (BTreeMap<String, f64>, &[mlops_core::Row]),
) -> Result<LeaderRow> {
    let (store, trial, model) = (tracking.store, run.trial, run.model);
    let store_err = |e| PipelineError::step("train", e);
    let test = &holdout.test;
    let eval = assess(model, &test.x, &test.y, plan.target).map_err(|message| PipelineError::Scoring {
        step: "evaluate",
        model: trial.model.clone(),
        message,
    })?;
    let mut params = trial.params.clone();
    params.remove("model");
    let dataset = plan.paths.dataset.0;
    let meta = step14_evaluate::ReportMeta {
        title: format!("{} on {dataset}", trial.model),
        model: trial.model.clone(),
        params: params.clone(),
        run_id: run.run_id.to_string(),
        dataset: dataset.to_string(),
        part: "test".into(),
        cv: Some((plan.metric.name(), trial.mean, trial.std)),
        fit_seconds: run.fit_seconds,
        importances: crate::evaluate::named_importances(model, plan.features),
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        toolkit_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let dir = plan.config.reports.join(plan.paths.dataset.1).join("evaluation").join(run.run_id);
    let report = crate::evaluate::write_report(&eval, &meta, &dir)?;
    let model_dir = plan.model.artifacts.join(run.run_id);
    let model_file = model_dir.join("model.bin");
    let io = |e| PipelineError::step("train", e);
    let blob = model.to_bytes().map_err(|e| PipelineError::step("train", e))?;
    mlops_core::io::atomic_write(&model_file, &blob).map_err(io)?;
    plan.engineered.pipeline.save(&model_dir.join("pipeline.json")).map_err(io)?;
    for (name, path) in [("report", &report), ("model", &model_file)] {
        store.log_artifact(run.run_id, name, path).map_err(store_err)?;
    }
    let (latency_p50_ms, latency_p99_ms) =
        crate::choose::latency(&plan.engineered.pipeline, (&trial.model, model), raw_rows, plan.features)?;
    Ok(LeaderRow {
        model_bytes: blob.len(),
        latency_p50_ms,
        latency_p99_ms,
        model: trial.model.clone(),
        params,
        cv_mean: trial.mean,
        cv_std: trial.std,
        validation,
        test: eval.metrics(),
        fit_seconds: run.fit_seconds,
        run_id: run.run_id.to_string(),
        report,
        model_file,
    })
}
