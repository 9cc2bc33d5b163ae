//! The run configurations: the data config (`configs/data.yaml`: sources and the settings of
//! steps 1-6) and the training config (`configs/training.yaml`: steps 7-17). Each step crate owns
//! its section's type; this file only composes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlops_core::Seed;
use serde::{Deserialize, Serialize};
use step01_ingest::SourceConfig;
use step02_validate::Schema;
use step03_clean::CleanParams;
use step04_standardize::StandardizeParams;
use step05_transform::TransformParams;
use step06_curate::CurateParams;
use step07_eda::EdaParams;
use step08_select::{Selection, SplitParams};
use step09_visualize::{Format, PlotSpec};
use step10_features::FeatureParams;
use step13_tuning::TuneParams;
use step14_evaluate::Metric;

use crate::error::{PipelineError, Result};
use crate::target::TaskChoice;

/// `configs/data.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Seed for every random choice (42 unless set).
    #[serde(default)]
    pub seed: Seed,
    /// Named sources (step 1).
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// The source the dataset is built from; the others are joined or appended to it. May be
    /// left out when there is one source.
    #[serde(default)]
    pub primary: Option<String>,
    /// Validation schema per source (step 2).
    #[serde(default)]
    pub validate: BTreeMap<String, Schema>,
    /// Cleaning of the primary source (step 3).
    #[serde(default)]
    pub clean: CleanParams,
    /// Standardizing (step 4).
    #[serde(default)]
    pub standardize: StandardizeParams,
    /// Transforming (step 5).
    #[serde(default)]
    pub transform: TransformParams,
    /// Where the curated dataset goes (step 6).
    #[serde(default)]
    pub curate: Option<CurateParams>,
}

impl DataConfig {
    /// Reads and type-checks a config file; errors name the file, the key path and the line.
    pub fn load(path: &Path) -> Result<DataConfig> {
        mlops_core::config::load_yaml(path).map_err(PipelineError::Config)
    }

    /// The config with relative paths resolved against `base` (the project directory).
    pub fn resolved(mut self, base: &Path) -> DataConfig {
        self.sources = self.sources.into_iter().map(|(k, s)| (k, s.resolved(base))).collect();
        if let Some(curate) = &mut self.curate
            && curate.dir.is_relative()
        {
            curate.dir = base.join(&curate.dir);
        }
        self
    }

    /// The primary source's name.
    pub fn primary_name(&self, origin: &Path) -> Result<String> {
        let invalid =
            |key: &str, message: String| PipelineError::Config(mlops_core::config::invalid(origin, key, message));
        match &self.primary {
            Some(name) if self.sources.contains_key(name) => Ok(name.clone()),
            Some(name) => Err(invalid("primary", format!("no source named `{name}` (sources: {})", self.names()))),
            None if self.sources.len() == 1 => Ok(self.sources.keys().next().cloned().unwrap_or_default()),
            None if self.sources.is_empty() => Err(invalid("sources", "no sources configured".into())),
            None => Err(invalid(
                "primary",
                format!("several sources ({}); say which one the dataset is built from", self.names()),
            )),
        }
    }

    fn names(&self) -> String {
        self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// Checks that cross-references between sections hold, before any work starts.
    pub fn check(&self, origin: &Path) -> Result<CurateParams> {
        let invalid =
            |key: String, message: String| PipelineError::Config(mlops_core::config::invalid(origin, key, message));
        self.primary_name(origin)?;
        for name in self.validate.keys() {
            if !self.sources.contains_key(name) {
                return Err(invalid(
                    format!("validate.{name}"),
                    format!("no source named `{name}` (sources: {})", self.names()),
                ));
            }
        }
        for (name, schema) in &self.validate {
            for (i, fk) in schema.foreign_keys.iter().enumerate() {
                if !self.sources.contains_key(&fk.source) {
                    return Err(invalid(
                        format!("validate.{name}.foreign_keys[{i}].source"),
                        format!("no source named `{}` (sources: {})", fk.source, self.names()),
                    ));
                }
            }
        }
        for (i, join) in self.transform.joins.iter().enumerate() {
            if !self.sources.contains_key(&join.right) {
                return Err(invalid(
                    format!("transform.joins[{i}].right"),
                    format!("no source named `{}` (sources: {})", join.right, self.names()),
                ));
            }
        }
        for (i, name) in self.transform.concat.iter().enumerate() {
            if !self.sources.contains_key(name) {
                return Err(invalid(
                    format!("transform.concat[{i}]"),
                    format!("no source named `{name}` (sources: {})", self.names()),
                ));
            }
        }
        self.clean.check().map_err(|e| PipelineError::Step { step: "clean", source: Box::new(e) })?;
        self.curate.clone().ok_or_else(|| {
            invalid("curate".into(), "missing: say where the curated dataset goes (`curate: {name: ...}`)".into())
        })
    }
}

/// The default config file.
pub fn default_config() -> PathBuf {
    PathBuf::from("configs/data.yaml")
}

/// `configs/training.yaml`: the training run. It starts from the dataset of a data config
/// (prepared first; an unchanged config reuses its version), explores it (steps 7 and 9),
/// selects and splits it (step 8), fits features on the training part (step 10), tunes, fits and
/// evaluates the candidates (steps 11-14), chooses the best (step 15), packages it (step 16) and
/// registers it (step 17).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Seed for every random choice (42 unless set).
    #[serde(default)]
    pub seed: Seed,
    /// The data config the dataset comes from.
    #[serde(default = "default_config")]
    pub data: PathBuf,
    /// Folder for reports and charts: `<reports>/<dataset>/<version>/`.
    #[serde(default = "default_reports")]
    pub reports: PathBuf,
    /// Profiling and warning thresholds (step 7).
    #[serde(default)]
    pub eda: EdaParams,
    /// Charts to draw (step 9), embedded in the report and written as files.
    #[serde(default)]
    pub plots: Vec<PlotSpec>,
    /// Formats each chart file is written in.
    #[serde(default = "default_formats")]
    pub plot_formats: Vec<Format>,
    /// Columns, rows and a sample to train on (step 8; everything by default).
    #[serde(default)]
    pub select: Selection,
    /// Train / validation / test split (step 8).
    #[serde(default)]
    pub split: SplitParams,
    /// Features fitted on the training part (step 10).
    #[serde(default)]
    pub features: FeatureParams,
    /// Folder for split and feature outputs: `<interim>/<dataset>/<version>/`.
    #[serde(default = "default_interim")]
    pub interim: PathBuf,
    /// What to learn and how candidates are tuned and compared (steps 11-14).
    #[serde(default)]
    pub model: Option<ModelConfig>,
    /// How the best final model is chosen and compared with the runner-up (step 15).
    #[serde(default)]
    pub select_best: step15_select_best::SelectParams,
    /// Where the chosen model is registered and which alias it takes (step 17).
    #[serde(default)]
    pub register: crate::register::RegisterConfig,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            seed: Seed::default(),
            data: default_config(),
            reports: default_reports(),
            eda: EdaParams::default(),
            plots: Vec::new(),
            plot_formats: default_formats(),
            select: Selection::default(),
            split: SplitParams::default(),
            features: FeatureParams::default(),
            interim: default_interim(),
            model: None,
            select_best: step15_select_best::SelectParams::default(),
            register: crate::register::RegisterConfig::default(),
        }
    }
}

fn default_reports() -> PathBuf {
    PathBuf::from("reports")
}

fn default_interim() -> PathBuf {
    PathBuf::from("data/interim")
}

fn default_formats() -> Vec<Format> {
    vec![Format::Svg, Format::Png]
}

impl TrainingConfig {
    /// Reads and type-checks a config file; errors name the file, the key path and the line.
    pub fn load(path: &Path) -> Result<TrainingConfig> {
        let config: TrainingConfig = mlops_core::config::load_yaml(path).map_err(PipelineError::Config)?;
        match config.eda.check() {
            Err(step07_eda::EdaError::Invalid { key, message }) => {
                return Err(PipelineError::Config(mlops_core::config::invalid(path, format!("eda.{key}"), message)));
            }
            Err(e) => return Err(PipelineError::step("eda", e)),
            Ok(()) => {}
        }
        Ok(config)
    }

    /// The config with relative paths resolved against `base` (the project directory).
    pub fn resolved(mut self, base: &Path) -> TrainingConfig {
        if self.data.is_relative() {
            self.data = base.join(&self.data);
        }
        if self.reports.is_relative() {
            self.reports = base.join(&self.reports);
        }
        if self.interim.is_relative() {
            self.interim = base.join(&self.interim);
        }
        if self.register.artifacts.is_relative() {
            self.register.artifacts = base.join(&self.register.artifacts);
        }
        if let Some(m) = &mut self.model {
            for p in [&mut m.store, &mut m.artifacts] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        self
    }
}

/// The `model` section of the training config: what to learn and how candidates are compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The column to predict.
    pub target: String,
    /// Classification or regression (`auto` decides from the column).
    #[serde(default)]
    pub task: TaskChoice,
    /// The metric candidates are tuned and ranked by (default: `roc_auc` for binary targets,
    /// `f1_macro` for multiclass, `r2` for regression).
    #[serde(default)]
    pub metric: Option<Metric>,
    /// Feature columns (default: every numeric and boolean column but the target; booleans read 0/1).
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Experiment the runs are grouped under (default: `<dataset>-<target>`).
    #[serde(default)]
    pub experiment: Option<String>,
    /// Search, cross-validation and candidates (step 13).
    #[serde(default)]
    pub tuning: TuneParams,
    /// The run store (SQLite).
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// Folder for fitted models: `<artifacts>/<run id>/model.bin` and `pipeline.json`.
    #[serde(default = "default_artifacts")]
    pub artifacts: PathBuf,
}

/// The default run store.
pub fn default_store() -> PathBuf {
    PathBuf::from("models/registry/registry.db")
}

fn default_artifacts() -> PathBuf {
    PathBuf::from("models/runs")
}

/// The default training config file.
pub fn default_training_config() -> PathBuf {
    PathBuf::from("configs/training.yaml")
}
