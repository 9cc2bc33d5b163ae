//! The server's settings (the `serve` section of `configs/deployment.yaml`).

use serde::{Deserialize, Serialize};

/// How the server listens, what it accepts and what it records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to bind (`127.0.0.1`: loopback only; `0.0.0.0` in a container).
    pub host: String,
    /// Port (0: any free port).
    pub port: u16,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Most rows one request may carry; more get 413.
    pub max_batch_rows: usize,
    /// A request still running after this many milliseconds gets 503; one whose body is still
    /// arriving then gets 408.
    pub request_timeout_ms: u64,
    /// A connection that has not sent a whole request head (request line and headers) this many
    /// milliseconds after it opened, or after its previous request, is closed.
    pub header_timeout_ms: u64,
    /// What an unseen category (a text value outside the categories seen in training) gets.
    pub unknown_categories: CategoryPolicy,
    /// Probability cut-offs of `/predict`'s `confidence`.
    pub confidence: ConfidenceThresholds,
    /// Seconds between checks whether the alias moved (0: never; reload with `/admin/reload`).
    pub poll_seconds: u64,
    /// Bearer token of `/admin/reload`. Prefer `admin_token_env`: a token in a config file is
    /// easy to leak.
    pub admin_token: Option<String>,
    /// Environment variable holding the bearer token of `/admin/reload`, used when `admin_token`
    /// is not set (neither: reload refused).
    pub admin_token_env: String,
    /// Seconds a SIGTERM waits for in-flight requests before the process exits anyway.
    pub shutdown_grace_seconds: u64,
    /// The prediction log.
    pub prediction_log: PredictionLogConfig,
    /// An alias of the served model (`challenger`) whose version, when it exists and differs
    /// from the served one, scores every request beside it: its predictions are logged under
    /// its own version and never answered (a lifecycle gate's shadow period). Needs a
    /// `models:/NAME@ALIAS` model and the prediction log.
    pub shadow_alias: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_rows: 100_000,
            request_timeout_ms: 10_000,
            header_timeout_ms: 10_000,
            unknown_categories: CategoryPolicy::Warn,
            confidence: ConfidenceThresholds::default(),
            poll_seconds: 10,
            admin_token: None,
            admin_token_env: "MLOPS_ADMIN_TOKEN".into(),
            shutdown_grace_seconds: 30,
            prediction_log: PredictionLogConfig::default(),
            shadow_alias: None,
        }
    }
}

impl ServeConfig {
    /// Checks the values that serde cannot.
    pub fn check(&self) -> crate::Result<()> {
        let bad = |key: &str, message: &str| Err(crate::ServeError::Config(format!("`{key}` {message}")));
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes", "must be at least 1");
        }
        if self.max_batch_rows == 0 {
            return bad("max_batch_rows", "must be at least 1");
        }
        if self.request_timeout_ms == 0 {
            return bad("request_timeout_ms", "must be at least 1");
        }
        if self.header_timeout_ms == 0 {
            return bad("header_timeout_ms", "must be at least 1");
        }
        let c = &self.confidence;
        if !(0.0..=1.0).contains(&c.medium) || !(0.0..=1.0).contains(&c.high) || c.medium > c.high {
            return bad("confidence", "needs 0 <= medium <= high <= 1");
        }
        if self.prediction_log.enabled && self.prediction_log.queue == 0 {
            return bad("prediction_log.queue", "must be at least 1");
        }
        if let Some(alias) = &self.shadow_alias
            && let Err(e) = step17_registry::ModelUri::parse(&format!("models:/m@{alias}"))
        {
            return Err(crate::ServeError::Config(format!("`shadow_alias` `{alias}`: {e}")));
        }
        Ok(())
    }
}

/// What an unseen category gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryPolicy {
    /// Accepted and counted in `/metrics` (`mlops_unseen_categories_total{column}`).
    Warn,
    /// Rejected with 422 naming the column.
    Strict,
}

/// `confidence` is `high` above `high`, `medium` above `medium`, else `low`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfidenceThresholds {
    /// Cut-off for `high`.
    pub high: f64,
    /// Cut-off for `medium`.
    pub medium: f64,
}

impl Default for ConfidenceThresholds {
    fn default() -> Self {
        Self { high: 0.8, medium: 0.6 }
    }
}

/// The prediction log in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictionLogConfig {
    /// Whether predictions are recorded.
    pub enabled: bool,
    /// Predicted rows that may wait for the writer; beyond, new entries are dropped and counted.
    pub queue: usize,
}

impl Default for PredictionLogConfig {
    fn default() -> Self {
        Self { enabled: true, queue: 65_536 }
    }
}
