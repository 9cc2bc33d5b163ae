//! The deployment run's config (`configs/deployment.yaml`) and serving: resolve the model by
//! alias, then serve it (step 20). Containerizing and deploying join it with their step.

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
        if let Err(e) = config.serve.check() {
            let message = e.to_string();
            let message = message.strip_prefix("serve config: ").unwrap_or(&message).to_string();
            return Err(PipelineError::Config(mlops_core::config::invalid(path, "serve".to_string(), message)));
        }
        Ok(config)
    }

    /// The config with relative paths resolved against `base`.
    pub fn resolved(mut self, base: &Path) -> DeploymentConfig {
        for p in [&mut self.store, &mut self.artifacts] {
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

/// Step 18 in the deployment run: resolves `config.model` in the registry and writes the build
/// context for its package into `out` (the toolkit's sources from `source_root`).
pub fn containerize(
    config: &DeploymentConfig,
    out: &Path,
    source_root: &Path,
    force: bool,
) -> Result<(step18_containerize::ImageFacts, Vec<String>)> {
    let err = |e| PipelineError::step("containerize", e);
    let origin = config.source().resolve().map_err(err)?;
    let version = origin.version.ok_or_else(|| {
        PipelineError::step(
            "containerize",
            crate::train::TargetError(format!(
                "{}: containerize a registered model (models:/NAME@ALIAS), not a package path",
                origin.uri
            )),
        )
    })?;
    let package = step16_package::load(&origin.path).map_err(|e| PipelineError::step("containerize", e))?;
    let manifest = std::fs::read(origin.path.join("manifest.json"))
        .map_err(|e| PipelineError::step("containerize", mlops_core::CoreError::io("cannot read", &origin.path, e)))?;
    let lineage = &package.contents.lineage;
    let facts = step18_containerize::ImageFacts {
        model: origin.name.clone(),
        version,
        uri: origin.uri.clone(),
        package_sha256: mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&manifest)),
        dataset_version: lineage.dataset_version.clone(),
        source_commit: lineage.source_commit.clone(),
        toolkit_version: env!("CARGO_PKG_VERSION").to_string(),
        max_body_bytes: config.serve.max_body_bytes,
        request_timeout_ms: config.serve.request_timeout_ms,
    };
    for needed in ["Cargo.toml", "Cargo.lock", "crates", "pipelines"] {
        if !source_root.join(needed).exists() {
            return Err(PipelineError::step(
                "containerize",
                crate::train::TargetError(format!(
                    "{}: not the toolkit's checkout (no {needed}); run from the repository root, the image builds the toolkit from its sources",
                    source_root.display()
                )),
            ));
        }
    }
    let files =
        step18_containerize::write_context(out, &config.containerize, &facts, (&origin.path, source_root), force)
            .map_err(|e| PipelineError::step("containerize", e))?;
    Ok((facts, files))
}
