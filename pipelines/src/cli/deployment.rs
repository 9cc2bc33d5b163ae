//! The deployment config and the async runtime that `serve`, `predict` and `deploy` share.

use anyhow::{Context, Result};
use pipelines::DeploymentConfig;
use std::path::Path;

/// The deployment config: the file when it exists, defaults when the default file is absent.
pub(crate) fn deployment(path: &Path) -> Result<DeploymentConfig> {
    if !path.exists() && path == pipelines::default_deployment_config() {
        return Ok(DeploymentConfig::default());
    }
    Ok(DeploymentConfig::load(path)?.resolved(Path::new("")))
}

/// The deployment config with the command line's `--model`, `--host` and `--port` over it.
pub(crate) fn deployment_with(
    path: &Path,
    model: Option<&str>,
    host: Option<&str>,
    port: Option<u16>,
) -> Result<DeploymentConfig> {
    let mut config = deployment(path)?;
    if let Some(m) = model {
        config.model = m.to_string();
    }
    if let Some(h) = host {
        config.serve.host = h.to_string();
    }
    if let Some(p) = port {
        config.serve.port = p;
    }
    Ok(config)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
