//! The dataset a command works on: the one the training config's data config prepares (run first,
//! reused when unchanged), a catalog version, or a file.

use anyhow::{Context, Result};
use pipelines::{DataConfig, PipelineError, TrainingConfig, default_training_config, prepare};
use polars::prelude::DataFrame;
use std::path::{Path, PathBuf};
use step06_curate::Catalog;

use crate::files::{load_config, read_file};
use crate::output::{Bar, print_json};
use crate::{Cli, DataArgs};

/// Runs steps 1-6 with a progress bar. `None` when validation failed: the report is already
/// printed and nothing was written.
pub(crate) fn run_prepare(cli: &Cli, config_path: &Path) -> Result<Option<pipelines::Prepared>> {
    let config = load_config(config_path)?;
    let mut bar = Bar::new(cli.json || cli.quiet);
    let outcome = prepare(&config, config_path, &mut bar);
    bar.finish();
    match outcome {
        Ok(p) => Ok(Some(p)),
        Err(PipelineError::ValidationFailed { source_name, report }) => {
            if cli.json {
                print_json(
                    &serde_json::json!({"error": format!("validation of `{source_name}` failed; nothing was written"), "report": report}),
                )?;
            } else {
                eprintln!("{report}");
                eprintln!(
                    "error: validation of `{source_name}` failed with {} error(s); nothing was written",
                    report.errors()
                );
            }
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The training config: the one named, or `configs/training.yaml` when it exists, or defaults.
pub(crate) fn training_config(args: &DataArgs) -> Result<TrainingConfig> {
    let path = match &args.config {
        Some(path) => path.clone(),
        None if default_training_config().is_file() => default_training_config(),
        None => return Ok(TrainingConfig::default()),
    };
    Ok(TrainingConfig::load(&path)?.resolved(Path::new("")))
}

/// The frame to explore, a title for it and the folder its report goes to by default.
pub(crate) struct Data {
    pub frame: DataFrame,
    pub title: String,
    /// `<dataset>/<version>` or the file's stem: where its outputs go under a folder.
    pub rel: PathBuf,
    /// The operations that prepared a curated version (its `pipeline.json`); `None` for a file.
    pub prepared: Option<mlops_core::FeaturePipeline>,
    /// The primary source's rows as read, when this command prepared the dataset.
    pub source: Option<DataFrame>,
}

pub(crate) fn catalog_dir(args: &DataArgs, config: &TrainingConfig) -> PathBuf {
    if let Some(dir) = &args.catalog {
        return dir.clone();
    }
    DataConfig::load(&config.data)
        .ok()
        .and_then(|c| c.resolved(Path::new("")).curate)
        .map_or_else(|| PathBuf::from("data/processed"), |c| c.dir)
}

/// Reads the data: a file, a curated version, or (neither given) the dataset the training
/// config's data config prepares. `None` when that preparation failed validation.
pub(crate) fn load_data(cli: &Cli, args: &DataArgs, config: &TrainingConfig) -> Result<Option<Data>> {
    if let Some(file) = &args.file {
        let stem = file.file_stem().map_or_else(|| "data".to_string(), |s| s.to_string_lossy().to_string());
        let frame = read_file(file, &stem)?.frame;
        let title = file.file_name().map_or_else(|| stem.clone(), |s| s.to_string_lossy().to_string());
        return Ok(Some(Data { frame, title, rel: PathBuf::from(stem), prepared: None, source: None }));
    }
    let (query, source) = match &args.dataset {
        Some(q) => (q.clone(), None),
        None => {
            let Some(prepared) = run_prepare(cli, &config.data)? else { return Ok(None) };
            (format!("{}@{}", prepared.dataset, prepared.version), prepared.source)
        }
    };
    let catalog = Catalog::open(catalog_dir(args, config));
    let (meta, frame) = catalog.load(&query).with_context(|| format!("dataset {query:?}"))?;
    let pipeline = catalog.version_dir(&meta.name, &meta.version).join("pipeline.json");
    let prepared = mlops_core::FeaturePipeline::load(&pipeline)?;
    Ok(Some(Data {
        frame,
        title: format!("{}@{}", meta.name, meta.version),
        rel: Path::new(&meta.name).join(&meta.version),
        prepared: Some(prepared),
        source,
    }))
}
