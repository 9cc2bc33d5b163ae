//! Source configuration: one entry per named source in the `sources:` map of a data config.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mlops_core::DType;
use serde::{Deserialize, Serialize};

/// One source, keyed by its format.
///
/// ```yaml
/// sources:
///   penguins:
///     csv: { path: data/raw/penguins-raw.csv }
///   islands:
///     sqlite: { path: data/raw/islands.db, query: "SELECT * FROM islands" }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Delimited text.
    Csv(CsvSource),
    /// A workbook: xlsx, xlsm, xlsb, xls or ods.
    Excel(ExcelSource),
    /// An Apache Parquet file.
    Parquet(ParquetSource),
    /// A JSON document: an array of records, or one record.
    Json(JsonSource),
    /// Newline-delimited JSON: one record per line.
    Ndjson(JsonSource),
    /// A query against a SQLite database file.
    Sqlite(SqliteSource),
    /// A query (or a table) on a PostgreSQL server.
    Postgres(PostgresSource),
    /// Records from a JSON API over HTTP, page after page.
    HttpJson(HttpJsonSource),
    /// A table of an HTML page (a file or a URL), as `pandas.read_html` reads it.
    HtmlTable(HtmlTableSource),
    /// The messages of a Kafka topic, from one offset (or time) to another.
    Kafka(KafkaSource),
}

impl SourceConfig {
    /// The texts the source reads as missing (CSV and Excel; none for typed sources).
    pub fn null_values(&self) -> &[String] {
        match self {
            SourceConfig::Csv(c) => &c.null_values,
            SourceConfig::Excel(e) => &e.null_values,
            SourceConfig::HtmlTable(h) => &h.null_values,
            _ => &[],
        }
    }

    /// Picks a reader from a file's extension, with default options; `None` if unknown.
    pub fn from_extension(path: impl Into<PathBuf>) -> Option<SourceConfig> {
        let path = path.into();
        let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" | "tsv" | "txt" => SourceConfig::Csv(CsvSource {
                delimiter: if ext == "tsv" { '\t' } else { ',' },
                ..CsvSource::new(path)
            }),
            "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => SourceConfig::Excel(ExcelSource::new(path)),
            "parquet" | "pq" => SourceConfig::Parquet(ParquetSource { path, columns: None, limit: None }),
            "json" => SourceConfig::Json(JsonSource::new(path)),
            "ndjson" | "jsonl" => SourceConfig::Ndjson(JsonSource::new(path)),
            "html" | "htm" => SourceConfig::HtmlTable(HtmlTableSource::file(path)),
            "db" | "sqlite" | "sqlite3" => return None,
            _ => return None,
        })
    }

    /// The file the source reads.
    pub fn path(&self) -> Option<&PathBuf> {
        Some(match self {
            SourceConfig::Csv(s) => &s.path,
            SourceConfig::Excel(s) => &s.path,
            SourceConfig::Parquet(s) => &s.path,
            SourceConfig::Json(s) | SourceConfig::Ndjson(s) => &s.path,
            SourceConfig::Sqlite(s) => &s.path,
            SourceConfig::HtmlTable(s) => return s.path.as_ref(),
            SourceConfig::Postgres(_) | SourceConfig::HttpJson(_) | SourceConfig::Kafka(_) => return None,
        })
    }

    /// The source with its path resolved against `base` when relative.
    pub fn resolved(mut self, base: &std::path::Path) -> SourceConfig {
        let path = match &mut self {
            SourceConfig::Csv(s) => &mut s.path,
            SourceConfig::Excel(s) => &mut s.path,
            SourceConfig::Parquet(s) => &mut s.path,
            SourceConfig::Json(s) | SourceConfig::Ndjson(s) => &mut s.path,
            SourceConfig::Sqlite(s) => &mut s.path,
            SourceConfig::HtmlTable(s) => match &mut s.path {
                Some(p) => p,
                None => return self,
            },
            SourceConfig::Postgres(_) | SourceConfig::HttpJson(_) | SourceConfig::Kafka(_) => return self,
        };
        if path.is_relative() {
            *path = base.join(&*path);
        }
        self
    }

    /// The format's short name.
    pub fn format(&self) -> &'static str {
        match self {
            SourceConfig::Csv(_) => "csv",
            SourceConfig::Excel(_) => "excel",
            SourceConfig::Parquet(_) => "parquet",
            SourceConfig::Json(_) => "json",
            SourceConfig::Ndjson(_) => "ndjson",
            SourceConfig::Sqlite(_) => "sqlite",
            SourceConfig::Postgres(_) => "postgres",
            SourceConfig::HttpJson(_) => "http_json",
            SourceConfig::HtmlTable(_) => "html_table",
            SourceConfig::Kafka(_) => "kafka",
        }
    }
}

/// Text encodings a CSV file may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 (an optional byte-order mark is skipped).
    #[default]
    #[serde(alias = "utf-8")]
    Utf8,
    /// ISO-8859-1: every byte is one character.
    #[serde(alias = "latin-1", alias = "iso-8859-1")]
    Latin1,
}

/// The markers pandas reads as missing by default.
pub fn default_null_values() -> Vec<String> {
    [
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
        "NULL", "NaN", "None", "n/a", "nan", "null",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn default_true() -> bool {
    true
}
fn default_delimiter() -> char {
    ','
}
fn default_quote() -> Option<char> {
    Some('"')
}
fn default_infer_rows() -> usize {
    10_000
}

/// A CSV source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSource {
    /// The file.
    pub path: PathBuf,
    /// Field separator (one ASCII character).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first record names the columns.
    #[serde(default = "default_true")]
    pub has_header: bool,
    /// Text encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// Quote character; `null` turns quoting off.
    #[serde(default = "default_quote")]
    pub quote_char: Option<char>,
    /// Field values read as missing (pandas' `na_values`); pandas' defaults unless set.
    #[serde(default = "default_null_values")]
    pub null_values: Vec<String>,
    /// Lines starting with this text are skipped.
    #[serde(default)]
    pub comment_prefix: Option<String>,
    /// Lines to skip before the header.
    #[serde(default)]
    pub skip_rows: usize,
    /// Rows used to infer column types.
    #[serde(default = "default_infer_rows")]
    pub infer_schema_rows: usize,
    /// Column types to force instead of inferring them (pandas' `dtype=`).
    #[serde(default)]
    pub dtypes: BTreeMap<String, DType>,
    /// Read only these columns (pandas' `usecols`); pushed down into the reader.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Read only the first rows (pandas' `nrows`).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Read in small batches through polars' streaming engine, for files larger than memory
    /// allows to parse at once (pandas' `low_memory`).
    #[serde(default)]
    pub low_memory: bool,
    /// Parse text that looks like dates into dates.
    #[serde(default)]
    pub parse_dates: bool,
}

impl CsvSource {
    /// Default options for a file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvSource {
            path: path.into(),
            delimiter: ',',
            has_header: true,
            encoding: Encoding::Utf8,
            quote_char: Some('"'),
            null_values: default_null_values(),
            comment_prefix: None,
            skip_rows: 0,
            infer_schema_rows: default_infer_rows(),
            dtypes: BTreeMap::new(),
            columns: None,
            limit: None,
            low_memory: false,
            parse_dates: false,
        }
    }
}

/// A sheet, by name or by 0-based position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SheetRef {
    /// Position in the workbook, 0 for the first.
    Index(usize),
    /// Sheet name.
    Name(String),
}

impl Default for SheetRef {
    fn default() -> Self {
        SheetRef::Index(0)
    }
}

/// A workbook sheet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcelSource {
    /// The workbook: xlsx, xlsm, xlsb, xls or ods.
    pub path: PathBuf,
    /// Which sheet; the first when absent.
    #[serde(default)]
    pub sheet: SheetRef,
    /// Whether the first row names the columns.
    #[serde(default = "default_true")]
    pub has_header: bool,
    /// Text cells read as missing.
    #[serde(default = "default_null_values")]
    pub null_values: Vec<String>,
    /// Read only these columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Read only the first rows.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl ExcelSource {
    /// Default options for a workbook.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ExcelSource {
            path: path.into(),
            sheet: SheetRef::default(),
            has_header: true,
            null_values: default_null_values(),
            columns: None,
            limit: None,
        }
    }
}

/// A Parquet file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSource {
    /// The file.
    pub path: PathBuf,
    /// Read only these columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Read only the first rows.
    #[serde(default)]
    pub limit: Option<usize>,
}

fn default_separator() -> String {
    ".".into()
}

/// A JSON or NDJSON file of records. Nested objects become dotted columns (`address.city`), as
/// pandas' `json_normalize` does; arrays stay JSON text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSource {
    /// The file.
    pub path: PathBuf,
    /// Dotted path to the array of records inside the document (`json_normalize`'s
    /// `record_path`), e.g. `data.items`. JSON only.
    #[serde(default)]
    pub record_path: Option<String>,
    /// Joins nested keys into column names.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Flatten objects only this deep; deeper objects stay JSON text.
    #[serde(default)]
    pub max_level: Option<usize>,
    /// Read only these columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Read only the first records.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl JsonSource {
    /// Default options for a file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonSource {
            path: path.into(),
            record_path: None,
            separator: default_separator(),
            max_level: None,
            columns: None,
            limit: None,
        }
    }
}

/// A query against a SQLite database file, opened read-only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSource {
    /// The database file.
    pub path: PathBuf,
    /// The SELECT to run.
    pub query: String,
}

/// A query, or a whole table, on a PostgreSQL server, read through a server-side cursor in
/// batches, in one read-only transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    /// `postgres://user@host:port/database` (a connection string `host=... dbname=...` works
    /// too). Never with a password: see `password_env`.
    pub url: String,
    /// The SELECT to run, with `$1`, `$2`, ... for `params`.
    #[serde(default)]
    pub query: Option<String>,
    /// Or a table (`name` or `schema.name`), read whole.
    #[serde(default)]
    pub table: Option<String>,
    /// Values for the query's `$1`, `$2`, ... in order (numbers, text, booleans, dates as
    /// `YYYY-MM-DD`, null), typed as the server expects them.
    #[serde(default)]
    pub params: Vec<serde_json::Value>,
    /// Rows fetched per round trip: what the reader holds of the server's answer at once.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// The environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Seconds to wait for the connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
}

fn default_batch_rows() -> usize {
    50_000
}

fn default_connect_timeout() -> u64 {
    10
}

impl PostgresSource {
    /// A source that runs `query` on `url`, with the defaults.
    pub fn new(url: impl Into<String>, query: impl Into<String>) -> PostgresSource {
        PostgresSource {
            url: url.into(),
            query: Some(query.into()),
            table: None,
            params: Vec::new(),
            batch_rows: default_batch_rows(),
            password_env: None,
            connect_timeout_seconds: default_connect_timeout(),
        }
    }
}

/// Records from a JSON API: one request per page, flattened as the `json` source flattens a
/// document (`json_normalize`'s rules), with retries, a client-side rate limit and the API's own
/// pagination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpJsonSource {
    /// The first page's URL (`http://` or `https://`).
    pub url: String,
    /// `GET` or `POST`.
    #[serde(default)]
    pub method: HttpMethod,
    /// Request headers: a literal value for harmless ones (`Accept: application/json`), or
    /// `{env: VARIABLE, prefix: "Bearer "}` for anything secret. Credentials (`Authorization`,
    /// `Cookie`, names with `key`, `token` or `secret`) are only taken from the environment.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, HeaderValue>,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: std::collections::BTreeMap<String, serde_json::Value>,
    /// A JSON body (sent with `POST`).
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Dotted path to the array of records in each page (`data.items`); none: the page is the
    /// array (or one record).
    #[serde(default)]
    pub record_path: Option<String>,
    /// Joins nested keys into column names.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Flatten objects only this deep; deeper objects stay JSON text.
    #[serde(default)]
    pub max_level: Option<usize>,
    /// How to get the next page (none: one request).
    #[serde(default)]
    pub pagination: Option<Pagination>,
    /// Stop after this many pages.
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// At most this many requests per second (none: no limit).
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Retries of a 429, a 5xx or a connection error, with exponential backoff and jitter.
    #[serde(default)]
    pub retries: Retries,
    /// Seconds one request may take, connecting included.
    #[serde(default = "default_http_timeout")]
    pub timeout_seconds: f64,
}

fn default_max_pages() -> usize {
    10_000
}

fn default_http_timeout() -> f64 {
    30.0
}

/// The request method of an API source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    #[default]
    Get,
    /// POST, with `body` as JSON.
    Post,
}

/// A header's value: written out, or read from an environment variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    /// The value as written (not for credentials).
    Literal(String),
    /// The value of an environment variable, after `prefix`.
    Env {
        /// The variable.
        env: String,
        /// Text before the variable's value (`"Bearer "`).
        #[serde(default)]
        prefix: String,
    },
}

/// How an API says where the next page is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// A URL in the page (`next_link: links.next`, a dotted path), or `link_header` for the
    /// `Link: <...>; rel="next"` header. Absent, null or empty: the last page.
    NextLink(String),
    /// Page numbers in a query parameter, from `start`; a page without records is the end.
    Page {
        /// The parameter (`page`).
        param: String,
        /// The first page's number.
        #[serde(default = "default_first_page")]
        start: u64,
    },
    /// A cursor from each page (`path`, dotted) sent back in a query parameter (`param`);
    /// absent or null: the last page. The same cursor twice is an error (a loop).
    Cursor {
        /// The parameter the cursor goes in.
        param: String,
        /// Where the page holds the next cursor.
        path: String,
    },
}

fn default_first_page() -> u64 {
    1
}

/// Retries of an API source.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retries {
    /// Attempts after the first.
    pub max: u32,
    /// The first wait, in milliseconds; doubled each time, with up to half again of jitter.
    pub backoff_ms: u64,
    /// The longest wait, in milliseconds (a `Retry-After` longer than this is an error).
    pub max_backoff_ms: u64,
}

impl Default for Retries {
    fn default() -> Self {
        Retries { max: 5, backoff_ms: 200, max_backoff_ms: 30_000 }
    }
}

impl HttpJsonSource {
    /// The same source with other retries.
    pub fn with_retries(self, retries: Retries) -> HttpJsonSource {
        HttpJsonSource { retries, ..self }
    }

    /// A GET of `url` with the defaults.
    pub fn new(url: impl Into<String>) -> HttpJsonSource {
        HttpJsonSource {
            url: url.into(),
            method: HttpMethod::Get,
            headers: Default::default(),
            query: Default::default(),
            body: None,
            record_path: None,
            separator: default_separator(),
            max_level: None,
            pagination: None,
            max_pages: default_max_pages(),
            rate_limit: None,
            retries: Retries::default(),
            timeout_seconds: default_http_timeout(),
        }
    }
}

/// A table of an HTML page, read as `pandas.read_html` reads one: `colspan` and `rowspan`
/// copied into every cell they cover, header rows from `<thead>` (or the leading rows of `<th>`
/// cells), whitespace collapsed, and each column typed by the CSV reader's rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HtmlTableSource {
    /// The page as a file (or `url`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The page's URL (or `path`).
    #[serde(default)]
    pub url: Option<String>,
    /// A CSS selector for the table (`table#birds`, `#results table`); without it, tables are
    /// taken in document order (nested ones too, as pandas does).
    #[serde(default)]
    pub selector: Option<String>,
    /// Which of the tables that match (from 0).
    #[serde(default)]
    pub index: usize,
    /// The row (from 0, over the table's expanded rows) holding the column names; rows above it
    /// are skipped. Without it: the `<thead>` rows, or the leading rows of `<th>` cells, or none
    /// (columns named `0`, `1`, ...).
    #[serde(default)]
    pub header_row: Option<usize>,
    /// A regular expression the table's text must match (`pandas.read_html`'s `match`).
    #[serde(default, rename = "match")]
    pub matching: Option<String>,
    /// Cell texts read as missing (pandas' defaults).
    #[serde(default = "default_null_values")]
    pub null_values: Vec<String>,
    /// Seconds to wait for a URL.
    #[serde(default = "default_http_timeout")]
    pub timeout_seconds: f64,
}

impl HtmlTableSource {
    /// The first table of the page in `path`.
    pub fn file(path: impl Into<PathBuf>) -> HtmlTableSource {
        HtmlTableSource {
            path: Some(path.into()),
            url: None,
            selector: None,
            index: 0,
            header_row: None,
            matching: None,
            null_values: default_null_values(),
            timeout_seconds: default_http_timeout(),
        }
    }
}

/// The messages of a Kafka topic read into a frame: every partition from `from` to `until`, each
/// message one record (a JSON object, or CSV lines under `columns`). The offsets read go into the
/// lineage; reading them again (`from`/`until` as offsets) gives the same frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// The topic.
    pub topic: String,
    /// A consumer group: reading starts at the offsets the group committed (where it has any), and
    /// the offsets read are committed to it once the frame is read, so the next run goes on from
    /// there.
    #[serde(default)]
    pub group: Option<String>,
    /// Where to start in each partition.
    #[serde(default)]
    pub from: KafkaFrom,
    /// Where to stop.
    #[serde(default)]
    pub until: KafkaUntil,
    /// What a message holds.
    #[serde(default)]
    pub format: MessageFormat,
    /// CSV: the names of the fields of each line (required). JSON: read only these columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// JSON: joins nested keys into column names.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// JSON: flatten objects only this deep; deeper objects stay JSON text.
    #[serde(default)]
    pub max_level: Option<usize>,
    /// Seconds to wait for the brokers (connecting, and each request).
    #[serde(default = "default_kafka_timeout")]
    pub timeout_seconds: f64,
}

fn default_kafka_timeout() -> f64 {
    10.0
}

/// Where a Kafka source starts: `earliest` (default), `latest`, a time (RFC 3339: the first
/// message at or after it), or an offset per partition (`{0: 120, 1: 80}`; others from earliest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KafkaFrom {
    /// `earliest`, `latest` or an RFC 3339 time.
    Named(String),
    /// The first offset to read, per partition.
    Offsets(std::collections::BTreeMap<i32, i64>),
}

impl Default for KafkaFrom {
    fn default() -> Self {
        KafkaFrom::Named("earliest".into())
    }
}

/// Where a Kafka source stops: `end` (default: the last message there when reading starts), or
/// any of `max_messages` (in all), `timeout_seconds` (reading what arrives until then) and
/// `offsets` (the offset to stop before, per partition), whichever comes first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KafkaUntil {
    /// `end`.
    Named(String),
    /// Limits.
    Limits(KafkaLimits),
}

impl Default for KafkaUntil {
    fn default() -> Self {
        KafkaUntil::Named("end".into())
    }
}

/// The limits of [`KafkaUntil`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaLimits {
    /// Stop after this many messages.
    #[serde(default)]
    pub max_messages: Option<usize>,
    /// Stop this many seconds after reading starts.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Stop before these offsets, per partition (partitions not named: at the end).
    #[serde(default)]
    pub offsets: Option<std::collections::BTreeMap<i32, i64>>,
}

/// What each message of a topic holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    /// One JSON object, flattened as the JSON source flattens records.
    #[default]
    Json,
    /// CSV lines without a header (the fields named by `columns`), typed as a CSV file is.
    Csv,
}
