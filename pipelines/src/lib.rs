//! The runs that compose the step crates, and the `mlops` command line.
//!
//! Only this crate knows the whole flow. It has the prepare run (steps 1-6: ingest, validate,
//! clean, standardize, transform, curate) driven by `configs/data.yaml`; the training run (steps
//! 7-17: EDA, select and split, features, tuning, final fits, evaluation, choice, package,
//! registration) driven by `configs/training.yaml`; and the deployment run (steps 18-20:
//! containerize, deploy, serve) driven by `configs/deployment.yaml`. The monitoring run (steps
//! 22-23) joins when its steps arrive.
//!
//! In: a [`DataConfig`] (each section is the owning step's own type). Out: a [`Prepared`] dataset
//! version with per-step summaries, validation reports and warnings. Errors name the step
//! ([`PipelineError`]); progress goes to a [`Progress`] observer, never to the terminal.
//!
//! ```no_run
//! use std::path::Path;
//! use pipelines::{DataConfig, Silent, prepare};
//!
//! let origin = Path::new("configs/data.yaml");
//! let config = DataConfig::load(origin)?.resolved(Path::new("."));
//! let prepared = prepare(&config, origin, &mut Silent)?;
//! println!("{}@{} in {}", prepared.dataset, prepared.version, prepared.path.display());
//! # Ok::<(), pipelines::PipelineError>(())
//! ```

mod cache;
mod choose;
mod config;
mod deploy;
mod error;
mod evaluate;
mod explore;
mod features;
mod fit;
mod lifecycle;
mod monitor;
mod monitor_report;
mod package;
mod prepare;
mod reference;
mod register;
mod retrain_data;
mod run_key;
mod target;
mod train;

pub use config::{DataConfig, ModelConfig, TrainingConfig, default_config, default_store, default_training_config};
pub use deploy::{
    DeploymentConfig, ManifestsWritten, Resolved, containerize, default_deployment_config, deploy_local, kubernetes,
    registered,
};
pub use error::{PipelineError, Result};
pub use explore::{Exploration, Explored, explore, explore_cached};
pub use features::{Engineered, EngineeredSummary, engineer, write_frame};
pub use fit::{FitOutcome, FitRequest, fit_parts};
pub use lifecycle::{Retrain, ToolkitEnvironment, new_requirements};
pub use monitor::{Histograms, MonitorRequest, Monitored, ReferenceSource, model_key, monitor, report_dir};
pub use monitor_report::{html as monitor_html, write_report as write_monitor_report};
pub use prepare::{PREPARE_STEPS, Prepared, Progress, Silent, StepSummary, prepare};
pub use register::{RegisterConfig, Registered};
pub use retrain_data::{RetrainingData, retraining_data};
pub use target::{TaskChoice, task_name};
pub use train::{LeaderRow, TrainPaths, Trained, train};

/// Who changes the registry: `MLOPS_ACTOR`, else the OS user, else `unknown`.
pub fn actor() -> String {
    mlops_core::process::actor()
}
