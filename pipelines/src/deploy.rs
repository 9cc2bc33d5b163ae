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
