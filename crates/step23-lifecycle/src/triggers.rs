//! Retrain triggers: what monitoring and the registry say, held against the policy.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use step14_evaluate::Metric;

use crate::policy::Triggers;

/// What the triggers read about the champion.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Facts {
    /// Whether monitoring found dataset drift in its window (`None`: nothing was logged).
    pub dataset_drift: Option<bool>,
    /// The drifted columns, for the reason.
    pub drifted_columns: Vec<String>,
    /// The metrics of the window's labelled predictions, by name.
    pub metrics: BTreeMap<String, f64>,
    /// The metrics recorded on the test part at training, by name (the baseline).
    pub baseline: BTreeMap<String, f64>,
    /// When the champion was registered.
    pub registered: Option<DateTime<Utc>>,
    /// Labelled rows that arrived since then.
    pub new_labelled_rows: u64,
}

/// Which trigger held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// Monitoring found dataset drift.
    DatasetDrift,
    /// A metric fell below its baseline by more than the threshold.
    PerformanceDrop,
    /// The champion is older than the schedule allows.
    Age,
    /// Enough labelled rows arrived.
    NewLabels,
}

/// A trigger that held, with the reason in words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trigger {
    /// Which one.
    pub kind: TriggerKind,
    /// Why, with the numbers.
    pub reason: String,
}

/// The metric a performance drop is measured on: the one asked for, else the first of
/// accuracy, r2, rmse that both the window and the baseline have.
pub fn drop_metric(asked: Option<Metric>, facts: &Facts) -> Option<Metric> {
    if asked.is_some() {
        return asked;
    }
    [Metric::Accuracy, Metric::R2, Metric::Rmse]
        .into_iter()
        .find(|m| facts.metrics.contains_key(&m.name()) && facts.baseline.contains_key(&m.name()))
}

/// The triggers of `policy` that hold for `facts` at `now`, each with its reason (empty: no
/// retraining is due).
pub fn evaluate(policy: &Triggers, facts: &Facts, now: DateTime<Utc>) -> Vec<Trigger> {
    let mut out = Vec::new();
    if policy.dataset_drift && facts.dataset_drift == Some(true) {
        out.push(Trigger {
            kind: TriggerKind::DatasetDrift,
            reason: format!(
                "dataset drift in {} column(s): {}",
                facts.drifted_columns.len(),
                facts.drifted_columns.join(", ")
            ),
        });
    }
    if let Some(drop) = &policy.performance_drop
        && let Some(metric) = drop_metric(drop.metric, facts)
        && let (Some(now_value), Some(base)) = (facts.metrics.get(&metric.name()), facts.baseline.get(&metric.name()))
    {
        // How much worse: a fall for scores, a rise for errors.
        let worse = if metric.greater_is_better() { base - now_value } else { now_value - base };
        if worse > drop.more_than {
            out.push(Trigger {
                kind: TriggerKind::PerformanceDrop,
                reason: format!(
                    "{} {now_value:.4} against {base:.4} at registration: {worse:.4} worse, more than {}",
                    metric.name(),
                    drop.more_than
                ),
            });
        }
    }
    if let (Some(days), Some(registered)) = (policy.max_age_days, facts.registered) {
        let age = now - registered;
        if age >= Duration::days(i64::from(days)) {
            out.push(Trigger {
                kind: TriggerKind::Age,
                reason: format!("the champion is {} day(s) old; the schedule retrains every {days}", age.num_days()),
            });
        }
    }
    if let Some(rows) = policy.new_labelled_rows
        && facts.new_labelled_rows >= rows
    {
        out.push(Trigger {
            kind: TriggerKind::NewLabels,
            reason: format!("{} labelled row(s) arrived since registration (at least {rows})", facts.new_labelled_rows),
        });
    }
    out
}

/// When the age trigger falls due for a champion registered at `registered` (`None` without a
/// schedule).
pub fn next_scheduled(policy: &Triggers, registered: DateTime<Utc>) -> Option<DateTime<Utc>> {
    policy.max_age_days.map(|days| registered + Duration::days(i64::from(days)))
}
