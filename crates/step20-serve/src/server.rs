//! The HTTP server: routes, the request path, hot reload, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, MatchedPath, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_core::{DType, TaskKind};
use serde_json::{Value as Json, json};

use crate::config::ServeConfig;
use crate::log::{Entry, PredictionLog};
use crate::metrics::Metrics;
use crate::protocol::{self, Parsed};
use crate::scorer::{InputError, InputErrorKind, ModelSource, Scored, Scorer};
use crate::{Result, ServeError};

/// The toolkit version the server reports.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shared by every request.
struct AppState {
    model: RwLock<Arc<Scorer>>,
    source: ModelSource,
    config: ServeConfig,
    metrics: Arc<Metrics>,
    log: Option<PredictionLog>,
    admin_token: Option<String>,
    /// Serializes reloads (the poller and the admin route).
    reloading: tokio::sync::Mutex<()>,
    /// Another way to score large batches, set by the caller before running.
    batch: std::sync::OnceLock<(usize, BatchScorer)>,
    /// The shadow model (`serve.shadow_alias`) and where it comes from.
    shadow: RwLock<Option<Arc<Scorer>>>,
    shadow_source: Option<ModelSource>,
}

/// Scores conformed rows at once by another path than the row path (the mlops binary gives step
/// 21's frame path, which this crate cannot use without polars). It takes the columns of
/// [`Parsed`](crate::protocol::Parsed) (`columns[j]`: signature input `j`) and must give the row
/// path's results; `None` falls back to the row path.
pub type BatchScorer = Arc<dyn Fn(&Scorer, &[Vec<mlops_core::Value>]) -> Option<Scored> + Send + Sync>;

type Shared = Arc<AppState>;

impl AppState {
    fn current(&self) -> Arc<Scorer> {
        self.model.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn shadow(&self) -> Option<Arc<Scorer>> {
        self.shadow.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// `models:/NAME@SHADOW` for a server of `models:/NAME@...` (or `models:/NAME/V`) in a registry.
fn shadow_source(source: &ModelSource, alias: Option<&str>) -> Option<ModelSource> {
    let (ModelSource::Registry { store, artifacts, uri }, Some(alias)) = (source, alias) else { return None };
    let name = match step17_registry::ModelUri::parse(uri).ok()? {
        step17_registry::ModelUri::Alias(name, _)
        | step17_registry::ModelUri::Version(name, _)
        | step17_registry::ModelUri::Latest(name) => name,
    };
    Some(ModelSource::Registry {
        store: store.clone(),
        artifacts: artifacts.clone(),
        uri: format!("models:/{name}@{alias}"),
    })
}

/// A request's id: the client's `x-request-id`, or one made up.
#[derive(Clone)]
struct RequestId(String);

static REQUESTS: AtomicU64 = AtomicU64::new(0);

fn new_request_id() -> String {
    static BOOT: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let boot = BOOT.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        nanos ^ std::process::id()
    });
    format!("{boot:08x}-{:x}", REQUESTS.fetch_add(1, Ordering::Relaxed))
}

/// A bound, loaded server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Shared,
    addr: SocketAddr,
}

impl Server {
    /// Loads the model, binds the address of `config` and opens the prediction log in `store`
    /// (`None`: no log). Fails before listening if the model does not load.
    pub async fn bind(config: ServeConfig, source: ModelSource, store: Option<&Path>) -> Result<Server> {
        config.check()?;
        let policy = config.unknown_categories;
        let loading = source.clone();
        let scorer = tokio::task::spawn_blocking(move || loading.load(policy))
            .await
            .map_err(|e| ServeError::Model(format!("loading the model: {e}")))??;
        let metrics = Arc::new(Metrics::default());
        metrics.model(&scorer.origin.name, scorer.origin.version.unwrap_or(0));
        let log = match store {
            Some(store) if config.prediction_log.enabled => Some(PredictionLog::open(
                store,
                config.prediction_log.queue,
                metrics.clone(),
                config.prediction_log.kafka.as_ref(),
            )?),
            _ => None,
        };
        let addr = format!("{}:{}", config.host, config.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind { addr: addr.clone(), source })?;
        let addr = listener.local_addr()?;
        let admin_token = config
            .admin_token
            .clone()
            .or_else(|| std::env::var(&config.admin_token_env).ok())
            .filter(|t| !t.is_empty());
        tracing::info!(
            %addr,
            model = %scorer.origin.uri,
            version = ?scorer.origin.version,
            "serving"
        );
        let shadow_source = shadow_source(&source, config.shadow_alias.as_deref());
        let state = Arc::new(AppState {
            model: RwLock::new(Arc::new(scorer)),
            source,
            config,
            metrics,
            log,
            admin_token,
            reloading: tokio::sync::Mutex::new(()),
            batch: std::sync::OnceLock::new(),
            shadow: RwLock::new(None),
            shadow_source,
        });
        reload_shadow(&state);
        Ok(Server { listener, state, addr })
    }

    /// Scores requests of at least `min_rows` rows with `scorer` instead of the row path.
    pub fn set_batch_scorer(&self, min_rows: usize, scorer: BatchScorer) {
        let _ = self.state.batch.set((min_rows.max(1), scorer));
    }

    /// The address it listens on (the port is known even when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The model it loaded.
    pub fn origin(&self) -> crate::Origin {
        self.state.current().origin.clone()
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    /// Answers requests until `shutdown` completes, then stops taking connections, lets in-flight
    /// requests finish (at most `shutdown_grace_seconds`) and flushes the prediction log. Returns
    /// what the run did: every predicted row was either written to the log or counted as dropped.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Stopped> {
        let state = self.state;
        let poller = match (&state.source, state.config.poll_seconds) {
            (ModelSource::Registry { .. }, secs) if secs > 0 => Some(tokio::spawn(poll(state.clone(), secs))),
            _ => None,
        };
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight requests");
            let _ = stop_tx.send(true);
        };
        let grace = Duration::from_secs(state.config.shutdown_grace_seconds);
        let app = router(state.clone());
        let headers = Duration::from_millis(state.config.header_timeout_ms);
        let served = accept(self.listener, app, headers, signal);
        let result = tokio::select! {
            () = served => Ok(()),
            () = async {
                let _ = stop_rx.wait_for(|stopped| *stopped).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(seconds = grace.as_secs(), "requests still running after the grace period; stopping anyway");
                Ok(())
            }
        };
        if let Some(p) = poller {
            p.abort();
        }
        let flushing = state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(log) = &flushing.log {
                log.close();
            }
        })
        .await;
        let m = &state.metrics;
        let stopped = Stopped {
            predicted: m.predicted(),
            logged: state.log.is_some(),
            log_written: m.written(),
            log_dropped: m.dropped(),
        };
        tracing::info!(
            predicted = stopped.predicted,
            log_written = stopped.log_written,
            log_dropped = stopped.log_dropped,
            "stopped"
        );
        result.map(|()| stopped)
    }
}

/// What a server's run did, once it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Stopped {
    /// Rows predicted.
    pub predicted: u64,
    /// Whether the server had a prediction log (then every predicted row was written to it or
    /// counted as dropped).
    pub logged: bool,
    /// Rows written to the prediction log.
    pub log_written: u64,
    /// Rows not logged (the queue was full, or the store could not be written).
    pub log_dropped: u64,
}

/// How long, after the stop signal, open connections are still read: a request a client already
/// sent on a kept-alive connection is answered (with `Connection: close`) rather than cut off
/// unread, as closing an idle connection at once would do.
const DRAIN: Duration = Duration::from_secs(1);

/// Takes connections until `signal`, each served by hyper's HTTP/1 connection with a timer (a
/// request head must arrive within `headers`: a client sending it a byte at a time is cut off),
/// then stops taking new ones. For up to [`DRAIN`] the open connections are still read, every
/// answer closing its connection; then those still open and idle are closed and the rest finish
/// their requests.
async fn accept(listener: tokio::net::TcpListener, app: Router, headers: Duration, signal: impl Future<Output = ()>) {
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let closing = stopping.clone();
    let app = app.layer(middleware::map_response(move |mut response: Response| {
        let stopping = closing.load(Ordering::Relaxed);
        async move {
            if stopping {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(headers);
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stopping.store(true, Ordering::Relaxed);
    let drained = Instant::now() + DRAIN;
    while graceful.count() > 0 && Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    graceful.shutdown().await;
}

fn router(state: Shared) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/invocations", post(invocations))
        .route("/ping", get(ping))
        .route("/health", get(health))
        .route("/version", get(|| async { VERSION }))
        .route("/v2", get(oip_server))
        .route("/v2/health/live", get(|| async { axum::Json(json!({ "live": true })) }))
        .route("/v2/health/ready", get(oip_ready))
        .route("/v2/models/{name}", get(oip_metadata))
        .route("/v2/models/{name}/versions/{version}", get(oip_metadata_version))
        .route("/v2/models/{name}/ready", get(oip_model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(oip_model_ready_version))
        .route("/v2/models/{name}/infer", post(oip_infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(oip_infer_version))
        .route("/predict", post(predict))
        .route("/predict/batch", post(predict_batch))
        .route("/model_info", get(model_info))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/admin/reload", post(admin_reload))
        .route("/feedback", post(feedback))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Times every request, counts it by route and status, bounds it by the timeout and tags it with
/// a request id.
async fn track(State(s): State<Shared>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(new_request_id, str::to_string);
    req.extensions_mut().insert(RequestId(id.clone()));
    let ms = s.config.request_timeout_ms;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    let style = if route.starts_with("/v2") { Style::Oip } else { Style::Mlflow };
    let mut response = match read_body(req, s.config.max_body_bytes, deadline).await {
        Err(BodyFailure::Slow) => error(
            style,
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            &format!("the request body did not arrive within {ms} ms (`request_timeout_ms`)"),
            None,
        ),
        Err(BodyFailure::Bad(e)) => input_error(style, &e),
        Ok(req) => match tokio::time::timeout_at(deadline, next.run(req)).await {
            Ok(r) => r,
            Err(_) => error(
                Style::Mlflow,
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                &format!("the request took longer than {ms} ms (`request_timeout_ms`)"),
                None,
            ),
        },
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    s.metrics.request(&route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Why a request's body could not be read.
enum BodyFailure {
    /// It was still arriving at the deadline (the client's delay: 408).
    Slow,
    /// Too large (413), or the client broke off (400).
    Bad(InputError),
}

/// The request with its body read into memory before the deadline: the time a client takes to
/// send its body is its own (408), and only the time the server then takes is the server's (503).
async fn read_body(
    req: Request,
    limit: usize,
    deadline: tokio::time::Instant,
) -> std::result::Result<Request, BodyFailure> {
    let (parts, body) = req.into_parts();
    let read = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit));
    match tokio::time::timeout_at(deadline, read).await {
        Err(_) => Err(BodyFailure::Slow),
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, axum::body::Body::from(collected.to_bytes()))),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyFailure::Bad(InputError {
            kind: InputErrorKind::TooLarge,
            column: None,
            row: None,
            message: format!("the body is larger than {limit} bytes (`max_body_bytes`)"),
        })),
        Ok(Err(e)) => Err(BodyFailure::Bad(InputError::malformed(format!("cannot read the body: {e}")))),
    }
}

/// How a route words its errors.
#[derive(Clone, Copy)]
enum Style {
    /// `{"error_code": ..., "message": ...}` (MLflow, and the workflow's routes).
    Mlflow,
    /// `{"error": ...}` (Open Inference Protocol).
    Oip,
}

fn error(style: Style, status: StatusCode, code: &str, message: &str, input: Option<&InputError>) -> Response {
    let mut body = match style {
        Style::Mlflow => json!({ "error_code": code, "message": message }),
        Style::Oip => json!({ "error": message }),
    };
    // Which column and row (in the request, from 0): a client sending a file in parts maps the
    // row back to the file's and can leave that row out.
    if let Some(e) = input {
        if let Some(c) = &e.column {
            body["column"] = json!(c);
        }
        if let Some(r) = e.row {
            body["row"] = json!(r);
        }
    }
    (status, axum::Json(body)).into_response()
}

fn input_error(style: Style, e: &InputError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let code = if e.kind == InputErrorKind::Invalid { "INVALID_PARAMETER_VALUE" } else { "BAD_REQUEST" };
    error(style, status, code, &e.to_string(), Some(e))
}

fn body_error(rejection: &BytesRejection, limit: usize) -> InputError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        InputError {
            kind: InputErrorKind::TooLarge,
            column: None,
            row: None,
            message: format!("the body is larger than {limit} bytes (`max_body_bytes`)"),
        }
    } else {
        InputError::malformed(format!("cannot read the body: {}", rejection.body_text()))
    }
}

/// Who is asking on the shared request path: the route (for metrics and logs), the protocol its
/// answers and errors follow, and the request's id.
struct Call<'a> {
    route: &'static str,
    style: Style,
    id: &'a RequestId,
}

/// Logs a request the server did not answer with predictions (monitoring's error rate and the
/// rejected values per column), when the server has a prediction log.
fn log_refusal(
    s: &AppState,
    call: (&'static str, &RequestId),
    status: u16,
    reason: &'static str,
    column: Option<&str>,
    started: Instant,
) {
    let Some(log) = &s.log else { return };
    let scorer = s.current();
    log.record_refusal(crate::log::Refusal {
        request_id: call.1.0.clone(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        route: call.0,
        model_name: scorer.origin.name.clone(),
        model_version: scorer.origin.version,
        status,
        reason,
        column: column.map(str::to_string),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
}

/// The shared request path: body → rows → pipeline → model → answer, metrics and the log.
fn serve_rows<T>(
    s: &Shared,
    call: Call<'_>,
    body: std::result::Result<Bytes, BytesRejection>,
    parse: impl FnOnce(&Scorer, &[u8]) -> std::result::Result<(Parsed, T), InputError>,
    answer: impl FnOnce(&Scorer, &Scored, T) -> Json,
) -> Response {
    let Call { route, style, id } = call;
    let started = Instant::now();
    let reject = |e: InputError| {
        s.metrics.rejected(e.reason());
        tracing::debug!(route, error = %e, "rejected input");
        log_refusal(s, (route, id), e.status(), e.reason(), e.column.as_deref(), started);
        input_error(style, &e)
    };
    let body = match body {
        Ok(b) => b,
        Err(r) => return reject(body_error(&r, s.config.max_body_bytes)),
    };
    let scorer = s.current();
    let (parsed, extra) = match parse(&scorer, &body) {
        Ok(p) => p,
        Err(e) => return reject(e),
    };
    s.metrics.novel(scorer.inputs().iter().map(|c| c.name.as_str()).zip(&parsed.novel));
    // Both paths leave the conformed columns as they came: the log keeps them.
    let batch = s.batch.get().filter(|(min, _)| parsed.rows >= *min).and_then(|(_, f)| f(&scorer, &parsed.columns));
    let scored = match batch {
        Some(scored) => Ok(scored),
        None => scorer.score(&mut parsed.to_rows(&scorer)),
    };
    let scored = match scored {
        Ok(scored) => scored,
        Err(crate::scorer::ScoreError::Input(e)) => return reject(e),
        Err(e) => {
            tracing::error!(route, error = %e, "the model failed on valid input");
            log_refusal(s, (route, id), 500, "model", None, started);
            return error(style, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", &e.to_string(), None);
        }
    };
    match scorer.task() {
        TaskKind::Regression => s.metrics.predictions(std::iter::repeat_n("value", scored.predicted.len())),
        _ => s.metrics.predictions(
            scored.predicted.iter().map(|&p| scorer.classes().get(p as usize).map_or("unknown", String::as_str)),
        ),
    }
    let body = answer(&scorer, &scored, extra);
    if let Some(log) = &s.log {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let shadow = s.shadow().filter(|sh| sh.origin.version != scorer.origin.version);
        let shadow_inputs = shadow.as_ref().map(|sh| shadow_columns(&scorer, sh, &parsed.columns));
        log.record(Entry {
            request_id: id.0.clone(),
            at: at.clone(),
            route,
            scorer: scorer.clone(),
            rows: parsed.rows,
            novel: parsed.novel,
            inputs: parsed.columns,
            scored,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        if let (Some(shadow), Some(columns)) = (shadow, shadow_inputs) {
            shadow_score(s.clone(), shadow, columns, (id.0.clone(), at));
        }
    }
    axum::Json(body).into_response()
}

/// The champion's conformed columns in the shadow's signature order, by name (a column only the
/// shadow takes is null).
fn shadow_columns(
    champion: &Scorer,
    shadow: &Scorer,
    columns: &[Vec<mlops_core::Value>],
) -> Vec<Vec<mlops_core::Value>> {
    let rows = columns.first().map_or(0, Vec::len);
    shadow
        .inputs()
        .iter()
        .map(|c| match champion.inputs().iter().position(|k| k.name == c.name) {
            Some(j) => columns[j].clone(),
            None => vec![mlops_core::Value::Null; rows],
        })
        .collect()
}

/// Scores a request's rows with the shadow model off the request's path and logs its
/// predictions under its own version (route `shadow`); a failure is counted, never answered.
fn shadow_score(
    s: Shared,
    shadow: Arc<Scorer>,
    columns: Vec<Vec<mlops_core::Value>>,
    (request_id, at): (String, String),
) {
    tokio::task::spawn_blocking(move || {
        let Some(log) = &s.log else { return };
        let started = Instant::now();
        let rows = columns.first().map_or(0, Vec::len);
        let mut conformed: Vec<mlops_core::Row> = (0..rows)
            .map(|i| {
                shadow.inputs().iter().zip(&columns).map(|(c, values)| (c.name.clone(), values[i].clone())).collect()
            })
            .collect();
        match shadow.score(&mut conformed) {
            Ok(scored) => log.record(Entry {
                request_id,
                at,
                route: "shadow",
                scorer: shadow.clone(),
                rows,
                novel: vec![crate::scorer::Novel::default(); shadow.inputs().len()],
                inputs: columns,
                scored,
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            }),
            Err(e) => {
                tracing::warn!(version = ?shadow.origin.version, error = %e, "the shadow model failed on a request")
            }
        }
    });
}

/// Loads the shadow alias's version (or drops the shadow when the alias is gone).
fn reload_shadow(s: &AppState) {
    let Some(source) = &s.shadow_source else { return };
    let served = s.shadow().map(|sh| sh.origin.version);
    let loaded = match source.resolve() {
        Ok(origin) if served == Some(origin.version) => return,
        Ok(_) => source.load(s.config.unknown_categories).ok().map(Arc::new),
        Err(_) => None,
    };
    let now = loaded.as_ref().map(|l| l.origin.version);
    if now != served {
        tracing::info!(version = ?now.flatten(), "shadow model");
    }
    *s.shadow.write().unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

async fn invocations(
    State(s): State<Shared>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let max = s.config.max_batch_rows;
    let ctx = Call { route: "/invocations", style: Style::Mlflow, id: &id };
    let answer = |scorer: &Scorer, scored: &Scored, ()| protocol::mlflow_response(scorer, scored);
    match content_type(&headers).as_str() {
        "application/json" => {
            serve_rows(&s, ctx, body, |sc, b| protocol::mlflow_json(sc, b, max).map(|p| (p, ())), answer)
        }
        "text/csv" => serve_rows(&s, ctx, body, |sc, b| protocol::csv(sc, b, max).map(|p| (p, ())), answer),
        other => {
            s.metrics.rejected("media_type");
            log_refusal(&s, ("/invocations", &id), 415, "media_type", None, Instant::now());
            let found = if other.is_empty() { "none".to_string() } else { format!("`{other}`") };
            error(
                Style::Mlflow,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_REQUEST",
                &format!("content type {found} is not supported; send application/json or text/csv"),
                None,
            )
        }
    }
}

async fn ping() -> &'static str {
    "\n"
}

/// 200 `healthy`, or 503 `unhealthy` with the problem while predictions are answered but lost
/// (the prediction log's store was removed).
async fn health(State(s): State<Shared>) -> Response {
    let m = s.current();
    let problem = s.log.as_ref().and_then(PredictionLog::problem);
    let mut body = json!({
        "status": if problem.is_some() { "unhealthy" } else { "healthy" },
        "model_loaded": true,
        "model": m.origin.name,
        "version": m.origin.version,
    });
    match problem {
        Some(p) => {
            body["problem"] = json!(p);
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
        None => axum::Json(body).into_response(),
    }
}

fn oip_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::Float => "FP64",
        DType::Int => "INT64",
        DType::Bool => "BOOL",
        DType::Str | DType::Date | DType::Datetime => "BYTES",
    }
}

async fn oip_server() -> Response {
    axum::Json(json!({ "name": "mlops-toolkit", "version": VERSION, "extensions": [] })).into_response()
}

async fn oip_ready() -> Response {
    axum::Json(json!({ "ready": true })).into_response()
}

/// The served model when `name` (and `version`) match it, else why not.
fn oip_model(s: &AppState, name: &str, version: Option<&str>) -> std::result::Result<Arc<Scorer>, String> {
    let m = s.current();
    let served = m.origin.version.map_or_else(|| "1".to_string(), |v| v.to_string());
    if name != m.origin.name || version.is_some_and(|v| v != served) {
        let asked = version.map_or_else(|| name.to_string(), |v| format!("{name} version {v}"));
        return Err(format!(
            "model `{asked}` is not served here; this server serves `{}` version {served}",
            m.origin.name
        ));
    }
    Ok(m)
}

fn not_served(message: &str) -> Response {
    error(Style::Oip, StatusCode::NOT_FOUND, "NOT_FOUND", message, None)
}

fn oip_metadata_of(s: &AppState, name: &str, version: Option<&str>) -> Response {
    let m = match oip_model(s, name, version) {
        Ok(m) => m,
        Err(e) => return not_served(&e),
    };
    let inputs: Vec<Json> =
        m.inputs().iter().map(|c| json!({ "name": c.name, "datatype": oip_dtype(c.dtype), "shape": [-1] })).collect();
    let outputs = if m.task() == TaskKind::Regression {
        json!([{ "name": "prediction", "datatype": "FP64", "shape": [-1] }])
    } else {
        json!([
            { "name": "label", "datatype": "BYTES", "shape": [-1] },
            { "name": "probabilities", "datatype": "FP64", "shape": [-1, m.classes().len()] },
        ])
    };
    let versions: Vec<String> = m.origin.version.map(|v| v.to_string()).into_iter().collect();
    axum::Json(json!({
        "name": m.origin.name,
        "versions": versions,
        "platform": "mlops-toolkit",
        "inputs": inputs,
        "outputs": outputs,
    }))
    .into_response()
}

async fn oip_metadata(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    oip_metadata_of(&s, &name, None)
}

async fn oip_metadata_version(State(s): State<Shared>, UrlPath((name, v)): UrlPath<(String, String)>) -> Response {
    oip_metadata_of(&s, &name, Some(&v))
}

async fn oip_model_ready(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    match oip_model(&s, &name, None) {
        Ok(m) => axum::Json(json!({ "name": m.origin.name, "ready": true })).into_response(),
        Err(e) => not_served(&e),
    }
}

async fn oip_model_ready_version(State(s): State<Shared>, UrlPath((name, v)): UrlPath<(String, String)>) -> Response {
    match oip_model(&s, &name, Some(&v)) {
        Ok(m) => axum::Json(json!({ "name": m.origin.name, "ready": true })).into_response(),
        Err(e) => not_served(&e),
    }
}

fn oip_infer_of(
    s: &Shared,
    id: &RequestId,
    (name, version): (&str, Option<&str>),
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = oip_model(s, name, version) {
        return not_served(&e);
    }
    let max = s.config.max_batch_rows;
    serve_rows(
        s,
        Call { route: "/v2/models/{name}/infer", style: Style::Oip, id },
        body,
        |sc, b| protocol::oip(sc, b, max),
        |sc, scored, req| protocol::oip_response(sc, scored, &req),
    )
}

async fn oip_infer(
    State(s): State<Shared>,
    Extension(id): Extension<RequestId>,
    UrlPath(name): UrlPath<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    oip_infer_of(&s, &id, (&name, None), body)
}

async fn oip_infer_version(
    State(s): State<Shared>,
    Extension(id): Extension<RequestId>,
    UrlPath((name, v)): UrlPath<(String, String)>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    oip_infer_of(&s, &id, (&name, Some(&v)), body)
}

async fn predict(
    State(s): State<Shared>,
    Extension(id): Extension<RequestId>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let bands = s.config.confidence;
    serve_rows(
        &s,
        Call { route: "/predict", style: Style::Mlflow, id: &id },
        body,
        |sc, b| protocol::predict_one(sc, b).map(|p| (p, ())),
        |sc, scored, ()| {
            let mut out = protocol::predict_row(sc, scored, 0, &bands);
            out["model_version"] = json!(sc.origin.version);
            out["request_id"] = json!(id.0);
            out
        },
    )
}

async fn predict_batch(
    State(s): State<Shared>,
    Extension(id): Extension<RequestId>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let bands = s.config.confidence;
    let max = s.config.max_batch_rows;
    serve_rows(
        &s,
        Call { route: "/predict/batch", style: Style::Mlflow, id: &id },
        body,
        |sc, b| protocol::predict_batch(sc, b, max).map(|p| (p, ())),
        |sc, scored, ()| {
            let rows: Vec<Json> =
                (0..scored.predicted.len()).map(|i| protocol::predict_row(sc, scored, i, &bands)).collect();
            json!({ "predictions": rows, "model_version": sc.origin.version, "request_id": id.0 })
        },
    )
}

/// `POST /feedback`: the actual outcomes of logged predictions, by request id and row (a list,
/// or an object with the list under `actuals`), recorded beside the prediction log.
async fn feedback(State(s): State<Shared>, body: std::result::Result<Bytes, BytesRejection>) -> Response {
    let fail = |status, code, message: &str| error(Style::Mlflow, status, code, message, None);
    let Some(log) = &s.log else {
        return fail(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            "this server keeps no prediction log, so it takes no feedback",
        );
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return fail(e.status(), "BAD_REQUEST", &e.body_text()),
    };
    let shape =
        "send a list of {\"request_id\", \"row\", \"actual\"} objects, or an object with the list under \"actuals\"";
    let list = match serde_json::from_slice::<Json>(&body) {
        Ok(Json::Array(items)) => Json::Array(items),
        Ok(Json::Object(mut o)) if o.contains_key("actuals") => o.remove("actuals").unwrap_or(Json::Null),
        Ok(_) => return fail(StatusCode::BAD_REQUEST, "BAD_REQUEST", shape),
        Err(e) => return fail(StatusCode::BAD_REQUEST, "BAD_REQUEST", &format!("the body is not JSON: {e}")),
    };
    let actuals: Vec<crate::Actual> = match serde_json::from_value(list) {
        Ok(a) => a,
        Err(e) => return fail(StatusCode::BAD_REQUEST, "BAD_REQUEST", &format!("{e}; {shape}")),
    };
    // The served model says what an actual is: a label, or a number (as JSON, so that the
    // OpenAPI document can say it exactly).
    let regression = s.current().task() == TaskKind::Regression;
    for (index, a) in actuals.iter().enumerate() {
        let ok = match &a.actual {
            Json::Number(n) => n.as_f64().is_some_and(f64::is_finite),
            Json::String(_) | Json::Bool(_) => !regression,
            _ => false,
        };
        if !ok {
            let want = if regression {
                "a finite number (the model predicts values)"
            } else {
                "a label: text, a number or a boolean"
            };
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({
                    "error_code": "INVALID_PARAMETER_VALUE",
                    "message": format!("actual {index} (request {}, row {}): {} is not {want}", a.request_id, a.row, a.actual),
                    "index": index, "request_id": a.request_id, "row": a.row,
                })),
            )
                .into_response();
        }
    }
    let store = log.store().to_path_buf();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    match tokio::task::spawn_blocking(move || crate::record_feedback(&store, &actuals, &at)).await {
        Ok(Ok(Ok(outcome))) => axum::Json(outcome).into_response(),
        Ok(Ok(Err(bad))) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "error_code": "INVALID_PARAMETER_VALUE", "message": bad.to_string(),
                "index": bad.index, "request_id": bad.request_id, "row": bad.row,
            })),
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "feedback not recorded");
            fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "TEMPORARILY_UNAVAILABLE",
                &format!("the store could not record feedback: {e}"),
            )
        }
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", &format!("recording feedback failed: {e}")),
    }
}

async fn model_info(State(s): State<Shared>) -> Response {
    let m = s.current();
    let c = &m.package.contents;
    axum::Json(json!({
        "model_type": c.info.family,
        "name": m.origin.name,
        "version": m.origin.version,
        "alias": m.origin.alias,
        "uri": m.origin.uri,
        "task": c.info.task,
        "target": c.info.target,
        "classes": c.info.classes,
        "params": c.info.params,
        "features_count": c.info.features.len(),
        "signature": c.signature,
        "metrics": c.metrics,
        "lineage": c.lineage,
        "loaded_at": m.loaded_at,
        "package": m.origin.path,
    }))
    .into_response()
}

async fn metrics(State(s): State<Shared>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.render()).into_response()
}

async fn openapi(State(s): State<Shared>) -> Response {
    axum::Json(crate::openapi::document(&s.current())).into_response()
}

async fn not_found(req: Request) -> Response {
    error(
        Style::Mlflow,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("no route {} {} (see GET /openapi.json)", req.method(), req.uri().path()),
        None,
    )
}

async fn admin_reload(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Some(token) = &s.admin_token else {
        return error(
            Style::Mlflow,
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!("reload is disabled: start the server with the token in ${}", s.config.admin_token_env),
            None,
        );
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return error(
            Style::Mlflow,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "`Authorization: Bearer <token>` is missing or wrong",
            None,
        );
    }
    match reload(&s, true).await {
        Ok((previous, now, changed)) => {
            axum::Json(json!({ "reloaded": changed, "previous_version": previous, "version": now })).into_response()
        }
        Err(e) => error(
            Style::Mlflow,
            StatusCode::CONFLICT,
            "RELOAD_FAILED",
            &format!("the model was not reloaded (the current one keeps serving): {e}"),
            None,
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Loads what the source points at now and swaps it in if it differs from the served model (or
/// always, when `force` and the source is a package path). In-flight requests finish on the model
/// they started with.
async fn reload(s: &Shared, force: bool) -> Result<(Option<u32>, Option<u32>, bool)> {
    let _one_at_a_time = s.reloading.lock().await;
    let current = s.current();
    let source = s.source.clone();
    let policy = s.config.unknown_categories;
    let served = current.origin.clone();
    let loaded = tokio::task::spawn_blocking(move || -> Result<Option<Scorer>> {
        let origin = source.resolve()?;
        let same = origin.version == served.version && origin.path == served.path;
        if same && !(force && matches!(source, ModelSource::Package(_))) {
            return Ok(None);
        }
        let package = step16_package::load(&origin.path)?;
        Scorer::new(package, origin, policy).map(Some)
    })
    .await
    .map_err(|e| ServeError::Model(format!("reload: {e}")));
    let loaded = match loaded.and_then(|r| r) {
        Ok(l) => l,
        Err(e) => {
            s.metrics.reload(false);
            tracing::warn!(error = %e, "reload failed; the current model keeps serving");
            return Err(e);
        }
    };
    let previous = current.origin.version;
    let Some(scorer) = loaded else { return Ok((previous, previous, false)) };
    let now = scorer.origin.version;
    s.metrics.model(&scorer.origin.name, now.unwrap_or(0));
    *s.model.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(scorer);
    s.metrics.reload(true);
    tracing::info!(?previous, version = ?now, "model reloaded");
    Ok((previous, now, true))
}

/// Checks every `secs` seconds whether the alias (and the shadow alias) moved.
async fn poll(s: Shared, secs: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let _ = reload(&s, false).await;
        let shadowing = s.clone();
        let _ = tokio::task::spawn_blocking(move || reload_shadow(&shadowing)).await;
    }
}
