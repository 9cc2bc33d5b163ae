//! The deployment run's config (`configs/deployment.yaml`): resolve the model by alias, then
//! containerize it (step 18), deploy it (step 19: Kubernetes manifests or a local process) and
//! serve it (step 20).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use step20_serve::{ModelSource, ServeConfig};

use crate::error::{PipelineError, Result};

/// `configs/deployment.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// What to serve: `models:/NAME@ALIAS`, `models:/NAME/VERSION`, `models:/NAME` or a package
    /// directory.
    #[serde(default = "default_model")]
    pub model: String,
    /// The SQLite store: the registry, and where the prediction log goes.
    #[serde(default = "crate::default_store")]
    pub store: PathBuf,
    /// The registry's artifact folder.
    #[serde(default = "default_artifacts")]
    pub artifacts: PathBuf,
    /// The server (step 20).
    #[serde(default)]
    pub serve: ServeConfig,
    /// The container build context (step 18).
    #[serde(default)]
    pub containerize: step18_containerize::ContainerizeParams,
    /// The Kubernetes manifests (step 19).
    #[serde(default)]
    pub kubernetes: step19_deploy::KubernetesParams,
    /// Local deployments (step 19).
    #[serde(default)]
    pub local: step19_deploy::LocalParams,
}

fn default_model() -> String {
    "models:/penguins-species@champion".into()
}

fn default_artifacts() -> PathBuf {
    PathBuf::from("models/artifacts")
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            model: default_model(),
            store: crate::default_store(),
            artifacts: default_artifacts(),
            serve: ServeConfig::default(),
            containerize: step18_containerize::ContainerizeParams::default(),
            kubernetes: step19_deploy::KubernetesParams::default(),
            local: step19_deploy::LocalParams::default(),
        }
    }
}

/// The default deployment config file.
pub fn default_deployment_config() -> PathBuf {
    PathBuf::from("configs/deployment.yaml")
}

impl DeploymentConfig {
    /// Reads and type-checks a config file; errors name the file, the key path and the line.
    pub fn load(path: &Path) -> Result<DeploymentConfig> {
        let config: DeploymentConfig = mlops_core::config::load_yaml(path).map_err(PipelineError::Config)?;
        if let Err(step18_containerize::ContainerizeError::Invalid { key, message }) = config.containerize.check() {
            return Err(PipelineError::Config(mlops_core::config::invalid(
                path,
                format!("containerize.{key}"),
                message,
            )));
        }
        if let Err(step19_deploy::DeployError::Invalid { key, message }) = config.kubernetes.check() {
            return Err(PipelineError::Config(mlops_core::config::invalid(path, format!("kubernetes.{key}"), message)));
        }
        if config.local.ready_timeout_seconds == 0 {
            return Err(PipelineError::Config(mlops_core::config::invalid(
                path,
                "local.ready_timeout_seconds".to_string(),
                "must be at least 1",
            )));
        }
        if let Err(e) = config.serve.check() {
            let message = e.to_string();
            let message = message.strip_prefix("serve config: ").unwrap_or(&message).to_string();
            return Err(PipelineError::Config(mlops_core::config::invalid(path, "serve".to_string(), message)));
        }
        Ok(config)
    }

    /// The config with relative paths resolved against `base`.
    pub fn resolved(mut self, base: &Path) -> DeploymentConfig {
        for p in [&mut self.store, &mut self.artifacts, &mut self.local.logs] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if !self.model.starts_with("models:/") && Path::new(&self.model).is_relative() {
            self.model = base.join(&self.model).display().to_string();
        }
        self
    }

    /// Where the model comes from.
    pub fn source(&self) -> ModelSource {
        ModelSource::parse(&self.model, &self.store, &self.artifacts)
    }
}

/// A registered model resolved for deployment.
pub struct Resolved {
    /// Where it was found.
    pub origin: step20_serve::Origin,
    /// Its version.
    pub version: u32,
    /// The loaded package.
    pub package: step16_package::Package,
    /// SHA-256 of its manifest (the registry's content address).
    pub package_sha256: String,
}

/// Resolves `uri` in the registry of `config` (an alias that resolves to nothing, a retired
/// version or a package path are refused) and loads its package.
pub fn registered(config: &DeploymentConfig, uri: &str, step: &'static str) -> Result<Resolved> {
    let err = |e| PipelineError::step(step, e);
    let origin = ModelSource::parse(uri, &config.store, &config.artifacts).resolve().map_err(err)?;
    let version = origin.version.ok_or_else(|| PipelineError::Deploy {
        step,
        message: format!(
            "{}: {step} a registered model (models:/NAME@ALIAS or models:/NAME/VERSION), not a package path",
            origin.uri
        ),
    })?;
    let package = step16_package::load(&origin.path).map_err(|e| PipelineError::step(step, e))?;
    let manifest_path = origin.path.join("manifest.json");
    let manifest = std::fs::read(&manifest_path)
        .map_err(|e| PipelineError::step(step, mlops_core::CoreError::io("cannot read", &manifest_path, e)))?;
    let package_sha256 = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&manifest));
    Ok(Resolved { origin, version, package, package_sha256 })
}

/// Step 18 in the deployment run: resolves `config.model` in the registry and writes the build
/// context for its package into `out` (the toolkit's sources from `source_root`).
pub fn containerize(
    config: &DeploymentConfig,
    out: &Path,
    source_root: &Path,
    force: bool,
) -> Result<(step18_containerize::ImageFacts, Vec<String>)> {
    let Resolved { origin, version, package, package_sha256 } = registered(config, &config.model, "containerize")?;
    let lineage = &package.contents.lineage;
    let facts = step18_containerize::ImageFacts {
        model: origin.name.clone(),
        version,
        uri: origin.uri.clone(),
        package_sha256,
        dataset_version: lineage.dataset_version.clone(),
        source_commit: lineage.source_commit.clone(),
        toolkit_version: env!("CARGO_PKG_VERSION").to_string(),
        max_body_bytes: config.serve.max_body_bytes,
        request_timeout_ms: config.serve.request_timeout_ms,
    };
    for needed in ["Cargo.toml", "Cargo.lock", "crates", "pipelines"] {
        if !source_root.join(needed).exists() {
            return Err(PipelineError::Deploy {
                step: "containerize",
                message: format!(
                    "{}: not the toolkit's checkout (no {needed}); run from the repository root, the image builds the toolkit from its sources",
                    source_root.display()
                ),
            });
        }
    }
    let files =
        step18_containerize::write_context(out, &config.containerize, &facts, (&origin.path, source_root), force)
            .map_err(|e| PipelineError::step("containerize", e))?;
    Ok((facts, files))
}

/// The server's settings inside the container: what the ConfigMap mounts as
/// `/etc/mlops/deployment.yaml`.
#[derive(Serialize)]
struct ContainerConfig<'a> {
    model: &'a str,
    store: String,
    serve: ServeConfig,
}

/// What [`kubernetes`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestsWritten {
    /// The stable model.
    pub model: step19_deploy::ManifestFacts,
    /// The canary, when enabled.
    pub canary: Option<step19_deploy::CanaryFacts>,
    /// The files, in the order to apply them.
    pub files: Vec<String>,
}

/// Step 19 for Kubernetes: resolves `config.model` (and the canary's model when the canary is
/// on) and writes the manifests into `out`.
pub fn kubernetes(config: &DeploymentConfig, out: &Path, force: bool) -> Result<ManifestsWritten> {
    let step = "deploy kubernetes";
    let stable = registered(config, &config.model, step)?;
    let canary = if config.kubernetes.canary.enabled {
        let c = registered(config, &config.kubernetes.canary.model, step)?;
        if c.origin.name != stable.origin.name {
            return Err(PipelineError::Deploy {
                step,
                message: format!(
                    "kubernetes.canary.model {} is model `{}`; the canary must be another version of `{}`",
                    config.kubernetes.canary.model, c.origin.name, stable.origin.name
                ),
            });
        }
        Some(step19_deploy::CanaryFacts { version: c.version, uri: c.origin.uri, package_sha256: c.package_sha256 })
    } else {
        None
    };
    let c = &config.containerize;
    let container = ContainerConfig {
        model: step18_containerize::MODEL_DIR,
        store: format!("{}/predictions.db", c.data_dir),
        serve: ServeConfig {
            host: "0.0.0.0".into(),
            port: c.port,
            // The image holds one package: there is no registry alias to follow.
            poll_seconds: 0,
            // A token never goes into a ConfigMap: the pod reads it from a Secret
            // (`kubernetes.admin_token_secret`) through `admin_token_env`.
            admin_token: None,
            ..config.serve.clone()
        },
    };
    let yaml = serde_yaml::to_string(&container).map_err(|e| PipelineError::Encode {
        step,
        what: "the server's settings",
        message: e.to_string(),
    })?;
    let facts = step19_deploy::ManifestFacts {
        model: stable.origin.name.clone(),
        version: stable.version,
        uri: stable.origin.uri.clone(),
        package_sha256: stable.package_sha256,
        port: c.port,
        uid: c.uid,
        data_dir: c.data_dir.clone(),
        config_yaml: format!(
            "# The server's settings in the container (written by `mlops deploy kubernetes`).\n{yaml}"
        ),
        admin_token_env: Some(config.serve.admin_token_env.clone()).filter(|v| !v.is_empty()),
        shutdown_grace_seconds: config.serve.shutdown_grace_seconds,
    };
    let files = step19_deploy::write_manifests(out, &config.kubernetes, &facts, canary.as_ref(), force)
        .map_err(|e| PipelineError::step(step, e))?;
    Ok(ManifestsWritten { model: facts, canary, files })
}

/// Step 19 on this machine: resolves `config.model`, pins its version and deploys it on
/// `config.serve`'s host and port with `program` (the `mlops` binary) serving it. `config_file`
/// is passed on to the server when there is one.
pub fn deploy_local(
    config: &DeploymentConfig,
    config_file: Option<&Path>,
    program: &Path,
    log_dir: &Path,
) -> Result<step19_deploy::DeployOutcome> {
    let step = "deploy local";
    let source = config.source();
    let origin = source.resolve().map_err(|e| PipelineError::step(step, e))?;
    // A registered model is pinned to the version the alias points at now: the deployment,
    // not the alias, decides what serves.
    let uri = match origin.version {
        Some(v) => format!("models:/{}/{v}", origin.name),
        None => origin.path.display().to_string(),
    };
    let ip: std::net::IpAddr = config.serve.host.parse().map_err(|_| PipelineError::Deploy {
        step,
        message: format!("serve.host {:?}: give an IP address such as 127.0.0.1", config.serve.host),
    })?;
    let endpoint = std::net::SocketAddr::new(ip, config.serve.port);
    let text = |p: &Path| p.display().to_string();
    let mut global = vec!["--quiet".to_string(), "--log-dir".to_string(), text(log_dir)];
    let mut server_args = global.clone();
    server_args.push("serve".into());
    if let Some(f) = config_file {
        server_args.extend(["--config".to_string(), text(f)]);
    }
    server_args.extend([
        "--model".to_string(),
        uri.clone(),
        "--store".to_string(),
        text(&config.store),
        "--artifacts".to_string(),
        text(&config.artifacts),
    ]);
    global.extend([
        "deploy".to_string(),
        "router".to_string(),
        "--store".to_string(),
        text(&config.store),
        "--max-body".to_string(),
        config.serve.max_body_bytes.to_string(),
        // The server answers 503 at its own timeout; the router waits a little longer.
        "--timeout-ms".to_string(),
        (config.serve.request_timeout_ms + 5_000).to_string(),
    ]);
    let launch = step19_deploy::Launch {
        program: program.to_path_buf(),
        server_args,
        router_args: global,
        grace: std::time::Duration::from_secs(config.serve.shutdown_grace_seconds + 5),
    };
    let target = step19_deploy::Target { endpoint, model: origin.name, version: origin.version, uri };
    step19_deploy::deploy_local(&config.store, &config.local, &target, &launch)
        .map_err(|e| PipelineError::step(step, e))
}
