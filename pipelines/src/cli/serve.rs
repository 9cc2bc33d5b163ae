//! `mlops serve` and `mlops predict`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use pipelines::DeploymentConfig;
use step20_serve::Server;

use crate::commands::print_json;
use crate::{Cli, PredictArgs, ServeArgs};

/// The deployment config: the file when it exists, defaults when the default file is absent.
fn deployment(path: &Path) -> Result<DeploymentConfig> {
    if !path.exists() && path == pipelines::default_deployment_config() {
        return Ok(DeploymentConfig::default());
    }
    Ok(DeploymentConfig::load(path)?.resolved(Path::new("")))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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

pub fn serve_cmd(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    let mut config = deployment(&args.config)?;
    if let Some(m) = &args.model {
        config.model.clone_from(m);
    }
    if let Some(h) = &args.host {
        config.serve.host.clone_from(h);
    }
    if let Some(p) = args.port {
        config.serve.port = p;
    }
    if let Some(s) = &args.store {
        config.store.clone_from(s);
    }
    if let Some(a) = &args.artifacts {
        config.artifacts.clone_from(a);
    }
    let source = config.source();
    runtime()?.block_on(async {
        let server = Server::bind(config.serve.clone(), source, Some(&config.store)).await?;
        let origin = server.origin();
        let url = format!("http://{}", server.local_addr());
        if cli.json {
            print_json(&serde_json::json!({
                "url": url, "model": origin.name, "version": origin.version, "uri": origin.uri,
                "package": origin.path, "prediction_log": config.store,
            }))?;
        } else {
            let version = origin.version.map_or_else(String::new, |v| format!(" version {v}"));
            println!("serving {} ({}{version}) on {url}", origin.uri, origin.name);
            println!("  curl {url}/ping    ·    {url}/openapi.json    ·    Ctrl-C or SIGTERM stops");
        }
        server.run(shutdown_signal()).await?;
        if !cli.json && !cli.quiet {
            eprintln!("stopped; in-flight requests finished and the prediction log is flushed");
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn predict_cmd(_cli: &Cli, _args: &PredictArgs) -> Result<ExitCode> {
    anyhow::bail!("mlops predict: batch inference is not built yet")
}
