//! Alerts: rules over a monitoring run's findings, and their state in the store, so that an alert
//! fires once, stays open while its rule holds, and is resolved when it no longer does (no repeat
//! on every run, as Prometheus' Alertmanager groups a firing alert).

use std::collections::BTreeMap;
use std::path::Path;

use mlops_core::store::{Location, Migration, Store, Tx};
use serde::{Deserialize, Serialize};

use crate::error::{MonitorError, Result};

/// How bad an open alert is; `mlops monitor --check` exits with the worst open one's code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look (exit code 1).
    #[default]
    Warning,
    /// Act now (exit code 2).
    Critical,
}

impl Severity {
    /// The exit code of `--check` when this is the worst open alert.
    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Warning => 1,
            Severity::Critical => 2,
        }
    }
}

/// When an alert fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The dataset drifted (the share of drifted columns reached `drift.share`).
    DatasetDrift,
    /// The named column drifted.
    ColumnDrift(String),
    /// A metric fell more than `more_than` below its baseline at registration (the seed: 0.05).
    PerformanceDrop {
        /// The metric (`accuracy`, `f1`, `roc_auc`; `r2`; for `mae` and `rmse` a rise is the drop).
        metric: String,
        /// The largest drop that does not fire.
        more_than: f64,
    },
    /// Some hour of the window had fewer predictions than this.
    PredictionsPerHourBelow(u64),
    /// The 99th percentile of the window's latencies is above this many milliseconds.
    LatencyP99MsAbove(f64),
    /// More than this share of the window's requests failed.
    ErrorRateAbove(f64),
}

/// One alert rule of `configs/monitoring.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// The alert's name, unique in the config (its identity in the store).
    pub name: String,
    /// When it fires.
    pub when: Condition,
    /// How bad it is.
    #[serde(default)]
    pub severity: Severity,
}

/// What a monitoring run found, as the rules read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    /// Whether the dataset drifted.
    pub dataset_drift: bool,
    /// The columns that drifted.
    pub drifted_columns: Vec<String>,
    /// Of the columns the dataset drift counts: how many drifted, and how many were compared.
    #[serde(default)]
    pub dataset_columns: Option<(usize, usize)>,
    /// Per metric: (baseline, current), when the truth arrived.
    pub metrics: BTreeMap<String, (f64, f64)>,
    /// The fewest predictions in an hour of the window, when it had any hour.
    pub min_predictions_per_hour: Option<u64>,
    /// The 99th percentile of latencies, in milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// The share of failed requests.
    pub error_rate: Option<f64>,
}

/// Metrics for which smaller is better: their drop is a rise.
const LOWER_IS_BETTER: [&str; 4] = ["mae", "rmse", "mse", "log_loss"];

impl Condition {
    /// Whether the condition holds, and the observed value and what it was held against, for the
    /// message.
    pub fn holds(&self, f: &Findings) -> Option<String> {
        match self {
            Condition::DatasetDrift => f.dataset_drift.then(|| match f.dataset_columns {
                Some((drifted, of)) => format!("the dataset drifted: {drifted} of {of} columns"),
                None => format!("the dataset drifted ({} columns)", f.drifted_columns.len()),
            }),
            Condition::ColumnDrift(c) => f.drifted_columns.contains(c).then(|| format!("column `{c}` drifted")),
            Condition::PerformanceDrop { metric, more_than } => {
                let (baseline, current) = f.metrics.get(metric)?;
                let drop =
                    if LOWER_IS_BETTER.contains(&metric.as_str()) { current - baseline } else { baseline - current };
                (drop > *more_than).then(|| {
                    format!(
                        "{metric} {current:.4} is {drop:.4} worse than the baseline {baseline:.4} (limit {more_than})"
                    )
                })
            }
            Condition::PredictionsPerHourBelow(n) => {
                let seen = f.min_predictions_per_hour?;
                (seen < *n).then(|| format!("an hour had {seen} predictions, fewer than {n}"))
            }
            Condition::LatencyP99MsAbove(ms) => {
                let p99 = f.latency_p99_ms?;
                (p99 > *ms).then(|| format!("p99 latency {p99:.2} ms is above {ms} ms"))
            }
            Condition::ErrorRateAbove(rate) => {
                let seen = f.error_rate?;
                (seen > *rate).then(|| format!("error rate {seen:.4} is above {rate}"))
            }
        }
    }
}

/// What happened to an alert in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// It fired now (it was not open).
    Fired,
    /// It was open and still holds (not sent again).
    StillOpen,
    /// It was open and no longer holds.
    Resolved,
}

/// One alert's event of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The model.
    pub model: String,
    /// The rule's name.
    pub name: String,
    /// Its severity.
    pub severity: Severity,
    /// What happened.
    pub transition: Transition,
    /// What was observed (for a resolved alert, what was observed when it fired).
    pub message: String,
    /// When it opened (RFC 3339).
    pub opened_at: String,
    /// When this run saw it (RFC 3339).
    pub at: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS monitor_alerts (
    model TEXT NOT NULL,
    name TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    resolved_at TEXT,
    seq INTEGER PRIMARY KEY
);
CREATE UNIQUE INDEX IF NOT EXISTS monitor_alerts_open ON monitor_alerts (model, name) WHERE resolved_at IS NULL;
";

/// The alerts' schema versions.
const MIGRATIONS: &[Migration] = &[Migration { version: 1, apply: schema_v1 }];

fn schema_v1(t: &mut Tx<'_>) -> mlops_core::store::Result<()> {
    t.ddl(SCHEMA)
}

/// Holds `rules` against `findings` for `model` and records the transitions in the store at
/// `path` in one transaction: a rule that holds opens an alert unless one is open; an open alert
/// whose rule no longer holds (or is no longer configured) is resolved. Returns every open or
/// changed alert, fired ones first.
pub fn evaluate(
    path: &Path,
    model: &str,
    rules: &[AlertRule],
    findings: &Findings,
    now: &str,
) -> Result<Vec<AlertEvent>> {
    // Alert state lives beside the prediction log: a store that is not there is a mistyped path,
    // not a place to start a new one.
    let location = Location::from_path(path);
    if location.is_missing_file() {
        return Err(MonitorError::NoStore { path: path.to_path_buf() });
    }
    let store = Store::open(&location)?;
    store.migrate("monitor", MIGRATIONS)?;
    let mut events = store.transaction(|tx| -> Result<Vec<AlertEvent>> {
        tx.lock(&format!("monitor/{model}"))?;
        let mut events = Vec::new();
        for rule in rules {
            let open: Option<(String, String)> = match tx.query_opt(
                "SELECT message, opened_at FROM monitor_alerts WHERE model = ?1 AND name = ?2 AND resolved_at IS NULL",
                &[&model, &rule.name],
            )? {
                Some(r) => Some((r.get(0)?, r.get(1)?)),
                None => None,
            };
            let event = |transition, message: String, opened_at: String| AlertEvent {
                model: model.to_owned(),
                name: rule.name.clone(),
                severity: rule.severity,
                transition,
                message,
                opened_at,
                at: now.to_owned(),
            };
            match (rule.when.holds(findings), open) {
                (Some(message), None) => {
                    tx.execute(
                        "INSERT INTO monitor_alerts (model, name, severity, message, opened_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                        &[&model, &rule.name, &severity_name(rule.severity), &message, &now],
                    )?;
                    events.push(event(Transition::Fired, message, now.to_owned()));
                }
                (Some(message), Some((_, opened_at))) => events.push(event(Transition::StillOpen, message, opened_at)),
                (None, Some((message, opened_at))) => {
                    resolve(tx, model, &rule.name, now)?;
                    events.push(event(Transition::Resolved, message, opened_at));
                }
                (None, None) => {}
            }
        }
        // Alerts whose rule was removed from the config are resolved too.
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        let mut stale = Vec::new();
        for r in tx.query(
            "SELECT name, severity, message, opened_at FROM monitor_alerts WHERE model = ?1 AND resolved_at IS NULL",
            &[&model],
        )? {
            let name: String = r.get(0)?;
            if !names.contains(&name.as_str()) {
                let severity: String = r.get(1)?;
                stale.push(AlertEvent {
                    model: model.to_owned(),
                    name,
                    severity: if severity == "critical" { Severity::Critical } else { Severity::Warning },
                    transition: Transition::Resolved,
                    message: r.get(2)?,
                    opened_at: r.get(3)?,
                    at: now.to_owned(),
                });
            }
        }
        for e in &stale {
            resolve(tx, model, &e.name, now)?;
        }
        events.extend(stale);
        Ok(events)
    })?;
    events.sort_by_key(|e| match e.transition {
        Transition::Fired => 0,
        Transition::StillOpen => 1,
        Transition::Resolved => 2,
    });
    for e in &events {
        tracing::info!(model, alert = e.name, transition = ?e.transition, "alert");
    }
    Ok(events)
}

fn resolve(tx: &mut Tx<'_>, model: &str, name: &str, now: &str) -> mlops_core::store::Result<u64> {
    tx.execute(
        "UPDATE monitor_alerts SET resolved_at = ?3 WHERE model = ?1 AND name = ?2 AND resolved_at IS NULL",
        &[&model, &name, &now],
    )
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The exit code of `--check`: 0 when no alert is open, else the worst open one's.
pub fn check_code(events: &[AlertEvent]) -> i32 {
    events.iter().filter(|e| e.transition != Transition::Resolved).map(|e| e.severity.exit_code()).max().unwrap_or(0)
}

/// Checks the rules of a config: names unique and not empty, limits in range. Errors name the
/// rule by its place (`alerts[2]`).
pub fn check_rules(rules: &[AlertRule]) -> Result<(), MonitorError> {
    let bad =
        |i: usize, field: &str, message: String| MonitorError::Config { key: format!("alerts[{i}].{field}"), message };
    for (i, rule) in rules.iter().enumerate() {
        if rule.name.trim().is_empty() {
            return Err(bad(i, "name", "is empty".into()));
        }
        if rules[..i].iter().any(|r| r.name == rule.name) {
            return Err(bad(i, "name", format!("`{}` names another alert too", rule.name)));
        }
        let limit = match &rule.when {
            Condition::PerformanceDrop { more_than, .. } => {
                Some(("when.performance_drop.more_than", *more_than, f64::INFINITY))
            }
            Condition::LatencyP99MsAbove(ms) => Some(("when.latency_p99_ms_above", *ms, f64::INFINITY)),
            Condition::ErrorRateAbove(r) => Some(("when.error_rate_above", *r, 1.0)),
            _ => None,
        };
        if let Some((field, v, max)) = limit
            && !(v >= 0.0 && v < max)
        {
            return Err(bad(i, field, format!("{v} is out of range")));
        }
    }
    Ok(())
}

/// Appends events to a JSON-lines file, one object per line (the file is created when missing;
/// lines are whole: each is written with one call).
pub fn append_jsonl(path: &Path, events: &[AlertEvent]) -> Result<()> {
    use std::io::Write as _;
    let io = |source| MonitorError::Io { path: path.to_path_buf(), source };
    let mut text = String::new();
    for e in events.iter().filter(|e| e.transition != Transition::StillOpen) {
        text.push_str(&serde_json::to_string(e).unwrap_or_default());
        text.push('\n');
    }
    if text.is_empty() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

/// Looks up the open alerts of a model without changing anything (for a status view).
pub fn open_alerts(path: &Path, model: &str) -> Result<Vec<(String, Severity, String, String)>> {
    let store = crate::window::open_read_only(path)?;
    if !store.read(|t| t.has_table("monitor_alerts"))? {
        return Ok(Vec::new());
    }
    let rows = store.query(
        "SELECT name, severity, message, opened_at FROM monitor_alerts WHERE model = ?1 AND resolved_at IS NULL ORDER BY seq",
        &[&model],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let severity: String = r.get(1)?;
            Ok((
                r.get(0)?,
                if severity == "critical" { Severity::Critical } else { Severity::Warning },
                r.get(2)?,
                r.get(3)?,
            ))
        })
        .collect::<mlops_core::store::Result<Vec<_>>>()?)
}

/// An HTTP endpoint that receives alerts (`sinks.webhook` in `configs/monitoring.yaml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhook {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// Time for one attempt, in milliseconds.
    pub timeout_ms: u64,
    /// Attempts after the first one when the receiver answers 429 or 5xx, or cannot be reached.
    pub retries: u32,
    /// The wait before the first retry, in milliseconds; it doubles for each next one.
    pub backoff_ms: u64,
}

impl Default for Webhook {
    fn default() -> Self {
        Webhook { url: String::new(), timeout_ms: 5000, retries: 3, backoff_ms: 500 }
    }
}

/// What a webhook delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// Alerts sent (fired and resolved ones; open ones are not sent again).
    pub alerts: usize,
    /// Attempts made.
    pub attempts: u32,
}

/// POSTs the fired and resolved alerts among `events` to `hook` as `{"alerts": [...]}` (nothing
/// is sent when there are none), retrying 429, 5xx, timeouts and connection errors with
/// exponential backoff; any other answer is an error naming the URL and the status at once.
pub fn post_webhook(hook: &Webhook, events: &[AlertEvent]) -> Result<Delivered> {
    let alerts: Vec<&AlertEvent> = events.iter().filter(|e| e.transition != Transition::StillOpen).collect();
    if alerts.is_empty() {
        return Ok(Delivered { alerts: 0, attempts: 0 });
    }
    let fail = |attempts: u32, message: String| MonitorError::Webhook { url: hook.url.clone(), attempts, message };
    let body = serde_json::json!({ "alerts": alerts });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(0, format!("cannot start the HTTP client: {e}")))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(hook.timeout_ms))
            .build()
            .map_err(|e| fail(0, format!("cannot build the HTTP client: {e}")))?;
        let mut wait = std::time::Duration::from_millis(hook.backoff_ms);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let why = match client.post(&hook.url).json(&body).send().await {
                Ok(r) if r.status().is_success() => return Ok(Delivered { alerts: alerts.len(), attempts }),
                Ok(r) if r.status().is_server_error() || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                    format!("answered {}", r.status())
                }
                Ok(r) => return Err(fail(attempts, format!("answered {}; not retried", r.status()))),
                Err(e) if e.is_timeout() => format!("no answer within {} ms", hook.timeout_ms),
                Err(e) => format!("cannot reach it: {}", source_chain(&e)),
            };
            if attempts > hook.retries {
                return Err(fail(attempts, why));
            }
            tracing::warn!(url = hook.url, attempt = attempts, why, "webhook failed; retrying");
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    })
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
