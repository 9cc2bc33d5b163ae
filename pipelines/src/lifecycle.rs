//! Step 23 over the toolkit: the lifecycle's [`Environment`] made of the monitoring run (the
//! triggers' facts), the packages' own row path (the gate's scores on the labelled window) and
//! the deployment records (what is served). Retraining is handed in by the caller: the CLI runs
//! `mlops train` as a child process, so a failing training run cannot take the lifecycle down.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mlops_core::Row;
use step14_evaluate::Metric;
use step17_registry::Version;
use step20_serve::{CategoryPolicy, Cell, ModelSource, Scorer};
use step22_monitor::{
    Labelled, LabelledRow, ModelRef, MonitorConfig, Outcomes, Window, read_accuracy, read_labelled_rows,
};
use step23_lifecycle::{Environment, Facts, LifecyclePolicy, Retrained, Scored, in_holdout};

use crate::monitor::{MonitorRequest, monitor};

/// Retrains the champion: answers the new, registered challenger.
pub type Retrain<'a> = Box<dyn FnMut(&Version) -> std::result::Result<Retrained, String> + 'a>;

/// The toolkit as the lifecycle sees it.
pub struct ToolkitEnvironment<'a> {
    /// The policy.
    pub policy: &'a LifecyclePolicy,
    /// The monitoring config: its window and drift rules (its alert rules and sinks are left
    /// to `mlops monitor`: the lifecycle reads, it does not alert).
    pub monitoring: &'a MonitorConfig,
    /// The window monitoring and the gate look at.
    pub window: Window,
    /// The run's instant.
    pub now: DateTime<Utc>,
    /// The training config's `select_best.constraints` floors and ceilings.
    pub constraints: (BTreeMap<String, f64>, BTreeMap<String, f64>),
    /// How to retrain.
    pub retrain: Retrain<'a>,
    labelled: Option<Vec<LabelledRow>>,
}

impl<'a> ToolkitEnvironment<'a> {
    /// An environment over the policy's store, watching `window`.
    pub fn new(
        policy: &'a LifecyclePolicy,
        monitoring: &'a MonitorConfig,
        (window, now): (Window, DateTime<Utc>),
        constraints: (BTreeMap<String, f64>, BTreeMap<String, f64>),
        retrain: Retrain<'a>,
    ) -> Self {
        ToolkitEnvironment { policy, monitoring, window, now, constraints, retrain, labelled: None }
    }

    /// The window's labelled rows of the model (every version) that the gate keeps for itself
    /// (`gate.holdout`: never trained on), read once.
    fn labelled(&mut self, name: &str) -> std::result::Result<&[LabelledRow], String> {
        if self.labelled.is_none() {
            let model = ModelRef { name: name.to_string(), version: None };
            let share = self.policy.gate.holdout;
            let rows = read_labelled_rows(&self.policy.store, &model, &self.window).map_err(|e| e.to_string())?;
            self.labelled = Some(rows.into_iter().filter(|r| in_holdout(&r.request_id, r.row, share)).collect());
        }
        Ok(self.labelled.as_deref().unwrap_or_default())
    }

    fn scorer(&self, v: &Version) -> std::result::Result<Scorer, String> {
        scorer(self.policy, &v.name, v.version)
    }
}

/// The logged rows `scorer` takes (by index, conformed) and the ones it would refuse, counted by
/// the offending column (a row the model cannot take is left out of its scores; the counts say
/// what its callers would see as 400s).
fn conform_all(scorer: &Scorer, rows: &[LabelledRow]) -> (Vec<(usize, Row)>, BTreeMap<String, u64>) {
    let mut taken = Vec::with_capacity(rows.len());
    let mut refused = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        match scorer.conform(i, |j| r.inputs.get(&scorer.inputs()[j].name).map(Cell::Json)) {
            Ok((row, _)) => taken.push((i, row)),
            Err(e) => *refused.entry(e.column.unwrap_or_else(|| "(the row)".into())).or_insert(0) += 1,
        }
    }
    (taken, refused)
}

/// Version `version` of `name` through its package, as the server loads it.
fn scorer(policy: &LifecyclePolicy, name: &str, version: u32) -> std::result::Result<Scorer, String> {
    ModelSource::parse(&format!("models:/{name}/{version}"), &policy.store, &policy.artifacts)
        .load(CategoryPolicy::Warn)
        .map_err(|e| e.to_string())
}

/// The inputs version `to` of `name` requires that version `from` let its callers leave out
/// (or does not take at all): after moving an alias from one to the other, callers that send
/// only `from`'s columns are refused for these. Read from both packages' signatures.
pub fn new_requirements(
    policy: &LifecyclePolicy,
    name: &str,
    (from, to): (u32, u32),
) -> std::result::Result<Vec<String>, String> {
    let (before, after) = (scorer(policy, name, from)?, scorer(policy, name, to)?);
    Ok(after
        .inputs()
        .iter()
        .filter(|c| !c.nullable)
        .filter(|c| before.inputs().iter().all(|b| b.name != c.name || b.nullable))
        .map(|c| c.name.clone())
        .collect())
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

impl Environment for ToolkitEnvironment<'_> {
    fn facts(&mut self, champion: &Version) -> std::result::Result<Facts, String> {
        let uri = format!("models:/{}/{}", champion.name, champion.version);
        let monitored = monitor(&MonitorRequest {
            model: &uri,
            store: &self.policy.store,
            artifacts: &self.policy.artifacts,
            window: self.window,
            window_label: "lifecycle".into(),
            config: self.monitoring,
            reports: &self.monitoring.reports,
            now: self.now,
            alert: false,
        })
        .map_err(|e| e.to_string())?;
        let registered = parse_time(&champion.created_at);
        let since = Window { from: registered, to: None };
        let model = ModelRef { name: champion.name.clone(), version: None };
        let new_labelled_rows =
            read_labelled_rows(&self.policy.store, &model, &since).map_err(|e| e.to_string())?.len() as u64;
        let drift = monitored.inputs.as_ref().filter(|_| monitored.rows > 0);
        Ok(Facts {
            dataset_drift: drift.map(|d| d.dataset_drift),
            drifted_columns: drift
                .map(|d| d.columns.iter().filter(|c| c.drifted).map(|c| c.column.clone()).collect())
                .unwrap_or_default(),
            metrics: monitored.accuracy.map(|a| a.overall).unwrap_or_default(),
            baseline: monitored.baseline,
            registered,
            new_labelled_rows,
        })
    }

    fn retrain(&mut self, champion: &Version) -> std::result::Result<Retrained, String> {
        (self.retrain)(champion)
    }

    fn score(&mut self, version: &Version) -> std::result::Result<Scored, String> {
        let scorer = self.scorer(version)?;
        let outcomes = match scorer.classes() {
            [] => Outcomes::Values,
            classes => Outcomes::Classes(classes.to_vec()),
        };
        let rows = self.labelled(&version.name)?;
        let (taken, refused) = conform_all(&scorer, rows);
        let (mut conformed, actual): (Vec<Row>, Vec<&serde_json::Value>) =
            taken.into_iter().map(|(i, row)| (row, &rows[i].actual)).unzip();
        let mut labelled = Labelled::default();
        if !conformed.is_empty() {
            let scored = scorer.score(&mut conformed).map_err(|e| e.to_string())?;
            match &outcomes {
                Outcomes::Classes(classes) => {
                    for (k, a) in actual.iter().enumerate() {
                        // Labels the model does not know cannot be scored; monitoring counts them.
                        let Some(t) = a.as_str().and_then(|s| classes.iter().position(|c| c == s)) else { continue };
                        labelled.truth.push(t);
                        labelled.predicted.push(scored.predicted[k] as usize);
                        if let Some(p) = &scored.proba {
                            labelled.proba.push(p[k].clone());
                        }
                    }
                }
                Outcomes::Values => {
                    for (k, a) in actual.iter().enumerate() {
                        if let Some(t) = a.as_f64() {
                            labelled.values_truth.push(t);
                            labelled.values_predicted.push(scored.predicted[k]);
                        }
                    }
                }
            }
        }
        let rows = (labelled.truth.len() + labelled.values_truth.len()) as u64;
        Ok(Scored { version: version.version, metrics: labelled.metrics(&outcomes), rows, refused })
    }

    fn score_logged(&mut self, version: &Version, since: DateTime<Utc>) -> std::result::Result<Scored, String> {
        let scorer = self.scorer(version)?;
        let outcomes = match scorer.classes() {
            [] => Outcomes::Values,
            classes => Outcomes::Classes(classes.to_vec()),
        };
        let model = ModelRef { name: version.name.clone(), version: Some(version.version) };
        let window = Window { from: Some(since), to: None };
        let accuracy = read_accuracy(&self.policy.store, &model, &window, &outcomes, 13).map_err(|e| e.to_string())?;
        // The shadow scores what the champion was sent whatever it needs; what it would refuse
        // as the champion is measured on the window's labelled rows.
        let (_, refused) = conform_all(&scorer, self.labelled(&version.name)?);
        Ok(Scored {
            version: version.version,
            metrics: accuracy.overall,
            rows: accuracy.labelled - accuracy.unknown_labels,
            refused,
        })
    }

    fn default_metric(&mut self, champion: &Version) -> std::result::Result<Metric, String> {
        Ok(if self.scorer(champion)?.classes().is_empty() { Metric::Rmse } else { Metric::Accuracy })
    }

    fn constraints(&mut self) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
        self.constraints.clone()
    }

    fn served(&mut self, name: &str) -> std::result::Result<Vec<u32>, String> {
        if mlops_core::store::Location::from_path(&self.policy.store).is_missing_file() {
            return Ok(Vec::new());
        }
        let deployments = step19_deploy::Deployments::open(&self.policy.store).map_err(|e| e.to_string())?;
        Ok(deployments
            .all_serving()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|d| d.model == name)
            .filter_map(|d| d.version)
            .collect())
    }
}
