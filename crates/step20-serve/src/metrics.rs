//! Counters and a latency histogram, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Requests {
    by_status: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// The server's metrics. Cheap to update from every request.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<Requests>,
    predictions: Mutex<BTreeMap<String, u64>>,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Per input column: unseen categories and numbers outside the training range, answered.
    novel: Mutex<BTreeMap<String, (u64, u64)>>,
    log_written: AtomicU64,
    log_dropped: AtomicU64,
    /// 1 when the prediction log cannot write (its store was removed or replaced).
    log_broken: AtomicU64,
    kafka_published: AtomicU64,
    kafka_dropped: AtomicU64,
    /// 1 while the Kafka topic of the prediction log cannot be written.
    kafka_broken: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    model: Mutex<(String, u32)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain counters behind: still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// One request on `route` answered `status` after `seconds`.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        let mut r = lock(&self.requests);
        *r.by_status.entry((route.to_string(), status)).or_default() += 1;
        let h = match r.latency.get_mut(route) {
            Some(h) => h,
            None => r.latency.entry(route.to_string()).or_default(),
        };
        if let Some(b) = BUCKETS.iter().position(|&le| seconds <= le) {
            h.counts[b] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Predictions made, by label (class name, or `value` for regression).
    pub fn predictions<'a>(&self, labels: impl Iterator<Item = &'a str>) {
        let mut p = lock(&self.predictions);
        for label in labels {
            match p.get_mut(label) {
                Some(n) => *n += 1,
                None => {
                    p.insert(label.to_string(), 1);
                }
            }
        }
    }

    /// A request refused for its input.
    pub fn rejected(&self, reason: &'static str) {
        *lock(&self.rejected).entry(reason).or_default() += 1;
    }

    /// Values the model was not trained on, answered: per input column, unseen categories and
    /// numbers outside the training range.
    pub fn novel<'a>(&self, counts: impl Iterator<Item = (&'a str, &'a crate::scorer::Novel)>) {
        let mut novel = None;
        for (column, n) in counts.filter(|(_, n)| !n.is_empty()) {
            let map = novel.get_or_insert_with(|| lock(&self.novel));
            let entry = match map.get_mut(column) {
                Some(e) => e,
                None => map.entry(column.to_string()).or_default(),
            };
            entry.0 += n.unseen as u64;
            entry.1 += n.out_of_range as u64;
        }
    }

    /// Prediction log entries written.
    pub fn log_written(&self, n: u64) {
        self.log_written.fetch_add(n, Ordering::Relaxed);
    }

    /// Prediction log entries dropped because the queue was full.
    pub fn log_dropped(&self, n: u64) {
        self.log_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether the prediction log can write.
    pub fn log_broken(&self, broken: bool) {
        self.log_broken.store(u64::from(broken), Ordering::Relaxed);
    }

    /// Prediction log rows published to the Kafka topic.
    pub fn kafka_published(&self, n: u64) {
        self.kafka_published.fetch_add(n, Ordering::Relaxed);
    }

    /// Prediction log rows not published to the Kafka topic (its buffer was full).
    pub fn kafka_dropped(&self, n: u64) {
        self.kafka_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether the Kafka topic of the prediction log can be written.
    pub fn kafka_broken(&self, broken: bool) {
        self.kafka_broken.store(u64::from(broken), Ordering::Relaxed);
    }

    /// Rows predicted so far (every label).
    pub fn predicted(&self) -> u64 {
        lock(&self.predictions).values().sum()
    }

    /// Rows written to the prediction log so far.
    pub fn written(&self) -> u64 {
        self.log_written.load(Ordering::Relaxed)
    }

    /// Entries dropped so far.
    pub fn dropped(&self) -> u64 {
        self.log_dropped.load(Ordering::Relaxed)
    }

    /// A reload attempt and whether it succeeded.
    pub fn reload(&self, ok: bool) {
        if ok { &self.reloads } else { &self.reload_failures }.fetch_add(1, Ordering::Relaxed);
    }

    /// The model now served.
    pub fn model(&self, name: &str, version: u32) {
        *lock(&self.model) = (name.to_string(), version);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        {
            let r = lock(&self.requests);
            let _ = writeln!(w, "# HELP mlops_requests_total HTTP requests by route and status.");
            let _ = writeln!(w, "# TYPE mlops_requests_total counter");
            for ((route, status), n) in &r.by_status {
                let _ = writeln!(w, "mlops_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", escape(route));
            }
            let _ = writeln!(w, "# HELP mlops_request_duration_seconds Time from request to response, by route.");
            let _ = writeln!(w, "# TYPE mlops_request_duration_seconds histogram");
            for (route, h) in &r.latency {
                let route = escape(route);
                let mut cumulative = 0;
                for (le, c) in BUCKETS.iter().zip(h.counts) {
                    cumulative += c;
                    let _ = writeln!(
                        w,
                        "mlops_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                    );
                }
                let _ =
                    writeln!(w, "mlops_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(w, "mlops_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
                let _ = writeln!(w, "mlops_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
            }
        }
        let _ = writeln!(w, "# HELP mlops_predictions_total Rows predicted, by predicted label.");
        let _ = writeln!(w, "# TYPE mlops_predictions_total counter");
        for (label, n) in lock(&self.predictions).iter() {
            let _ = writeln!(w, "mlops_predictions_total{{label=\"{}\"}} {n}", escape(label));
        }
        let _ = writeln!(w, "# HELP mlops_rejected_inputs_total Requests refused for their input, by reason.");
        let _ = writeln!(w, "# TYPE mlops_rejected_inputs_total counter");
        for (reason, n) in lock(&self.rejected).iter() {
            let _ = writeln!(w, "mlops_rejected_inputs_total{{reason=\"{reason}\"}} {n}");
        }
        {
            let novel = lock(&self.novel);
            for (name, help, pick) in [
                (
                    "mlops_unseen_categories_total",
                    "Values outside the categories seen in training, answered, by input column.",
                    0,
                ),
                (
                    "mlops_out_of_range_total",
                    "Numbers outside the range seen in training, answered, by input column.",
                    1,
                ),
            ] {
                let _ = writeln!(w, "# HELP {name} {help}");
                let _ = writeln!(w, "# TYPE {name} counter");
                for (column, counts) in novel.iter() {
                    let n = if pick == 0 { counts.0 } else { counts.1 };
                    let _ = writeln!(w, "{name}{{column=\"{}\"}} {n}", escape(column));
                }
            }
        }
        let counters = [
            ("mlops_prediction_log_written_total", "Predictions written to the prediction log.", &self.log_written),
            (
                "mlops_prediction_log_dropped_total",
                "Predictions not logged: the log queue was full, or the log's store could not be written.",
                &self.log_dropped,
            ),
            (
                "mlops_prediction_log_kafka_published_total",
                "Predicted rows published to the prediction log's Kafka topic.",
                &self.kafka_published,
            ),
            (
                "mlops_prediction_log_kafka_dropped_total",
                "Predicted rows not published to the Kafka topic: its buffer was full while the broker could not be written.",
                &self.kafka_dropped,
            ),
            ("mlops_model_reloads_total", "Models swapped in after the alias moved.", &self.reloads),
            (
                "mlops_model_reload_failures_total",
                "Reloads that failed (the old model kept serving).",
                &self.reload_failures,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(w, "# HELP {name} {help}");
            let _ = writeln!(w, "# TYPE {name} counter");
            let _ = writeln!(w, "{name} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            w,
            "# HELP mlops_prediction_log_broken 1 while the prediction log cannot write (its store was removed or replaced)."
        );
        let _ = writeln!(w, "# TYPE mlops_prediction_log_broken gauge");
        let _ = writeln!(w, "mlops_prediction_log_broken {}", self.log_broken.load(Ordering::Relaxed));
        let _ = writeln!(
            w,
            "# HELP mlops_prediction_log_kafka_broken 1 while the prediction log's Kafka topic cannot be written (entries wait in its buffer)."
        );
        let _ = writeln!(w, "# TYPE mlops_prediction_log_kafka_broken gauge");
        let _ = writeln!(w, "mlops_prediction_log_kafka_broken {}", self.kafka_broken.load(Ordering::Relaxed));
        let (name, version) = lock(&self.model).clone();
        let _ = writeln!(w, "# HELP mlops_model_version The registered version being served (0: a package path).");
        let _ = writeln!(w, "# TYPE mlops_model_version gauge");
        let _ = writeln!(w, "mlops_model_version{{model=\"{}\"}} {version}", escape(&name));
        out
    }
}
