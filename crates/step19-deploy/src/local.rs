//! Local deployments: a server process per version behind one router per endpoint, switched
//! blue/green.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mlops_core::CoreError;
use serde::{Deserialize, Serialize};

use crate::process::{alive, hang_up, terminate};
use crate::store::{Deployment, Deployments, now};
use crate::{DeployError, Result, http_get};

/// The `local` section of `configs/deployment.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalParams {
    /// Seconds a new server has to answer ready before it is stopped and the old one kept.
    pub ready_timeout_seconds: u64,
    /// Milliseconds the old server keeps running after the switch, for requests the router
    /// had already sent it.
    pub drain_ms: u64,
    /// Where the servers' and routers' output goes.
    pub logs: PathBuf,
}

impl Default for LocalParams {
    fn default() -> Self {
        Self { ready_timeout_seconds: 60, drain_ms: 500, logs: PathBuf::from("logs/deploy") }
    }
}

/// What to deploy where.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// The public `host:port` (the router listens there).
    pub endpoint: SocketAddr,
    /// Registered model name.
    pub model: String,
    /// Registered version (none for a package path).
    pub version: Option<u32>,
    /// The pinned URI the server is started with (`models:/NAME/VERSION` or a package path).
    pub uri: String,
}

/// How to start the processes: the caller knows its own binary.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    /// The `mlops` binary.
    pub program: PathBuf,
    /// Arguments that serve `Target::uri`; `--host 127.0.0.1 --port PORT` are appended.
    pub server_args: Vec<String>,
    /// Arguments that run the router on the store; `--listen ENDPOINT` is appended.
    pub router_args: Vec<String>,
    /// How long a server drains after SIGTERM before it is killed.
    pub grace: Duration,
}

/// What [`deploy_local`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// The deployment now serving.
    pub deployment: Deployment,
    /// The one it replaced.
    pub replaced: Option<Deployment>,
    /// Whether the endpoint's router was started by this call.
    pub router_started: bool,
}

/// A serving deployment and whether it answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Running {
    /// The row.
    pub deployment: Deployment,
    /// Both its processes run.
    pub alive: bool,
    /// The endpoint answers `/v2/health/ready` with 200.
    pub ready: bool,
}

fn server_marker(backend: &str) -> String {
    let port = backend.rsplit(':').next().unwrap_or(backend);
    format!("--port\0{port}\0")
}

fn router_marker(endpoint: &str) -> String {
    format!("--listen\0{endpoint}\0")
}

fn spawn(program: &Path, args: &[String], log: &Path) -> Result<u32> {
    let open = || OpenOptions::new().create(true).append(true).open(log);
    let io = |e| CoreError::io("cannot open", log, e);
    let out = open().map_err(io)?;
    let err = open().map_err(io)?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: a Ctrl-C in the terminal that deployed it does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|source| DeployError::Process { what: format!("cannot start {}", program.display()), source })?;
    Ok(child.id())
}

/// The last lines of a log file, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join(" | ")
}

/// Polls `url` until it answers 200 (and `check` accepts the answer), the process is gone or
/// `timeout` passes.
fn wait_ready(
    url: &str,
    timeout: Duration,
    running: impl Fn() -> bool,
    check: impl Fn(&crate::Answer) -> bool,
) -> std::result::Result<(), String> {
    let start = Instant::now();
    loop {
        if let Ok(a) = http_get(url, Duration::from_secs(2))
            && a.status == 200
            && check(&a)
        {
            return Ok(());
        }
        if !running() {
            return Err("exited before answering ready".into());
        }
        if start.elapsed() >= timeout {
            return Err(format!("not ready after {} s", timeout.as_secs_f64()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free port on `host` for a new server.
fn free_port(host: std::net::IpAddr) -> Result<u16> {
    let l = TcpListener::bind((host, 0))
        .map_err(|source| DeployError::Process { what: format!("no free port on {host}"), source })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| DeployError::Process { what: format!("no free port on {host}"), source })
}

/// Rows left behind by a deploy that died midway: their processes go, their rows fail.
fn clean_up_interrupted(db: &Deployments, endpoint: &str, grace: Duration) -> Result<()> {
    for d in db.starting(endpoint)? {
        if d.deployer_pid == std::process::id() {
            continue;
        }
        if alive(d.deployer_pid, "deploy") {
            return Err(DeployError::Busy { endpoint: endpoint.to_string(), pid: d.deployer_pid });
        }
        if let Some(pid) = d.pid {
            terminate(pid, &server_marker(&d.backend), grace);
        }
        db.end(d.id, "failed", Some("the deploy that started it was interrupted"))?;
    }
    Ok(())
}

/// Deploys `target` on its endpoint: starts a server on a free private port, waits until it
/// is ready, points the endpoint's router at it (starting the router if the endpoint had
/// none) and stops the server it replaces. A server that never gets ready is stopped and
/// nothing else changes. Every step is recorded in the store.
pub fn deploy_local(store: &Path, params: &LocalParams, target: &Target, launch: &Launch) -> Result<Outcome> {
    let mut db = Deployments::open(store)?;
    let endpoint = target.endpoint.to_string();
    clean_up_interrupted(&db, &endpoint, launch.grace)?;

    // What serves the endpoint now, if its processes still run.
    let mut current = db.serving(&endpoint)?;
    if let Some(c) = current.clone() {
        let router_up = c.router_pid.is_some_and(|p| alive(p, &router_marker(&endpoint)));
        if !router_up {
            if let Some(pid) = c.pid {
                terminate(pid, &server_marker(&c.backend), launch.grace);
            }
            db.end(c.id, "failed", Some("its router was no longer running"))?;
            current = None;
        }
    }
    if current.is_none() && TcpListener::bind(target.endpoint).is_err() {
        return Err(DeployError::PortInUse { endpoint });
    }

    std::fs::create_dir_all(&params.logs).map_err(|e| CoreError::io("cannot create directory", &params.logs, e))?;
    let host = target.endpoint.ip();
    let port = free_port(host)?;
    let backend = SocketAddr::new(host, port).to_string();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let log = params.logs.join(format!("server-{}-{stamp}.log", target.endpoint.port()));
    let mut row = Deployment {
        id: 0,
        endpoint: endpoint.clone(),
        model: target.model.clone(),
        version: target.version,
        uri: target.uri.clone(),
        backend: backend.clone(),
        pid: None,
        router_pid: None,
        status: "starting".into(),
        started_at: now(),
        ended_at: None,
        message: None,
        log: log.display().to_string(),
        deployer_pid: std::process::id(),
    };
    row.id = db.insert_starting(&row)?;
    tracing::info!(id = row.id, uri = %target.uri, %backend, "starting the server");

    let mut args = launch.server_args.clone();
    args.extend(["--host".to_string(), host.to_string(), "--port".to_string(), port.to_string()]);
    let pid = match spawn(&launch.program, &args, &log) {
        Ok(pid) => pid,
        Err(e) => {
            db.end(row.id, "failed", Some(&e.to_string()))?;
            return Err(e);
        }
    };
    db.set_pids(row.id, Some(pid), None)?;
    row.pid = Some(pid);

    let still_serving = current.as_ref().map(describe);
    let ready = wait_ready(
        &format!("http://{backend}/v2/health/ready"),
        Duration::from_secs(params.ready_timeout_seconds),
        || alive(pid, &server_marker(&backend)),
        |_| true,
    );
    if let Err(reason) = ready {
        terminate(pid, &server_marker(&backend), launch.grace);
        let reason = match tail(&log) {
            t if t.is_empty() => reason,
            t => format!("{reason} ({t})"),
        };
        db.end(row.id, "failed", Some(&reason))?;
        tracing::warn!(id = row.id, %reason, "the new server never got ready; nothing was switched");
        return Err(DeployError::NeverReady { uri: target.uri.clone(), backend, reason, still_serving, log });
    }

    // Switch: the store first (the router reads it), then the router.
    db.switch(row.id, current.as_ref().map(|c| c.id))?;
    let (router_pid, router_started) = match current.as_ref().and_then(|c| c.router_pid) {
        Some(p) => {
            hang_up(p);
            (p, false)
        }
        None => {
            let mut args = launch.router_args.clone();
            args.extend(["--listen".to_string(), endpoint.clone()]);
            let router_log = params.logs.join(format!("router-{}.log", target.endpoint.port()));
            match spawn(&launch.program, &args, &router_log) {
                Ok(p) => (p, true),
                Err(e) => {
                    terminate(pid, &server_marker(&backend), launch.grace);
                    db.switch_back(row.id, None, &e.to_string())?;
                    return Err(e);
                }
            }
        }
    };
    let id = row.id.to_string();
    let switched = wait_ready(
        &format!("http://{endpoint}/v2/health/ready"),
        Duration::from_secs(10),
        || alive(router_pid, &router_marker(&endpoint)),
        |a| a.header(crate::DEPLOYMENT_HEADER) == Some(id.as_str()),
    );
    if let Err(reason) = switched {
        let router_log = params.logs.join(format!("router-{}.log", target.endpoint.port()));
        let reason = format!("the router on {endpoint} did not switch to it: {reason} ({})", tail(&router_log));
        db.switch_back(row.id, current.as_ref().map(|c| c.id), &reason)?;
        if router_started {
            terminate(router_pid, &router_marker(&endpoint), launch.grace);
        } else {
            hang_up(router_pid);
        }
        terminate(pid, &server_marker(&backend), launch.grace);
        if router_started && tail(&router_log).contains("in use") {
            return Err(DeployError::PortInUse { endpoint });
        }
        return Err(DeployError::NeverReady { uri: target.uri.clone(), backend, reason, still_serving, log });
    }
    db.set_pids(row.id, None, Some(router_pid))?;

    // The old server finishes what the router already sent it, then goes.
    if let Some(old) = &current {
        std::thread::sleep(Duration::from_millis(params.drain_ms));
        if let Some(p) = old.pid {
            terminate(p, &server_marker(&old.backend), launch.grace);
        }
        tracing::info!(old = old.id, new = row.id, "replaced");
    }
    let deployment = db.get(row.id)?.unwrap_or(row);
    let replaced = match &current {
        Some(c) => db.get(c.id)?,
        None => None,
    };
    Ok(Outcome { deployment, replaced, router_started })
}

fn describe(d: &Deployment) -> String {
    match d.version {
        Some(v) => format!("{} version {v} (deployment {})", d.model, d.id),
        None => format!("{} (deployment {})", d.uri, d.id),
    }
}

/// Every serving deployment, with whether its processes run and its endpoint answers ready.
pub fn status(store: &Path) -> Result<Vec<Running>> {
    let db = Deployments::open(store)?;
    Ok(db
        .all_serving()?
        .into_iter()
        .map(|d| {
            let alive = d.router_pid.is_some_and(|p| alive(p, &router_marker(&d.endpoint)))
                && d.pid.is_some_and(|p| alive(p, &server_marker(&d.backend)));
            let ready = alive
                && http_get(&format!("http://{}/v2/health/ready", d.endpoint), Duration::from_secs(2))
                    .is_ok_and(|a| a.status == 200);
            Running { deployment: d, alive, ready }
        })
        .collect())
}

/// Stops the deployments serving `endpoint` (all when `None`): the router first, so that it
/// drains the requests in flight, then the server. Returns what was stopped.
pub fn stop(store: &Path, endpoint: Option<SocketAddr>, grace: Duration) -> Result<Vec<Deployment>> {
    let db = Deployments::open(store)?;
    let wanted = endpoint.map(|e| e.to_string());
    let mut stopped = Vec::new();
    for d in db.all_serving()? {
        if wanted.as_ref().is_some_and(|w| *w != d.endpoint) {
            continue;
        }
        if let Some(p) = d.router_pid {
            terminate(p, &router_marker(&d.endpoint), grace);
        }
        if let Some(p) = d.pid {
            terminate(p, &server_marker(&d.backend), grace);
        }
        db.end(d.id, "stopped", Some("stopped by `mlops deploy stop`"))?;
        tracing::info!(id = d.id, endpoint = %d.endpoint, "stopped");
        stopped.push(db.get(d.id)?.unwrap_or(d));
    }
    Ok(stopped)
}
