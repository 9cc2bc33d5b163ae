//! The lifecycle's own records in the store: one row per `lifecycle run`, so that a rerun on
//! unchanged facts does not retrain again and `lifecycle status` can show the last decision.

use std::path::Path;

use mlops_core::store::{Location, Migration, Store, StoreError, Tx, now};
use serde::{Deserialize, Serialize};

use crate::error::Result;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lifecycle_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,
    champion_before INTEGER,
    champion_after INTEGER,
    challenger INTEGER,
    labelled_rows INTEGER,
    reason TEXT,
    report TEXT
);";

/// The lifecycle's schema versions.
const MIGRATIONS: &[Migration] = &[Migration { version: 1, apply: schema_v1 }];

fn schema_v1(t: &mut Tx<'_>) -> mlops_core::store::Result<()> {
    t.ddl(SCHEMA)
}

/// How a lifecycle run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No trigger held.
    NothingDue,
    /// A challenger passed the gate and took the alias.
    Promoted,
    /// The gate kept the champion.
    Kept,
    /// Retraining failed; the champion stays.
    RetrainFailed,
    /// The run stopped on an error; the champion stays.
    Failed,
    /// A challenger is in its shadow period: the server scores it beside the champion.
    Shadowing,
}

impl Outcome {
    /// The name stored and printed.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::NothingDue => "nothing_due",
            Outcome::Promoted => "promoted",
            Outcome::Kept => "kept",
            Outcome::RetrainFailed => "retrain_failed",
            Outcome::Failed => "failed",
            Outcome::Shadowing => "shadowing",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::NothingDue,
            Outcome::Promoted,
            Outcome::Kept,
            Outcome::RetrainFailed,
            Outcome::Failed,
            Outcome::Shadowing,
        ]
        .into_iter()
        .find(|o| o.name() == s)
    }
}

/// One finished (or interrupted) lifecycle run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    /// Its number.
    pub id: i64,
    /// The model.
    pub model: String,
    /// When it started.
    pub started_at: String,
    /// When it ended (`None`: interrupted).
    pub finished_at: Option<String>,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// The champion when it started.
    pub champion_before: Option<u32>,
    /// The champion when it ended.
    pub champion_after: Option<u32>,
    /// The challenger it retrained or gated.
    pub challenger: Option<u32>,
    /// Labelled rows since the champion's registration, when it looked.
    pub labelled_rows: Option<u64>,
    /// Why it ended as it did.
    pub reason: Option<String>,
}

/// The lifecycle tables of the store.
pub struct LifecycleStore {
    db: Store,
}

impl LifecycleStore {
    /// Opens the store (a SQLite file, which must exist: the registry made it; or a
    /// `postgres://` URL) and creates the tables if needed.
    pub fn open(path: &Path) -> Result<LifecycleStore> {
        let location = Location::from_path(path);
        if location.is_missing_file() {
            return Err(StoreError::Config {
                location: location.to_string(),
                message: "no store there (train and register a model first)".into(),
            }
            .into());
        }
        LifecycleStore::with_store(Store::open(&location)?)
    }

    /// The lifecycle tables on an open store.
    pub fn with_store(db: Store) -> Result<LifecycleStore> {
        db.migrate("lifecycle", MIGRATIONS)?;
        Ok(LifecycleStore { db })
    }

    /// Records a run's start; answers its id.
    pub fn start(&self, model: &str, champion: u32) -> Result<i64> {
        Ok(self.db.read(|t| {
            t.query_one::<i64>(
                "INSERT INTO lifecycle_runs (model, started_at, champion_before) VALUES (?1, ?2, ?3) RETURNING id",
                &[&model, &now(), &champion],
            )
        })?)
    }

    /// Records how run `id` ended.
    pub fn finish(&self, id: i64, end: &RunEnd<'_>) -> Result<()> {
        self.db.execute(
            "UPDATE lifecycle_runs SET finished_at = ?2, outcome = ?3, champion_after = ?4, challenger = ?5,
             labelled_rows = ?6, reason = ?7, report = ?8 WHERE id = ?1",
            &[
                &id,
                &now(),
                &end.outcome.name(),
                &end.champion,
                &end.challenger,
                &end.labelled_rows,
                &end.reason,
                &end.report,
            ],
        )?;
        Ok(())
    }

    /// The newest finished run of `model`.
    pub fn last(&self, model: &str) -> Result<Option<RunRecord>> {
        let row = self.db.query_opt(
            "SELECT id, model, started_at, finished_at, outcome, champion_before, champion_after, challenger,
                    labelled_rows, reason
             FROM lifecycle_runs WHERE model = ?1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            &[&model],
        )?;
        let Some(r) = row else { return Ok(None) };
        let record = (|| -> mlops_core::store::Result<RunRecord> {
            Ok(RunRecord {
                id: r.get(0)?,
                model: r.get(1)?,
                started_at: r.get(2)?,
                finished_at: r.get(3)?,
                outcome: r.get::<Option<String>>(4)?.as_deref().and_then(Outcome::parse),
                champion_before: r.get(5)?,
                champion_after: r.get(6)?,
                challenger: r.get(7)?,
                labelled_rows: r.get(8)?,
                reason: r.get(9)?,
            })
        })()?;
        Ok(Some(record))
    }
}

/// How a run ended, as recorded.
pub struct RunEnd<'a> {
    /// The outcome.
    pub outcome: Outcome,
    /// The champion at the end.
    pub champion: Option<u32>,
    /// The challenger retrained or gated.
    pub challenger: Option<u32>,
    /// Labelled rows seen since the champion's registration.
    pub labelled_rows: Option<u64>,
    /// Why.
    pub reason: &'a str,
    /// The run's report as JSON.
    pub report: &'a str,
}
