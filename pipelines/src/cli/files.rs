//! Data files named on the command line: reading any format by its extension, `NAME=FILE` pairs,
//! and writing or showing a step's output frame.

use crate::Cli;
use anyhow::{Result, anyhow};
use pipelines::{DataConfig, PipelineError};
use polars::prelude::DataFrame;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use step01_ingest::{Ingested, Reader, SourceConfig};

pub(crate) fn load_config(path: &Path) -> Result<DataConfig> {
    Ok(DataConfig::load(path)?.resolved(Path::new("")))
}

/// Reads any data file by its extension.
pub(crate) fn read_file(path: &Path, name: &str) -> Result<Ingested> {
    let source =
        SourceConfig::from_extension(path).ok_or_else(|| PipelineError::UnknownFormat { path: path.to_path_buf() })?;
    Ok(source
        .read(name)
        .map_err(|error| PipelineError::Ingest { source_name: name.to_string(), error: Box::new(error) })?)
}

pub(crate) fn parse_pairs(pairs: &[String], flag: &str) -> Result<BTreeMap<String, DataFrame>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let (name, file) = pair.split_once('=').ok_or_else(|| anyhow!("{flag} {pair:?}: expected NAME=FILE"))?;
        out.insert(name.to_string(), read_file(Path::new(file), name)?.frame);
    }
    Ok(out)
}

/// Writes a frame as Parquet or CSV, atomically.
pub(crate) fn write_frame(df: &DataFrame, path: &Path) -> Result<()> {
    Ok(pipelines::write_frame(df, path)?)
}

pub(crate) fn show_frame(cli: &Cli, df: &DataFrame, output: Option<&PathBuf>) -> Result<()> {
    if let Some(path) = output {
        write_frame(df, path)?;
        if !cli.json {
            println!("wrote {} rows x {} columns to {}", df.height(), df.width(), path.display());
        }
    } else if !cli.json {
        println!("{}", df.head(Some(10)));
    }
    Ok(())
}
