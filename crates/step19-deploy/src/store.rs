//! The `deployments` table of the store: every local deployment attempt and what became of it.

use std::path::Path;
use std::time::Duration;

use mlops_core::store::{Location, Migration, Row, Store, Tx};
use serde::Serialize;

use crate::{DeployError, Result};

/// One row: a server process started for an endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deployment {
    /// Row id; the router reports it in the `x-mlops-deployment` header.
    pub id: i64,
    /// `host:port` the clients use (the router).
    pub endpoint: String,
    /// Registered model name (a package path: its directory's name).
    pub model: String,
    /// Registered version.
    pub version: Option<u32>,
    /// The pinned URI the server was started with.
    pub uri: String,
    /// `host:port` of the server process (private).
    pub backend: String,
    /// The server process.
    pub pid: Option<u32>,
    /// The endpoint's router process.
    pub router_pid: Option<u32>,
    /// `starting`, `serving`, `replaced`, `stopped` or `failed`.
    pub status: String,
    /// When it was started (RFC 3339, UTC).
    pub started_at: String,
    /// When it stopped serving.
    pub ended_at: Option<String>,
    /// Why it failed or ended.
    pub message: Option<String>,
    /// The server's output.
    pub log: String,
    /// The `mlops deploy local` process that started it.
    pub deployer_pid: u32,
    /// Times the router restarted its server after it died.
    pub restarts: u32,
    /// The server's command line (program, then arguments), for restarts.
    pub command: Option<Vec<String>>,
}

/// Something that happened to a deployment after it started serving: its server `crashed`, was
/// `restarted`, or could not be (`restart_failed`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// The deployment.
    pub deployment: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// `crashed`, `restarted` or `restart_failed`.
    pub event: String,
    /// What happened.
    pub message: String,
}

/// The store's `deployments` table.
pub struct Deployments {
    db: Store,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER,
    uri TEXT NOT NULL,
    backend TEXT NOT NULL,
    pid INTEGER,
    router_pid INTEGER,
    status TEXT NOT NULL CHECK (status IN ('starting', 'serving', 'replaced', 'stopped', 'failed')),
    started_at TEXT NOT NULL,
    ended_at TEXT,
    message TEXT,
    log TEXT NOT NULL,
    deployer_pid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deployments_endpoint ON deployments (endpoint, status);
CREATE TABLE IF NOT EXISTS deployment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment INTEGER NOT NULL REFERENCES deployments (id),
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    message TEXT NOT NULL
);";

const COLUMNS: &str = "id, endpoint, model, version, uri, backend, pid, router_pid, status, started_at, ended_at, message, log, deployer_pid, restarts, command";

/// The deployments' schema versions. 1 is the schema as it stood when versioning began, with the
/// restart count and the server's command line; a store made before gets what it lacks of it.
const MIGRATIONS: &[Migration] = &[Migration { version: 1, apply: schema_v1 }];

fn schema_v1(t: &mut Tx<'_>) -> mlops_core::store::Result<()> {
    t.ddl(SCHEMA)?;
    if !t.has_column("deployments", "restarts")? {
        t.ddl("ALTER TABLE deployments ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0")?;
    }
    if !t.has_column("deployments", "command")? {
        t.ddl("ALTER TABLE deployments ADD COLUMN command TEXT")?;
    }
    Ok(())
}

pub(crate) use mlops_core::store::now;

fn row(r: &Row) -> mlops_core::store::Result<Deployment> {
    Ok(Deployment {
        id: r.get(0)?,
        endpoint: r.get(1)?,
        model: r.get(2)?,
        version: r.get(3)?,
        uri: r.get(4)?,
        backend: r.get(5)?,
        pid: r.get(6)?,
        router_pid: r.get(7)?,
        status: r.get(8)?,
        started_at: r.get(9)?,
        ended_at: r.get(10)?,
        message: r.get(11)?,
        log: r.get(12)?,
        deployer_pid: r.get(13)?,
        restarts: r.get(14)?,
        command: r.get::<Option<String>>(15)?.and_then(|c| serde_json::from_str(&c).ok()),
    })
}

fn rows(rows: Vec<Row>) -> Result<Vec<Deployment>> {
    Ok(rows.iter().map(row).collect::<mlops_core::store::Result<_>>()?)
}

impl Deployments {
    /// Opens (creating when missing) the store (a SQLite file, or a `postgres://` URL with the
    /// password in `PGPASSWORD`) and its `deployments` table.
    pub fn open(path: &Path) -> Result<Deployments> {
        let db = Store::open(&Location::from_path(path))?;
        db.set_busy_timeout(Duration::from_secs(10))?;
        Deployments::with_store(db)
    }

    /// The deployments on an open store (its schema brought up to date).
    pub fn with_store(db: Store) -> Result<Deployments> {
        db.migrate("deployments", MIGRATIONS)?;
        Ok(Deployments { db })
    }

    /// The deployment serving `endpoint`, if any.
    pub fn serving(&self, endpoint: &str) -> Result<Option<Deployment>> {
        let found = self.db.query_opt(
            &format!(
                "SELECT {COLUMNS} FROM deployments WHERE endpoint = ?1 AND status = 'serving' ORDER BY id DESC LIMIT 1"
            ),
            &[&endpoint],
        )?;
        Ok(found.as_ref().map(row).transpose()?)
    }

    /// Every deployment now serving, by endpoint.
    pub fn all_serving(&self) -> Result<Vec<Deployment>> {
        rows(
            self.db
                .query(&format!("SELECT {COLUMNS} FROM deployments WHERE status = 'serving' ORDER BY endpoint"), &[])?,
        )
    }

    /// Attempts still starting for `endpoint`.
    pub(crate) fn starting(&self, endpoint: &str) -> Result<Vec<Deployment>> {
        rows(self.db.query(
            &format!("SELECT {COLUMNS} FROM deployments WHERE endpoint = ?1 AND status = 'starting'"),
            &[&endpoint],
        )?)
    }

    /// The latest `limit` rows, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<Deployment>> {
        rows(self.db.query(&format!("SELECT {COLUMNS} FROM deployments ORDER BY id DESC LIMIT ?1"), &[&limit])?)
    }

    /// One row.
    pub fn get(&self, id: i64) -> Result<Option<Deployment>> {
        let found = self.db.query_opt(&format!("SELECT {COLUMNS} FROM deployments WHERE id = ?1"), &[&id])?;
        Ok(found.as_ref().map(row).transpose()?)
    }

    /// Records an attempt as `starting` and returns its id, unless another attempt for the same
    /// endpoint is still `starting` and `in_progress` says its deployer still runs: then
    /// [`DeployError::Busy`]. The check and the insert are one write transaction under a lock on
    /// the endpoint, so two deploys to one endpoint cannot both pass.
    pub(crate) fn claim(&mut self, d: &Deployment, in_progress: impl Fn(&Deployment) -> bool + Sync) -> Result<i64> {
        self.db.transaction(|tx| {
            tx.lock(&format!("deployments/{}", d.endpoint))?;
            let starting = rows(tx.query(
                &format!("SELECT {COLUMNS} FROM deployments WHERE endpoint = ?1 AND status = 'starting'"),
                &[&d.endpoint],
            )?)?;
            if let Some(other) = starting.iter().find(|o| in_progress(o)) {
                return Err(DeployError::Busy { endpoint: d.endpoint.clone(), pid: other.deployer_pid });
            }
            Ok(tx.query_one(
                "INSERT INTO deployments (endpoint, model, version, uri, backend, status, started_at, log, deployer_pid)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'starting', ?6, ?7, ?8) RETURNING id",
                &[&d.endpoint, &d.model, &d.version, &d.uri, &d.backend, &d.started_at, &d.log, &d.deployer_pid],
            )?)
        })
    }

    /// The events of a deployment, oldest first.
    pub fn events(&self, id: i64) -> Result<Vec<Event>> {
        let found = self.db.query(
            "SELECT deployment, at, event, message FROM deployment_events WHERE deployment = ?1 ORDER BY id",
            &[&id],
        )?;
        Ok(found
            .iter()
            .map(|r| Ok(Event { deployment: r.get(0)?, at: r.get(1)?, event: r.get(2)?, message: r.get(3)? }))
            .collect::<mlops_core::store::Result<_>>()?)
    }

    /// Records an event of a deployment.
    pub(crate) fn record(&self, id: i64, event: &str, message: &str) -> Result<()> {
        self.db.execute(
            "INSERT INTO deployment_events (deployment, at, event, message) VALUES (?1, ?2, ?3, ?4)",
            &[&id, &now(), &event, &message],
        )?;
        Ok(())
    }

    /// Records the server's command line, for restarts.
    pub(crate) fn set_command(&self, id: i64, command: &[String]) -> Result<()> {
        let text = serde_json::to_string(command).unwrap_or_default();
        self.db.execute("UPDATE deployments SET command = ?2 WHERE id = ?1", &[&id, &text])?;
        Ok(())
    }

    /// A restarted server: `pid` replaces `old` and the restarts count goes up, if the row still
    /// serves with `old` (a deploy or a stop meanwhile wins). Whether it did.
    pub(crate) fn restarted(&self, id: i64, old: u32, pid: u32) -> Result<bool> {
        let n = self.db.execute(
            "UPDATE deployments SET pid = ?3, restarts = restarts + 1 WHERE id = ?1 AND pid = ?2 AND status = 'serving'",
            &[&id, &old, &pid],
        )?;
        Ok(n == 1)
    }

    /// Replaces a row's message.
    pub(crate) fn note(&self, id: i64, message: &str) -> Result<()> {
        self.db.execute("UPDATE deployments SET message = ?2 WHERE id = ?1", &[&id, &message])?;
        Ok(())
    }

    pub(crate) fn set_pids(&self, id: i64, pid: Option<u32>, router_pid: Option<u32>) -> Result<()> {
        self.db.execute(
            "UPDATE deployments SET pid = COALESCE(?2, pid), router_pid = COALESCE(?3, router_pid) WHERE id = ?1",
            &[&id, &pid, &router_pid],
        )?;
        Ok(())
    }

    /// Ends a row with `status` (`failed`, `replaced`, `stopped`) and a reason.
    pub(crate) fn end(&self, id: i64, status: &str, message: Option<&str>) -> Result<()> {
        self.db.execute(
            "UPDATE deployments SET status = ?2, ended_at = ?3, message = COALESCE(?4, message) WHERE id = ?1",
            &[&id, &status, &now(), &message],
        )?;
        Ok(())
    }

    /// In one transaction: `new` serves, `old` (if any) is replaced.
    pub(crate) fn switch(&mut self, new: i64, old: Option<i64>) -> Result<()> {
        let stamp = now();
        let because = format!("replaced by deployment {new}");
        self.db.transaction(|tx| -> Result<()> {
            if let Some(old) = old {
                tx.execute(
                    "UPDATE deployments SET status = 'replaced', ended_at = ?2, message = ?3 WHERE id = ?1 AND status = 'serving'",
                    &[&old, &stamp, &because],
                )?;
            }
            // Whatever else still claims to serve the endpoint stops claiming it.
            tx.execute(
                "UPDATE deployments SET status = 'replaced', ended_at = ?2, message = ?3
                 WHERE status = 'serving' AND id != ?1 AND endpoint = (SELECT endpoint FROM deployments WHERE id = ?1)",
                &[&new, &stamp, &because],
            )?;
            tx.execute("UPDATE deployments SET status = 'serving' WHERE id = ?1 AND status = 'starting'", &[&new])?;
            Ok(())
        })
    }

    /// Undoes [`Deployments::switch`]: `new` failed with `message`, `old` serves again.
    pub(crate) fn switch_back(&mut self, new: i64, old: Option<i64>, message: &str) -> Result<()> {
        let stamp = now();
        self.db.transaction(|tx| -> Result<()> {
            tx.execute(
                "UPDATE deployments SET status = 'failed', ended_at = ?2, message = ?3 WHERE id = ?1",
                &[&new, &stamp, &message],
            )?;
            if let Some(old) = old {
                // Only the one this deploy replaced (not one a `deploy stop` ended meanwhile).
                tx.execute(
                    "UPDATE deployments SET status = 'serving', ended_at = NULL, message = NULL
                     WHERE id = ?1 AND status = 'replaced' AND message = ?2",
                    &[&old, &format!("replaced by deployment {new}")],
                )?;
            }
            Ok(())
        })
    }
}
