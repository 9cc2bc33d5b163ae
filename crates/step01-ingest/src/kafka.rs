//! Kafka sources: the messages of a topic, every partition from a start (earliest, latest, a time,
//! offsets, or where a consumer group left off) to an end (the last message when reading starts,
//! a number of messages, a time, or offsets), read into one frame.
//!
//! Messages are fetched with rskafka (pure Rust) partition by partition, in offset order; the
//! frame holds partition 0's messages, then partition 1's, and so on, so the same offsets give
//! the same frame (and the same dataset version). JSON messages are flattened as the JSON source
//! flattens records; CSV messages are typed as a CSV file is.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

use polars::prelude::{DataFrame, SerReader};
use rskafka::client::Client;
use rskafka::client::partition::{OffsetAt, PartitionClient};
use serde_json::Value as Json;

use crate::config::{CsvSource, KafkaFrom, KafkaSource, KafkaUntil, MessageFormat};
use crate::error::{IngestError, Result};
use crate::group::Group;
use crate::json::{Flat, flatten, kind};
use crate::lineage::{KafkaRead, PartitionRead};
use crate::records::Columns;

/// Bytes asked for per fetch at most.
const FETCH_BYTES: i32 = 8 << 20;

/// How long a fetch waits for new messages when there are none (tansu 0.6 waits this long on
/// every fetch, so it is short).
const FETCH_WAIT_MS: i32 = 10;

/// A read topic.
pub(crate) struct Read {
    pub frame: DataFrame,
    pub bytes: u64,
    pub offsets: KafkaRead,
}

fn config(key: &str, message: String) -> IngestError {
    IngestError::Config { key: format!("kafka.{key}"), message }
}

fn failed(opts: &KafkaSource, message: String) -> IngestError {
    IngestError::Kafka { brokers: opts.brokers.join(","), topic: opts.topic.clone(), message }
}

/// The URI lineage records: `kafka://broker1,broker2/topic`.
pub(crate) fn uri(opts: &KafkaSource) -> String {
    format!("kafka://{}/{}", opts.brokers.join(","), opts.topic)
}

/// Where reading starts, checked.
enum Start {
    Earliest,
    Latest,
    At(chrono::DateTime<chrono::Utc>),
    Offsets(BTreeMap<i32, i64>),
}

/// Where reading stops, checked.
struct Stop {
    at_end: bool,
    max_messages: Option<usize>,
    deadline: Option<Instant>,
    offsets: BTreeMap<i32, i64>,
}

fn start_of(opts: &KafkaSource) -> Result<Start> {
    Ok(match &opts.from {
        KafkaFrom::Named(n) if n == "earliest" => Start::Earliest,
        KafkaFrom::Named(n) if n == "latest" => Start::Latest,
        KafkaFrom::Named(n) => Start::At(
            chrono::DateTime::parse_from_rfc3339(n)
                .map_err(|e| {
                    config("from", format!("{n:?} is not `earliest`, `latest`, an RFC 3339 time or offsets: {e}"))
                })?
                .to_utc(),
        ),
        KafkaFrom::Offsets(o) => {
            if let Some((p, o)) = o.iter().find(|(_, o)| **o < 0) {
                return Err(config("from", format!("partition {p}: offset {o} is negative")));
            }
            Start::Offsets(o.clone())
        }
    })
}

fn stop_of(opts: &KafkaSource, started: Instant) -> Result<Stop> {
    let mut stop = Stop { at_end: false, max_messages: None, deadline: None, offsets: BTreeMap::new() };
    match &opts.until {
        KafkaUntil::Named(n) if n == "end" => stop.at_end = true,
        KafkaUntil::Named(n) => {
            return Err(config(
                "until",
                format!("{n:?}: give `end`, or any of max_messages, timeout_seconds and offsets"),
            ));
        }
        KafkaUntil::Limits(l) => {
            if l.max_messages.is_none() && l.timeout_seconds.is_none() && l.offsets.is_none() {
                return Err(config("until", "give `end`, or any of max_messages, timeout_seconds and offsets".into()));
            }
            if let Some(t) = l.timeout_seconds {
                if !(t.is_finite() && t >= 0.0) {
                    return Err(config("until.timeout_seconds", format!("{t} is not a number of seconds")));
                }
                stop.deadline = Some(started + Duration::from_secs_f64(t));
            }
            stop.max_messages = l.max_messages;
            stop.offsets = l.offsets.clone().unwrap_or_default();
            // Offsets alone end each partition named; the others end at their last message.
            stop.at_end = l.max_messages.is_none() && l.timeout_seconds.is_none();
        }
    }
    Ok(stop)
}

/// One partition being read.
struct Part {
    client: PartitionClient,
    partition: i32,
    from: i64,
    next: i64,
    /// Stop before this offset (`i64::MAX`: no end).
    until: i64,
    messages: usize,
}

/// Reads the topic into a frame; commits nothing (see [`commit`]).
pub(crate) fn read(opts: &KafkaSource) -> Result<Read> {
    if opts.brokers.is_empty() {
        return Err(config("brokers", "give at least one broker, `host:port`".into()));
    }
    if opts.timeout_seconds.is_nan() || opts.timeout_seconds <= 0.0 {
        return Err(config("timeout_seconds", format!("{} is not a positive number of seconds", opts.timeout_seconds)));
    }
    if opts.format == MessageFormat::Csv && opts.columns.as_ref().is_none_or(Vec::is_empty) {
        return Err(config("columns", "CSV messages have no header: name their fields in `columns`".into()));
    }
    let start = start_of(opts)?;
    let started = Instant::now();
    let stop = stop_of(opts, started)?;
    let timeout = Duration::from_secs_f64(opts.timeout_seconds);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(opts, format!("cannot start the client: {e}")))?;
    runtime.block_on(read_async(opts, (start, stop), timeout))
}

async fn connect(opts: &KafkaSource, timeout: Duration) -> Result<Client> {
    let problem = match mlops_core::kafka::connect(&opts.brokers, "mlops", timeout).await {
        Ok(client) => return Ok(client),
        Err(e) => e,
    };
    let guarded = opts.brokers.iter().find(|b| crate::group::wants_authentication(b, timeout));
    Err(failed(
        opts,
        match guarded {
            Some(b) => format!(
                "the broker {b} requires clients to authenticate (SASL), and the kafka source connects without (a PLAINTEXT listener is needed): {problem}"
            ),
            None => problem,
        },
    ))
}

/// Runs `f` within the request timeout, naming `what` when it fails.
async fn within<T, E: std::fmt::Display>(
    opts: &KafkaSource,
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    mlops_core::kafka::within(timeout, what, f).await.map_err(|m| failed(opts, m))
}

async fn read_async(opts: &KafkaSource, (start, stop): (Start, Stop), timeout: Duration) -> Result<Read> {
    let client = connect(opts, timeout).await?;
    // The group's coordinator once the brokers are known to take this client.
    let mut group = match &opts.group {
        Some(g) => Some(Group::connect(&opts.brokers, g, timeout).map_err(|m| failed(opts, m))?),
        None => None,
    };
    let clients = mlops_core::kafka::partitions(&client, &opts.topic, timeout).await.map_err(|m| failed(opts, m))?;
    let committed = match group.as_mut() {
        Some(g) => {
            let partitions: Vec<i32> = clients.iter().map(PartitionClient::partition).collect();
            g.committed(&opts.topic, &partitions).map_err(|m| failed(opts, m))?
        }
        None => BTreeMap::new(),
    };
    let mut parts = Vec::with_capacity(clients.len());
    for pc in clients {
        let p = pc.partition();
        let what = format!("partition {p}");
        let earliest = within(opts, timeout, &what, pc.get_offset(OffsetAt::Earliest)).await?;
        // The end is the high watermark a fetch reports (tansu 0.6 answers ListOffsets(latest)
        // wrongly).
        let (_, high) = within(opts, timeout, &what, pc.fetch_records(earliest, 1..1, 0)).await?;
        let from = match (&start, committed.get(&p)) {
            (_, Some(c)) => *c,
            (Start::Earliest | Start::At(_), None) => earliest,
            (Start::Latest, None) => high,
            (Start::Offsets(o), None) => o.get(&p).copied().unwrap_or(earliest),
        };
        // An offset the partition no longer (or not yet) has: from its nearest end, said so.
        let clamped = from.clamp(earliest, high.max(earliest));
        if clamped != from {
            tracing::warn!(
                partition = p,
                asked = from,
                from = clamped,
                earliest,
                end = high,
                "offset outside the partition; reading from its nearest end"
            );
        }
        let from = clamped;
        let until = match stop.offsets.get(&p) {
            Some(o) => *o,
            // Without a time limit every partition ends at its last message.
            None if stop.at_end || stop.deadline.is_none() => high,
            None => i64::MAX,
        };
        parts.push(Part { client: pc, partition: p, from, next: from, until, messages: 0 });
    }
    let after = match start {
        Start::At(t) => Some(t),
        _ => None,
    };
    let mut sink = Sink::new(opts);
    let mut bytes = 0u64;
    let mut total = 0usize;
    'reading: loop {
        let mut open = false;
        for part in &mut parts {
            if part.next >= part.until {
                continue;
            }
            if stop.max_messages.is_some_and(|m| total >= m) || stop.deadline.is_some_and(|d| Instant::now() >= d) {
                break 'reading;
            }
            open = true;
            let what = format!("partition {} at offset {}", part.partition, part.next);
            let (records, high) =
                within(opts, timeout, &what, part.client.fetch_records(part.next, 1..FETCH_BYTES, FETCH_WAIT_MS))
                    .await?;
            let before = part.next;
            for r in records {
                if r.offset < part.next {
                    continue;
                }
                if r.offset >= part.until {
                    // The next message there is past the end asked for (a gap before it).
                    part.until = part.next;
                    break;
                }
                if stop.max_messages.is_some_and(|m| total >= m) {
                    break;
                }
                part.next = r.offset + 1;
                // Starting at a time: the first message at or after it, and all after that one.
                if part.messages == 0 && after.is_some_and(|t| r.record.timestamp < t) {
                    part.from = part.next;
                    continue;
                }
                let Some(value) = r.record.value else { continue };
                bytes += value.len() as u64;
                sink.push(&value, (part.partition, r.offset))?;
                part.messages += 1;
                total += 1;
            }
            if part.next == before && part.until != i64::MAX && stop.max_messages.is_none_or(|m| total < m) {
                // Nothing more below the end asked for: the rest of the range holds no messages
                // (transaction markers, a compacted or deleted range).
                tracing::debug!(
                    partition = part.partition,
                    at = part.next,
                    end = high,
                    "nothing more to read below the end"
                );
                part.until = part.next;
            }
        }
        if !open {
            break;
        }
    }
    let frame = sink.finish()?;
    let offsets = KafkaRead {
        brokers: opts.brokers.clone(),
        topic: opts.topic.clone(),
        group: opts.group.clone(),
        partitions: parts
            .iter()
            .map(|p| PartitionRead { partition: p.partition, from: p.from, until: p.next, messages: p.messages })
            .collect(),
    };
    tracing::info!(topic = %opts.topic, messages = total, bytes, "topic read");
    Ok(Read { frame, bytes, offsets })
}

/// The messages so far, as records (JSON) or lines (CSV).
enum Sink<'a> {
    Json { opts: &'a KafkaSource, columns: Columns },
    Csv { opts: &'a KafkaSource, text: Vec<u8> },
}

impl<'a> Sink<'a> {
    fn new(opts: &'a KafkaSource) -> Sink<'a> {
        match opts.format {
            // Named columns are there even when no message is.
            MessageFormat::Json => {
                Sink::Json { opts, columns: Columns::with_names(opts.columns.as_deref().unwrap_or_default()) }
            }
            MessageFormat::Csv => {
                let names = opts.columns.as_deref().unwrap_or_default();
                let header: Vec<String> = names.iter().map(|n| quoted(n)).collect();
                let mut text = header.join(",").into_bytes();
                text.push(b'\n');
                Sink::Csv { opts, text }
            }
        }
    }

    fn push(&mut self, value: &[u8], (partition, offset): (i32, i64)) -> Result<()> {
        match self {
            Sink::Json { opts, columns } => {
                let at = |message: String| failed(opts, format!("partition {partition} offset {offset}: {message}"));
                let doc: Json = serde_json::from_slice(value).map_err(|e| {
                    at(format!("the message is not JSON: {e} ({} bytes: {:?})", value.len(), preview(value)))
                })?;
                let Json::Object(obj) = &doc else {
                    return Err(at(format!("expected a JSON object, found {}", kind(&doc))));
                };
                let mut record = Vec::new();
                flatten("", obj, Flat { separator: &opts.separator, max_level: opts.max_level }, 0, &mut record);
                columns.push(record);
            }
            Sink::Csv { opts, text } => {
                if std::str::from_utf8(value).is_err() {
                    return Err(failed(
                        opts,
                        format!("partition {partition} offset {offset}: the message is not UTF-8"),
                    ));
                }
                if value.iter().filter(|b| **b == b'"').count() % 2 == 1 {
                    return Err(failed(
                        opts,
                        format!("partition {partition} offset {offset}: a quote opened in the message is never closed"),
                    ));
                }
                let line = value.strip_suffix(b"\n").unwrap_or(value);
                text.extend_from_slice(line);
                text.push(b'\n');
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<DataFrame> {
        match self {
            Sink::Json { opts, columns } => columns.finish(Path::new(&uri(opts)), opts.columns.as_deref()),
            Sink::Csv { opts, text } => csv_frame(opts, text),
        }
    }
}

fn quoted(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) { format!("\"{}\"", name.replace('"', "\"\"")) } else { name.to_string() }
}

fn preview(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(&value[..value.len().min(60)]).into_owned();
    if value.len() > 60 { format!("{text}...") } else { text }
}

/// The CSV lines (under the header `columns` makes) typed as a CSV file's.
fn csv_frame(opts: &KafkaSource, text: Vec<u8>) -> Result<DataFrame> {
    let name = uri(opts);
    let path = Path::new(&name);
    let source = CsvSource::new(path);
    if crate::csv::ends_in_lone_quote(&text[..text.len() - 1], b'"', b',') {
        return Err(failed(opts, "the last message ends in an unclosed quote".into()));
    }
    let expected = opts.columns.as_ref().map_or(0, Vec::len);
    let frame = crate::csv::reader_options(&source, None)?
        .into_reader_with_file_handle(Cursor::new(text))
        .finish()
        .map_err(|e| failed(opts, format!("the CSV messages: {e}")))?;
    if frame.width() != expected {
        return Err(failed(
            opts,
            format!("the CSV messages have {} fields where `columns` names {expected}", frame.width()),
        ));
    }
    Ok(frame)
}

/// Commits the offsets a Kafka source read to its consumer group (when it names one): called once
/// the dataset they went into is written, so a failed run leaves the group where it was.
pub fn commit(read: &KafkaRead, timeout: Duration) -> std::result::Result<(), String> {
    let Some(group) = &read.group else { return Ok(()) };
    let offsets: BTreeMap<i32, i64> = read.partitions.iter().map(|p| (p.partition, p.until)).collect();
    let mut g = Group::connect(&read.brokers, group, timeout)?;
    g.commit(&read.topic, &offsets)?;
    tracing::info!(group = %group, topic = %read.topic, "offsets committed");
    Ok(())
}
