//! Writing a version directory.

use std::path::{Path, PathBuf};

use mlops_core::frame::{ColumnStats, column_names, dtype_of, frame_hash_and_stats};
use mlops_core::io::{Placed, atomic_dir_named, atomic_write_json};
use mlops_core::{FeaturePipeline, Value};
use polars::polars_utils::compression::ZstdLevel;
use polars::prelude::{DataFrame, ParquetCompression};
use serde::{Deserialize, Serialize};
use step01_ingest::Lineage;

use crate::catalog::Catalog;
use crate::metadata::{ColumnProfile, FileEntry, Metadata};
use crate::{CurateError, Result};

/// Parquet compression codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Zstandard: small files, fast reads.
    #[default]
    Zstd,
    /// Snappy: fastest writes.
    Snappy,
    /// No compression.
    None,
}

fn default_dir() -> PathBuf {
    PathBuf::from("data/processed")
}

/// Where and how the curated dataset is written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurateParams {
    /// Dataset name: a folder under `dir`.
    pub name: String,
    /// The catalog folder.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// Write one folder per value of this column (`species=Adelie/part-0.parquet`).
    #[serde(default)]
    pub partition_by: Option<String>,
    /// Parquet compression.
    #[serde(default)]
    pub compression: Compression,
    /// Rows per Parquet row group; when absent, about [`mlops_core::frame::DEFAULT_ROW_GROUP`], cut where the data's
    /// chunks end when that is near.
    #[serde(default)]
    pub row_group_size: Option<usize>,
    /// Also write the curated table to PostgreSQL, in one transaction.
    #[serde(default)]
    pub postgres: Option<crate::postgres::PostgresSink>,
}

/// The format version of `metadata.json` this build writes.
pub const METADATA_FORMAT_VERSION: u32 = 1;

/// Where a dataset came from, recorded in its metadata.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// Lineage of every source read.
    pub sources: Vec<Lineage>,
    /// Parent versions or source hashes (`sha256:<hex>`).
    pub parents: Vec<String>,
    /// SHA-256 of the configuration.
    pub config_sha256: String,
    /// Key of the run (see [`Metadata::run_key`]).
    pub run_key: String,
    /// Reports of the steps.
    pub steps: serde_json::Value,
}

/// The outcome of curating.
#[derive(Clone, Debug)]
pub struct Curated {
    /// The version's metadata.
    pub metadata: Metadata,
    /// The version directory.
    pub path: PathBuf,
    /// Whether this version already existed (same data as an earlier run).
    pub reused: bool,
    /// Where `curate.postgres` put the table (`postgres://user@host:port/db "table"`).
    pub table: Option<String>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn write_parquet(df: &DataFrame, path: &Path, params: &CurateParams) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| mlops_core::CoreError::io("cannot create directory", parent, e))?;
    }
    let compression = match params.compression {
        // Level 1: most of zstd's size gain at a fraction of the default level's time.
        Compression::Zstd => ParquetCompression::Zstd(ZstdLevel::try_new(1).ok()),
        Compression::Snappy => ParquetCompression::Snappy,
        Compression::None => ParquetCompression::Uncompressed,
    };
    mlops_core::frame::write_parquet(df, path, compression, params.row_group_size)
        .map_err(|e| CurateError::Write { path: path.to_path_buf(), message: e.to_string() })
}

/// A partition value as a folder-name-safe text.
fn partition_dir(column: &str, value: &Value) -> String {
    let text = match value {
        Value::Null => "__HIVE_DEFAULT_PARTITION__".to_string(),
        v => v.to_string(),
    };
    let safe: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32)
            }
        })
        .collect();
    format!("{column}={safe}")
}

/// Writes the data files of a version: one Parquet file, or one per partition value.
fn write_data(frame: &DataFrame, dir: &Path, params: &CurateParams) -> Result<()> {
    let Some(col) = &params.partition_by else {
        return write_parquet(frame, &dir.join("data.parquet"), params);
    };
    let parts = frame
        .partition_by_stable([col.as_str()], true)
        .map_err(|e| CurateError::Write { path: dir.to_path_buf(), message: e.to_string() })?;
    for part in parts {
        let key = part
            .column(col)
            .ok()
            .and_then(|c| mlops_core::frame::column_values(&c.head(Some(1))).ok())
            .and_then(|v| v.into_iter().next())
            .unwrap_or(Value::Null);
        let file = dir.join("data").join(partition_dir(col, &key)).join("part-0.parquet");
        write_parquet(&part, &file, params)?;
    }
    Ok(())
}

fn profile(df: &DataFrame, stats: &[ColumnStats]) -> Vec<ColumnProfile> {
    df.columns()
        .iter()
        .zip(stats)
        .map(|(c, s)| ColumnProfile {
            name: c.name().to_string(),
            dtype: dtype_of(c.dtype()),
            storage: c.dtype().to_string(),
            nulls: s.nulls,
            unique: s.unique,
        })
        .collect()
}

fn manifest(root: &Path, dir: &Path, out: &mut Vec<FileEntry>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| mlops_core::CoreError::io("cannot list", dir, e))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            manifest(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            out.push(FileEntry { path: rel, bytes, sha256: mlops_core::hash::sha256_file(&path)? });
        }
    }
    Ok(())
}

/// Writes `frame` as a new version (or finds the identical existing one) and refreshes the
/// catalog; with `params.postgres`, writes the table there too (the password from the process's
/// environment).
pub fn curate(
    frame: &DataFrame,
    params: &CurateParams,
    provenance: &Provenance,
    pipeline: &FeaturePipeline,
) -> Result<Curated> {
    curate_with_env(frame, params, (provenance, pipeline), &step01_ingest::process_env)
}

/// [`curate`] with the environment variables read through `env`.
pub fn curate_with_env(
    frame: &DataFrame,
    params: &CurateParams,
    (provenance, pipeline): (&Provenance, &FeaturePipeline),
    env: step01_ingest::Env<'_>,
) -> Result<Curated> {
    // The table is staged first and committed last: a failure anywhere leaves the server's
    // table as it was.
    let staged = params.postgres.as_ref().map(|sink| crate::postgres::stage(frame, sink, env)).transpose()?;
    let mut curated = write_version(frame, params, provenance, pipeline)?;
    if let Some(staged) = staged {
        curated.table = Some(staged.commit()?);
    }
    // Consumer groups move on only once the data they read is kept.
    for read in provenance.sources.iter().filter_map(|s| s.kafka.as_ref()) {
        step01_ingest::commit_offsets(read, std::time::Duration::from_secs(10)).map_err(|message| {
            CurateError::Commit {
                version: curated.metadata.version.clone(),
                group: read.group.clone().unwrap_or_default(),
                message,
            }
        })?;
    }
    Ok(curated)
}

fn write_version(
    frame: &DataFrame,
    params: &CurateParams,
    provenance: &Provenance,
    pipeline: &FeaturePipeline,
) -> Result<Curated> {
    if !valid_name(&params.name) {
        return Err(CurateError::BadName { name: params.name.clone() });
    }
    if let Some(col) = &params.partition_by
        && frame.column(col).is_err()
    {
        return Err(CurateError::MissingColumn { column: col.clone(), available: column_names(frame) });
    }
    let catalog = Catalog::open(&params.dir);
    let mut built: Option<Metadata> = None;
    // The data is written while the content hash (the version) and the column profile are
    // computed beside it; the folder gets its name once the hash is known.
    let placed = atomic_dir_named(&params.dir.join(&params.name), |tmp| -> Result<String> {
        let started = std::time::Instant::now();
        let (hashed, written) = std::thread::scope(|s| {
            let hashing = s.spawn(|| frame_hash_and_stats(frame));
            let written = write_data(frame, tmp, params);
            (hashing.join(), written)
        });
        written?;
        let (sha256, stats) = hashed.map_err(|_| CurateError::Write {
            path: tmp.to_path_buf(),
            message: "the hashing thread failed".into(),
        })??;
        tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "data written, hashed and profiled");
        let version = sha256[..16].to_string();
        if catalog.version_dir(&params.name, &version).join("metadata.json").is_file() {
            return Ok(version);
        }
        let mut metadata = Metadata {
            format_version: METADATA_FORMAT_VERSION,
            name: params.name.clone(),
            version: version.clone(),
            sha256,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            rows: frame.height(),
            columns: frame.width(),
            schema: profile(frame, &stats),
            partition_by: params.partition_by.clone(),
            files: Vec::new(),
            sources: provenance.sources.clone(),
            parents: provenance.parents.clone(),
            config_sha256: provenance.config_sha256.clone(),
            run_key: provenance.run_key.clone(),
            pipeline_ops: pipeline.len(),
            steps: provenance.steps.clone(),
        };
        pipeline.save(&tmp.join("pipeline.json"))?;
        manifest(tmp, tmp, &mut metadata.files)?;
        atomic_write_json(&tmp.join("metadata.json"), &metadata)?;
        built = Some(metadata);
        Ok(version)
    })?;
    let (path, reused) = match placed {
        Placed::New(path) => (path, false),
        Placed::Existing(path) => (path, true),
    };
    let metadata = match built.filter(|_| !reused) {
        Some(m) => m,
        None => {
            tracing::info!(path = %path.display(), "same data as an existing version; nothing written");
            catalog.read_metadata(&path.join("metadata.json"))?
        }
    };
    let version = metadata.version.clone();
    catalog.rebuild()?;
    tracing::info!(%version, path = %path.display(), "curated");
    Ok(Curated { metadata, path, reused, table: None })
}
