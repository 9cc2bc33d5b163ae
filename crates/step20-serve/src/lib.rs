//! Step 20: serve a model package over HTTP.
//!
//! One process answers three protocols on the same loaded package:
//! - MLflow's scoring server: `POST /invocations` (`dataframe_split`, `dataframe_records`,
//!   `instances`, `inputs` or `text/csv`), `GET /ping`, `/health`, `/version`;
//! - the Open Inference Protocol v2 (KServe, Triton, MLServer clients): `/v2/...`;
//! - the workflow's own `POST /predict`, `POST /predict/batch`, `GET /model_info`;
//!
//! plus `GET /metrics` (Prometheus text), `GET /openapi.json` and `POST /admin/reload`.
//!
//! Every request goes the same way: its cells are checked against the package's [`Signature`]
//! (a missing required column, a wrong type, a null or NaN where none is allowed, an unseen
//! category under the strict policy are each a 400 or 422 naming the column), the rows go through
//! the [`FeaturePipeline`]'s row path (no frame), then the model. The [`Scorer`] is that path, and
//! batch inference (step 21) uses it too. The model is swapped atomically when the alias moves
//! (polling the registry, or the reload route), without failing in-flight requests. Each
//! prediction is queued to the prediction log in the store ([`PredictionLog`]) by a bounded
//! queue that never blocks a request; what does not fit is counted in `/metrics`.
//!
//! ```no_run
//! # async fn run() -> Result<(), step20_serve::ServeError> {
//! use step20_serve::{ModelSource, ServeConfig, Server};
//!
//! let source = ModelSource::Registry {
//!     store: "models/registry/registry.db".into(),
//!     artifacts: "models/artifacts".into(),
//!     uri: "models:/penguins-species@champion".into(),
//! };
//! // The prediction log goes to the same store.
//! let store = std::path::Path::new("models/registry/registry.db");
//! let server = Server::bind(ServeConfig::default(), source, Some(store)).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! [`Signature`]: mlops_core::Signature
//! [`FeaturePipeline`]: mlops_core::FeaturePipeline

mod config;
mod direct;
mod feedback;
mod log;
mod metrics;
mod openapi;
pub mod protocol;
mod publish;
mod scorer;
mod server;
#[cfg(test)]
mod tests;

pub use config::{CategoryPolicy, ConfidenceThresholds, KafkaLogConfig, PredictionLogConfig, ServeConfig};
pub use feedback::{Actual, BadActual, FeedbackOutcome, UnknownActual, record_feedback};
pub use log::{LoggedPrediction, PredictionLog, read_predictions};
pub use metrics::Metrics;
pub use scorer::{
    Cell, InputError, InputErrorKind, ModelSource, Novel, Novelty, Origin, ScoreError, Scored, Scorer, Token,
    cell_value,
};
pub use server::{BatchScorer, Server, Stopped};

use std::path::PathBuf;

/// What goes wrong while loading or serving a model (not a client's bad input: that is an
/// [`InputError`] answered with a 4xx).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The package failed to load or verify.
    #[error(transparent)]
    Package(#[from] step16_package::PackageError),
    /// The model URI did not resolve.
    #[error(transparent)]
    Registry(#[from] step17_registry::RegistryError),
    /// The address could not be bound (in use, not permitted).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The prediction log store refused.
    #[error("prediction log {path}: {source}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The store refused (the shared interface: PostgreSQL or SQLite).
    #[error("prediction log {0}")]
    Db(#[from] mlops_core::store::StoreError),
    /// The model cannot score (a broken package, a model error on valid input).
    #[error("model: {0}")]
    Model(String),
    /// A setting is unusable.
    #[error("serve config: {0}")]
    Config(String),
}

/// Result with [`ServeError`].
pub type Result<T, E = ServeError> = std::result::Result<T, E>;
