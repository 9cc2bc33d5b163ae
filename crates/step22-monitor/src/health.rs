//! Service health of a window: requests and rows per hour, latency percentiles over the window
//! and per hour, and the fewest predictions in an hour (for the volume alert).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::drift::quantile_sorted;
use crate::window::Current;

/// Latency percentiles, in milliseconds (numpy's linear interpolation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// The percentiles of `latencies` (`None` when empty).
    pub fn of(latencies: &[f64]) -> Option<Latency> {
        let mut sorted: Vec<f64> = latencies.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_unstable_by(f64::total_cmp);
        Some(Latency {
            p50: quantile_sorted(&sorted, 0.5)?,
            p95: quantile_sorted(&sorted, 0.95)?,
            p99: quantile_sorted(&sorted, 0.99)?,
            max: *sorted.last()?,
        })
    }
}

/// One hour of traffic.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HourHealth {
    /// Requests answered.
    pub requests: u64,
    /// Rows predicted.
    pub rows: u64,
    /// Latency percentiles of its requests.
    pub latency: Latency,
}

/// The service health of a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Health {
    /// Requests answered.
    pub requests: u64,
    /// Rows predicted.
    pub rows: u64,
    /// Latency percentiles over the window's requests.
    pub latency: Option<Latency>,
    /// Per hour (`2026-12-07T10`), hours with requests.
    pub per_hour: BTreeMap<String, HourHealth>,
    /// Requests refused for their input (4xx) and failed in the server (5xx).
    pub refused: u64,
    /// Refused and failed requests as a share of all requests (`None` without requests).
    pub error_rate: Option<f64>,
    /// The same on the window's timeline (see [`crate::Timeline`]): bucket key → traffic.
    pub timeline: BTreeMap<String, HourHealth>,
    /// The timeline's bucket width in seconds.
    pub timeline_seconds: u32,
    /// The fewest rows predicted in an hour of the window, from the first hour with a request to
    /// the last (an hour without any counts as 0).
    pub min_rows_per_hour: Option<u64>,
}

/// The health of the current window.
pub fn health(current: &Current) -> Health {
    let all: Vec<f64> = current.hours.values().flat_map(|h| h.latency_ms.iter().copied()).collect();
    let buckets = |of: &BTreeMap<String, crate::Volume>| -> BTreeMap<String, HourHealth> {
        of.iter()
            .filter_map(|(key, v)| {
                Some((
                    key.clone(),
                    HourHealth { requests: v.requests, rows: v.rows, latency: Latency::of(&v.latency_ms)? },
                ))
            })
            .collect()
    };
    Health {
        requests: current.requests,
        rows: current.rows,
        latency: Latency::of(&all),
        min_rows_per_hour: min_per_hour(&current.hours.iter().map(|(h, v)| (h.as_str(), v.rows)).collect::<Vec<_>>()),
        per_hour: buckets(&current.hours),
        timeline: buckets(&current.timeline.buckets),
        timeline_seconds: current.timeline.width_seconds,
        refused: current.refused.rejected + current.refused.failed,
        error_rate: {
            let bad = current.refused.rejected + current.refused.failed;
            let all = current.requests + bad;
            (all > 0).then(|| bad as f64 / all as f64)
        },
    }
}

/// The fewest rows in an hour between the first and last hours given (in order), hours missing
/// in between counting 0.
fn min_per_hour(hours: &[(&str, u64)]) -> Option<u64> {
    let parse = |h: &str| chrono::NaiveDateTime::parse_from_str(&format!("{h}:00"), "%Y-%m-%dT%H:%M").ok();
    let (first, last) = (parse(hours.first()?.0)?, parse(hours.last()?.0)?);
    let span = (last - first).num_hours() + 1;
    let min = hours.iter().map(|(_, n)| *n).min()?;
    Some(if span > hours.len() as i64 { 0 } else { min })
}
