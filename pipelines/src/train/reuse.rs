//! Reuse of earlier training runs, found in the run store by their keys (see [`super::Keys`]):
//! an unchanged rerun gives back the last run's results; a run whose tuning, fits and evaluation
//! are unchanged (only `select_best` or `register` changed) takes the earlier final models and
//! goes on with steps 15-17. A run records what later runs need for both.

use std::path::Path;

use step11_candidates::Model;
use step12_training::{RunStatus, Store};

use super::{Board, Holdout, Keys, Plan, Tracking, Trained};
use crate::error::{PipelineError, Result};
use crate::prepare::{Progress, StepSummary};

/// An earlier run's results and its final models, decoded.
pub(super) struct Earlier {
    pub(super) trained: Trained,
    models: Vec<(String, Model)>,
}

/// What the last finished training run tagged `tag = value` recorded (`trained.json`).
fn last_trained(store: &Path, tag: &str, value: &str) -> Option<Trained> {
    if mlops_core::store::Location::from_path(store).is_missing_file() {
        return None;
    }
    let runs = Store::open(store).ok()?.runs(None).ok()?;
    let run = runs
        .iter()
        .rev()
        .find(|r| r.status == RunStatus::Finished && r.tags.get(tag).map(String::as_str) == Some(value))?;
    serde_json::from_slice(&std::fs::read(run.artifacts.get("trained")?).ok()?).ok()
}

/// The results of the last finished training run with this run key, if its outputs are all
/// still there.
pub(super) fn unchanged(store: &Path, key: &str) -> Option<Trained> {
    let trained = last_trained(store, "cache_key", key)?;
    let all_there = trained
        .leaderboard
        .iter()
        .flat_map(|r| [&r.model_file, &r.report])
        .chain(trained.package.iter())
        .all(|f| f.exists())
        && trained.package.as_ref().is_none_or(|p| step16_package::load(p).is_ok());
    all_there.then_some(trained)
}

/// The last finished training run whose fits had this key, with its final models, when every
/// model file is still there and decodes.
pub(super) fn fits(store: &Path, key: &str) -> Option<Earlier> {
    let trained = last_trained(store, "fit_key", key)?;
    let models = trained
        .leaderboard
        .iter()
        .map(|r| Some((r.model.clone(), Model::from_bytes(&std::fs::read(&r.model_file).ok()?).ok()?)))
        .collect::<Option<Vec<_>>>()?;
    Some(Earlier { trained, models })
}

/// Steps 15-17 on an earlier run's final models.
pub(super) fn ship_earlier(
    plan: &Plan<'_>,
    tracking: &Tracking<'_>,
    holdout: &Holdout,
    earlier: Earlier,
    progress: &mut dyn Progress,
) -> Result<Board> {
    let e = &earlier.trained;
    progress.started("reuse");
    progress.finished(&StepSummary {
        step: "reuse",
        rows: holdout.train.x.nrows(),
        columns: e.leaderboard.len(),
        seconds: 0.0,
        note: format!("tuning, fits and evaluation of run {} (only later sections changed)", e.run_id),
    });
    let parent = tracking.child.parent.as_deref().unwrap_or_default();
    tracking.store.set_tag(parent, "reused_fits", &e.run_id).map_err(|e| PipelineError::step("train", e))?;
    let models: Vec<(String, &Model)> = earlier.models.iter().map(|(n, m)| (n.clone(), m)).collect();
    let raw_rows = super::ship::server_rows(plan.engineered, &plan.target.name)?;
    let shipped = super::ship::ship(plan, tracking, holdout, (&e.leaderboard, &models), &raw_rows, progress)?;
    Ok(Board { trials: e.trials.clone(), leaderboard: e.leaderboard.clone(), failed: e.failed.clone(), shipped })
}

/// Keeps what later runs reuse: the results as `trained.json` under the run key, and the fit key.
pub(super) fn record(store: &Store, artifacts: &Path, keys: &Keys, trained: &Trained) -> Result<()> {
    let store_err = |e| PipelineError::step("train", e);
    if let Some(key) = &keys.run {
        let path = artifacts.join(&trained.run_id).join("trained.json");
        let json = serde_json::to_vec_pretty(trained).map_err(|e| PipelineError::Encode {
            step: "train",
            what: "the run",
            message: e.to_string(),
        })?;
        mlops_core::io::atomic_write(&path, &json).map_err(|e| PipelineError::step("train", e))?;
        store.log_artifact(&trained.run_id, "trained", &path).map_err(store_err)?;
        store.set_tag(&trained.run_id, "cache_key", key).map_err(store_err)?;
    }
    if let Some(key) = &keys.fits {
        store.set_tag(&trained.run_id, "fit_key", key).map_err(store_err)?;
    }
    Ok(())
}
