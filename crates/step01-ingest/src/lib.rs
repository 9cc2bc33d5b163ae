//! Step 1, ingest: read CSV, Excel, Parquet, JSON, NDJSON, SQLite, PostgreSQL, JSON API, HTML
//! table and Kafka sources into polars frames, recording lineage for every read.
//!
//! In: a [`SourceConfig`] per named source. Out: an [`Ingested`] frame with its [`Lineage`]
//! (URI, size, rows, columns, SHA-256, time).
//!
//! Invariants:
//! - a bad file gives one [`IngestError`] naming the file (and line where there is one): missing
//!   file, invalid UTF-8, ragged CSV record, unclosed quote, wrong sheet, invalid JSON, SQL error;
//! - a plain CSV file (no line break inside quotes, no blank lines, `\n` line ends) is read once:
//!   its pieces are parsed, checked and hashed on all cores, and the frame is the one polars'
//!   reader gives; any other CSV file is read once for hashing and checking and once by polars'
//!   parallel parser; large files can stream (`low_memory: true`) rather than being parsed in one
//!   piece;
//! - nothing is written: ingest only reads.
//!
//! New kinds of source (streams) implement [`Reader`] and join [`SourceConfig`].
//!
//! ```no_run
//! use step01_ingest::{SourceConfig, Reader};
//!
//! let source = SourceConfig::from_extension("data/raw/penguins-raw.csv").expect("known extension");
//! let ingested = source.read("penguins")?;
//! println!("{} rows, sha256 {}", ingested.lineage.rows, ingested.lineage.sha256);
//! # Ok::<(), step01_ingest::IngestError>(())
//! ```

mod config;
mod csv;
mod error;
mod excel;
mod group;
mod html;
mod http_json;
mod json;
mod kafka;
mod lineage;
mod plain;
pub mod postgres;
mod records;
mod sqlite;

use std::path::Path;

use polars::prelude::{DataFrame, LazyFrame, PlRefPath, ScanArgsParquet, col};

pub use config::{
    CsvSource, Encoding, ExcelSource, HeaderValue, HtmlTableSource, HttpJsonSource, HttpMethod, JsonSource, KafkaFrom,
    KafkaLimits, KafkaSource, KafkaUntil, MessageFormat, Pagination, ParquetSource, PostgresSource, Retries, SheetRef,
    SourceConfig, SqliteSource, default_null_values,
};
pub use error::{IngestError, Result};
pub use kafka::commit as commit_offsets;
pub use lineage::{KafkaRead, Lineage, PartitionRead};

/// Reads an environment variable: the process's own ([`process_env`]), or a test's. Secrets
/// (passwords, tokens) reach the sources only this way, never from a config file.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment, as [`Env`] reads it.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// A frame and where it came from.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The data.
    pub frame: DataFrame,
    /// Where it came from.
    pub lineage: Lineage,
}

/// Reads one kind of source.
pub trait Reader {
    /// Reads the source registered under `name`.
    fn read(&self, name: &str) -> Result<Ingested>;
}

fn file_uri(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", abs.display())
}

fn file_facts(path: &Path) -> Result<(u64, String)> {
    let meta = std::fs::metadata(path).map_err(|e| csv::open_error(path, e))?;
    Ok((meta.len(), mlops_core::hash::sha256_file(path)?))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn read_parquet(opts: &ParquetSource) -> Result<DataFrame> {
    let path = opts.path.as_path();
    if !path.is_file() {
        return Err(IngestError::NotFound { path: path.to_path_buf() });
    }
    let err = |e: polars::prelude::PolarsError| csv::read_error(path, e);
    let path_str = path
        .to_str()
        .ok_or_else(|| IngestError::Read { path: path.to_path_buf(), message: "path is not valid UTF-8".into() })?;
    let lazy = LazyFrame::scan_parquet(PlRefPath::new(path_str), ScanArgsParquet::default()).map_err(err)?;
    project(lazy, path, opts.columns.as_deref(), opts.limit)?.collect().map_err(err)
}

/// Reads a CSV source: a plain file (no quotes, no blank lines, `\n` line ends) in one pass of
/// its own, any other through [`read_csv_general`].
fn read_csv(opts: &CsvSource) -> Result<(csv::Scan, DataFrame)> {
    if plain::applies(opts)
        && let Some(done) = plain::read(opts)?
    {
        return Ok(done);
    }
    read_csv_general(opts)
}

/// Reads any CSV source. For UTF-8 files the pre-pass (hash, encoding, record shape) runs beside
/// polars' parse; its verdict decides: a bad file is an error whatever the parse gave, and a file
/// with blank lines is parsed again without them.
/// The two CSV readers apart, for the fuzz targets (`fuzz/`): the plain reader must give the
/// general reader's frame whenever it takes a file.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use polars::prelude::DataFrame;

    use crate::{CsvSource, Result};

    /// The plain reader's frame, or `None` when it leaves the file to the general reader.
    pub fn plain(opts: &CsvSource) -> Result<Option<DataFrame>> {
        if !crate::plain::applies(opts) {
            return Ok(None);
        }
        crate::plain::read(opts).map(|read| read.map(|(_, frame)| frame))
    }

    /// The general (polars) reader's frame.
    pub fn general(opts: &CsvSource) -> Result<DataFrame> {
        crate::read_csv_general(opts).map(|(_, frame)| frame)
    }
}

fn read_csv_general(opts: &CsvSource) -> Result<(csv::Scan, DataFrame)> {
    let parse = |scan: &csv::Scan| match csv::read(opts, scan, Some(opts.infer_schema_rows)) {
        // A type guess from the first rows can be wrong further down (an int column with a
        // decimal on row 20,000); read again inferring from every row.
        Err(IngestError::Read { message, .. }) if message.contains(csv::PARSE_FAILURE) => {
            tracing::info!(%message, "type inference from the first rows failed; inferring from all rows");
            csv::read(opts, scan, None)
        }
        other => other,
    };
    if opts.encoding == Encoding::Latin1 {
        let scan = csv::scan(opts)?;
        let frame = parse(&scan)?;
        return Ok((scan, frame));
    }
    let untouched = csv::Scan::untouched();
    let (scan, parsed) = std::thread::scope(|s| {
        let scanning = s.spawn(|| csv::scan(opts));
        let parsed = parse(&untouched);
        (scanning.join(), parsed)
    });
    let scan =
        scan.map_err(|_| IngestError::Read { path: opts.path.clone(), message: "the pre-pass thread failed".into() })??;
    let frame = if scan.transcoded.is_some() { parse(&scan)? } else { parsed? };
    Ok((scan, frame))
}

/// Pushes a column selection (`columns:`) and a row limit (`limit:`) into a lazy scan; a column
/// the source lacks is an error listing the ones it has.
fn project(mut lazy: LazyFrame, path: &Path, columns: Option<&[String]>, limit: Option<usize>) -> Result<LazyFrame> {
    if let Some(columns) = columns {
        let schema = lazy.collect_schema().map_err(|e| csv::read_error(path, e))?;
        let available: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        let missing: Vec<String> = columns.iter().filter(|c| !available.contains(c)).cloned().collect();
        if !missing.is_empty() {
            return Err(IngestError::MissingColumns { path: path.to_path_buf(), missing, available });
        }
        lazy = lazy.select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>());
    }
    if let Some(n) = limit {
        lazy = lazy.limit(u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(lazy)
}

impl Reader for SourceConfig {
    fn read(&self, name: &str) -> Result<Ingested> {
        let span = tracing::info_span!("ingest", source = name, format = self.format());
        let _guard = span.enter();
        let path = self.path().map_or(Path::new(""), |p| p.as_path());
        let mut offsets = None;
        let (frame, size, sha256, uri) = match self {
            SourceConfig::Csv(opts) => {
                let (scan, frame) = read_csv(opts)?;
                (frame, scan.size, scan.sha256, file_uri(path))
            }
            SourceConfig::Excel(opts) => {
                let frame = excel::read(opts)?;
                let (size, sha) = file_facts(path)?;
                (frame, size, sha, file_uri(path))
            }
            SourceConfig::Parquet(opts) => {
                let frame = read_parquet(opts)?;
                let (size, sha) = file_facts(path)?;
                (frame, size, sha, file_uri(path))
            }
            SourceConfig::Json(opts) => {
                let bytes = std::fs::read(path).map_err(|e| csv::open_error(path, e))?;
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return Err(IngestError::Empty { path: path.to_path_buf() });
                }
                let frame = json::read_json(opts, &bytes)?;
                let sha = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&bytes));
                (frame, bytes.len() as u64, sha, file_uri(path))
            }
            SourceConfig::Ndjson(opts) => {
                let frame = json::read_ndjson(opts)?;
                let (size, sha) = file_facts(path)?;
                (frame, size, sha, file_uri(path))
            }
            SourceConfig::Sqlite(opts) => {
                let frame = sqlite::read(opts)?;
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                // The content of a query is its result, not the whole database file.
                let sha = mlops_core::frame::frame_hash(&frame)?;
                let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                (frame, size, sha, format!("sqlite://{}?query={}", abs.display(), opts.query))
            }
            SourceConfig::Postgres(opts) => {
                let read = postgres::read(opts, &process_env)?;
                let sha = mlops_core::frame::frame_hash(&read.frame)?;
                (read.frame, read.bytes, sha, format!("{}?query={}", read.server, read.query))
            }
            SourceConfig::HtmlTable(opts) => {
                let (page, origin, uri) = html_page(opts)?;
                let frame = html::read(opts, &page, &origin)?;
                let sha = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(page.as_bytes()));
                (frame, page.len() as u64, sha, uri)
            }
            SourceConfig::HttpJson(opts) => {
                let read = http_json::read(opts, &process_env)?;
                let sha = mlops_core::frame::frame_hash(&read.frame)?;
                tracing::info!(pages = read.pages, bytes = read.bytes, "pages read");
                (read.frame, read.bytes, sha, opts.url.clone())
            }
            SourceConfig::Kafka(opts) => {
                let read = kafka::read(opts)?;
                let sha = mlops_core::frame::frame_hash(&read.frame)?;
                offsets = Some(read.offsets);
                (read.frame, read.bytes, sha, kafka::uri(opts))
            }
        };
        let lineage = Lineage {
            source: name.to_string(),
            uri,
            format: self.format().to_string(),
            size_bytes: size,
            rows: frame.height(),
            columns: frame.width(),
            sha256,
            ingested_at: now(),
            kafka: offsets,
        };
        tracing::info!(rows = lineage.rows, columns = lineage.columns, sha256 = %lineage.sha256, "ingested");
        Ok(Ingested { frame, lineage })
    }
}

/// The page of an HTML source, from its file or URL: its text (bytes that are not UTF-8 replaced),
/// its name for messages and its lineage URI.
fn html_page(opts: &HtmlTableSource) -> Result<(String, String, String)> {
    let bytes = match (&opts.path, &opts.url) {
        (Some(path), None) => {
            let bytes = std::fs::read(path).map_err(|e| csv::open_error(path, e))?;
            return Ok((String::from_utf8_lossy(&bytes).into_owned(), path.display().to_string(), file_uri(path)));
        }
        (None, Some(url)) => {
            let fail = |message: String| IngestError::Html { origin: url.clone(), message };
            if opts.timeout_seconds.is_nan() || opts.timeout_seconds <= 0.0 {
                return Err(IngestError::Config {
                    key: "html_table.timeout_seconds".into(),
                    message: format!("{} is not a positive number of seconds", opts.timeout_seconds),
                });
            }
            let timeout = std::time::Duration::from_secs_f64(opts.timeout_seconds);
            let client = reqwest::blocking::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()
                .map_err(|e| fail(e.to_string()))?;
            let response = client.get(url).send().map_err(|e| fail(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(fail(format!("the server answered {status}")));
            }
            response.bytes().map_err(|e| fail(e.to_string()))?
        }
        _ => {
            return Err(IngestError::Config {
                key: "html_table.path".into(),
                message: "give the page as `path` or as `url`, one of the two".into(),
            });
        }
    };
    let url = opts.url.clone().unwrap_or_default();
    Ok((String::from_utf8_lossy(&bytes).into_owned(), url.clone(), url))
}

/// Reads every named source, in name order; stops at the first failure.
pub fn ingest_all<'a>(
    sources: impl IntoIterator<Item = (&'a String, &'a SourceConfig)>,
) -> Result<Vec<(String, Ingested)>> {
    sources.into_iter().map(|(name, source)| Ok((name.clone(), source.read(name)?))).collect()
}

#[cfg(test)]
mod tests;
