//! The lifecycle's own records in the store: one row per `lifecycle run`, so that a rerun on
//! unchanged facts does not retrain again and `lifecycle status` can show the last decision.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::{LifecycleError, Result};

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

/// The lifecycle tables of the store at `path`.
pub struct LifecycleStore {
    conn: Connection,
    path: PathBuf,
}

impl LifecycleStore {
    /// Opens the store (it must exist: the registry made it) and creates the tables if needed.
    pub fn open(path: &Path) -> Result<LifecycleStore> {
        let sql = |source| LifecycleError::Store { path: path.to_path_buf(), source };
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(LifecycleStore { conn, path: path.to_path_buf() })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> LifecycleError + use<> {
        let path = self.path.clone();
        move |source| LifecycleError::Store { path: path.clone(), source }
    }

    /// Records a run's start; answers its id.
    pub fn start(&self, model: &str, champion: u32) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO lifecycle_runs (model, started_at, champion_before) VALUES (?1, ?2, ?3)",
                params![model, now(), champion],
            )
            .map_err(self.sql())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how run `id` ended.
    pub fn finish(&self, id: i64, end: &RunEnd<'_>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE lifecycle_runs SET finished_at = ?2, outcome = ?3, champion_after = ?4, challenger = ?5,
                 labelled_rows = ?6, reason = ?7, report = ?8 WHERE id = ?1",
                params![
                    id,
                    now(),
                    end.outcome.name(),
                    end.champion,
                    end.challenger,
                    end.labelled_rows.map(|n| n as i64),
                    end.reason,
                    end.report
                ],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// The newest finished run of `model`.
    pub fn last(&self, model: &str) -> Result<Option<RunRecord>> {
        self.conn
            .query_row(
                "SELECT id, model, started_at, finished_at, outcome, champion_before, champion_after, challenger,
                        labelled_rows, reason
                 FROM lifecycle_runs WHERE model = ?1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
                [model],
                |r| {
                    Ok(RunRecord {
                        id: r.get(0)?,
                        model: r.get(1)?,
                        started_at: r.get(2)?,
                        finished_at: r.get(3)?,
                        outcome: r.get::<_, Option<String>>(4)?.as_deref().and_then(Outcome::parse),
                        champion_before: r.get(5)?,
                        champion_after: r.get(6)?,
                        challenger: r.get(7)?,
                        labelled_rows: r.get::<_, Option<i64>>(8)?.map(|n| n as u64),
                        reason: r.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
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

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
