//! The catalog of dataset versions.

use std::path::{Path, PathBuf};

use mlops_core::io::atomic_write_json;
use polars::prelude::{DataFrame, ParquetReader, SerReader};
use serde::{Deserialize, Serialize};

use crate::metadata::Metadata;
use crate::{CurateError, Result};

/// One version, as the catalog lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// Dataset name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub columns: usize,
    /// When it was written.
    pub created_at: String,
    /// Its directory.
    pub path: PathBuf,
}

/// The versions under one folder.
#[derive(Clone, Debug)]
pub struct Catalog {
    dir: PathBuf,
}

impl Catalog {
    /// The catalog of `dir` (which need not exist yet).
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        Catalog { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a version lives.
    pub fn version_dir(&self, name: &str, version: &str) -> PathBuf {
        self.dir.join(name).join(version)
    }

    pub(crate) fn read_metadata(&self, path: &Path) -> Result<Metadata> {
        let bytes = std::fs::read(path).map_err(|e| mlops_core::CoreError::io("cannot read", path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| CurateError::BadMetadata { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Every version's metadata, oldest first, read from the version directories.
    pub fn scan(&self) -> Result<Vec<Metadata>> {
        let mut out = Vec::new();
        let Ok(names) = std::fs::read_dir(&self.dir) else { return Ok(out) };
        for name in names.filter_map(std::result::Result::ok) {
            let name_path = name.path();
            if !name_path.is_dir() || name.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(versions) = std::fs::read_dir(&name_path) else { continue };
            for version in versions.filter_map(std::result::Result::ok) {
                let meta = version.path().join("metadata.json");
                // Hidden folders are versions still being written.
                if version.file_name().to_string_lossy().starts_with('.') || !meta.is_file() {
                    continue;
                }
                out.push(self.read_metadata(&meta)?);
            }
        }
        out.sort_by(|a, b| (a.created_at.as_str(), a.name.as_str()).cmp(&(b.created_at.as_str(), b.name.as_str())));
        Ok(out)
    }

    /// Rewrites `catalog.json` from the version directories.
    pub fn rebuild(&self) -> Result<Vec<CatalogEntry>> {
        let entries: Vec<CatalogEntry> = self
            .scan()?
            .into_iter()
            .map(|m| CatalogEntry {
                path: self.version_dir(&m.name, &m.version),
                name: m.name,
                version: m.version,
                rows: m.rows,
                columns: m.columns,
                created_at: m.created_at,
            })
            .collect();
        atomic_write_json(&self.dir.join("catalog.json"), &entries)?;
        Ok(entries)
    }

    /// The newest version of `name` made by the run `run_key`, if any.
    pub fn find_run(&self, name: &str, run_key: &str) -> Result<Option<(Metadata, PathBuf)>> {
        Ok(self.scan()?.into_iter().rev().find(|m| m.name == name && m.run_key == run_key).map(|m| {
            let path = self.version_dir(&m.name, &m.version);
            (m, path)
        }))
    }

    /// The versions, oldest first.
    pub fn list(&self) -> Result<Vec<CatalogEntry>> {
        let path = self.dir.join("catalog.json");
        if !path.is_file() {
            return self.rebuild();
        }
        let bytes = std::fs::read(&path).map_err(|e| mlops_core::CoreError::io("cannot read", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| CurateError::BadCatalog { path, message: e.to_string() })
    }

    /// The version a user means: `name` (its newest version), `name@version-prefix` or a version
    /// prefix alone.
    pub fn resolve(&self, query: &str) -> Result<Metadata> {
        if !query.contains('@') {
            let newest =
                self.scan()?.into_iter().filter(|m| m.name == query).max_by(|a, b| a.created_at.cmp(&b.created_at));
            if let Some(m) = newest {
                return Ok(m);
            }
        }
        self.show(query)
    }

    /// Reads a version's data (every Parquet file of its manifest, in manifest order) after checking
    /// each file's SHA-256 against the manifest, so a damaged or edited version is refused.
    pub fn load(&self, query: &str) -> Result<(Metadata, DataFrame)> {
        let m = self.resolve(query)?;
        let dir = self.version_dir(&m.name, &m.version);
        let mut frames = Vec::new();
        for f in m.files.iter().filter(|f| f.path.ends_with(".parquet")) {
            let path = dir.join(&f.path);
            let bytes = std::fs::read(&path).map_err(|e| mlops_core::CoreError::io("cannot read", &path, e))?;
            let actual = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&bytes));
            if actual != f.sha256 {
                return Err(CurateError::Corrupt { path, expected: f.sha256.clone(), actual });
            }
            let frame = ParquetReader::new(std::io::Cursor::new(bytes))
                .finish()
                .map_err(|e| CurateError::BadMetadata { path: path.clone(), message: e.to_string() })?;
            frames.push(frame);
        }
        let mut parts = frames.into_iter();
        let Some(mut all) = parts.next() else {
            return Err(CurateError::BadMetadata {
                path: dir.join("metadata.json"),
                message: "no data files listed".into(),
            });
        };
        for part in parts {
            all.vstack_mut(&part)
                .map_err(|e| CurateError::BadMetadata { path: dir.clone(), message: e.to_string() })?;
        }
        tracing::debug!(dataset = %m.name, version = %m.version, rows = all.height(), "loaded");
        Ok((m, all))
    }

    /// The metadata of the version whose id starts with `query` (`name@version` also accepted).
    pub fn show(&self, query: &str) -> Result<Metadata> {
        let (name, version) = match query.split_once('@') {
            Some((n, v)) => (Some(n), v),
            None => (None, query),
        };
        let matches: Vec<Metadata> = self
            .scan()?
            .into_iter()
            .filter(|m| name.is_none_or(|n| n == m.name) && !version.is_empty() && m.version.starts_with(version))
            .collect();
        match matches.len() {
            0 => Err(CurateError::NotFound { query: query.to_string(), dir: self.dir.clone() }),
            1 => Ok(matches
                .into_iter()
                .next()
                .ok_or_else(|| CurateError::NotFound { query: query.to_string(), dir: self.dir.clone() })?),
            _ => Err(CurateError::Ambiguous {
                query: query.to_string(),
                matches: matches.iter().map(|m| format!("{}@{}", m.name, m.version)).collect(),
            }),
        }
    }
}
