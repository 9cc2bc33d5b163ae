//! The endpoint's router: a reverse proxy on the public port that sends each request to the
//! server the store says is serving. Clients keep their connections to it while servers are
//! replaced behind it.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::local::{server_marker, spawn};
use crate::process::alive;
use crate::store::Deployments;
use crate::{DeployError, Result};

/// The response header naming the deployment (its row id) that answered.
pub const DEPLOYMENT_HEADER: &str = "x-mlops-deployment";

#[derive(Clone, Debug)]
struct Backend {
    id: i64,
    addr: String,
}

struct Shared {
    endpoint: String,
    current: RwLock<Option<Backend>>,
    db: Mutex<Deployments>,
    client: reqwest::Client,
    max_body: usize,
    supervisor: Mutex<Supervisor>,
}

/// First wait before restarting a server that died; doubled after each restart that dies again.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between restarts.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A server that has run this long since its restart counts as healthy again: the next crash
/// waits `BACKOFF_FIRST`.
const BACKOFF_RESET: Duration = Duration::from_secs(120);

/// The router's watch over the serving deployment's server, as Kubernetes' kubelet restarts a
/// container that exits: restarts with exponential backoff, each crash and restart recorded.
struct Supervisor {
    /// The deployment watched.
    id: i64,
    /// While its server is down: why, and when to try again.
    down: Option<(String, Instant)>,
    /// The wait before the next restart.
    backoff: Duration,
    /// When the server was last (re)started.
    started: Instant,
}

impl Supervisor {
    fn new(id: i64) -> Supervisor {
        Supervisor { id, down: None, backoff: BACKOFF_FIRST, started: Instant::now() }
    }
}

impl Shared {
    fn current(&self) -> Option<Backend> {
        self.current.read().map(|c| c.clone()).unwrap_or(None)
    }

    /// Reads the serving deployment from the store. The store's lock is held until `current` is
    /// written, so that two refreshes cannot put an older answer back.
    fn refresh(&self) {
        let Ok(db) = self.db.lock() else { return };
        match db.serving(&self.endpoint) {
            Ok(d) => {
                let next = d.map(|d| Backend { id: d.id, addr: d.backend });
                if let Ok(mut cur) = self.current.write() {
                    if cur.as_ref().map(|b| b.id) != next.as_ref().map(|b| b.id) {
                        tracing::info!(endpoint = %self.endpoint, deployment = ?next.as_ref().map(|b| b.id), "routing");
                    }
                    *cur = next;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the deployments; routing as before"),
        }
    }
}

impl Shared {
    /// Checks the serving deployment's server; one that died is recorded as `crashed`, and
    /// restarted with the command it was started with once its backoff has passed.
    fn supervise(&self) {
        let Ok(db) = self.db.lock() else { return };
        let Ok(Some(d)) = db.serving(&self.endpoint) else { return };
        let Some(pid) = d.pid else { return };
        let mut sup = self.supervisor.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if sup.id != d.id {
            *sup = Supervisor::new(d.id);
        }
        let marker = server_marker(&d.backend);
        if alive(pid, &marker) {
            if sup.started.elapsed() >= BACKOFF_RESET {
                sup.backoff = BACKOFF_FIRST;
            }
            sup.down = None;
            return;
        }
        let now = Instant::now();
        if sup.down.is_none() {
            let message = format!(
                "its server (pid {pid}) exited; restarting in {} s (restart {})",
                sup.backoff.as_secs_f64(),
                d.restarts + 1
            );
            tracing::warn!(deployment = d.id, pid, "the server died");
            let _ = db.record(d.id, "crashed", &message);
            let _ = db.note(d.id, &format!("crashed at {}; restarting", crate::store::now()));
            sup.down = Some((message, now + sup.backoff));
        }
        let Some((_, at)) = &sup.down else { return };
        if now < *at {
            return;
        }
        let next = (sup.backoff * 2).min(BACKOFF_MAX);
        let restart = match d.command.as_deref() {
            Some([program, args @ ..]) => spawn(Path::new(program), args, Path::new(&d.log)),
            _ => Err(DeployError::Invalid {
                key: "command".into(),
                message: "the deployment has no recorded command line (deployed by an older version)".into(),
            }),
        };
        match restart {
            Ok(new) => {
                let _ = db.restarted(d.id, pid, new);
                let _ = db.record(d.id, "restarted", &format!("server restarted as pid {new}"));
                let _ =
                    db.note(d.id, &format!("restarted {} time(s); last crash restarted as pid {new}", d.restarts + 1));
                tracing::info!(deployment = d.id, pid = new, "server restarted");
                sup.started = now;
                sup.down = None;
            }
            Err(e) => {
                let message = format!("cannot restart the server: {e}; trying again in {} s", next.as_secs_f64());
                let _ = db.record(d.id, "restart_failed", &message);
                sup.down = Some((message, now + next));
            }
        }
        sup.backoff = next;
    }

    /// Why the endpoint cannot answer now, while its server is down.
    fn down(&self) -> Option<String> {
        let sup = self.supervisor.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sup.down.as_ref().map(|(why, _)| why.clone())
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::HOST,
        header::CONTENT_LENGTH,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error_code": code, "message": message }))).into_response()
}

/// 503 with `Retry-After`: nothing serves the endpoint for now.
fn unavailable(message: String) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn forward(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let too_large = || {
        error(StatusCode::PAYLOAD_TOO_LARGE, "BAD_REQUEST", format!("the request body is over {} bytes", s.max_body))
    };
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > s.max_body) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, s.max_body).await {
        Ok(b) => b,
        Err(e) if std::error::Error::source(&e).is_some_and(|c| c.to_string().contains("length limit")) => {
            return too_large();
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("cannot read the request body: {e}")),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut last = String::new();
    for attempt in 0..3u32 {
        let Some(b) = s.current() else {
            return unavailable(format!("no deployment is serving {}", s.endpoint));
        };
        if let Some(why) = s.down() {
            return unavailable(format!("deployment {} on {}: {why}", b.id, s.endpoint));
        }
        let mut request =
            s.client.request(parts.method.clone(), format!("http://{}{path}", b.addr)).body(bytes.clone());
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name) {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(answer) => {
                let status = answer.status();
                let headers = answer.headers().clone();
                // The server answered: its answer, or a 502 if it broke off (never a replay).
                return match answer.bytes().await {
                    Ok(body) => respond(status, &headers, body, b.id),
                    Err(e) => error(
                        StatusCode::BAD_GATEWAY,
                        "UNAVAILABLE",
                        format!("the server behind {} broke off its answer: {e}", s.endpoint),
                    ),
                };
            }
            Err(e) if e.is_timeout() => {
                return error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "UNAVAILABLE",
                    format!("the server did not answer in time: {e}"),
                );
            }
            Err(e) => last = e.to_string(),
        }
        // No answer came (the server is gone, or closed the connection as the request left):
        // ask again, of whatever serves now. Predictions have no side effects.
        tracing::debug!(attempt, error = %last, "retrying");
        s.refresh();
        tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
    }
    // Nothing listens behind the endpoint (a server that died and is not yet noticed, or one
    // restarting): unavailable for now, not a broken gateway.
    unavailable(format!("the server behind {} did not answer: {last}", s.endpoint))
}

fn respond(status: StatusCode, headers: &axum::http::HeaderMap, body: Bytes, id: i64) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let out = response.headers_mut();
    for (name, value) in headers {
        if !is_hop_by_hop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out.insert(DEPLOYMENT_HEADER, HeaderValue::from(id));
    response
}

/// Runs the router of `listen` until `shutdown` completes, then drains the requests in flight.
/// Bodies over `max_body` bytes get 413; a server that does not answer within `timeout`, 504.
/// It routes to the deployment the store's `deployments` table says is serving `listen`, and
/// reads the table again every second and on SIGHUP.
pub async fn run_router(
    listen: SocketAddr,
    store: PathBuf,
    (max_body, timeout): (usize, Duration),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let endpoint = listen.to_string();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DeployError::Process { what: format!("{endpoint}: cannot listen"), source })?;
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()
        .map_err(|e| DeployError::Process {
            what: "cannot build the HTTP client".into(),
            source: std::io::Error::other(e),
        })?;
    let shared = Arc::new(Shared {
        endpoint: endpoint.clone(),
        current: RwLock::new(None),
        db: Mutex::new(Deployments::open(&store)?),
        client,
        max_body,
        supervisor: Mutex::new(Supervisor::new(0)),
    });
    shared.refresh();
    let watcher = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let signal = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = signal => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            watcher.refresh();
            watcher.supervise();
        }
    });
    tracing::info!(%endpoint, "router listening");
    let app = axum::Router::new().fallback(forward).with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| DeployError::Process { what: format!("{endpoint}: router"), source })
}
