//! Lineage: where a frame came from, recorded at every ingest.

use serde::{Deserialize, Serialize};

/// The facts of one ingest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// The source's name in the config.
    pub source: String,
    /// Where it was read: `file:///abs/path.csv`, `sqlite:///abs/db?query=...`,
    /// `postgres://user@host:port/db?query=...` (never a password).
    pub uri: String,
    /// Reader used: csv, excel, parquet, json, ndjson, sqlite, postgres, http_json, html_table, kafka.
    pub format: String,
    /// Bytes of the file read (of the values received, for a server).
    pub size_bytes: u64,
    /// Rows read.
    pub rows: usize,
    /// Columns read.
    pub columns: usize,
    /// SHA-256 of the file's bytes, or of the query result's content for SQL.
    pub sha256: String,
    /// When it was read (RFC 3339, UTC).
    pub ingested_at: String,
    /// For a Kafka source: the offsets read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaRead>,
}

/// The messages a Kafka source read: enough to read them again (`from` and `until` as offsets)
/// or to commit them to the consumer group once the dataset is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaRead {
    /// The bootstrap brokers.
    pub brokers: Vec<String>,
    /// The topic.
    pub topic: String,
    /// The consumer group the offsets are committed to, if any.
    #[serde(default)]
    pub group: Option<String>,
    /// Per partition, the offsets read: `from` up to (not including) `until`.
    pub partitions: Vec<PartitionRead>,
}

/// The offsets read from one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRead {
    /// The partition.
    pub partition: i32,
    /// The first offset read from.
    pub from: i64,
    /// The offset reading stopped before (the next to read).
    pub until: i64,
    /// Messages read.
    pub messages: usize,
}
