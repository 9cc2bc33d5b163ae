//! The lifecycle policy (`configs/lifecycle.yaml`): when to retrain, what a challenger must show
//! to replace the champion, and how long old versions are kept.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use step14_evaluate::Metric;

use crate::error::{LifecycleError, Result};

/// The lifecycle of one registered model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecyclePolicy {
    /// The registered model name (the command line's NAME wins).
    pub model: Option<String>,
    /// The alias traffic follows (the server resolves it).
    pub alias: String,
    /// The alias a retrained version waits under until the gate lets it through.
    pub challenger_alias: String,
    /// The store holding the registry, the prediction log, feedback and alert state.
    pub store: PathBuf,
    /// The registry's artifact folder.
    pub artifacts: PathBuf,
    /// The training config a retraining runs (its hash must be the one the champion's lineage
    /// records, so the retrained model is made the same way).
    pub training: PathBuf,
    /// The monitoring config whose window and drift rules the triggers read.
    pub monitoring: PathBuf,
    /// When to retrain.
    pub triggers: Triggers,
    /// What to retrain on.
    pub retrain: RetrainParams,
    /// What a challenger must show.
    pub gate: GateParams,
    /// Which versions are kept.
    pub retention: Retention,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        LifecyclePolicy {
            model: None,
            alias: "champion".into(),
            challenger_alias: "challenger".into(),
            store: PathBuf::from("models/registry/registry.db"),
            artifacts: PathBuf::from("models/artifacts"),
            training: PathBuf::from("configs/training.yaml"),
            monitoring: PathBuf::from("configs/monitoring.yaml"),
            triggers: Triggers::default(),
            retrain: RetrainParams::default(),
            gate: GateParams::default(),
            retention: Retention::default(),
        }
    }
}

/// Retrain triggers: any one that holds starts a retraining.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Triggers {
    /// Retrain when monitoring finds dataset drift in the window.
    pub dataset_drift: bool,
    /// Retrain when a metric of the labelled window fell this far below the registered
    /// baseline (the workflow seed's 0.05).
    pub performance_drop: Option<PerformanceDrop>,
    /// Retrain when the champion is older than this many days (a schedule).
    pub max_age_days: Option<u32>,
    /// Retrain when at least this many labelled rows arrived since the champion was registered.
    pub new_labelled_rows: Option<u64>,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers {
            dataset_drift: true,
            performance_drop: Some(PerformanceDrop::default()),
            max_age_days: None,
            new_labelled_rows: None,
        }
    }
}

/// A drop of one metric against the baseline recorded at registration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerformanceDrop {
    /// The metric (the gate's, else the first of the window's metrics the baseline has).
    pub metric: Option<Metric>,
    /// How far it may fall (rise, for errors) before retraining.
    pub more_than: f64,
}

impl Default for PerformanceDrop {
    fn default() -> Self {
        PerformanceDrop { metric: None, more_than: 0.05 }
    }
}

/// What a retraining runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrainParams {
    /// The data.
    pub data: RetrainData,
}

/// The data a retraining runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrainData {
    /// The data config's sources as they are now.
    Sources,
    /// The sources, with the labelled rows logged since the champion's registration appended to
    /// the primary source (as a caller sent them, the label in the source's target column).
    #[default]
    Append,
    /// The same, cut to the newest `rows` rows.
    Window {
        /// Rows kept.
        rows: usize,
    },
}

/// What a challenger must show on the latest labelled window to replace the champion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateParams {
    /// The metric both are scored on (default: accuracy for classifiers, rmse for regressors).
    pub metric: Option<Metric>,
    /// How much better the challenger must be.
    pub margin: f64,
    /// Fewer labelled rows than this in the window and the gate does not open.
    pub min_labelled_rows: u64,
    /// The share of labelled rows kept for the gate and never trained on (chosen by a hash of
    /// the request id and row, so the same rows every run); retraining appends the others.
    pub holdout: f64,
    /// A shadow period, in minutes: a retrained challenger is not gated at once; a server with
    /// `serve.shadow_alias` scores it beside the champion on live traffic (only the champion
    /// answers), and the first run after the period gates it on those logged predictions
    /// with their feedback. Unset: gate at once on the held-out rows.
    pub shadow_minutes: Option<u64>,
    /// Whether a challenger may refuse labelled rows the champion takes (a column it requires
    /// that callers did not send, a category it does not know): off, so a promotion never turns
    /// a caller's answers into 400s.
    pub allow_new_refusals: bool,
}

impl Default for GateParams {
    fn default() -> Self {
        GateParams {
            metric: None,
            margin: 0.0,
            min_labelled_rows: 30,
            holdout: 0.3,
            shadow_minutes: None,
            allow_new_refusals: false,
        }
    }
}

/// Whether a labelled row (its request id and row) is one the gate keeps for itself at
/// `share`: a stable hash of the two, so every run and every process agrees.
pub fn in_holdout(request_id: &str, row: u32, share: f64) -> bool {
    let digest = mlops_core::hash::sha256_bytes(format!("{request_id}/{row}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) as f64 / u64::MAX as f64) < share
}

/// Which versions are kept: a version is retired when it holds no alias, no running deployment
/// serves it, it is not among the newest `keep_last` and it is older than `keep_days`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// The newest versions kept whatever their age.
    pub keep_last: u32,
    /// Versions younger than this many days are kept (unset: age keeps nothing).
    pub keep_days: Option<u32>,
    /// Days between a retirement and the deletion of the version's stored package.
    pub grace_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { keep_last: 5, keep_days: None, grace_days: 7 }
    }
}

impl LifecyclePolicy {
    /// Checks every value once, before any work: errors name the key.
    pub fn check(&self) -> Result<()> {
        let bad = |key: &str, message: String| Err(LifecycleError::Config { key: key.into(), message });
        if let Some(name) = &self.model
            && let Err(e) = step17_registry::validate_name(name)
        {
            return bad("model", e.to_string());
        }
        for (key, alias) in [("alias", &self.alias), ("challenger_alias", &self.challenger_alias)] {
            if let Err(e) = step17_registry::ModelUri::parse(&format!("models:/m@{alias}")) {
                return bad(key, e.to_string());
            }
        }
        if self.alias == self.challenger_alias {
            return bad(
                "challenger_alias",
                format!("`{}` is also the serving alias; give it another name", self.alias),
            );
        }
        if let Some(drop) = &self.triggers.performance_drop
            && !(drop.more_than.is_finite() && drop.more_than > 0.0)
        {
            return bad("triggers.performance_drop.more_than", format!("{} is not a positive number", drop.more_than));
        }
        if self.triggers.max_age_days == Some(0) {
            return bad("triggers.max_age_days", "must be at least 1".into());
        }
        if self.triggers.new_labelled_rows == Some(0) {
            return bad("triggers.new_labelled_rows", "must be at least 1".into());
        }
        if self.retrain.data == (RetrainData::Window { rows: 0 }) {
            return bad("retrain.data.window.rows", "must be at least 1".into());
        }
        if !(self.gate.margin.is_finite() && self.gate.margin >= 0.0) {
            return bad("gate.margin", format!("{} is not a number >= 0", self.gate.margin));
        }
        if !(self.gate.holdout > 0.0 && self.gate.holdout < 1.0) {
            return bad("gate.holdout", format!("{} is not a share in (0, 1)", self.gate.holdout));
        }
        if self.gate.min_labelled_rows == 0 {
            return bad("gate.min_labelled_rows", "must be at least 1".into());
        }
        if self.retention.keep_last == 0 {
            return bad("retention.keep_last", "must be at least 1 (the champion is always kept too)".into());
        }
        if self.retention.keep_days == Some(0) {
            return bad("retention.keep_days", "must be at least 1 (leave it out to keep by count only)".into());
        }
        Ok(())
    }
}
