//! Unit tests: the manifests' content and checks; the local deployment's processes.

use super::*;

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
        let err = manifests(&p, &facts(), None).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    };
    check(&|p| p.namespace = "Prod".into(), "`namespace`");
    check(&|p| p.replicas = 0, "`replicas`");
    check(&|p| p.resources.limits.memory = Some("lots".into()), "`resources.limits.memory`");
    check(&|p| p.max_surge = "0".into(), "`max_unavailable`");
    check(&|p| p.image = Some("repo/model:latest".into()), "`image`");
    check(
        &|p| {
            p.canary.enabled = true;
            p.canary.weight = 80;
        },
        "`canary.weight`",
    );
    check(&|p| p.canary.enabled = true, "`canary.model`");
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
    assert!(write_manifests(&out, &bad, &facts(), None, true).is_err());
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

#[test]
fn one_deploy_per_endpoint_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Deployments::open(&dir.path().join("store.db")).unwrap();
    let row = Deployment {
        id: 0,
        endpoint: "127.0.0.1:8080".into(),
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
    };
    let first = db.claim(&row, |_| true).unwrap();
    // While the first deployer runs, a second claim on the endpoint is refused by name.
    let err = db.claim(&row, |d| d.id == first).unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:8080: another deployment is in progress"), "{err}");
    // Another endpoint, or the first deployer gone: allowed.
    assert!(db.claim(&Deployment { endpoint: "127.0.0.1:9090".into(), ..row.clone() }, |_| true).is_ok());
    assert!(db.claim(&row, |_| false).is_ok());
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
