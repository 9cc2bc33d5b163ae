//! The monitoring section of `configs/monitoring.yaml`: what to compare, how, and whom to tell.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::alerts::{AlertRule, Webhook, check_rules};
use crate::drift::DriftConfig;
use crate::error::{MonitorError, Result};

/// How monitoring runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// The model watched, as the server takes it (`models:/NAME@ALIAS`, `models:/NAME/VERSION`
    /// or a package directory); the command line's `--model` wins.
    pub model: Option<String>,
    /// The store holding the registry, the prediction log, feedback and alert state.
    pub store: PathBuf,
    /// The registry's artifact folder.
    pub artifacts: PathBuf,
    /// The dataset catalog (`curate.dir` of the data config), where the training part of the
    /// model's dataset version is taken from for the features' reference.
    pub catalog: PathBuf,
    /// Where dashboards go: `<reports>/<model>-v<version>/<window>/monitor.html`.
    pub reports: PathBuf,
    /// The window read from the prediction log when the command line names none.
    pub window: WindowConfig,
    /// How columns are compared.
    pub drift: DriftConfig,
    /// Alert rules.
    pub alerts: Vec<AlertRule>,
    /// Where alerts go besides the command's output.
    pub sinks: Sinks,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            model: None,
            store: PathBuf::from("models/registry/registry.db"),
            artifacts: PathBuf::from("models/artifacts"),
            catalog: PathBuf::from("data/processed"),
            reports: PathBuf::from("reports/monitoring"),
            window: WindowConfig::default(),
            drift: DriftConfig::default(),
            alerts: Vec::new(),
            sinks: Sinks::default(),
        }
    }
}

/// The default window: the last `last` (`24h`, `7d`, `90m`) up to now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowConfig {
    /// A span: a number and a unit (`m`, `h`, `d`, `w`).
    pub last: String,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig { last: "24h".into() }
    }
}

/// Alert sinks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sinks {
    /// A JSON-lines file that fired and resolved alerts are appended to.
    pub jsonl: Option<PathBuf>,
    /// An HTTP endpoint that receives them.
    pub webhook: Option<Webhook>,
}

impl MonitorConfig {
    /// Checks every value once, before any work: errors name the key.
    pub fn check(&self) -> Result<()> {
        parse_span(&self.window.last).map_err(|message| MonitorError::Config { key: "window.last".into(), message })?;
        self.drift.check().map_err(|e| match e {
            crate::drift::DriftError::Config { key, message } => MonitorError::Config { key, message },
            other => MonitorError::Config { key: "drift".into(), message: other.to_string() },
        })?;
        check_rules(&self.alerts)?;
        if let Some(hook) = &self.sinks.webhook {
            let bad =
                |field: &str, message: String| MonitorError::Config { key: format!("sinks.webhook.{field}"), message };
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                return Err(bad("url", format!("`{}` is not an http:// or https:// URL", hook.url)));
            }
            if hook.timeout_ms == 0 {
                return Err(bad("timeout_ms", "must be at least 1".into()));
            }
            if hook.retries > 10 {
                return Err(bad("retries", format!("{} is more than 10", hook.retries)));
            }
        }
        Ok(())
    }
}

/// A span such as `24h`, `7d`, `90m` or `2w`; the message says what is wrong.
pub fn parse_span(text: &str) -> std::result::Result<chrono::Duration, String> {
    let t = text.trim();
    let unit_at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(unit_at);
    let n: i64 = number.parse().map_err(|_| format!("`{text}` is not a span such as 24h, 7d or 90m"))?;
    if n <= 0 {
        return Err(format!("`{text}` is not a positive span"));
    }
    let span = match unit {
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => return Err(format!("`{text}`: the unit is one of m, h, d, w")),
    };
    span.filter(|s| *s <= chrono::Duration::days(100 * 366)).ok_or_else(|| format!("`{text}` is longer than a century"))
}
