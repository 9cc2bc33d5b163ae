//! `mlops deploy kubernetes|local|status|stop`: step 19.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::deployment::{deployment, deployment_with, runtime, shutdown_signal};
use crate::output::print_json;
use crate::{Cli, ContainerizeArgs, DeployCommand, DeployLocalArgs};

pub(crate) fn deploy_cmd(cli: &Cli, command: &DeployCommand) -> Result<ExitCode> {
    match command {
        DeployCommand::Kubernetes(args) => kubernetes_cmd(cli, args),
        DeployCommand::Local(args) => local_cmd(cli, args),
        DeployCommand::Status { config, history } => status_cmd(cli, config, *history),
        DeployCommand::Stop { config, port, host } => stop_cmd(cli, config, *port, host.as_deref()),
        DeployCommand::Router { listen, store, max_body, timeout_ms } => {
            let limits = (*max_body, Duration::from_millis(*timeout_ms));
            runtime()?.block_on(step19_deploy::run_router(*listen, store.clone(), limits, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn kubernetes_cmd(cli: &Cli, args: &ContainerizeArgs) -> Result<ExitCode> {
    let config = deployment_with(&args.config, args.model.as_deref(), None, None)?;
    let written = pipelines::kubernetes(&config, &args.out, args.force)?;
    if cli.json {
        print_json(&serde_json::json!({ "out": args.out, "manifests": written }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let m = &written.model;
    println!(
        "Kubernetes manifests for {} (version {}) in {}: {}",
        m.uri,
        m.version,
        args.out.display(),
        written.files.join(" ")
    );
    if let Some(c) = &written.canary {
        println!("  canary: version {} ({})", c.version, c.uri);
    }
    println!("  kubectl apply -f {}    (push the image first: docs/deployment.md)", args.out.display());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn local_cmd(cli: &Cli, args: &DeployLocalArgs) -> Result<ExitCode> {
    let mut config = deployment_with(&args.config, args.model.as_deref(), args.host.as_deref(), args.port)?;
    if let Some(t) = args.ready_timeout {
        anyhow::ensure!(t > 0, "--ready-timeout must be at least 1 second");
        config.local.ready_timeout_seconds = t;
    }
    let program = std::env::current_exe().context("cannot find the mlops binary")?;
    let config_file = args.config.exists().then_some(args.config.as_path());
    let bar = if cli.json || cli.quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(format!("starting {} and waiting until it is ready", config.model));
    let outcome = pipelines::deploy_local(&config, config_file, &program, &cli.log_dir);
    bar.finish_and_clear();
    let outcome = outcome?;
    let url = format!("http://{}", outcome.deployment.endpoint);
    if cli.json {
        print_json(&serde_json::json!({ "url": url, "outcome": outcome }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let d = &outcome.deployment;
    let what = d.version.map_or_else(|| d.uri.clone(), |v| format!("{} version {v}", d.model));
    println!("deployed {what} on {url} (deployment {}, server pid {})", d.id, d.pid.unwrap_or(0));
    if let Some(r) = &outcome.replaced {
        let old = r.version.map_or_else(|| r.uri.clone(), |v| format!("version {v}"));
        println!("  replaced {old} (deployment {}) once the new server was ready", r.id);
    }
    println!("  curl {url}/v2/health/ready");
    if Path::new("docs/examples/invocations.json").is_file() {
        println!(
            "  curl -s -H 'Content-Type: application/json' --data @docs/examples/invocations.json {url}/invocations"
        );
    }
    println!("  mlops deploy status    ·    mlops deploy stop");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn status_cmd(cli: &Cli, config: &Path, history: usize) -> Result<ExitCode> {
    let config = deployment(config)?;
    let running = step19_deploy::status(&config.store)?;
    let db = step19_deploy::Deployments::open(&config.store)?;
    let latest = db.history(history)?;
    let events = latest.iter().map(|d| db.events(d.id)).collect::<Result<Vec<_>, _>>()?;
    // Non-zero while a deployment that should serve does not answer ready (a crashed server the
    // router is restarting, a router that is gone), so scripts and cron can act on it.
    let code = if running.iter().all(|r| r.ready) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    if cli.json {
        let history: Vec<serde_json::Value> = latest
            .iter()
            .zip(&events)
            .map(|(d, e)| {
                let mut row = serde_json::to_value(d).unwrap_or_default();
                row["events"] = serde_json::to_value(e).unwrap_or_default();
                row
            })
            .collect();
        print_json(&serde_json::json!({ "serving": running, "history": history }))?;
        return Ok(code);
    }
    if running.is_empty() {
        println!("nothing deployed locally (mlops deploy local starts a deployment)");
    }
    for r in &running {
        let d = &r.deployment;
        let health = match (r.alive, r.ready) {
            (true, true) => "ready",
            (true, false) => "running, not ready",
            _ => "processes gone",
        };
        let version = d.version.map_or_else(String::new, |v| format!(" version {v}"));
        let restarts = if d.restarts > 0 { format!(", {} restart(s)", d.restarts) } else { String::new() };
        println!(
            "http://{}  {}{version}  {health}  (deployment {}, server pid {}, router pid {}, since {}{restarts})",
            d.endpoint,
            d.model,
            d.id,
            d.pid.unwrap_or(0),
            d.router_pid.unwrap_or(0),
            d.started_at
        );
    }
    if !latest.is_empty() {
        println!("\nlatest attempts:");
        for (d, events) in latest.iter().zip(&events) {
            let version = d.version.map_or_else(|| d.uri.clone(), |v| format!("version {v}"));
            let why = d.message.as_deref().map_or_else(String::new, |m| format!(": {m}"));
            println!("  {:>4}  {}  {version:<12} {:<9} {}{why}", d.id, d.endpoint, d.status, d.started_at);
            for e in events {
                println!("          {} {}: {}", e.at, e.event, e.message);
            }
        }
    }
    Ok(code)
}

pub(crate) fn stop_cmd(cli: &Cli, config: &Path, port: Option<u16>, host: Option<&str>) -> Result<ExitCode> {
    let config = deployment(config)?;
    let endpoint = match port {
        Some(p) => {
            let host = host.unwrap_or(&config.serve.host);
            let ip: std::net::IpAddr =
                host.parse().with_context(|| format!("--host {host:?}: give an IP address such as 127.0.0.1"))?;
            Some(std::net::SocketAddr::new(ip, p))
        }
        None => None,
    };
    let grace = Duration::from_secs(config.serve.shutdown_grace_seconds + 5);
    let stopped = step19_deploy::stop(&config.store, endpoint, grace)?;
    if cli.json {
        print_json(&serde_json::json!({ "stopped": stopped }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if stopped.is_empty() {
        let on = endpoint.map_or_else(String::new, |e| format!(" on {e}"));
        println!("nothing was deployed{on}");
    }
    for d in &stopped {
        let version = d.version.map_or_else(String::new, |v| format!(" version {v}"));
        println!("stopped {}{version} on http://{} (deployment {})", d.model, d.endpoint, d.id);
    }
    Ok(ExitCode::SUCCESS)
}
