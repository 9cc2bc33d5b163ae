//! Step 23: the lifecycle of a registered model, by policy. It reads what monitoring found (step
//! 22) and what the registry holds (step 17), decides whether to retrain, holds a retrained
//! challenger against the champion on the latest labelled window, moves the serving alias (the
//! server follows it), rolls it back on request, and retires old versions.
//!
//! In: a [`LifecyclePolicy`] (`configs/lifecycle.yaml`), the registry's store, and an
//! [`Environment`] that the `pipelines` crate implements: it knows how to monitor, retrain
//! (the training run) and score a package, which this crate cannot depend on. Out: a
//! [`LifecycleReport`] saying what happened and why, the registry changed accordingly (every
//! change in its audit log with the reason), and a row in the store's `lifecycle_runs`.
//!
//! Invariants: one run at a time per store ([`RunLock`], released by the kernel if a run dies);
//! an alias only ever moves to a whole, registered, active version; the champion, anything an
//! alias points at and anything a running deployment serves is never retired or deleted; a
//! failing gate or retraining keeps the champion.
//!
//! ```
//! use step23_lifecycle::{GateParams, Scored, decide_gate};
//! use step14_evaluate::Metric;
//! let scored = |version, accuracy| Scored {
//!     version,
//!     metrics: [("accuracy".to_string(), accuracy)].into(),
//!     rows: 200,
//!     refused: Default::default(),
//! };
//! let (champion, challenger) = (scored(1, 0.80), scored(2, 0.91));
//! let none = Default::default();
//! let gate = decide_gate(&GateParams::default(), Metric::Accuracy, (&champion, &challenger), (&none, &none));
//! assert!(gate.passed, "{}", gate.reason);
//! ```

mod error;
mod gate;
mod lock;
mod policy;
mod retention;
mod state;
mod triggers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use step14_evaluate::Metric;
use step17_registry::{Registry, Version, VersionStatus};

pub use error::{LifecycleError, Result};
pub use gate::{GateDecision, Scored, decide as decide_gate};
pub use lock::RunLock;
pub use policy::{
    GateParams, LifecyclePolicy, PerformanceDrop, Retention, RetrainData, RetrainParams, Triggers, in_holdout,
};
pub use retention::{RetentionStep, VersionFacts, plan as plan_retention};
pub use state::{LifecycleStore, Outcome, RunEnd, RunRecord};
pub use triggers::{Facts, Trigger, TriggerKind, drop_metric, evaluate as evaluate_triggers, next_scheduled};

/// The version tag that records when retention deleted a retired version's stored package.
pub const ARTIFACTS_DELETED_TAG: &str = "lifecycle.artifacts_deleted";

/// What the lifecycle needs from the rest of the toolkit; `pipelines` implements it with the
/// monitoring run, the training run and the packages' own prediction path.
pub trait Environment {
    /// What monitoring finds about `champion` over the policy's window, and the labelled rows
    /// that arrived since it was registered.
    fn facts(&mut self, champion: &Version) -> std::result::Result<Facts, String>;
    /// Runs the champion's training run again (tracked as a child of the lifecycle's run) and
    /// registers its model under the challenger alias; answers the new version and the
    /// training run's id.
    fn retrain(&mut self, champion: &Version) -> std::result::Result<Retrained, String>;
    /// Scores `version` on the latest labelled window, through its own package.
    fn score(&mut self, version: &Version) -> std::result::Result<Scored, String>;
    /// Scores what the server logged for `version` since `since` (its answers, or its shadow
    /// predictions) against their feedback.
    fn score_logged(&mut self, version: &Version, since: DateTime<Utc>) -> std::result::Result<Scored, String>;
    /// The gate's metric when the policy names none (the task's usual one).
    fn default_metric(&mut self, champion: &Version) -> std::result::Result<Metric, String>;
    /// The training config's `select_best.constraints` floors and ceilings.
    fn constraints(&mut self) -> (BTreeMap<String, f64>, BTreeMap<String, f64>);
    /// The versions of `name` that running deployments serve.
    fn served(&mut self, name: &str) -> std::result::Result<Vec<u32>, String>;
}

/// A retrained, registered challenger.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Retrained {
    /// Its version.
    pub version: u32,
    /// The training run that made it.
    pub run_id: String,
    /// What it was trained on, in words.
    pub data: String,
}

/// What one `lifecycle run` did, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LifecycleReport {
    /// The run's number in `lifecycle_runs`.
    pub run: i64,
    /// The model.
    pub model: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, in one sentence.
    pub reason: String,
    /// The champion before and after.
    pub champion: (u32, u32),
    /// What monitoring found.
    pub facts: Facts,
    /// The triggers that held.
    pub triggers: Vec<Trigger>,
    /// The retrained challenger.
    pub retrained: Option<Retrained>,
    /// The gate's decision.
    pub gate: Option<GateDecision>,
    /// What retention did.
    pub retention: Vec<RetentionStep>,
}

/// The lock file of the store at `store`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lifecycle.lock");
    store.with_file_name(name)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// One lifecycle run for `name` under `policy`: evaluate the triggers, retrain when one holds,
/// gate the challenger, promote it or keep the champion, then apply retention. Holds the
/// store's lock throughout; a second run at the same time is [`LifecycleError::Locked`].
pub fn run(
    policy: &LifecyclePolicy,
    name: &str,
    env: &mut dyn Environment,
    now: DateTime<Utc>,
) -> Result<LifecycleReport> {
    let _lock = RunLock::for_store(&policy.store)?;
    let mut registry = Registry::open(&policy.store, &policy.artifacts, &actor())?;
    let champion = registry.resolve(&format!("models:/{name}@{}", policy.alias))?;
    let store = LifecycleStore::open(&policy.store)?;
    let id = store.start(name, champion.version)?;
    let mut report = LifecycleReport {
        run: id,
        model: name.to_string(),
        outcome: Outcome::NothingDue,
        reason: String::new(),
        champion: (champion.version, champion.version),
        facts: Facts::default(),
        triggers: Vec::new(),
        retrained: None,
        gate: None,
        retention: Vec::new(),
    };
    let decided = decide(policy, (&mut registry, &store), env, &champion, &mut report, now);
    if let Err(e) = &decided {
        report.outcome = Outcome::Failed;
        report.reason = e.to_string();
    }
    let retention =
        if decided.is_ok() { apply_retention(policy, &mut registry, env, name, now) } else { Ok(Vec::new()) };
    match retention {
        Ok(steps) => report.retention = steps,
        Err(e) if decided.is_ok() => {
            report.outcome = Outcome::Failed;
            report.reason = format!("retention: {e}");
        }
        Err(_) => {}
    }
    let json = serde_json::to_string(&report).unwrap_or_default();
    store.finish(
        id,
        &RunEnd {
            outcome: report.outcome,
            champion: Some(report.champion.1),
            challenger: report.retrained.as_ref().map(|r| r.version),
            labelled_rows: Some(report.facts.new_labelled_rows),
            reason: &report.reason,
            report: &json,
        },
    )?;
    tracing::info!(model = name, outcome = report.outcome.name(), reason = %report.reason, "lifecycle run");
    decided?;
    Ok(report)
}

/// Who the registry's audit log says made a lifecycle change.
fn actor() -> String {
    format!("{} (lifecycle)", mlops_core::process::actor())
}

/// Triggers, retraining, gate and promotion; fills `report`.
fn decide(
    policy: &LifecyclePolicy,
    (registry, store): (&mut Registry, &LifecycleStore),
    env: &mut dyn Environment,
    champion: &Version,
    report: &mut LifecycleReport,
    now: DateTime<Utc>,
) -> Result<()> {
    let name = champion.name.as_str();
    let env_err = |step: &str, message: String| LifecycleError::Refused(format!("{step}: {message}"));
    report.facts = env.facts(champion).map_err(|m| env_err("monitoring", m))?;
    if let Some(minutes) = policy.gate.shadow_minutes
        && let Some((challenger, since)) = shadowing(policy, registry, champion)?
    {
        let until = since + chrono::Duration::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 60_000));
        report.retrained = None;
        if now < until {
            report.outcome = Outcome::Shadowing;
            report.reason = format!(
                "version {} shadows version {} until {} (the server scores it beside the champion)",
                challenger.version,
                champion.version,
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            return Ok(());
        }
        let metric = match policy.gate.metric {
            Some(m) => m,
            None => env.default_metric(champion).map_err(|m| env_err("gate", m))?,
        };
        let a = env.score_logged(champion, since).map_err(|m| env_err("the champion's logged answers", m))?;
        let b = env.score_logged(&challenger, since).map_err(|m| env_err("the challenger's shadow predictions", m))?;
        let (floors, ceilings) = env.constraints();
        let mut decision = gate::decide(&policy.gate, metric, (&a, &b), (&floors, &ceilings));
        decision.reason = format!("after its shadow period: {}", decision.reason);
        promote_or_keep(policy, registry, (champion, &challenger), decision, report)?;
        if report.outcome == Outcome::Kept {
            // The shadow period is over either way: the server stops scoring it.
            registry.delete_alias(name, &policy.challenger_alias)?;
        }
        return Ok(());
    }
    if report.facts.registered.is_none() {
        report.facts.registered = parse_time(&champion.created_at);
    }
    report.triggers = triggers::evaluate(&policy.triggers, &report.facts, now);
    if report.triggers.is_empty() {
        report.reason = format!("no trigger holds for {name} version {}", champion.version);
        return Ok(());
    }
    // Unchanged facts since a run that retrained against this same champion (its challenger was
    // kept out, or promoted and then rolled back by hand): retraining again would make the same
    // model from the same data, or undo the rollback.
    if let Some(last) = store.last(name)?
        && matches!(last.outcome, Some(Outcome::Kept | Outcome::Promoted))
        && last.champion_before == Some(champion.version)
        && last.labelled_rows == Some(report.facts.new_labelled_rows)
    {
        report.outcome = Outcome::Kept;
        let then = if last.outcome == Some(Outcome::Promoted) {
            format!("promoted version {} (rolled back since)", last.champion_after.unwrap_or_default())
        } else {
            format!("kept version {}", champion.version)
        };
        report.reason =
            format!("nothing new since run {} {then}: no new labelled rows, so not retraining again", last.id);
        return Ok(());
    }
    let retrained = match env.retrain(champion) {
        Ok(r) => r,
        Err(message) => {
            report.outcome = Outcome::RetrainFailed;
            report.reason = format!("retraining failed, version {} stays: {message}", champion.version);
            return Ok(());
        }
    };
    report.retrained = Some(retrained.clone());
    if retrained.version == champion.version {
        report.outcome = Outcome::Kept;
        report.reason = format!(
            "the training run gave back version {} itself (its data and config are unchanged): nothing to gate",
            champion.version
        );
        return Ok(());
    }
    let challenger = registry.version(name, retrained.version)?;
    if let Some(minutes) = policy.gate.shadow_minutes {
        report.outcome = Outcome::Shadowing;
        report.reason = format!(
            "version {} waits as `{}` for its shadow period of {minutes} minute(s): a server with serve.shadow_alias scores it beside version {}, and the first run after the period gates it",
            challenger.version, policy.challenger_alias, champion.version
        );
        return Ok(());
    }
    let metric = match policy.gate.metric {
        Some(m) => m,
        None => env.default_metric(champion).map_err(|m| env_err("gate", m))?,
    };
    let a = env.score(champion).map_err(|m| env_err("scoring the champion", m))?;
    let b = env.score(&challenger).map_err(|m| env_err("scoring the challenger", m))?;
    let (floors, ceilings) = env.constraints();
    let decision = gate::decide(&policy.gate, metric, (&a, &b), (&floors, &ceilings));
    promote_or_keep(policy, registry, (champion, &challenger), decision, report)
}

/// Moves the alias to the challenger when the gate passed (its waiting alias goes), else keeps
/// the champion; either way the report says why.
fn promote_or_keep(
    policy: &LifecyclePolicy,
    registry: &mut Registry,
    (champion, challenger): (&Version, &Version),
    decision: GateDecision,
    report: &mut LifecycleReport,
) -> Result<()> {
    let name = champion.name.as_str();
    if decision.passed {
        registry.set_alias_because(name, &policy.alias, challenger.version, Some(&decision.reason))?;
        if challenger.aliases.iter().any(|a| a == &policy.challenger_alias) {
            registry.delete_alias(name, &policy.challenger_alias)?;
        }
        report.outcome = Outcome::Promoted;
        report.champion.1 = challenger.version;
    } else {
        report.outcome = Outcome::Kept;
    }
    report.reason = decision.reason.clone();
    report.gate = Some(decision);
    Ok(())
}

/// The challenger in its shadow period, if any: the version the challenger alias points at (not
/// the champion), and when the alias was set on it.
fn shadowing(
    policy: &LifecyclePolicy,
    registry: &Registry,
    champion: &Version,
) -> Result<Option<(Version, DateTime<Utc>)>> {
    let versions = registry.versions(&champion.name)?;
    let Some(challenger) =
        versions.into_iter().find(|v| v.version != champion.version && v.aliases.contains(&policy.challenger_alias))
    else {
        return Ok(None);
    };
    let set = format!("{}={}", policy.challenger_alias, challenger.version);
    let since = registry
        .history(Some(&champion.name))?
        .iter()
        .rev()
        .find(|h| h.action == "alias" && h.new_value.as_deref() == Some(set.as_str()))
        .and_then(|h| parse_time(&h.at))
        .unwrap_or_else(|| parse_time(&challenger.created_at).unwrap_or_else(Utc::now));
    Ok(Some((challenger, since)))
}

/// The retention facts of every version of `name`: aliases, deployments, retirement times.
pub fn version_facts(registry: &Registry, name: &str, served: &[u32]) -> Result<Vec<VersionFacts>> {
    let history = registry.history(Some(name))?;
    let retired_at = |v: u32| {
        history.iter().rev().find(|h| h.action == "retire" && h.version == Some(v)).and_then(|h| parse_time(&h.at))
    };
    Ok(registry
        .versions(name)?
        .into_iter()
        .map(|v| VersionFacts {
            version: v.version,
            retired: v.status == VersionStatus::Retired,
            served: served.contains(&v.version),
            registered: parse_time(&v.created_at).unwrap_or_else(Utc::now),
            retired_at: retired_at(v.version),
            artifacts_deleted: v.tags.contains_key(ARTIFACTS_DELETED_TAG),
            aliases: v.aliases,
            package_sha256: v.package_sha256,
        })
        .collect())
}

/// Applies retention to `name`: retires versions past it, deletes the stored packages of
/// versions retired longer than the grace period. Answers the steps taken.
pub fn apply_retention(
    policy: &LifecyclePolicy,
    registry: &mut Registry,
    env: &mut dyn Environment,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Vec<RetentionStep>> {
    let served = env.served(name).map_err(|m| LifecycleError::Refused(format!("deployments: {m}")))?;
    let steps = retention::plan(&policy.retention, &version_facts(registry, name, &served)?, now);
    for step in &steps {
        match step {
            RetentionStep::Retire { version, reason } => registry.retire_because(name, *version, Some(reason))?,
            RetentionStep::DeleteArtifacts { version, .. } => {
                let v = registry.version(name, *version)?;
                registry.delete_package(&v)?;
                registry.set_tag(name, Some(*version), ARTIFACTS_DELETED_TAG, &now.to_rfc3339())?;
            }
        }
    }
    Ok(steps)
}

/// Moves `policy.alias` of `name` back to the version it pointed at before its last move.
/// Answers (from, to).
pub fn rollback(policy: &LifecyclePolicy, name: &str, reason: &str) -> Result<(u32, u32)> {
    let _lock = RunLock::for_store(&policy.store)?;
    let mut registry = Registry::open(&policy.store, &policy.artifacts, &actor())?;
    let current = registry.resolve(&format!("models:/{name}@{}", policy.alias))?;
    let previous = registry
        .previous_alias_target(name, &policy.alias)?
        .ok_or_else(|| LifecycleError::NoPreviousVersion { name: name.into(), alias: policy.alias.clone() })?;
    let target = registry.version(name, previous)?;
    if target.status == VersionStatus::Retired {
        return Err(LifecycleError::Refused(format!(
            "{name}: `{}` pointed at version {previous} before, which is retired; point the alias by hand (mlops registry alias)",
            policy.alias
        )));
    }
    let why = format!("rollback: {reason}");
    registry.set_alias_because(name, &policy.alias, previous, Some(&why))?;
    Ok((current.version, previous))
}

/// Retires one version by hand; refuses a version an alias points at or a deployment serves.
pub fn retire(policy: &LifecyclePolicy, name: &str, version: u32, reason: &str, served: &[u32]) -> Result<()> {
    let _lock = RunLock::for_store(&policy.store)?;
    let mut registry = Registry::open(&policy.store, &policy.artifacts, &actor())?;
    let v = registry.version(name, version)?;
    if !v.aliases.is_empty() {
        let champion = if v.aliases.contains(&policy.alias) { " (the champion is never retired)" } else { "" };
        return Err(LifecycleError::Refused(format!(
            "{name} version {version} holds the alias(es) {}; move them first{champion}",
            v.aliases.join(", ")
        )));
    }
    if served.contains(&version) {
        return Err(LifecycleError::Refused(format!(
            "{name} version {version} is served by a running deployment; stop or redeploy it first"
        )));
    }
    registry.retire_because(name, version, Some(reason))?;
    Ok(())
}

/// The seed's lifecycle view of one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LifecycleStatus {
    /// The model.
    pub model: String,
    /// Versions registered.
    pub versions_total: usize,
    /// Active ones.
    pub versions_active: usize,
    /// Retired ones.
    pub versions_retired: usize,
    /// The newest version.
    pub latest: Option<u32>,
    /// The serving alias's version.
    pub champion: Option<u32>,
    /// The challenger alias's version.
    pub challenger: Option<u32>,
    /// The last lifecycle run.
    pub last_run: Option<RunRecord>,
    /// When the age trigger falls due (`None` without a schedule).
    pub next_retraining: Option<String>,
}

/// The status of `name` under `policy`.
pub fn status(policy: &LifecyclePolicy, name: &str) -> Result<LifecycleStatus> {
    let registry = Registry::open(&policy.store, &policy.artifacts, &actor())?;
    let versions = registry.versions(name)?;
    let with_alias = |alias: &str| versions.iter().find(|v| v.aliases.iter().any(|a| a == alias)).map(|v| v.version);
    let champion = with_alias(&policy.alias);
    let registered =
        champion.and_then(|c| versions.iter().find(|v| v.version == c)).and_then(|v| parse_time(&v.created_at));
    Ok(LifecycleStatus {
        model: name.into(),
        versions_total: versions.len(),
        versions_active: versions.iter().filter(|v| v.status == VersionStatus::Active).count(),
        versions_retired: versions.iter().filter(|v| v.status == VersionStatus::Retired).count(),
        latest: versions.iter().map(|v| v.version).max(),
        champion,
        challenger: with_alias(&policy.challenger_alias),
        last_run: LifecycleStore::open(&policy.store)?.last(name)?,
        next_retraining: registered
            .and_then(|r| triggers::next_scheduled(&policy.triggers, r))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    })
}

#[cfg(test)]
mod tests;
