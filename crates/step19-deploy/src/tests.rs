//! Unit tests: the manifests' content and checks; the local deployment's processes; the router's
//! answers (forwarded, 413, 502, 503, 504) against real servers on loopback.

use mlops_core::testing::TestStore;

use super::*;

mlops_core::store_tests!(one_deploy_per_endpoint_at_a_time, deployments_are_recorded_from_inside_a_server_s_runtime);

fn facts() -> ManifestFacts {
    ManifestFacts {
        model: "penguins-species".into(),
        version: 3,
        uri: "models:/penguins-species@champion".into(),
        package_sha256: "ab".repeat(32),
        port: 8080,
        uid: 65532,
        data_dir: "/var/lib/mlops".into(),
        config_yaml: "model: /opt/mlops/model\n".into(),
        admin_token_env: Some("MLOPS_ADMIN_TOKEN".into()),
        shutdown_grace_seconds: 30,
    }
}

#[test]
fn the_deployment_is_locked_down_and_probed_on_the_oip_health_routes() {
    let files = manifests(&KubernetesParams::default(), &facts(), None).unwrap();
    let names: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(names, ["configmap.yaml", "deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"]);
    let dep = &files[1].1;
    for needle in [
        "kind: Deployment",
        "path: /v2/health/live",
        "path: /v2/health/ready",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "- ALL",
        "image: penguins-species:3",
        "type: RollingUpdate",
    ] {
        assert!(dep.contains(needle), "{needle} missing:\n{dep}");
    }
}

#[test]
fn bad_settings_are_refused_by_key() {
    let check = |edit: &dyn Fn(&mut KubernetesParams), key: &str| {
        let mut p = KubernetesParams::default();
        edit(&mut p);
        let err = manifests(&p, &facts(), None).unwrap_err();
        assert!(matches!(&err, DeployError::Invalid { key: k, .. } if k == key), "{key}: {err}");
        assert!(err.to_string().contains(&format!("`{key}`")), "{key}: {err}");
    };
    check(&|p| p.namespace = "Prod".into(), "namespace");
    check(&|p| p.replicas = 0, "replicas");
    check(&|p| p.resources.limits.memory = Some("lots".into()), "resources.limits.memory");
    check(&|p| p.max_surge = "0".into(), "max_unavailable");
    check(&|p| p.image = Some("repo/model:latest".into()), "image");
    check(
        &|p| {
            p.canary.enabled = true;
            p.canary.weight = 80;
        },
        "canary.weight",
    );
    check(&|p| p.canary.enabled = true, "canary.model");
}

fn canary() -> CanaryFacts {
    CanaryFacts { version: 4, uri: "models:/penguins-species@challenger".into(), package_sha256: "cd".repeat(32) }
}

/// Everything on: ingress with TLS, a canary weighed at the ingress, an admin token Secret.
fn full() -> KubernetesParams {
    KubernetesParams {
        image: Some("registry.example.com/team/penguins-species".into()),
        ingress: IngressParams { enabled: true, tls_secret: Some("models-tls".into()), ..IngressParams::default() },
        canary: CanaryParams { enabled: true, weight: 10, ..CanaryParams::default() },
        admin_token_secret: Some("penguins-species-admin".into()),
        ..KubernetesParams::default()
    }
}

/// The generated files equal the ones pinned under `tests/snapshots/` (`UPDATE_SNAPSHOTS=1`
/// rewrites them after a deliberate change).
fn snapshot(set: &str, files: &[(String, String)]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(set);
    for (name, text) in files {
        let path = dir.join(name);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            *text, pinned,
            "{set}/{name} changed; if on purpose, rerun with UPDATE_SNAPSHOTS=1 and review the diff"
        );
    }
    let pinned = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(pinned, files.len(), "{set}: a pinned file is no longer generated");
}

/// Every file `write_manifests` writes, README included, as (name, text).
fn written(params: &KubernetesParams, canary: Option<&CanaryFacts>) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k8s");
    let names = write_manifests(&out, params, &facts(), canary, false).unwrap();
    names.into_iter().map(|n| (n.clone(), std::fs::read_to_string(out.join(n)).unwrap())).collect()
}

#[test]
fn generated_manifests_match_their_snapshots() {
    snapshot("default", &written(&KubernetesParams::default(), None));
    snapshot("full", &written(&full(), Some(&canary())));
}

#[test]
fn every_manifest_validates_strictly_with_kubernetes_validate() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (set, files) in [
        ("default", manifests(&KubernetesParams::default(), &facts(), None).unwrap()),
        ("full", manifests(&full(), &facts(), Some(&canary())).unwrap()),
    ] {
        for (name, text) in files {
            let path = dir.path().join(format!("{set}-{name}"));
            std::fs::write(&path, text).unwrap();
            paths.push(path);
        }
    }
    let out = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.37.0"])
        .args(&paths)
        .output()
        .expect("kubernetes-validate is not installed: `make test-deps` installs it (pip package kubernetes-validate)");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate:\n{report}");
    assert!(!report.contains("ERROR") && !report.contains("WARN"), "kubernetes-validate:\n{report}");
    // Each object was checked: one INFO line per document.
    let documents = report.lines().filter(|l| l.starts_with("INFO")).count();
    assert_eq!(documents, paths.len() + 2, "kubernetes-validate:\n{report}");
}

#[test]
fn the_canary_shares_the_service_or_is_weighed_at_the_ingress() {
    // Without an ingress: one Service over both tracks; the canary's share is its share of pods.
    let p = KubernetesParams {
        canary: CanaryParams { enabled: true, weight: 20, ..CanaryParams::default() },
        replicas: 4,
        autoscaling: Autoscaling { enabled: false, ..Autoscaling::default() },
        ..KubernetesParams::default()
    };
    assert_eq!(p.canary_replicas(), 1);
    let files = manifests(&p, &facts(), Some(&canary())).unwrap();
    let selector = |files: &[(String, String)]| {
        let text = &files.iter().find(|(f, _)| f == "service.yaml").unwrap().1;
        let service: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        serde_yaml::to_string(&service["spec"]["selector"]).unwrap()
    };
    assert_eq!(selector(&files), "app.kubernetes.io/name: penguins-species\n");
    let canary_file = &files.iter().find(|(f, _)| f == "canary.yaml").unwrap().1;
    assert!(canary_file.contains("image: penguins-species:4") && canary_file.contains("mlops.io/track: canary"));
    assert!(canary_file.contains("1 of 5 pods"), "{canary_file}");
    // With an ingress: the stable Service keeps to stable pods; the canary Ingress has the weight.
    let files = manifests(&full(), &facts(), Some(&canary())).unwrap();
    assert_eq!(selector(&files), "app.kubernetes.io/name: penguins-species\nmlops.io/track: stable\n");
    let canary_file = &files.iter().find(|(f, _)| f == "canary.yaml").unwrap().1;
    assert!(canary_file.contains("nginx.ingress.kubernetes.io/canary-weight: '10'"), "{canary_file}");
}

#[test]
fn write_manifests_refuses_a_non_empty_directory_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k8s");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let err = write_manifests(&out, &KubernetesParams::default(), &facts(), None, false).unwrap_err().to_string();
    assert!(err.contains("exists and is not empty") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "mine");
    // A bad setting writes nothing either.
    let bad = KubernetesParams { replicas: 0, ..KubernetesParams::default() };
    let err = write_manifests(&out, &bad, &facts(), None, true).unwrap_err();
    assert!(matches!(&err, DeployError::Invalid { key, .. } if key == "replicas"), "{err}");
    assert!(out.join("keep.txt").exists());
    let files = write_manifests(&out, &KubernetesParams::default(), &facts(), None, true).unwrap();
    assert!(files.contains(&"README.md".to_string()) && !out.join("keep.txt").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary directory was left behind");
}

/// `deploy_local` with a "server" that is a shell script: it never answers, or exits at once.
fn attempt(script: &str, timeout: u64) -> (DeployError, Deployments, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let params = LocalParams { ready_timeout_seconds: timeout, drain_ms: 0, logs: dir.path().join("logs") };
    let endpoint = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = Target { endpoint, model: "m".into(), version: Some(2), uri: "models:/m/2".into() };
    // `sh -c SCRIPT` ignores the appended `--host H --port P` (they become $0, $1, ...).
    let launch = Launch {
        program: "sh".into(),
        server_args: vec!["-c".into(), script.into()],
        router_args: vec![],
        grace: std::time::Duration::from_secs(2),
    };
    let err = deploy_local(&store, &params, &target, &launch).unwrap_err();
    (err, Deployments::open(&store).unwrap(), dir)
}

#[test]
fn a_server_that_never_gets_ready_is_stopped_and_recorded_as_failed() {
    let (err, db, _dir) = attempt("sleep 30", 1);
    let message = err.to_string();
    assert!(message.contains("models:/m/2 never got ready") && message.contains("not ready after 1 s"), "{message}");
    let rows = db.history(10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "failed");
    assert!(db.all_serving().unwrap().is_empty());
    // The process is gone (not left running in the background).
    let pid = rows[0].pid.unwrap();
    assert!(!process::alive(pid, ""), "pid {pid} still runs");
}

#[test]
fn a_server_that_exits_is_reported_with_its_last_words() {
    let (err, db, _dir) = attempt("echo 'cannot load the package: checksum mismatch' >&2; exit 3", 30);
    let message = err.to_string();
    assert!(message.contains("exited before answering ready") && message.contains("checksum mismatch"), "{message}");
    assert_eq!(db.history(1).unwrap()[0].status, "failed");
}

fn row_for(endpoint: &str) -> Deployment {
    Deployment {
        id: 0,
        endpoint: endpoint.into(),
        model: "m".into(),
        version: Some(1),
        uri: "models:/m/1".into(),
        backend: "127.0.0.1:40000".into(),
        pid: None,
        router_pid: None,
        status: "starting".into(),
        started_at: "2026-11-27T00:00:00Z".into(),
        ended_at: None,
        message: None,
        log: "x.log".into(),
        deployer_pid: 1,
        restarts: 0,
        command: None,
    }
}

fn one_deploy_per_endpoint_at_a_time(store: &TestStore) {
    let mut db = Deployments::with_store(store.open()).unwrap();
    let row = row_for("127.0.0.1:8080");
    let first = db.claim(&row, |_| true).unwrap();
    // While the first deployer runs, a second claim on the endpoint is refused by name.
    let err = db.claim(&row, |d| d.id == first).unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:8080: another deployment is in progress"), "{err}");
    // Another endpoint, or the first deployer gone: allowed.
    assert!(db.claim(&Deployment { endpoint: "127.0.0.1:9090".into(), ..row.clone() }, |_| true).is_ok());
    assert!(db.claim(&row, |_| false).is_ok());
}

/// The router and the server use the store from inside their async runtime: opening it there,
/// switching, reading and dropping it must work on either backend.
fn deployments_are_recorded_from_inside_a_server_s_runtime(store: &TestStore) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut db = Deployments::with_store(store.open()).unwrap();
        let id = db.claim(&row_for("127.0.0.1:8081"), |_| false).unwrap();
        db.switch(id, None).unwrap();
        db.record(id, "crashed", "exit 9").unwrap();
        let serving = db.serving("127.0.0.1:8081").unwrap().unwrap();
        assert_eq!((serving.id, serving.status.as_str()), (id, "serving"));
        assert_eq!(db.events(id).unwrap()[0].message, "exit 9");
        drop(db);
    });
    let db = Deployments::with_store(store.open()).unwrap();
    assert_eq!(db.all_serving().unwrap().len(), 1);
}

#[test]
fn port_zero_is_refused_for_a_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target { endpoint: "127.0.0.1:0".parse().unwrap(), model: "m".into(), version: None, uri: "p".into() };
    let launch = Launch {
        program: "sh".into(),
        server_args: vec![],
        router_args: vec![],
        grace: std::time::Duration::from_secs(1),
    };
    let params = LocalParams { logs: dir.path().join("logs"), ..LocalParams::default() };
    let err = deploy_local(&dir.path().join("s.db"), &params, &target, &launch).unwrap_err().to_string();
    assert!(err.contains("`port` must not be 0"), "{err}");
}

/// A router on a free loopback port, whose store says `backend` serves its endpoint (or, with
/// `None`, that nothing does).
struct Routed {
    base: String,
    endpoint: std::net::SocketAddr,
    deployment: Option<i64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Routed {
    async fn start(backend: Option<&str>, max_body: usize, timeout: std::time::Duration) -> Routed {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.db");
        let endpoint = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let deployment = backend.map(|backend| {
            let mut db = Deployments::open(&store).unwrap();
            let row = Deployment {
                id: 0,
                endpoint: endpoint.to_string(),
                model: "m".into(),
                version: Some(1),
                uri: "models:/m/1".into(),
                backend: backend.into(),
                pid: None,
                router_pid: None,
                status: "starting".into(),
                started_at: store::now(),
                ended_at: None,
                message: None,
                log: "x.log".into(),
                deployer_pid: std::process::id(),
                restarts: 0,
                command: None,
            };
            let id = db.claim(&row, |_| false).unwrap();
            db.switch(id, None).unwrap();
            id
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_router(endpoint, store, (max_body, timeout), async {
            let _ = rx.await;
        }));
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(endpoint).await.is_err() {
            assert!(!task.is_finished(), "the router stopped before listening on {endpoint}");
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "the router never listened on {endpoint}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(120)).build().unwrap();
        Routed { base: format!("http://{endpoint}"), endpoint, deployment, stop: Some(tx), task, http, _dir: dir }
    }

    /// Status, the `x-mlops-deployment` header and the body (JSON, or the text as a JSON string).
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Option<i64>, serde_json::Value) {
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let id = r.headers().get(DEPLOYMENT_HEADER).and_then(|v| v.to_str().ok()?.parse().ok());
        let text = r.text().await.unwrap();
        (status, id, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

/// Serves `app` on a free loopback port; returns its `host:port`.
async fn backend(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The router's own error body: `error_code` and a message containing `needle`.
fn router_error(body: &serde_json::Value, code: &str, needle: &str) {
    assert_eq!(body["error_code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_forwards_to_the_serving_deployment_and_refuses_a_body_over_the_limit_with_413() {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/echo",
        post(|uri: axum::http::Uri, body: String| async move {
            (axum::http::StatusCode::CREATED, [("x-backend", "yes")], format!("{}|{body}", uri.query().unwrap_or("")))
        }),
    );
    let addr = backend(app).await;
    let router = Routed::start(Some(&addr), 256, std::time::Duration::from_secs(60)).await;
    let echo = format!("{}/echo?q=1", router.base);
    // The backend's answer, status, headers and body, with the deployment that answered.
    let r = router.http.post(&echo).body("x".repeat(256)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers().get("x-backend").and_then(|v| v.to_str().ok()), Some("yes"));
    let id = r.headers().get(DEPLOYMENT_HEADER).and_then(|v| v.to_str().ok()?.parse::<i64>().ok());
    assert_eq!(id, router.deployment);
    assert_eq!(r.text().await.unwrap(), format!("q=1|{}", "x".repeat(256)));
    // One byte over the limit, declared in Content-Length: 413 from the router itself.
    let (status, id, body) = router.send(router.http.post(&echo).body("x".repeat(257))).await;
    assert_eq!((status, id), (413, None), "{body}");
    router_error(&body, "BAD_REQUEST", "the request body is over 256 bytes");
    // The same without a Content-Length (chunked): found while reading, the same 413.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = tokio::net::TcpStream::connect(router.endpoint).await.unwrap();
    let chunk = "y".repeat(1000);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(60), raw.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("the request body is over 256 bytes"), "{answer}");
    // Still forwarding.
    let (status, id, _) = router.send(router.http.post(&echo).body("z")).await;
    assert_eq!((status, id), (201, router.deployment));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_deployment_serving_the_router_answers_503_naming_the_endpoint() {
    let router = Routed::start(None, 1024, std::time::Duration::from_secs(60)).await;
    for request in [
        router.http.get(format!("{}/health", router.base)),
        router.http.post(format!("{}/invocations", router.base)).body("{}"),
    ] {
        let (status, id, body) = router.send(request).await;
        assert_eq!((status, id), (503, None), "{body}");
        router_error(&body, "UNAVAILABLE", &format!("no deployment is serving {}", router.endpoint));
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_is_down_gets_503_and_one_that_breaks_off_its_answer_502() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Nothing listens on the backend's port: nothing serves for now (503, retry later).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = closed.local_addr().unwrap().to_string();
    drop(closed);
    let router = Routed::start(Some(&down), 1024, std::time::Duration::from_secs(60)).await;
    let (status, id, body) = router.send(router.http.get(format!("{}/health", router.base))).await;
    assert_eq!((status, id), (503, None), "{body}");
    router_error(&body, "UNAVAILABLE", &format!("the server behind {} did not answer", router.endpoint));
    router.stop().await;
    // A backend that sends its head, then closes half-way through the announced body.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let broken = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial").await;
            });
        }
    });
    let router = Routed::start(Some(&broken), 1024, std::time::Duration::from_secs(60)).await;
    let (status, id, body) = router.send(router.http.get(format!("{}/health", router.base))).await;
    assert_eq!((status, id), (502, None), "{body}");
    router_error(&body, "UNAVAILABLE", &format!("the server behind {} broke off its answer", router.endpoint));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_slower_than_the_timeout_gets_504() {
    use axum::routing::get;
    let app = axum::Router::new().route("/slow", get(std::future::pending::<&'static str>));
    let addr = backend(app).await;
    // The route never answers, so the short timeout is reached however slow the machine.
    let router = Routed::start(Some(&addr), 1024, std::time::Duration::from_millis(500)).await;
    let (status, id, body) = router.send(router.http.get(format!("{}/slow", router.base))).await;
    assert_eq!((status, id), (504, None), "{body}");
    router_error(&body, "UNAVAILABLE", "the server did not answer in time");
    router.stop().await;
}

/// A store written before restarts were recorded gets the new columns on open; its rows read
/// with no restarts and no command line.
#[test]
fn a_deployments_table_from_before_restarts_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE deployments (id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, model TEXT NOT NULL,
            version INTEGER, uri TEXT NOT NULL, backend TEXT NOT NULL, pid INTEGER, router_pid INTEGER,
            status TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, message TEXT, log TEXT NOT NULL,
            deployer_pid INTEGER NOT NULL);
         INSERT INTO deployments (endpoint, model, uri, backend, status, started_at, log, deployer_pid)
            VALUES ('127.0.0.1:8080', 'm', 'models:/m/1', '127.0.0.1:40000', 'serving', '2026-01-01T00:00:00Z', 'x.log', 1);",
    )
    .unwrap();
    drop(conn);
    let db = Deployments::open(&path).unwrap();
    let d = db.serving("127.0.0.1:8080").unwrap().unwrap();
    assert_eq!((d.restarts, d.command), (0, None));
    assert!(db.events(d.id).unwrap().is_empty());
}
