//! Step 18: a container build context for a registered model.
//!
//! [`write_context`] writes a directory that `docker build` turns into a small image serving one
//! model package:
//! - `Dockerfile`: multi-stage; the build stage compiles the `mlops` binary in release from the
//!   toolkit's source (`src/`) and verifies the package (`model/`): its manifest's SHA-256 must be
//!   the registry's content address and every file must match the manifest; the runtime stage is
//!   distroless (no shell, no package manager), runs as a fixed non-root UID, writes only to a
//!   declared volume, exposes the port, checks its health with the binary itself
//!   (`mlops healthcheck`), pins its base images by tag and carries OCI labels naming the model,
//!   version, dataset version and source commit;
//! - `.dockerignore`, `docker-compose.yml` (the model API, and an optional nginx front whose
//!   `nginx.conf` sets the same body-size limit and timeouts as the server), `README.md`.
//!
//! The text comes from pure functions ([`dockerfile`], [`compose`], [`nginx_conf`], ...) of the
//! [`ContainerizeParams`] (the `containerize` section of `configs/deployment.yaml`) and the
//! [`ImageFacts`] of the model; the tests pin it and lint it with hadolint.

mod context;
mod text;

pub use context::write_context;
pub use text::{MODEL_DIR, compose, dockerfile, dockerignore, nginx_conf, readme};

use serde::{Deserialize, Serialize};

/// How the image is built and run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerizeParams {
    /// Build stage base image, pinned by tag.
    pub build_image: String,
    /// Runtime base image, pinned by tag (distroless: no shell, no package manager).
    pub runtime_image: String,
    /// The UID and GID the server runs as (not root).
    pub uid: u32,
    /// The port the server listens on inside the container.
    pub port: u16,
    /// The one writable directory (a volume): prediction log and log files.
    pub data_dir: String,
    /// The optional nginx front of the compose file.
    pub proxy: ProxyParams,
}

impl Default for ContainerizeParams {
    fn default() -> Self {
        Self {
            build_image: "rust:1.95-slim-bookworm".into(),
            runtime_image: "gcr.io/distroless/cc-debian12:nonroot".into(),
            uid: 65532,
            port: 8080,
            data_dir: "/var/lib/mlops".into(),
            proxy: ProxyParams::default(),
        }
    }
}

/// The nginx reverse proxy in front of the model API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyParams {
    /// Whether the compose file starts it.
    pub enabled: bool,
    /// Its image, pinned by tag.
    pub image: String,
    /// The host port it publishes.
    pub port: u16,
}

impl Default for ProxyParams {
    fn default() -> Self {
        Self { enabled: true, image: "nginx:1.27.3-alpine".into(), port: 8000 }
    }
}

/// What the image serves and the server's limits (the caller reads them from the registry and
/// the `serve` config).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageFacts {
    /// Registered model name.
    pub model: String,
    /// Registered version.
    pub version: u32,
    /// The URI it was resolved from (`models:/NAME@ALIAS`).
    pub uri: String,
    /// SHA-256 of the package manifest (the registry's content address).
    pub package_sha256: String,
    /// Dataset version trained on.
    pub dataset_version: Option<String>,
    /// Source commit of the toolkit that trained it.
    pub source_commit: Option<String>,
    /// Toolkit version.
    pub toolkit_version: String,
    /// The server's `max_body_bytes`.
    pub max_body_bytes: usize,
    /// The server's `request_timeout_ms`.
    pub request_timeout_ms: u64,
}

/// What goes wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerizeError {
    /// A setting is unusable.
    #[error("containerize: `{key}` {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        message: String,
    },
    /// Reading or writing failed, or the output directory exists and is not empty.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

/// Result with [`ContainerizeError`].
pub type Result<T, E = ContainerizeError> = std::result::Result<T, E>;

impl ContainerizeParams {
    /// Checks what serde cannot: tags pinned, a non-root UID, an absolute data directory.
    pub fn check(&self) -> Result<()> {
        let invalid = |key, message: &str| Err(ContainerizeError::Invalid { key, message: message.into() });
        for (key, image) in [
            ("build_image", &self.build_image),
            ("runtime_image", &self.runtime_image),
            ("proxy.image", &self.proxy.image),
        ] {
            let tag = image.rsplit_once('/').map_or(image.as_str(), |(_, last)| last);
            if !tag.contains(':') && !image.contains('@') || tag.ends_with(":latest") {
                return invalid(key, "must be pinned by a tag other than `latest` (or a digest)");
            }
        }
        if self.uid == 0 {
            return invalid("uid", "must not be 0: the server never runs as root");
        }
        if !self.data_dir.starts_with('/') {
            return invalid("data_dir", "must be an absolute path inside the container");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
