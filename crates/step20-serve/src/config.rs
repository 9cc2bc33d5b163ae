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
        if let Some(k) = &self.prediction_log.kafka {
            if k.brokers.is_empty() {
                return bad("prediction_log.kafka.brokers", "give at least one broker, `host:port`");
            }
            if k.topic.is_empty() {
                return bad("prediction_log.kafka.topic", "must not be empty");
            }
            if k.buffer == 0 {
                return bad("prediction_log.kafka.buffer", "must be at least 1");
            }
            if !(k.timeout_seconds.is_finite() && k.timeout_seconds > 0.0) {
                return bad("prediction_log.kafka.timeout_seconds", "must be a positive number of seconds");
            }
            if !(k.drain_seconds.is_finite() && k.drain_seconds >= 0.0) {
                return bad("prediction_log.kafka.drain_seconds", "must be a number of seconds");
            }
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
    /// Also publish every logged row to a Kafka topic.
    pub kafka: Option<KafkaLogConfig>,
}

impl Default for PredictionLogConfig {
    fn default() -> Self {
        Self { enabled: true, queue: 65_536, kafka: None }
    }
}

/// The prediction log's Kafka topic: one JSON message per predicted row, keyed by request id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaLogConfig {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// The topic (it must exist).
    pub topic: String,
    /// Rows that may wait for the broker (while it is down, say); beyond, new rows are dropped
    /// and counted in `mlops_prediction_log_kafka_dropped_total`.
    #[serde(default = "default_kafka_buffer")]
    pub buffer: usize,
    /// Seconds one publish may take before it is retried.
    #[serde(default = "default_kafka_timeout")]
    pub timeout_seconds: f64,
    /// Seconds a server that is shutting down keeps trying to publish what is buffered.
    #[serde(default = "default_kafka_timeout")]
    pub drain_seconds: f64,
}

fn default_kafka_buffer() -> usize {
    100_000
}

fn default_kafka_timeout() -> f64 {
    10.0
}
