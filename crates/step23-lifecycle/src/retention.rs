//! Retention: which versions are retired, and when a retired version's stored package goes.
//! Nothing an alias or a running deployment uses is ever touched.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::policy::Retention;

/// One version as retention sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionFacts {
    /// Its number.
    pub version: u32,
    /// Whether it is retired.
    pub retired: bool,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
    /// Whether a running deployment serves it.
    pub served: bool,
    /// When it was registered.
    pub registered: DateTime<Utc>,
    /// When it was retired, if it was.
    pub retired_at: Option<DateTime<Utc>>,
    /// The content address of its package (versions may share one).
    pub package_sha256: String,
    /// Whether its stored package was deleted already.
    pub artifacts_deleted: bool,
}

impl VersionFacts {
    fn in_use(&self) -> bool {
        !self.aliases.is_empty() || self.served
    }
}

/// What retention does to one version.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RetentionStep {
    /// Retire it.
    Retire {
        /// The version.
        version: u32,
        /// Why.
        reason: String,
    },
    /// Delete its stored package (retired long enough, and no version in use shares it).
    DeleteArtifacts {
        /// The version.
        version: u32,
        /// Its package's content address.
        package_sha256: String,
        /// Why.
        reason: String,
    },
}

/// The steps retention takes on a model's `versions` at `now`.
pub fn plan(retention: &Retention, versions: &[VersionFacts], now: DateTime<Utc>) -> Vec<RetentionStep> {
    let mut newest: Vec<u32> = versions.iter().map(|v| v.version).collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    newest.truncate(retention.keep_last as usize);
    let young =
        |v: &VersionFacts| retention.keep_days.is_some_and(|d| now - v.registered < Duration::days(i64::from(d)));
    let mut steps = Vec::new();
    for v in versions {
        if v.retired || v.in_use() || newest.contains(&v.version) || young(v) {
            continue;
        }
        let age = match retention.keep_days {
            Some(d) => format!(", older than {d} day(s)"),
            None => String::new(),
        };
        steps.push(RetentionStep::Retire {
            version: v.version,
            reason: format!("retention: no alias, not served, not among the newest {}{age}", retention.keep_last),
        });
    }
    let grace = Duration::days(i64::from(retention.grace_days));
    for v in versions {
        let Some(retired_at) = v.retired_at.filter(|_| v.retired && !v.artifacts_deleted) else { continue };
        if now - retired_at < grace || v.in_use() {
            continue;
        }
        // Another version with the same content still needs the stored package.
        let shared = versions.iter().any(|o| {
            o.version != v.version
                && o.package_sha256 == v.package_sha256
                && (!o.retired || o.in_use() || o.retired_at.is_some_and(|t| now - t < grace))
        });
        if shared {
            continue;
        }
        steps.push(RetentionStep::DeleteArtifacts {
            version: v.version,
            package_sha256: v.package_sha256.clone(),
            reason: format!(
                "retired on {} and the grace period of {} day(s) is over",
                retired_at.format("%Y-%m-%d"),
                retention.grace_days
            ),
        });
    }
    steps
}
