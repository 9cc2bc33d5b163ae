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
pub struct DeployOutcome {
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

pub(crate) fn server_marker(backend: &str) -> String {
    let port = backend.rsplit(':').next().unwrap_or(backend);
    format!("--port\0{port}\0")
}

fn router_marker(endpoint: &str) -> String {
    format!("--listen\0{endpoint}\0")
}

pub(crate) fn spawn(program: &Path, args: &[String], log: &Path) -> Result<u32> {
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

/// The marker of a `mlops deploy local` process.
const DEPLOYER_MARKER: &str = "deploy\0local\0";

/// Processes left behind by a deploy that died midway: servers of attempts that never finished,
/// or of deployments replaced or failed whose server outlived them, are stopped; unfinished
/// attempts are marked failed.
fn clean_up_interrupted(db: &Deployments, (endpoint, own): (&str, i64), grace: Duration) -> Result<()> {
    for d in db.starting(endpoint)?.into_iter().filter(|d| d.id != own) {
        if let Some(pid) = d.pid {
            terminate(pid, &server_marker(&d.backend), grace);
        }
        db.end(d.id, "failed", Some("the deploy that started it was interrupted"))?;
    }
    for d in db.history(50)? {
        if d.endpoint == endpoint
            && matches!(d.status.as_str(), "replaced" | "failed" | "stopped")
            && let Some(pid) = d.pid.filter(|&p| alive(p, &server_marker(&d.backend)))
        {
            terminate(pid, &server_marker(&d.backend), grace);
        }
    }
    Ok(())
}

/// Stops the new server when the deploy ends early, on any error path.
struct StopOnDrop {
    pid: Option<u32>,
    marker: String,
    grace: Duration,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            terminate(pid, &self.marker, self.grace);
        }
    }
}

/// Deploys `target` on its endpoint: starts a server on a free loopback port, waits until it
/// is ready, points the endpoint's router at it (starting the router if the endpoint had
/// none) and stops the server it replaces. A server that never gets ready is stopped and
/// nothing else changes. Every step is recorded in the store.
pub fn deploy_local(store: &Path, params: &LocalParams, target: &Target, launch: &Launch) -> Result<DeployOutcome> {
    let mut db = Deployments::open(store)?;
    let endpoint = target.endpoint.to_string();
    if target.endpoint.port() == 0 {
        return Err(DeployError::Invalid { key: "port".into(), message: "must not be 0 for a deployment".into() });
    }
    std::fs::create_dir_all(&params.logs).map_err(|e| CoreError::io("cannot create directory", &params.logs, e))?;
    // The server listens on loopback only: clients reach it through the router.
    let host: std::net::IpAddr = if target.endpoint.is_ipv6() {
        std::net::Ipv6Addr::LOCALHOST.into()
    } else {
        std::net::Ipv4Addr::LOCALHOST.into()
    };
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
        restarts: 0,
        command: None,
    };
    // One deploy per endpoint at a time: the check and the claim are one transaction.
    row.id = db.claim(&row, |d| d.deployer_pid != std::process::id() && alive(d.deployer_pid, DEPLOYER_MARKER))?;
    let outcome = switch_to(&mut db, params, target, launch, &mut row, &log);
    if let Err(e) = &outcome
        && db.get(row.id)?.is_some_and(|d| d.status == "starting")
    {
        db.end(row.id, "failed", Some(&e.to_string()))?;
    }
    outcome
}

fn switch_to(
    db: &mut Deployments,
    params: &LocalParams,
    target: &Target,
    launch: &Launch,
    row: &mut Deployment,
    log: &Path,
) -> Result<DeployOutcome> {
    let endpoint = row.endpoint.clone();
    let backend = row.backend.clone();
    clean_up_interrupted(db, (&endpoint, row.id), launch.grace)?;

    // What serves the endpoint now, if its router still runs.
    let mut current = db.serving(&endpoint)?;
    if let Some(c) = current.clone()
        && !c.router_pid.is_some_and(|p| alive(p, &router_marker(&endpoint)))
    {
        if let Some(pid) = c.pid {
            terminate(pid, &server_marker(&c.backend), launch.grace);
        }
        db.end(c.id, "failed", Some("its router was no longer running"))?;
        current = None;
    }
    if current.is_none()
        && let Err(e) = TcpListener::bind(target.endpoint)
    {
        return Err(match e.kind() {
            std::io::ErrorKind::AddrInUse => DeployError::PortInUse { endpoint },
            _ => DeployError::Process { what: format!("cannot listen on {endpoint}"), source: e },
        });
    }
    tracing::info!(id = row.id, uri = %target.uri, %backend, "starting the server");

    let mut args = launch.server_args.clone();
    let addr: SocketAddr = backend
        .parse()
        .map_err(|_| DeployError::Invalid { key: "backend".into(), message: format!("{backend} is not an address") })?;
    args.extend(["--host".to_string(), addr.ip().to_string(), "--port".to_string(), addr.port().to_string()]);
    let pid = spawn(&launch.program, &args, log)?;
    let mut guard = StopOnDrop { pid: Some(pid), marker: server_marker(&backend), grace: launch.grace };
    db.set_pids(row.id, Some(pid), None)?;
    // The router restarts the server with the same command line if it dies.
    let command: Vec<String> = std::iter::once(launch.program.display().to_string()).chain(args).collect();
    db.set_command(row.id, &command)?;
    row.pid = Some(pid);

    let still_serving = current.as_ref().map(describe);
    let ready = wait_ready(
        &format!("http://{backend}/v2/health/ready"),
        Duration::from_secs(params.ready_timeout_seconds),
        || alive(pid, &server_marker(&backend)),
        |_| true,
    );
    if let Err(reason) = ready {
        drop(guard);
        let reason = match tail(log) {
            t if t.is_empty() => reason,
            t => format!("{reason} ({t})"),
        };
        db.end(row.id, "failed", Some(&reason))?;
        tracing::warn!(id = row.id, %reason, "the new server never got ready; nothing was switched");
        return Err(DeployError::NeverReady {
            uri: target.uri.clone(),
            backend,
            reason,
            still_serving,
            log: log.to_path_buf(),
        });
    }

    // Switch: the store first (the router reads it), then the router: the one running, or a new
    // one when the endpoint has none (or it died while the server started).
    db.switch(row.id, current.as_ref().map(|c| c.id))?;
    let running = current.as_ref().and_then(|c| c.router_pid).filter(|&p| alive(p, &router_marker(&endpoint)));
    let router_log = params.logs.join(format!("router-{}.log", target.endpoint.port()));
    let (router_pid, router_started) = match running {
        Some(p) => {
            hang_up(p, &router_marker(&endpoint));
            (p, false)
        }
        None => {
            let mut args = launch.router_args.clone();
            args.extend(["--listen".to_string(), endpoint.clone()]);
            match spawn(&launch.program, &args, &router_log) {
                Ok(p) => {
                    db.set_pids(row.id, None, Some(p))?;
                    (p, true)
                }
                Err(e) => {
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
        let said = tail(&router_log);
        let reason = format!("{reason} ({said})");
        db.switch_back(row.id, current.as_ref().map(|c| c.id), &reason)?;
        if router_started {
            terminate(router_pid, &router_marker(&endpoint), launch.grace);
        } else {
            hang_up(router_pid, &router_marker(&endpoint));
        }
        drop(guard);
        if router_started && said.contains("Address already in use") {
            return Err(DeployError::PortInUse { endpoint });
        }
        return Err(DeployError::RouterFailed { endpoint, reason, log: router_log });
    }
    db.set_pids(row.id, None, Some(router_pid))?;
    guard.pid = None;

    // The old server finishes what the router already sent it, then goes.
    if let Some(old) = &current {
        std::thread::sleep(Duration::from_millis(params.drain_ms));
        if let Some(p) = old.pid
            && !terminate(p, &server_marker(&old.backend), launch.grace)
        {
            db.note(old.id, &format!("replaced by deployment {}; its server (pid {p}) did not stop", row.id))?;
        }
        tracing::info!(old = old.id, new = row.id, "replaced");
    }
    let deployment = db.get(row.id)?.unwrap_or_else(|| row.clone());
    let replaced = match &current {
        Some(c) => db.get(c.id)?,
        None => None,
    };
    Ok(DeployOutcome { deployment, replaced, router_started })
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
        let router_gone = d.router_pid.is_none_or(|p| terminate(p, &router_marker(&d.endpoint), grace));
        let server_gone = d.pid.is_none_or(|p| terminate(p, &server_marker(&d.backend), grace));
        let message = if router_gone && server_gone {
            "stopped by `mlops deploy stop`".to_string()
        } else {
            format!("stopped by `mlops deploy stop`, but pid {:?} / {:?} did not exit", d.router_pid, d.pid)
        };
        db.end(d.id, "stopped", Some(&message))?;
        tracing::info!(id = d.id, endpoint = %d.endpoint, "stopped");
        stopped.push(db.get(d.id)?.unwrap_or(d));
    }
    Ok(stopped)
}
