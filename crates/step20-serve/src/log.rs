//! The prediction log: every served prediction, appended to the store by one writer thread fed
//! through a bounded queue. A request only ever tries to enqueue; when the queue is full the entry
//! is dropped and counted, so logging never slows or blocks an answer.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use mlops_core::Value;
use mlops_core::store::{Backend, Location, Migration, Tx};
use rusqlite::Connection;
use serde::Serialize;

use crate::metrics::Metrics;
use crate::publish::{Message, Publisher};
use crate::scorer::{Scored, Scorer};
use crate::{Result, ServeError};

/// One row per request: its inputs by row (values only, in the order `columns` names them) and its
/// outputs by row. Writing a request as one row keeps the log's cost per predicted row under a
/// microsecond, so a server answering half a million rows a second can log every one of them;
/// the `prediction_log` view lists the same log one predicted row at a time.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS prediction_requests (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    at TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER,
    route TEXT NOT NULL,
    rows INTEGER NOT NULL,
    columns TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    novel TEXT
);
CREATE INDEX IF NOT EXISTS prediction_requests_model_at ON prediction_requests (model_name, at);
CREATE TABLE IF NOT EXISTS prediction_refusals (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    at TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    column_name TEXT,
    latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS prediction_refusals_model_at ON prediction_refusals (model_name, at);
";

/// Feedback: the actual outcome of logged predictions (`crate::feedback`), joined to the log by
/// request id and row.
const FEEDBACK_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS prediction_feedback (
    request_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    actual TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (request_id, row)
);
";

/// The log one predicted row at a time, each row's inputs as an object keyed by column name.
const VIEW: &str = "
CREATE VIEW IF NOT EXISTS prediction_log AS
SELECT r.seq AS seq, r.request_id AS request_id, i.key AS row, r.at AS at, r.model_name AS model_name,
       r.model_version AS model_version, r.route AS route,
       (SELECT json_group_object(c.value, i.value -> c.key) FROM json_each(r.columns) AS c) AS inputs,
       r.outputs -> i.key AS outputs, r.latency_ms AS latency_ms
FROM prediction_requests AS r, json_each(r.inputs) AS i;
";

/// Earlier versions kept one table row per predicted row under the view's name: each becomes a
/// one-row request, in its order, and the old table goes.
const MIGRATE_ROWS_TABLE: &str = "
INSERT INTO prediction_requests
    (request_id, at, model_name, model_version, route, rows, columns, inputs, outputs, latency_ms)
SELECT o.request_id, o.at, o.model_name, o.model_version, o.route, 1,
       (SELECT json_group_array(c.key) FROM json_each(o.inputs) AS c),
       json_array(json((SELECT json_group_array(o.inputs -> c.fullkey) FROM json_each(o.inputs) AS c))),
       json_array(json(o.outputs)), o.latency_ms
FROM prediction_log AS o ORDER BY o.seq;
DROP TABLE prediction_log;
";

/// The same view on PostgreSQL (the JSON texts read as `json`).
const VIEW_POSTGRES: &str = "
CREATE OR REPLACE VIEW prediction_log AS
SELECT r.seq AS seq, r.request_id AS request_id, i.n - 1 AS row, r.at AS at, r.model_name AS model_name,
       r.model_version AS model_version, r.route AS route,
       (SELECT json_object_agg(c.name, i.value -> CAST(c.n - 1 AS INTEGER))
        FROM json_array_elements_text(CAST(r.columns AS json)) WITH ORDINALITY AS c(name, n)) AS inputs,
       CAST(r.outputs AS json) -> CAST(i.n - 1 AS INTEGER) AS outputs, r.latency_ms AS latency_ms
FROM prediction_requests AS r, json_array_elements(CAST(r.inputs AS json)) WITH ORDINALITY AS i(value, n);
";

/// The prediction log's schema versions (with the feedback beside it: step 20 owns both). 1 is
/// the schema as it stood when versioning began; a SQLite log made before gets what it lacks.
pub(crate) const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, apply: schema_v1 }, Migration { version: 2, apply: schema_v2 }];

/// 2: on PostgreSQL, the index feedback finds requests by (SQLite makes it on the first feedback,
/// keeping the writer's cost down until feedback is used).
fn schema_v2(t: &mut Tx<'_>) -> mlops_core::store::Result<()> {
    match t.backend() {
        Backend::Postgres => {
            t.batch("CREATE INDEX IF NOT EXISTS prediction_requests_request ON prediction_requests (request_id)")
        }
        Backend::Sqlite => Ok(()),
    }
}

fn schema_v1(t: &mut Tx<'_>) -> mlops_core::store::Result<()> {
    t.ddl(SCHEMA)?;
    t.ddl(FEEDBACK_SCHEMA)?;
    if t.backend() == Backend::Postgres {
        return t.batch(VIEW_POSTGRES);
    }
    // Before: one table row per predicted row under the view's name.
    if t.has_table("prediction_log")? {
        t.batch(MIGRATE_ROWS_TABLE)?;
        tracing::info!("moved the prediction log to one entry per request");
    }
    // A log from before `novel` (what the model was not trained on, per column) gets the column.
    if !t.has_column("prediction_requests", "novel")? {
        t.batch("ALTER TABLE prediction_requests ADD COLUMN novel TEXT")?;
    }
    t.batch(VIEW)
}

/// Entries written per transaction at most.
const BATCH: usize = 2048;

/// Rows written per transaction at most (a transaction of a few megabytes: its pages stay in the
/// connection's cache until the commit).
const BATCH_ROWS: usize = 8192;

/// The writer connection's page cache, in KiB (SQLite's default is 2 MiB): a transaction that
/// outgrows the cache spills pages to the WAL before its commit, which cost the writer a sixth of
/// its time.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// One request's predictions, waiting for the writer.
pub(crate) struct Entry {
    pub request_id: String,
    pub at: String,
    pub route: &'static str,
    pub scorer: Arc<Scorer>,
    /// Rows of the request.
    pub rows: usize,
    /// The conformed inputs by signature input, as [`crate::protocol::Parsed`] holds them.
    pub inputs: Vec<Vec<Value>>,
    /// Per signature input, the values the model was not trained on.
    pub novel: Vec<crate::scorer::Novel>,
    pub scored: Scored,
    pub latency_ms: f64,
}

/// A request the server did not answer with predictions: refused for its input (4xx) or failed
/// (5xx). Logged beside the predictions for monitoring's error rate and rejected values per
/// column (`prediction_refusals`).
pub(crate) struct Refusal {
    pub request_id: String,
    pub at: String,
    pub route: &'static str,
    pub model_name: String,
    pub model_version: Option<u32>,
    pub status: u16,
    /// The reason, as `mlops_rejected_inputs_total` labels it (`model` for a 5xx).
    pub reason: &'static str,
    /// The input column at fault, when one is.
    pub column: Option<String>,
    pub latency_ms: f64,
}

/// What the writer writes.
pub(crate) enum Logged {
    Predicted(Entry),
    Refused(Refusal),
}

impl Logged {
    /// Its weight in the queue: a request's rows, or one for a refusal.
    fn rows(&self) -> usize {
        match self {
            Logged::Predicted(e) => e.rows,
            Logged::Refused(_) => 1,
        }
    }
}

/// The writer side of the prediction log.
pub struct PredictionLog {
    tx: RwLock<Option<SyncSender<Logged>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    /// Rows queued and not yet written.
    queued: Arc<AtomicUsize>,
    /// Most rows queued at once.
    capacity: usize,
    /// Whether predicted rows are also published to a Kafka topic.
    kafka: bool,
    /// Why the writer cannot write, while it cannot.
    problem: Arc<Mutex<Option<String>>>,
    /// The store.
    path: std::path::PathBuf,
    /// Whether the store is a SQLite file (whose removal or replacement the log watches).
    file: bool,
    /// The file the writer has open (see [`SqliteSink`]).
    opened: Arc<Mutex<Option<(u64, u64)>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The writer's store: the connection, and the file it opened. SQLite writes on through an open
/// connection into a file that was deleted (the rows would be lost with it), so before each batch
/// the writer checks that the path still names the file it opened.
struct SqliteSink {
    conn: Connection,
    path: std::path::PathBuf,
    opened: Arc<Mutex<Option<(u64, u64)>>>,
    problem: Arc<Mutex<Option<String>>>,
}

impl SqliteSink {
    /// Whether the batch can be written: the path still names the opened file, or names a new
    /// store, which is opened in its place. A removed store is reported (and not created again:
    /// the registry lives in it).
    fn usable(&mut self, metrics: &Metrics) -> bool {
        let now = identity(&self.path);
        let problem = if now.is_some() && now == *lock(&self.opened) {
            None
        } else if now.is_some() {
            match open_writer(&self.path) {
                Ok(conn) => {
                    tracing::warn!(path = %self.path.display(), "the prediction log's store was replaced; writing to the new one");
                    self.conn = conn;
                    *lock(&self.opened) = identity(&self.path);
                    None
                }
                Err(e) => Some(format!("the store {} was replaced and cannot be opened: {e}", self.path.display())),
            }
        } else {
            Some(format!(
                "the store {} was removed while the server ran: predictions are not logged (restore it, or restart the server once a store is there)",
                self.path.display()
            ))
        };
        let mut slot = lock(&self.problem);
        if problem.is_some() && slot.is_none() {
            tracing::error!(path = %self.path.display(), "the prediction log's store is gone; predictions are dropped and counted");
        }
        metrics.log_broken(problem.is_some());
        let ok = problem.is_none();
        *slot = problem;
        ok
    }
}

pub(crate) fn open(path: &Path) -> Result<Connection> {
    let sql = |source| ServeError::Store { path: path.to_path_buf(), source };
    mlops_core::store::Store::open(&Location::Sqlite(path.to_path_buf()))?.migrate("prediction_log", MIGRATIONS)?;
    let conn = Connection::open(path).map_err(sql)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
    // In WAL mode NORMAL syncs at checkpoints instead of at every commit: a power cut can lose
    // the last batches, never corrupt the store.
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
    Ok(conn)
}

/// The writer's connection, set up for batches of multi-row INSERTs.
fn open_writer(path: &Path) -> Result<Connection> {
    let conn = open(path)?;
    let sql = |source| ServeError::Store { path: path.to_path_buf(), source };
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).map_err(sql)?;
    // Statement journals (each multi-row INSERT keeps one) in memory, not in a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(sql)?;
    // One prepared INSERT per entry count a statement can hold.
    conn.set_prepared_statement_cache_capacity(ENTRIES_PER_INSERT + 8);
    Ok(conn)
}

/// The writer's PostgreSQL store: batches go in with COPY, in one transaction each. A lost
/// connection (a server restart) is opened again for the next batch; the batch that met it is
/// dropped and counted.
struct PgSink {
    db: Option<mlops_core::store::Store>,
    location: Location,
    password: Option<String>,
    problem: Arc<Mutex<Option<String>>>,
}

/// Where the writer writes.
enum Sink {
    Sqlite(SqliteSink),
    Postgres(PgSink),
}

impl Sink {
    fn name(&self) -> String {
        match self {
            Sink::Sqlite(s) => s.path.display().to_string(),
            Sink::Postgres(p) => p.location.to_string(),
        }
    }

    /// Writes a batch: `Ok(false)` when the store cannot take it now (counted as dropped).
    fn write(
        &mut self,
        metrics: &Metrics,
        entries: &[Entry],
        refusals: &[Refusal],
    ) -> std::result::Result<bool, String> {
        match self {
            Sink::Sqlite(s) => {
                if !s.usable(metrics) {
                    return Ok(false);
                }
                write(&mut s.conn, entries, refusals).map(|()| true).map_err(|e| e.to_string())
            }
            Sink::Postgres(p) => {
                if p.db.is_none() {
                    match mlops_core::store::Store::open_with(&p.location, p.password.as_deref()) {
                        Ok(db) => {
                            tracing::info!(store = %p.location, "the prediction log's store is reachable again");
                            p.db = Some(db);
                        }
                        Err(e) => {
                            *lock(&p.problem) = Some(format!("the prediction log cannot reach its store: {e}"));
                            metrics.log_broken(true);
                            return Ok(false);
                        }
                    }
                }
                let Some(db) = p.db.as_ref() else { return Ok(false) };
                let written = db.transaction(|tx| copy(tx, entries, refusals));
                let ok = written.is_ok();
                *lock(&p.problem) = written.as_ref().err().map(|e| format!("the prediction log cannot write: {e}"));
                metrics.log_broken(!ok);
                if !ok {
                    // A connection that failed is not trusted with the next batch.
                    p.db = None;
                }
                written.map(|()| true).map_err(|e| e.to_string())
            }
        }
    }
}

/// Appends one CSV field of text (quoted; quotes doubled). `None` is NULL (an unquoted empty
/// field).
fn csv_text(out: &mut String, text: Option<&str>) {
    if let Some(text) = text {
        out.push('"');
        if text.contains('"') {
            out.push_str(&text.replace('"', "\"\""));
        } else {
            out.push_str(text);
        }
        out.push('"');
    }
}

/// One batch into PostgreSQL: the refusals and the requests, each table in one COPY.
fn copy(tx: &mut Tx<'_>, batch: &[Entry], refusals: &[Refusal]) -> mlops_core::store::Result<()> {
    let mut text = String::new();
    if !refusals.is_empty() {
        for r in refusals {
            csv_text(&mut text, Some(&r.request_id));
            text.push(',');
            csv_text(&mut text, Some(&r.at));
            text.push(',');
            csv_text(&mut text, Some(&r.model_name));
            let _ = write!(text, ",{},", r.model_version.map(|v| v.to_string()).unwrap_or_default());
            csv_text(&mut text, Some(r.route));
            let _ = write!(text, ",{},", r.status);
            csv_text(&mut text, Some(r.reason));
            text.push(',');
            csv_text(&mut text, r.column.as_deref());
            text.push(',');
            float_into(&mut text, r.latency_ms);
            text.push('\n');
        }
        tx.copy_in(
            "COPY prediction_refusals (request_id, at, model_name, model_version, route, status, reason, column_name, latency_ms) FROM STDIN WITH (FORMAT csv)",
            text.as_bytes(),
        )?;
    }
    if batch.is_empty() {
        return Ok(());
    }
    text.clear();
    let mut json = String::new();
    for e in batch {
        csv_text(&mut text, Some(&e.request_id));
        text.push(',');
        csv_text(&mut text, Some(&e.at));
        text.push(',');
        csv_text(&mut text, Some(&e.scorer.origin.name));
        let _ = write!(text, ",{},", e.scorer.origin.version.map(|v| v.to_string()).unwrap_or_default());
        csv_text(&mut text, Some(e.route));
        let _ = write!(text, ",{},", e.rows);
        for (k, f) in [columns_json as fn(&mut String, &Entry), inputs_json, outputs_json].into_iter().enumerate() {
            json.clear();
            f(&mut json, e);
            if k > 0 {
                text.push(',');
            }
            csv_text(&mut text, Some(&json));
        }
        text.push(',');
        float_into(&mut text, e.latency_ms);
        text.push(',');
        csv_text(&mut text, novel_json(e).as_deref());
        text.push('\n');
    }
    tx.copy_in(
        "COPY prediction_requests (request_id, at, model_name, model_version, route, rows, columns, inputs, outputs, latency_ms, novel) FROM STDIN WITH (FORMAT csv)",
        text.as_bytes(),
    )?;
    Ok(())
}

/// Which file a path names now (device and inode), `None` when nothing is there.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl PredictionLog {
    /// The store the log writes to.
    pub fn store(&self) -> &Path {
        &self.path
    }

    /// Opens the log in the SQLite store `path` (creating the table) and starts its writer; with
    /// `kafka`, the writer also publishes every predicted row to that topic.
    pub fn open(
        path: &Path,
        queue: usize,
        metrics: Arc<Metrics>,
        kafka: Option<&crate::config::KafkaLogConfig>,
    ) -> Result<PredictionLog> {
        let location = Location::from_path(path);
        let problem = Arc::new(Mutex::new(None));
        let opened = Arc::new(Mutex::new(identity(path)));
        let sink = match &location {
            Location::Sqlite(_) => Sink::Sqlite(SqliteSink {
                conn: open_writer(path)?,
                path: path.to_path_buf(),
                opened: opened.clone(),
                problem: problem.clone(),
            }),
            Location::Postgres(_) => {
                let password = mlops_core::store::password_for(&location);
                let db = mlops_core::store::Store::open_with(&location, password.as_deref())?;
                db.migrate("prediction_log", MIGRATIONS)?;
                Sink::Postgres(PgSink { db: Some(db), location: location.clone(), password, problem: problem.clone() })
            }
        };
        let publisher = kafka.map(|k| Publisher::start(k, metrics.clone())).transpose()?;
        // The channel never fills first: `queued` bounds the rows waiting.
        let (tx, rx) = std::sync::mpsc::sync_channel(queue.max(1));
        let counts = metrics.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let waiting = queued.clone();
        let writer = std::thread::Builder::new().name("prediction-log".into()).spawn(move || {
            let mut sink = sink;
            write_loop(&mut sink, &rx, (&counts, &waiting), publisher.as_ref());
        })?;
        Ok(PredictionLog {
            tx: RwLock::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            metrics,
            queued,
            capacity: queue.max(1),
            kafka: kafka.is_some(),
            problem,
            path: path.to_path_buf(),
            file: location.sqlite_path().is_some(),
            opened,
        })
    }

    /// Why the log cannot write now (its store was removed or replaced), or `None` while it
    /// writes. Asked before the writer has met the change, it answers from the file itself.
    pub fn problem(&self) -> Option<String> {
        let known = lock(&self.problem).clone();
        known.or_else(|| {
            (self.file && identity(&self.path) != *lock(&self.opened)).then(|| {
                format!(
                    "the store {} was removed or replaced while the server ran: predictions are not logged until it is reopened",
                    self.path.display()
                )
            })
        })
    }

    /// Queues one request's predictions; drops (and counts) them when the queue is full.
    pub(crate) fn record(&self, entry: Entry) {
        self.queue(Logged::Predicted(entry));
    }

    /// Queues a refused or failed request; dropped (and counted) when the queue is full.
    pub(crate) fn record_refusal(&self, refusal: Refusal) {
        self.queue(Logged::Refused(refusal));
    }

    fn queue(&self, entry: Logged) {
        let tx = self.tx.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let rows = entry.rows();
        let predicted = matches!(entry, Logged::Predicted(_));
        let room = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| (q + rows <= self.capacity).then_some(q + rows))
            .is_ok();
        let sent = room
            && match tx.as_ref() {
                Some(tx) => tx.try_send(entry).is_ok(),
                None => false,
            };
        if !sent {
            if room {
                self.queued.fetch_sub(rows, Ordering::AcqRel);
            }
            self.metrics.log_dropped(rows as u64);
            // Predicted rows that never reach the writer never reach the Kafka topic either.
            if self.kafka && predicted {
                self.metrics.kafka_dropped(rows as u64);
            }
        }
    }

    /// Stops taking entries, writes what is queued and waits for the writer. Later entries are
    /// dropped (and counted).
    pub fn close(&self) {
        self.tx.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            tracing::error!("the prediction log writer panicked");
        }
    }
}

impl Drop for PredictionLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(
    store: &mut Sink,
    rx: &Receiver<Logged>,
    (metrics, queued): (&Metrics, &AtomicUsize),
    publisher: Option<&Publisher>,
) {
    // Failed batches in a row (a full disk fails every one): logged at 1, 10, 100, ...
    let mut failures: u64 = 0;
    while let Ok(first) = rx.recv() {
        let mut queued_rows = first.rows();
        let mut batch = vec![first];
        while batch.len() < BATCH && queued_rows < BATCH_ROWS {
            match rx.try_recv() {
                Ok(e) => {
                    queued_rows += e.rows();
                    batch.push(e);
                }
                Err(_) => break,
            }
        }
        let mut entries = Vec::with_capacity(batch.len());
        let mut refusals = Vec::new();
        for logged in batch {
            match logged {
                Logged::Predicted(e) => entries.push(e),
                Logged::Refused(r) => refusals.push(r),
            }
        }
        if let Some(publisher) = publisher {
            for e in &entries {
                publish(publisher, e);
            }
        }
        let result = store.write(metrics, &entries, &refusals);
        queued.fetch_sub(queued_rows, Ordering::AcqRel);
        let rows = entries.iter().map(|e| e.rows as u64).sum::<u64>() + refusals.len() as u64;
        match result {
            Ok(true) => {
                if failures > 0 {
                    tracing::info!(store = %store.name(), failures, "the prediction log writes again");
                }
                failures = 0;
                metrics.log_written(rows);
            }
            Ok(false) => metrics.log_dropped(rows),
            Err(e) => {
                failures += 1;
                if failures.is_power_of_two() || failures.is_multiple_of(1000) {
                    tracing::error!(store = %store.name(), error = %e, rows, failures, "cannot write to the prediction log; the rows are dropped and counted");
                }
                metrics.log_dropped(rows);
            }
        }
    }
}

/// Entries per INSERT statement: one statement per small request spends most of its time outside
/// the data.
const ENTRIES_PER_INSERT: usize = 32;

const COLUMNS: usize = 11;

fn insert_sql(entries: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO prediction_requests \
         (request_id, at, model_name, model_version, route, rows, columns, inputs, outputs, latency_ms, novel) VALUES ",
    );
    for r in 0..entries {
        sql.push_str(if r > 0 { ",(" } else { "(" });
        for c in 1..=COLUMNS {
            let _ = write!(sql, "{}?{}", if c > 1 { "," } else { "" }, r * COLUMNS + c);
        }
        sql.push(')');
    }
    sql
}

/// Where one entry's JSON texts are in the shared buffer.
#[derive(Clone)]
struct Spans {
    columns: Range<usize>,
    inputs: Range<usize>,
    outputs: Range<usize>,
}

fn write(conn: &mut Connection, batch: &[Entry], refusals: &[Refusal]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if !refusals.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO prediction_refusals
             (request_id, at, model_name, model_version, route, status, reason, column_name, latency_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for r in refusals {
            stmt.execute(rusqlite::params![
                r.request_id,
                r.at,
                r.model_name,
                r.model_version,
                r.route,
                r.status,
                r.reason,
                r.column,
                r.latency_ms
            ])?;
        }
    }
    let mut text = String::new();
    let mut spans: Vec<Spans> = Vec::with_capacity(ENTRIES_PER_INSERT);
    for chunk in batch.chunks(ENTRIES_PER_INSERT) {
        text.clear();
        spans.clear();
        for (k, e) in chunk.iter().enumerate() {
            // Requests answered by the same model share its column names.
            let columns = match k.checked_sub(1) {
                Some(p) if Arc::ptr_eq(&chunk[p].scorer, &e.scorer) => spans[p].columns.clone(),
                _ => appended(&mut text, |t| columns_json(t, e)),
            };
            let inputs = appended(&mut text, |t| inputs_json(t, e));
            let outputs = appended(&mut text, |t| outputs_json(t, e));
            spans.push(Spans { columns, inputs, outputs });
        }
        insert(&tx, chunk, &spans, &text)?;
    }
    tx.commit()
}

/// Runs `f` on `text` and answers the span it appended.
fn appended(text: &mut String, f: impl FnOnce(&mut String)) -> Range<usize> {
    let start = text.len();
    f(text);
    start..text.len()
}

fn insert(tx: &rusqlite::Transaction<'_>, entries: &[Entry], spans: &[Spans], text: &str) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(&insert_sql(entries.len()))?;
    let rows: Vec<i64> = entries.iter().map(|e| e.rows as i64).collect();
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(entries.len() * COLUMNS);
    let texts: Vec<[&str; 3]> =
        spans.iter().map(|s| [&text[s.columns.clone()], &text[s.inputs.clone()], &text[s.outputs.clone()]]).collect();
    let novel: Vec<Option<String>> = entries.iter().map(novel_json).collect();
    for (((e, rows), [columns, inputs, outputs]), novel) in entries.iter().zip(&rows).zip(&texts).zip(&novel) {
        values.extend_from_slice(&[
            &e.request_id,
            &e.at,
            &e.scorer.origin.name,
            &e.scorer.origin.version,
            &e.route,
            rows,
            columns,
            inputs,
            outputs,
            &e.latency_ms,
            novel,
        ]);
    }
    stmt.execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// Per request, `{"column": {"unseen": n, "out_of_range": n}}` for the columns that had any.
fn novel_json(e: &Entry) -> Option<String> {
    let seen: serde_json::Map<String, serde_json::Value> = e
        .scorer
        .inputs()
        .iter()
        .zip(&e.novel)
        .filter(|(_, n)| !n.is_empty())
        .filter_map(|(c, n)| serde_json::to_value(n).ok().map(|v| (c.name.clone(), v)))
        .collect();
    (!seen.is_empty()).then(|| serde_json::Value::Object(seen).to_string())
}

/// Appends `value` as JSON.
fn json_into(out: &mut String, value: &serde_json::Value) {
    // Writing JSON into a String cannot fail.
    out.push_str(&value.to_string());
}

/// Appends a date as a JSON string, `"YYYY-MM-DD"`.
pub(crate) fn date_into(out: &mut String, date: chrono::NaiveDate) {
    use chrono::Datelike;
    let (y, m, d) = (date.year(), date.month(), date.day());
    if (0..=9999).contains(&y) {
        let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
        let y = y.unsigned_abs();
        out.push('"');
        for n in [y / 1000, y / 100, y / 10, y] {
            out.push(digit(n));
        }
        out.extend(['-', digit(m / 10), digit(m), '-', digit(d / 10), digit(d), '"']);
    } else {
        let _ = write!(out, "\"{}\"", date.format("%Y-%m-%d"));
    }
}

/// Appends text as a JSON string; text with nothing to escape is copied as it is.
pub(crate) fn string_into(out: &mut String, text: &str) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        json_into(out, &serde_json::Value::String(text.to_owned()));
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

/// Appends a float as JSON: the shortest text that reads back as the same number, `null` when
/// it is not finite.
pub(crate) fn float_into(out: &mut String, f: f64) {
    // Whole numbers (one-hot inputs, years, the 0 and 1 probabilities of confident models) are
    // most of what a log holds; their shortest text is the integer and `.0`.
    if f.fract() == 0.0 && f.abs() < 1e9 && !(f == 0.0 && f.is_sign_negative()) {
        out.push_str(itoa::Buffer::new().format(f as i64));
        out.push_str(".0");
    } else if f.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(f));
    } else {
        out.push_str("null");
    }
}

/// Appends the signature's input names as a JSON array.
fn columns_json(out: &mut String, e: &Entry) {
    out.push('[');
    for (k, input) in e.scorer.inputs().iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        string_into(out, &input.name);
    }
    out.push(']');
}

/// The labels of a classifier's classes as JSON texts (none for a regressor).
fn label_texts(e: &Entry) -> Vec<String> {
    match e.scorer.task() {
        mlops_core::TaskKind::Regression => Vec::new(),
        _ => e.scorer.classes().iter().map(|c| serde_json::to_string(c).unwrap_or_default()).collect(),
    }
}

/// Appends row `i`'s output, `{"prediction": ..., "probabilities": [...]}`.
fn output_into(out: &mut String, e: &Entry, i: usize, labels: &[String]) {
    out.push_str("{\"prediction\":");
    let predicted = e.scored.predicted.get(i).copied().unwrap_or(f64::NAN);
    match e.scorer.task() {
        mlops_core::TaskKind::Regression => float_into(out, predicted),
        _ => match labels.get(predicted as usize) {
            Some(label) => out.push_str(label),
            None => json_into(out, &e.scorer.label(predicted)),
        },
    }
    if let Some(p) = e.scored.proba.as_ref().and_then(|p| p.get(i)) {
        out.push_str(",\"probabilities\":[");
        for (k, v) in p.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            float_into(out, *v);
        }
        out.push(']');
    }
    out.push('}');
}

/// Appends the request's outputs as a JSON array with one `{"prediction": ..., "probabilities":
/// [...]}` object per row.
fn outputs_json(out: &mut String, e: &Entry) {
    let labels = label_texts(e);
    out.push('[');
    for i in 0..e.rows {
        if i > 0 {
            out.push(',');
        }
        output_into(out, e, i, &labels);
    }
    out.push(']');
}

/// Appends one input value as JSON (dates as text, like a client sends them).
fn value_into(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Float(f) => float_into(out, *f),
        Value::Date(d) => match Value::date_from_days(*d) {
            Some(date) => date_into(out, date),
            None => out.push_str("null"),
        },
        Value::Str(text) => string_into(out, text),
        other => json_into(out, &other.to_json()),
    }
}

/// Publishes each row of a request as its own message, shaped as the `prediction_log` view's
/// rows: `{"request_id", "at", "model_name", "model_version", "route", "row", "inputs": {column:
/// value}, "outputs": {"prediction", "probabilities"}, "latency_ms"}`, keyed by request id.
fn publish(publisher: &Publisher, e: &Entry) {
    let labels = label_texts(e);
    let mut head = String::from("{\"request_id\":");
    string_into(&mut head, &e.request_id);
    head.push_str(",\"at\":");
    string_into(&mut head, &e.at);
    head.push_str(",\"model_name\":");
    string_into(&mut head, &e.scorer.origin.name);
    head.push_str(",\"model_version\":");
    match e.scorer.origin.version {
        Some(v) => head.push_str(itoa::Buffer::new().format(v)),
        None => head.push_str("null"),
    }
    head.push_str(",\"route\":");
    string_into(&mut head, e.route);
    for i in 0..e.rows {
        let mut value = head.clone();
        value.push_str(",\"row\":");
        value.push_str(itoa::Buffer::new().format(i));
        value.push_str(",\"inputs\":{");
        for (k, (input, values)) in e.scorer.inputs().iter().zip(&e.inputs).enumerate() {
            if k > 0 {
                value.push(',');
            }
            string_into(&mut value, &input.name);
            value.push(':');
            value_into(&mut value, values.get(i).unwrap_or(&Value::Null));
        }
        value.push_str("},\"outputs\":");
        output_into(&mut value, e, i, &labels);
        value.push_str(",\"latency_ms\":");
        float_into(&mut value, e.latency_ms);
        value.push('}');
        publisher.send(Message { key: e.request_id.clone(), value });
    }
}

/// Appends the request's inputs as a JSON array with one array of values per row, in signature
/// order (dates as text, like a client sends them), without building an intermediate map.
fn inputs_json(out: &mut String, e: &Entry) {
    out.push('[');
    for i in 0..e.rows {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (k, values) in e.inputs.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            value_into(out, values.get(i).unwrap_or(&Value::Null));
        }
        out.push(']');
    }
    out.push(']');
}

/// One logged prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedPrediction {
    /// The request's entry in the log (the rows of one request share it; later requests have
    /// larger ones).
    pub seq: i64,
    /// The request it answered.
    pub request_id: String,
    /// Its row within the request (from 0).
    pub row: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Model name.
    pub model_name: String,
    /// Registered version (none for a package path).
    pub model_version: Option<u32>,
    /// The route (`/invocations`, ...).
    pub route: String,
    /// The input row as received (after the signature's type conversion).
    pub inputs: serde_json::Value,
    /// `prediction` and, for classifiers, `probabilities`.
    pub outputs: serde_json::Value,
    /// Time to answer the whole request, in milliseconds.
    pub latency_ms: f64,
}

/// The newest `limit` logged predictions of `model` (all models when `None`), oldest first.
pub fn read_predictions(path: &Path, model: Option<&str>, limit: usize) -> Result<Vec<LoggedPrediction>> {
    let location = Location::from_path(path);
    if location.sqlite_path().is_some() {
        // Creates the log's tables in a store that has none yet.
        open(path)?;
    }
    let db = mlops_core::store::Store::open(&location)?;
    db.migrate("prediction_log", MIGRATIONS)?;
    // Each request holds one row at least: `limit` requests are enough.
    let requests = db.query(
        "SELECT seq, request_id, at, model_name, model_version, route, columns, inputs, outputs, latency_ms
         FROM prediction_requests WHERE CAST(?1 AS TEXT) IS NULL OR model_name = ?1 ORDER BY seq DESC LIMIT ?2",
        &[&model, &limit],
    )?;
    let mut out: Vec<LoggedPrediction> = Vec::new();
    for r in &requests {
        if out.len() == limit {
            break;
        }
        let seq: i64 = r.get(0)?;
        let json = |k: usize, name: &str| -> Result<serde_json::Value> {
            let text: String = r.get(k)?;
            serde_json::from_str(&text).map_err(|e| {
                ServeError::Db(mlops_core::store::StoreError::Sql {
                    location: location.to_string(),
                    message: format!(
                        "`{name}` of entry {seq} in prediction_requests is not the JSON the log writes: {e}"
                    ),
                    source: None,
                })
            })
        };
        let shape = |name: &str| {
            ServeError::Db(mlops_core::store::StoreError::Sql {
                location: location.to_string(),
                message: format!("`{name}` of entry {seq} in prediction_requests is not the JSON the log writes"),
                source: None,
            })
        };
        let columns: Vec<String> = serde_json::from_value(json(6, "columns")?).map_err(|_| shape("columns"))?;
        let inputs: Vec<Vec<serde_json::Value>> =
            serde_json::from_value(json(7, "inputs")?).map_err(|_| shape("inputs"))?;
        let outputs: Vec<serde_json::Value> =
            serde_json::from_value(json(8, "outputs")?).map_err(|_| shape("outputs"))?;
        let (request_id, at): (String, String) = (r.get(1)?, r.get(2)?);
        let (model_name, model_version, route): (String, Option<u32>, String) = (r.get(3)?, r.get(4)?, r.get(5)?);
        let latency_ms: f64 = r.get(9)?;
        for (row, (values, outputs)) in inputs.into_iter().zip(outputs).enumerate().rev() {
            if out.len() == limit {
                break;
            }
            let inputs = columns.iter().cloned().zip(values).collect::<serde_json::Map<_, _>>();
            out.push(LoggedPrediction {
                seq,
                request_id: request_id.clone(),
                row: row as i64,
                at: at.clone(),
                model_name: model_name.clone(),
                model_version,
                route: route.clone(),
                inputs: serde_json::Value::Object(inputs),
                outputs,
                latency_ms,
            });
        }
    }
    out.reverse();
    Ok(out)
}
