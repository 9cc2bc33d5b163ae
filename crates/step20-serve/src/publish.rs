//! The prediction log's Kafka topic: logged rows are handed to one publisher thread through a
//! bounded buffer; the thread sends them in batches and, while the broker cannot take them,
//! keeps retrying what of the batch at hand it has not sent, with backoff. Rows that find the
//! buffer full (or the log's own queue full) are dropped and counted
//! (`mlops_prediction_log_kafka_dropped_total`), as are rows still unsent when a stopping server
//! has tried for `drain_seconds`; nothing else is lost, so a broker that comes back before the
//! buffer fills misses nothing, and no row is sent twice by a retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rskafka::client::Client;
use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;

use crate::config::KafkaLogConfig;
use crate::metrics::Metrics;

/// Messages taken from the buffer per attempt at most.
const BATCH: usize = 2000;

/// Bytes per produce request at most: under the 1 MiB a broker takes by default
/// (`message.max.bytes`).
const REQUEST_BYTES: usize = 900 << 10;

/// The longest wait between two attempts while the broker is down.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One message: the request id (its key) and the row as JSON.
pub(crate) struct Message {
    pub key: String,
    pub value: String,
}

/// The sending side.
pub(crate) struct Publisher {
    tx: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
    metrics: Arc<Metrics>,
    /// Set when the server stops: from then the thread retries for `drain_seconds` at most.
    closing: Arc<AtomicBool>,
}

impl Publisher {
    /// Starts the publisher thread (it connects on its first batch, so a broker that is down at
    /// start only delays publishing).
    pub(crate) fn start(config: &KafkaLogConfig, metrics: Arc<Metrics>) -> std::io::Result<Publisher> {
        let (tx, rx) = std::sync::mpsc::sync_channel(config.buffer);
        let config = config.clone();
        let counts = metrics.clone();
        let closing = Arc::new(AtomicBool::new(false));
        let stopping = closing.clone();
        let thread = std::thread::Builder::new().name("prediction-log-kafka".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the Kafka publisher; rows are dropped and counted");
                    for _ in rx {
                        counts.kafka_dropped(1);
                    }
                    return;
                }
            };
            let mut sender = Sender { config, client: None, partitions: Vec::new() };
            publish_loop(&runtime, &mut sender, &rx, (&counts, &stopping));
        })?;
        Ok(Publisher { tx: Some(tx), thread: Some(thread), metrics, closing })
    }

    /// Hands a row over; drops (and counts) it when the buffer is full.
    pub(crate) fn send(&self, message: Message) {
        let sent = match &self.tx {
            Some(tx) => match tx.try_send(message) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        if !sent {
            self.metrics.kafka_dropped(1);
        }
    }

    /// Stops taking rows and waits while the thread publishes what is buffered (for at most
    /// `drain_seconds` while the broker is down).
    pub(crate) fn close(&mut self) {
        self.closing.store(true, Ordering::Release);
        self.tx.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the Kafka publisher panicked");
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.close();
    }
}

/// The connection, made (and made again after a failure) when a batch needs it.
struct Sender {
    config: KafkaLogConfig,
    client: Option<Client>,
    partitions: Vec<PartitionClient>,
}

impl Sender {
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.config.timeout_seconds)
    }

    async fn connect(&mut self) -> Result<(), String> {
        let timeout = self.timeout();
        let client = mlops_core::kafka::connect(&self.config.brokers, "mlops-serve", timeout).await?;
        self.partitions = mlops_core::kafka::partitions(&client, &self.config.topic, timeout)
            .await
            .map_err(|e| format!("{}: {e}", self.config.topic))?;
        self.client = Some(client);
        Ok(())
    }

    /// Sends the batch, partition by partition in requests of at most [`REQUEST_BYTES`]; what
    /// was sent leaves `batch`, so a retry sends only the rest. Answers how many were sent, and
    /// on a failure why (the connection is then dropped, to be made again).
    async fn send(&mut self, batch: &mut Vec<Message>) -> (usize, Result<(), String>) {
        if self.client.is_none()
            && let Err(e) = self.connect().await
        {
            return (0, Err(e));
        }
        let n = self.partitions.len();
        let mut by_partition: Vec<Vec<Message>> = (0..n).map(|_| Vec::new()).collect();
        for m in batch.drain(..) {
            by_partition[partition_of(&m.key, n)].push(m);
        }
        let timeout = self.timeout();
        let mut sent = 0;
        let mut failure = None;
        for (pc, messages) in self.partitions.iter().zip(&mut by_partition) {
            while failure.is_none() && !messages.is_empty() {
                let mut take = 0;
                let mut bytes = 0;
                while take < messages.len() && (take == 0 || bytes + messages[take].value.len() <= REQUEST_BYTES) {
                    bytes += messages[take].value.len() + messages[take].key.len();
                    take += 1;
                }
                let now = chrono::Utc::now();
                let records: Vec<Record> = messages[..take]
                    .iter()
                    .map(|m| Record {
                        key: Some(m.key.as_bytes().to_vec()),
                        value: Some(m.value.as_bytes().to_vec()),
                        headers: Default::default(),
                        timestamp: now,
                    })
                    .collect();
                match tokio::time::timeout(timeout, pc.produce(records, Compression::NoCompression)).await {
                    Ok(Ok(_)) => {
                        messages.drain(..take);
                        sent += take;
                    }
                    Ok(Err(e)) => failure = Some(e.to_string()),
                    Err(_) => failure = Some(format!("no answer within {} s", timeout.as_secs_f64())),
                }
            }
        }
        // What was not sent waits for the next attempt, in its order.
        batch.extend(by_partition.into_iter().flatten());
        match failure {
            None => (sent, Ok(())),
            Some(e) => {
                self.client = None;
                self.partitions.clear();
                (sent, Err(e))
            }
        }
    }
}

/// The partition of a key: the same request id always lands in the same partition (FNV-1a).
fn partition_of(key: &str, partitions: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % partitions.max(1) as u64) as usize
}

fn publish_loop(
    runtime: &tokio::runtime::Runtime,
    sender: &mut Sender,
    rx: &Receiver<Message>,
    (metrics, closing): (&Metrics, &AtomicBool),
) {
    let drain = Duration::from_secs_f64(sender.config.drain_seconds);
    let mut closed_at: Option<Instant> = None;
    let mut batch: Vec<Message> = Vec::new();
    let mut failures: u64 = 0;
    loop {
        // Fill the batch: wait for a first row, then take what else is there.
        if batch.is_empty() {
            match rx.recv() {
                Ok(m) => batch.push(m),
                Err(_) => return,
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        let (sent, result) = runtime.block_on(sender.send(&mut batch));
        metrics.kafka_published(sent as u64);
        match result {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(topic = %sender.config.topic, failures, "the prediction log publishes to Kafka again");
                }
                failures = 0;
                metrics.kafka_broken(false);
            }
            Err(e) => {
                failures += 1;
                metrics.kafka_broken(true);
                if failures.is_power_of_two() {
                    tracing::warn!(topic = %sender.config.topic, error = %e, failures, rows = batch.len(), "cannot publish to Kafka; rows wait in the buffer and are retried");
                }
                if closed_at.is_some_and(|t| t.elapsed() >= drain) {
                    let left = batch.len() as u64 + rx.try_iter().count() as u64;
                    tracing::error!(
                        rows = left,
                        "the server stops with rows not published to Kafka; they are dropped and counted"
                    );
                    metrics.kafka_dropped(left);
                    return;
                }
                if closing.load(Ordering::Acquire) {
                    closed_at.get_or_insert_with(Instant::now);
                }
                std::thread::sleep(Duration::from_millis(50u64 << failures.min(6)).min(MAX_BACKOFF));
            }
        }
    }
}
