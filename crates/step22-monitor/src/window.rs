//! The current data: one model's logged requests in a time window, read from the prediction log
//! (`prediction_requests`, written by step 20) one request at a time, so memory holds the window's
//! values and never the log's text.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use mlops_core::store::{Bind, Location, Row, Store, Tx};
use serde::{Deserialize, Serialize};

use crate::cell::LoggedValue;
use crate::drift::{Categories, ColumnKind, Numbers, Sample};
use crate::error::{MonitorError, Result};

/// A time window: from `from` (inclusive) to `to` (exclusive); an open end is unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First instant in the window.
    pub from: Option<DateTime<Utc>>,
    /// First instant after it.
    pub to: Option<DateTime<Utc>>,
}

impl Window {
    /// The window between two RFC 3339 instants (`2026-12-07T10:00:00Z`, any offset); an error
    /// names the parameter (`from` or `to`) and the text.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Window> {
        let instant = |name: &'static str, text: Option<&str>| -> Result<Option<DateTime<Utc>>> {
            text.map(|t| {
                DateTime::parse_from_rfc3339(t.trim())
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| MonitorError::Instant { parameter: name, text: t.to_owned(), message: e.to_string() })
            })
            .transpose()
        };
        let window = Window { from: instant("from", from)?, to: instant("to", to)? };
        if let (Some(a), Some(b)) = (window.from, window.to)
            && a >= b
        {
            return Err(MonitorError::Instant {
                parameter: "to",
                text: log_text(b),
                message: format!("it is not after `from` ({})", log_text(a)),
            });
        }
        Ok(window)
    }

    /// The last `span` up to `now`.
    pub fn last(span: chrono::Duration, now: DateTime<Utc>) -> Window {
        Window { from: Some(now - span), to: Some(now) }
    }
}

/// An instant as the prediction log writes it (microseconds, `Z`), so that text order is time
/// order.
pub(crate) fn log_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Which model's predictions to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRef {
    /// Registered name (or a package's name).
    pub name: String,
    /// One version; every version of the name when `None`.
    pub version: Option<u32>,
}

/// Requests, rows and latencies in one hour.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// Requests answered.
    pub requests: u64,
    /// Rows predicted.
    pub rows: u64,
    /// Each request's time to answer, in milliseconds.
    pub latency_ms: Vec<f64>,
}

/// Values unlike the training data, per input column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Novelty {
    /// Categories the model was not trained on.
    pub unseen: u64,
    /// Numbers outside the training range.
    pub out_of_range: u64,
}

/// Traffic on buckets of one width: 1 s, 10 s, 1 min, 10 min, 1 h or 1 day, the narrowest that
/// cuts the time from the first request to the last into at most [`Timeline::MAX_BUCKETS`]. A
/// bucket's key is the prefix of the log's instants that it shares (`2026-12-07T10:4` for ten
/// minutes from 10:40), so a bucket is found by text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The buckets' width in seconds.
    pub width_seconds: u32,
    /// How many leading characters of an instant name its bucket.
    pub prefix: usize,
    /// Buckets with requests, by key.
    pub buckets: BTreeMap<String, Volume>,
}

impl Timeline {
    /// The most buckets a timeline has.
    pub const MAX_BUCKETS: i64 = 60;

    /// Widths in seconds and the prefix length of each.
    const WIDTHS: [(u32, usize); 6] = [(1, 19), (10, 18), (60, 16), (600, 15), (3600, 13), (86_400, 10)];

    /// The width and prefix for traffic from `first` to `last` (instants as the log writes them).
    pub fn width_for(first: &str, last: &str) -> (u32, usize) {
        let parse = |t: &str| chrono::NaiveDateTime::parse_from_str(t.get(..19)?, "%Y-%m-%dT%H:%M:%S").ok();
        let span = match (parse(first), parse(last)) {
            (Some(a), Some(b)) => (b - a).num_seconds().max(0),
            _ => 0,
        };
        Self::WIDTHS
            .into_iter()
            .find(|(w, _)| span / i64::from(*w) < Self::MAX_BUCKETS)
            .unwrap_or(Self::WIDTHS[Self::WIDTHS.len() - 1])
    }

    /// A bucket's key as a label: the first instant in it, to the second it names
    /// (`2026-12-07T10:40`).
    pub fn label(&self, key: &str) -> String {
        match self.prefix {
            18 | 15 => format!("{key}0"),
            _ => key.to_string(),
        }
    }
}

/// Buckets merged into wider ones: each key cut to `prefix` characters.
fn merge(buckets: &BTreeMap<String, Volume>, prefix: usize) -> BTreeMap<String, Volume> {
    let mut out: BTreeMap<String, Volume> = BTreeMap::new();
    for (key, v) in buckets {
        let to = out.entry(key.chars().take(prefix).collect()).or_default();
        to.requests += v.requests;
        to.rows += v.rows;
        to.latency_ms.extend_from_slice(&v.latency_ms);
    }
    out
}

/// One model's logged predictions in a window.
#[derive(Clone, Debug, PartialEq)]
pub struct Current {
    /// Requests answered.
    pub requests: u64,
    /// Rows predicted.
    pub rows: u64,
    /// When the first and the last request in the window were answered.
    pub span: Option<(String, String)>,
    /// Each input column's values, by name (the kinds asked for).
    pub columns: BTreeMap<String, Sample>,
    /// The predictions: labels as categories, values of a regressor as numbers.
    pub predictions: Sample,
    /// Requests, rows and latencies per hour (`2026-12-07T10`).
    pub hours: BTreeMap<String, Volume>,
    /// The same on buckets sized to the window's traffic, for charts.
    pub timeline: Timeline,
    /// Values unlike the training data, per input column.
    pub novel: BTreeMap<String, Novelty>,
    /// Requests the server refused (4xx) or failed (5xx) in the window.
    pub refused: Refused,
}

/// Requests not answered with predictions (`prediction_refusals`, step 20).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    /// Requests refused for their input (4xx).
    pub rejected: u64,
    /// Requests that failed in the server (5xx).
    pub failed: u64,
    /// By reason (`malformed`, `invalid`, `too_large`, `media_type`, `model`).
    pub by_reason: BTreeMap<String, u64>,
    /// Rejected requests by the input column at fault.
    pub by_column: BTreeMap<String, u64>,
}

/// Reads `model`'s logged predictions in `window` from the store at `path`. `inputs` names the
/// input columns to collect and how to compare each; `predictions` how to compare the outputs.
/// The store is opened read-only: a path with no store is an error and creates nothing.
pub fn read_current(
    path: &Path,
    model: &ModelRef,
    window: &Window,
    inputs: &BTreeMap<String, ColumnKind>,
    predictions: ColumnKind,
) -> Result<Current> {
    read_current_with(path, model, window, inputs, predictions, &mut |_, _| {})
}

/// [`read_current`], handing each logged input row to `visit` as it is read: the request's
/// column names and the row's values in that order (what the server logged, after it conformed
/// them to the signature). A caller derives more from the rows (the model's features, say)
/// without holding them.
pub fn read_current_with(
    path: &Path,
    model: &ModelRef,
    window: &Window,
    inputs: &BTreeMap<String, ColumnKind>,
    predictions: ColumnKind,
    visit: &mut dyn FnMut(&[String], &[LoggedValue<'_>]),
) -> Result<Current> {
    let store = open_read_only(path)?;
    let has_log = store.read(|t| t.has_table("prediction_requests"))?;
    let mut acc = Accumulator::new(inputs, predictions);
    if has_log {
        // One thread reads the store, this one parses what it read: the two halves of the work
        // overlap. The queue between them holds a few requests.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Entry>(32);
        std::thread::scope(|s| -> Result<()> {
            let reader = s.spawn(move || read_entries(path, model, window, &tx));
            let mut parsed = Ok(());
            for entry in rx.iter() {
                if let Err(message) = acc.add(&entry, visit) {
                    parsed = Err(MonitorError::LogEntry { path: path.to_path_buf(), seq: entry.seq, message });
                    break;
                }
            }
            // A reader still sending stops at its next page.
            drop(rx);
            let read = reader.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            read.and(parsed)
        })?;
    }
    let has_refusals = store.read(|t| t.has_table("prediction_refusals"))?;
    let mut refused = Refused::default();
    if has_refusals {
        let (from, to) = (window.from.map(log_text), window.to.map(log_text));
        let rows = store.query(
            &format!(
                "SELECT status, reason, column_name, COUNT(*) FROM prediction_refusals WHERE {IN_WINDOW}
                 GROUP BY status, reason, column_name"
            ),
            &[&model.name, &model.version, &from, &to],
        )?;
        for r in rows {
            let (status, reason, column, n): (i64, String, Option<String>, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let n = n.max(0) as u64;
            if status >= 500 {
                refused.failed += n;
            } else {
                refused.rejected += n;
                if let Some(c) = column {
                    *refused.by_column.entry(c).or_default() += n;
                }
            }
            *refused.by_reason.entry(reason).or_default() += n;
        }
    }
    tracing::debug!(model = model.name, requests = acc.requests, rows = acc.rows, "read the current window");
    Ok(Current { refused, ..acc.finish()? })
}

/// Opens a store for reading; a missing file is [`MonitorError::NoStore`].
pub(crate) fn open_read_only(path: &Path) -> Result<Store> {
    let location = Location::from_path(path);
    if location.is_missing_file() {
        return Err(MonitorError::NoStore { path: path.to_path_buf() });
    }
    Ok(Store::open_read_only(&location)?)
}

/// The rows of one model (?1; version ?2, or every version but shadow predictions) in a window
/// (?3, ?4), of the log's tables.
pub(crate) const IN_WINDOW: &str =
    "model_name = ?1 AND (CAST(?2 AS INTEGER) IS NULL AND route != 'shadow' OR model_version = ?2)
       AND (CAST(?3 AS TEXT) IS NULL OR at >= ?3) AND (CAST(?4 AS TEXT) IS NULL OR at < ?4)";

/// Requests read per query: the log is read page by page (by `seq`), so memory stays bounded
/// whatever the window holds, on either backend.
pub(crate) const PAGE: usize = 256;

/// Reads `sql`'s rows page by page in one snapshot, handing each to `visit` (with the
/// transaction, for reads of its own) until it answers `false`. `sql` selects `seq` first and
/// ends `seq > ?N ORDER BY seq LIMIT ?M`, its two last parameters, after `params`. One snapshot:
/// on PostgreSQL two servers commit out of `seq` order, and a row committed behind the cursor
/// would be skipped.
pub(crate) fn pages(
    store: &Store,
    sql: &str,
    params: &[&dyn Bind],
    visit: &mut (dyn FnMut(&mut Tx<'_>, &Row) -> Result<bool> + Send),
) -> Result<()> {
    store.snapshot(|t| -> Result<()> {
        let mut after: i64 = -1;
        loop {
            let mut all: Vec<&dyn Bind> = params.to_vec();
            all.extend([&after as &dyn Bind, &PAGE]);
            let rows = t.query(sql, &all)?;
            let last = rows.len() < PAGE;
            for r in &rows {
                after = r.get(0)?;
                if !visit(t, r)? {
                    return Ok(());
                }
            }
            if last {
                return Ok(());
            }
        }
    })
}

/// One logged request as the store holds it.
struct Entry {
    seq: i64,
    at: String,
    rows: i64,
    columns: String,
    inputs: String,
    outputs: String,
    latency_ms: f64,
    novel: Option<String>,
}

/// Reads `model`'s requests in `window` from the store at `path`, in order, into `tx` (until the
/// receiver hangs up).
fn read_entries(path: &Path, model: &ModelRef, window: &Window, tx: &std::sync::mpsc::SyncSender<Entry>) -> Result<()> {
    let store = open_read_only(path)?;
    let (from, to) = (window.from.map(log_text), window.to.map(log_text));
    let sql = format!(
        "SELECT seq, at, rows, columns, inputs, outputs, latency_ms, novel FROM prediction_requests
         WHERE {IN_WINDOW} AND seq > ?5 ORDER BY seq LIMIT ?6"
    );
    pages(&store, &sql, &[&model.name, &model.version, &from, &to], &mut |_, r| {
        let entry = Entry {
            seq: r.get(0)?,
            at: r.get(1)?,
            rows: r.get(2)?,
            columns: r.get(3)?,
            inputs: r.get(4)?,
            outputs: r.get(5)?,
            latency_ms: r.get(6)?,
            novel: r.get(7)?,
        };
        // A receiver that hung up wants no more.
        Ok(tx.send(entry).is_ok())
    })
}

/// One logged row's prediction (its probabilities are skipped unread).
#[derive(Deserialize)]
struct Output<'a> {
    #[serde(borrow)]
    prediction: LoggedValue<'a>,
}

enum Column {
    Numbers { values: Vec<f64>, missing: u64 },
    Categories(Categories),
}

struct Accumulator {
    requests: u64,
    rows: u64,
    span: Option<(String, String)>,
    columns: BTreeMap<String, Column>,
    predictions: Column,
    /// Per second; hours and the timeline are merged from these.
    seconds: BTreeMap<String, Volume>,
    novel: BTreeMap<String, Novelty>,
}

fn empty(kind: ColumnKind) -> Column {
    match kind {
        ColumnKind::Numeric => Column::Numbers { values: Vec::new(), missing: 0 },
        ColumnKind::Categorical => Column::Categories(Categories::new()),
    }
}

impl Column {
    fn push(&mut self, value: &LoggedValue<'_>) {
        match self {
            Column::Numbers { values, missing } => match value.as_f64() {
                Some(v) => values.push(v),
                None => *missing += 1,
            },
            Column::Categories(c) => match value {
                LoggedValue::Null => c.add(None),
                LoggedValue::Text(s) => c.add(Some(s)),
                LoggedValue::Bool(b) => c.add(Some(if *b { "true" } else { "false" })),
                LoggedValue::Number(v) if v.fract() == 0.0 && v.abs() < 1e15 => c.add(Some(&(*v as i64).to_string())),
                LoggedValue::Number(v) => c.add(Some(&v.to_string())),
            },
        }
    }

    fn finish(self) -> Sample {
        match self {
            Column::Numbers { values, missing } => Sample::Numeric(Numbers::from_parts(values, missing)),
            Column::Categories(c) => Sample::Categorical(c),
        }
    }
}

impl Accumulator {
    fn new(inputs: &BTreeMap<String, ColumnKind>, predictions: ColumnKind) -> Self {
        Accumulator {
            requests: 0,
            rows: 0,
            span: None,
            columns: inputs.iter().map(|(name, kind)| (name.clone(), empty(*kind))).collect(),
            predictions: empty(predictions),
            seconds: BTreeMap::new(),
            novel: BTreeMap::new(),
        }
    }

    fn add(
        &mut self,
        e: &Entry,
        visit: &mut dyn FnMut(&[String], &[LoggedValue<'_>]),
    ) -> std::result::Result<(), String> {
        let names: Vec<String> =
            serde_json::from_str(&e.columns).map_err(|err| format!("`columns` is not a list of names: {err}"))?;
        let outputs: Vec<Output<'_>> =
            serde_json::from_str(&e.outputs).map_err(|err| format!("`outputs` is not a list of predictions: {err}"))?;
        if outputs.len() as i64 != e.rows {
            return Err(format!("{} outputs and `rows` = {} disagree", outputs.len(), e.rows));
        }
        // Each wanted column's place in this request's rows (a column the request did not carry
        // counts as missing in each of its rows). The rows are read one at a time into a reused
        // buffer, their text borrowed from the log.
        let mut places: Vec<(Option<usize>, &mut Column)> =
            self.columns.iter_mut().map(|(name, col)| (names.iter().position(|n| n == name), col)).collect();
        let seed = crate::cell::Rows {
            on_row: |row: &[LoggedValue<'_>]| {
                for (place, col) in places.iter_mut() {
                    col.push(place.and_then(|k| row.get(k)).unwrap_or(&LoggedValue::Null));
                }
                visit(&names, row);
            },
        };
        let mut reader = serde_json::Deserializer::from_str(&e.inputs);
        let rows = serde::de::DeserializeSeed::deserialize(seed, &mut reader)
            .and_then(|n| reader.end().map(|()| n))
            .map_err(|err| format!("`inputs` is not a list of rows: {err}"))?;
        if rows as i64 != e.rows {
            return Err(format!("{rows} input rows and `rows` = {} disagree", e.rows));
        }
        for o in &outputs {
            self.predictions.push(&o.prediction);
        }
        if let Some(novel) = &e.novel {
            let novel: BTreeMap<String, Novelty> =
                serde_json::from_str(novel).map_err(|err| format!("`novel` is not counts by column: {err}"))?;
            for (column, n) in novel {
                let total = self.novel.entry(column).or_default();
                total.unseen += n.unseen;
                total.out_of_range += n.out_of_range;
            }
        }
        self.requests += 1;
        self.rows += rows as u64;
        let second = self.seconds.entry(e.at.chars().take(19).collect()).or_default();
        second.requests += 1;
        second.rows += rows as u64;
        second.latency_ms.push(e.latency_ms);
        match &mut self.span {
            Some((_, last)) => last.clone_from(&e.at),
            None => self.span = Some((e.at.clone(), e.at.clone())),
        }
        Ok(())
    }

    fn finish(self) -> Result<Current> {
        // Numbers are sorted as they become samples: the columns shared out among the cores.
        let (names, columns): (Vec<String>, Vec<Column>) = self.columns.into_iter().unzip();
        let samples = mlops_core::par::map_owned(columns, Column::finish).ok_or(MonitorError::Worker)?;
        let columns = names.into_iter().zip(samples).collect();
        let (width_seconds, prefix) = match &self.span {
            Some((first, last)) => Timeline::width_for(first, last),
            None => (3600, 13),
        };
        Ok(Current {
            requests: self.requests,
            rows: self.rows,
            span: self.span,
            columns,
            predictions: self.predictions.finish(),
            hours: merge(&self.seconds, 13),
            timeline: Timeline { width_seconds, prefix, buckets: merge(&self.seconds, prefix) },
            novel: self.novel,
            refused: Refused::default(),
        })
    }
}

/// Where each key was predicted: for every value of input column `column` among `keys`, the
/// request id and row of `model`'s latest logged prediction whose input held it (keys never
/// sent are absent). For feedback joined by a key column of the signature.
pub fn find_by_key(
    path: &Path,
    model: &ModelRef,
    column: &str,
    keys: &std::collections::HashSet<String>,
) -> Result<std::collections::HashMap<String, (String, u32)>> {
    let store = open_read_only(path)?;
    let mut found = std::collections::HashMap::new();
    if !store.read(|t| t.has_table("prediction_requests"))? {
        return Ok(found);
    }
    let sql = "SELECT seq, request_id, columns, inputs FROM prediction_requests
         WHERE model_name = ?1 AND (CAST(?2 AS INTEGER) IS NULL AND route != 'shadow' OR model_version = ?2)
           AND seq > ?3 ORDER BY seq LIMIT ?4";
    pages(&store, sql, &[&model.name, &model.version], &mut |_, r| {
        let seq: i64 = r.get(0)?;
        let id: String = r.get(1)?;
        let bad = |message: String| MonitorError::LogEntry { path: path.to_path_buf(), seq, message };
        let names: Vec<String> = serde_json::from_str(&r.get::<String>(2)?)
            .map_err(|e| bad(format!("`columns` is not a list of names: {e}")))?;
        let Some(k) = names.iter().position(|n| n == column) else { return Ok(true) };
        let inputs: Vec<Vec<serde_json::Value>> = serde_json::from_str(&r.get::<String>(3)?)
            .map_err(|e| bad(format!("`inputs` is not a list of rows: {e}")))?;
        for (row, values) in inputs.iter().enumerate() {
            let key = match values.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => continue,
                Some(other) => other.to_string(),
            };
            if keys.contains(&key) {
                // Later predictions of the same key win.
                found.insert(key, (id.clone(), u32::try_from(row).unwrap_or(u32::MAX)));
            }
        }
        Ok(true)
    })?;
    Ok(found)
}
