//! The prediction log: every served prediction, appended to the store by one writer thread fed
//! through a bounded queue. A request only ever tries to enqueue; when the queue is full the entry
//! is dropped and counted, so logging never slows or blocks an answer.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use mlops_core::Value;
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::metrics::Metrics;
use crate::scorer::{Scored, Scorer};
use crate::{Result, ServeError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS prediction_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    at TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER,
    route TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS prediction_log_model_at ON prediction_log (model_name, at);
";

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
    pub scored: Scored,
    pub latency_ms: f64,
}

/// The writer side of the prediction log.
pub struct PredictionLog {
    tx: RwLock<Option<SyncSender<Entry>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    /// Rows queued and not yet written.
    queued: Arc<AtomicUsize>,
    /// Most rows queued at once.
    capacity: usize,
}

fn open(path: &Path) -> Result<Connection> {
    let sql = |source| ServeError::Store { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let conn = Connection::open(path).map_err(sql)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
    // In WAL mode NORMAL syncs at checkpoints instead of at every commit: a power cut can lose
    // the last batches, never corrupt the store.
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    Ok(conn)
}

impl PredictionLog {
    /// Opens the log in the SQLite store `path` (creating the table) and starts its writer.
    pub fn open(path: &Path, queue: usize, metrics: Arc<Metrics>) -> Result<PredictionLog> {
        let conn = open(path)?;
        let sql = |source| ServeError::Store { path: path.to_path_buf(), source };
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).map_err(sql)?;
        // Statement journals (each multi-row INSERT keeps one) in memory, not in a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(sql)?;
        // The channel never fills first: `queued` bounds the rows waiting.
        let (tx, rx) = std::sync::mpsc::sync_channel(queue.max(1));
        let path = path.to_path_buf();
        let counts = metrics.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let waiting = queued.clone();
        let writer = std::thread::Builder::new()
            .name("prediction-log".into())
            .spawn(move || write_loop(conn, &path, &rx, (&counts, &waiting)))?;
        Ok(PredictionLog {
            tx: RwLock::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            metrics,
            queued,
            capacity: queue.max(1),
        })
    }

    /// Queues one request's predictions; drops (and counts) them when the queue is full.
    pub(crate) fn record(&self, entry: Entry) {
        let tx = self.tx.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let rows = entry.rows;
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

fn write_loop(mut conn: Connection, path: &Path, rx: &Receiver<Entry>, (metrics, queued): (&Metrics, &AtomicUsize)) {
    while let Ok(first) = rx.recv() {
        let mut rows = first.rows;
        let mut batch = vec![first];
        while batch.len() < BATCH && rows < BATCH_ROWS {
            match rx.try_recv() {
                Ok(e) => {
                    rows += e.rows;
                    batch.push(e);
                }
                Err(_) => break,
            }
        }
        let result = write(&mut conn, &batch);
        queued.fetch_sub(rows, Ordering::AcqRel);
        let rows = rows as u64;
        match result {
            Ok(()) => metrics.log_written(rows),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, rows, "cannot write to the prediction log");
                metrics.log_dropped(rows);
            }
        }
    }
}

/// Rows per INSERT statement: one statement per row spends most of its time outside the data.
const ROWS_PER_INSERT: usize = 32;

/// One row of the log, ready to bind: its inputs and outputs are spans of a shared text buffer.
struct Pending<'e> {
    entry: &'e Entry,
    row: usize,
    inputs: std::ops::Range<usize>,
    outputs: std::ops::Range<usize>,
}

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO prediction_log (request_id, row, at, model_name, model_version, route, inputs, outputs, latency_ms) VALUES ",
    );
    for r in 0..rows {
        let b = r * 9;
        let sep = if r > 0 { "," } else { "" };
        let _ = write!(
            sql,
            "{sep}(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8,
            b + 9
        );
    }
    sql
}

fn insert(tx: &rusqlite::Transaction<'_>, rows: &[Pending<'_>], text: &str) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(&insert_sql(rows.len()))?;
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(rows.len() * 9);
    let indices: Vec<i64> = rows.iter().map(|p| p.row as i64).collect();
    let spans: Vec<(&str, &str)> = rows.iter().map(|p| (&text[p.inputs.clone()], &text[p.outputs.clone()])).collect();
    for ((p, index), (inputs, outputs)) in rows.iter().zip(&indices).zip(&spans) {
        let e = p.entry;
        values.extend_from_slice(&[
            &e.request_id,
            index,
            &e.at,
            &e.scorer.origin.name,
            &e.scorer.origin.version,
            &e.route,
            inputs,
            outputs,
            &e.latency_ms,
        ]);
    }
    stmt.execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// What every row of an entry shares: its inputs in name order (as a row map lists them) with
/// their names already escaped, and its class labels as JSON.
struct Layout<'e> {
    columns: Vec<(String, &'e [Value])>,
    labels: Vec<String>,
}

impl<'e> Layout<'e> {
    fn of(e: &'e Entry) -> Layout<'e> {
        let inputs = e.scorer.inputs();
        let columns = e
            .scorer
            .name_order()
            .iter()
            .filter_map(|&j| {
                let name = serde_json::to_string(&inputs[j].name).unwrap_or_default();
                e.inputs.get(j).map(|c| (name, c.as_slice()))
            })
            .collect();
        let labels = e.scorer.classes().iter().map(|c| serde_json::to_string(c).unwrap_or_default()).collect();
        Layout { columns, labels }
    }
}

fn write(conn: &mut Connection, batch: &[Entry]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let layouts: Vec<Layout<'_>> = batch.iter().map(Layout::of).collect();
    let mut pending: Vec<Pending<'_>> = Vec::with_capacity(ROWS_PER_INSERT);
    let mut text = String::with_capacity(ROWS_PER_INSERT * 640);
    for (e, layout) in batch.iter().zip(&layouts) {
        for i in 0..e.rows {
            let start = text.len();
            row_json(&mut text, &layout.columns, i);
            let middle = text.len();
            outputs_json(&mut text, e, &layout.labels, i);
            pending.push(Pending { entry: e, row: i, inputs: start..middle, outputs: middle..text.len() });
            if pending.len() == ROWS_PER_INSERT {
                insert(&tx, &pending, &text)?;
                pending.clear();
                text.clear();
            }
        }
    }
    if !pending.is_empty() {
        insert(&tx, &pending, &text)?;
    }
    tx.commit()
}

/// Appends `value` as JSON.
fn json_into(out: &mut String, value: &serde_json::Value) {
    // Writing JSON into a String cannot fail.
    out.push_str(&value.to_string());
}

/// Appends a float as JSON: the shortest text that reads back as the same number, `null` when
/// it is not finite.
fn float_into(out: &mut String, f: f64) {
    if f.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(f));
    } else {
        out.push_str("null");
    }
}

/// Appends row `i`'s prediction (and class probabilities) as a JSON object.
fn outputs_json(out: &mut String, e: &Entry, labels: &[String], i: usize) {
    out.push_str("{\"prediction\":");
    let predicted = e.scored.predicted[i];
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

/// Appends row `i` of `columns` (escaped name, values) as a plain JSON object (dates as text,
/// like a client sends them), without building an intermediate map.
fn row_json(out: &mut String, columns: &[(String, &[Value])], i: usize) {
    use chrono::Datelike;
    out.push('{');
    for (k, (key, values)) in columns.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push(':');
        match values.get(i).unwrap_or(&Value::Null) {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
            Value::Float(f) => float_into(out, *f),
            Value::Date(d) => match Value::date_from_days(*d) {
                Some(date) => {
                    let _ = write!(out, "\"{:04}-{:02}-{:02}\"", date.year(), date.month(), date.day());
                }
                None => out.push_str("null"),
            },
            other => json_into(out, &other.to_json()),
        }
    }
    out.push('}');
}

/// One logged prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedPrediction {
    /// Order of the entry.
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
    let sql = |source| ServeError::Store { path: path.to_path_buf(), source };
    let conn = open(path)?;
    let mut stmt = conn
        .prepare(
            "SELECT seq, request_id, row, at, model_name, model_version, route, inputs, outputs, latency_ms
             FROM prediction_log WHERE ?1 IS NULL OR model_name = ?1 ORDER BY seq DESC LIMIT ?2",
        )
        .map_err(sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut out: Vec<LoggedPrediction> = stmt
        .query_map(params![model, limit], |r| {
            let json = |k: usize| -> rusqlite::Result<serde_json::Value> {
                let text: String = r.get(k)?;
                Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
            };
            Ok(LoggedPrediction {
                seq: r.get(0)?,
                request_id: r.get(1)?,
                row: r.get(2)?,
                at: r.get(3)?,
                model_name: r.get(4)?,
                model_version: r.get(5)?,
                route: r.get(6)?,
                inputs: json(7)?,
                outputs: json(8)?,
                latency_ms: r.get(9)?,
            })
        })
        .map_err(sql)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql)?;
    out.reverse();
    Ok(out)
}
