//! Step 19: deploy a registered model.
//!
//! Two targets:
//! - **Kubernetes**: [`manifests`] builds the objects from `k8s-openapi`'s typed structs (not
//!   text templates) and [`write_manifests`] writes them, one file per object, for
//!   `kubectl apply -f DIR`: a Deployment (rolling update, resources, startup / liveness /
//!   readiness probes on the Open Inference Protocol health routes, non-root, read-only root
//!   filesystem, no privilege escalation, every capability dropped), a Service, a
//!   HorizontalPodAutoscaler, a PodDisruptionBudget, a ConfigMap with the server's settings, an
//!   optional Ingress and an optional canary (a second Deployment behind the same Service).
//! - **Local**: [`deploy_local`] starts the server as a background process on a private port,
//!   waits until it is ready, and only then points the endpoint's router (a small reverse proxy
//!   on the public port, [`run_router`]) at it and stops the process it replaces: a blue/green
//!   switch in which no request fails. A new version that never gets ready is stopped and the
//!   old one keeps serving. Every attempt is recorded in the store's `deployments` table;
//!   [`status`] and [`stop`] manage what runs.

mod kubernetes;
mod local;
mod probe;
mod process;
mod router;
mod store;

pub use kubernetes::{
    Amounts, Autoscaling, CanaryFacts, CanaryParams, IngressParams, KubernetesParams, ManifestFacts, Resources,
    manifests, write_manifests,
};
pub use local::{DeployOutcome, Launch, LocalParams, Running, Target, deploy_local, status, stop};
pub use probe::{Answer, http_get};
pub use router::{DEPLOYMENT_HEADER, run_router};
pub use store::{Deployment, Deployments, Event};

use std::path::PathBuf;

/// What goes wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// A setting is unusable.
    #[error("deploy: `{key}` {message}")]
    Invalid {
        /// The key, e.g. `kubernetes.replicas`.
        key: String,
        /// Why.
        message: String,
    },
    /// The endpoint's port is taken by something that is not one of our deployments.
    #[error("{endpoint}: the port is in use by another program; stop it or deploy on another port (--port)")]
    PortInUse {
        /// `host:port`.
        endpoint: String,
    },
    /// The new server never answered ready; it was stopped and nothing was switched.
    #[error("{uri} never got ready on {backend}: {reason}; it was stopped{}; its output: {}", still_serving.as_ref().map(|s| format!(" and {s} keeps serving")).unwrap_or_default(), log.display())]
    NeverReady {
        /// The model that was deployed.
        uri: String,
        /// The private address it was to listen on.
        backend: String,
        /// What happened (timed out, exited, with the end of its output).
        reason: String,
        /// What still serves the endpoint, if anything.
        still_serving: Option<String>,
        /// Its log file.
        log: PathBuf,
    },
    /// The endpoint's router did not start or did not switch to the new server; it was stopped
    /// and what served before (if anything) serves again.
    #[error("{endpoint}: the router did not switch to the new server: {reason}; see {}", log.display())]
    RouterFailed {
        /// `host:port`.
        endpoint: String,
        /// What happened.
        reason: String,
        /// The router's log file.
        log: PathBuf,
    },
    /// Another `deploy local` to the same endpoint is running.
    #[error("{endpoint}: another deployment is in progress (pid {pid}); wait for it to finish")]
    Busy {
        /// `host:port`.
        endpoint: String,
        /// The process deploying.
        pid: u32,
    },
    /// A process could not be started or signalled.
    #[error("{what}: {source}")]
    Process {
        /// What was being done.
        what: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be read or written.
    #[error("deployments {0}")]
    Store(#[from] mlops_core::store::StoreError),
    /// A manifest could not be encoded.
    #[error("cannot encode {what} as YAML: {message}")]
    Yaml {
        /// The object.
        what: String,
        /// The encoder's reason.
        message: String,
    },
    /// Reading or writing files failed, or the output directory exists and is not empty.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`DeployError`].
pub type Result<T, E = DeployError> = std::result::Result<T, E>;

pub(crate) fn invalid<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T> {
    Err(DeployError::Invalid { key: key.into(), message: message.into() })
}

#[cfg(test)]
mod tests;
