//! The run store, on the store's SQLite file or PostgreSQL database (`mlops_core::store`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mlops_core::process::{Liveness, Owner};
use mlops_core::store::{Location, Migration, Tx, now};
use serde::{Deserialize, Serialize};

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store refused (a locked SQLite file, an unreachable server, a newer schema, ...).
    #[error("run {0}")]
    Store(#[from] mlops_core::store::StoreError),
    /// No run has this id (or prefix).
    #[error("no run {id:?} in {store}")]
    NoRun {
        /// What was asked for.
        id: String,
        /// The store (its file or URL).
        store: String,
    },
    /// Several runs start with this prefix.
    #[error("{id:?} matches several runs: {}", matches.join(", "))]
    Ambiguous {
        /// What was asked for.
        id: String,
        /// The matching ids.
        matches: Vec<String>,
    },
    /// A finished or failed run cannot change.
    #[error("run {id} is {status}; only a running run takes new values")]
    Closed {
        /// The run.
        id: String,
        /// Its status.
        status: String,
    },
    /// A metric that is not a finite number.
    #[error("run {id}: metric `{key}` is {value}, not a finite number")]
    BadMetric {
        /// The run.
        id: String,
        /// The metric.
        key: String,
        /// Its value.
        value: f64,
    },
    /// The folder could not be made.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not ended.
    Running,
    /// Ended normally.
    Finished,
    /// Ended with an error.
    Failed,
    /// Its process ended without ending the run (killed, or the machine stopped): found so when
    /// the store was next opened.
    Killed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "finished" => RunStatus::Finished,
            "failed" => RunStatus::Failed,
            "killed" => RunStatus::Killed,
            _ => RunStatus::Running,
        }
    }
}

/// What is known when a run starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Experiment (a group of runs, e.g. the dataset or the config).
    pub experiment: String,
    /// Run name (e.g. the model family).
    pub name: String,
    /// Parent run, for tuning trials.
    pub parent: Option<String>,
    /// Dataset version trained on (`name@version`).
    pub dataset_version: Option<String>,
    /// SHA-256 of the training config.
    pub config_sha256: Option<String>,
    /// Source commit of the project, when known.
    pub source_commit: Option<String>,
}

/// One value of a metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// The value.
    pub value: f64,
    /// Iteration (boosting round, epoch), if any.
    pub step: Option<i64>,
}

/// A run as the store holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Run id (16 hex digits).
    pub id: String,
    /// What was known at the start.
    pub info: RunInfo,
    /// RunStatus.
    pub status: RunStatus,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339), once ended.
    pub ended_at: Option<String>,
    /// Error of a failed run.
    pub error: Option<String>,
    /// Parameters.
    pub params: BTreeMap<String, String>,
    /// Latest value of each metric.
    pub metrics: BTreeMap<String, f64>,
    /// Every logged value of each metric, in logging order.
    pub history: BTreeMap<String, Vec<MetricPoint>>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Artifact paths by name.
    pub artifacts: BTreeMap<String, String>,
}

/// The run store.
#[derive(Debug)]
pub struct Store {
    db: mlops_core::store::Store,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, experiment TEXT NOT NULL, name TEXT NOT NULL, parent TEXT,
    dataset_version TEXT, config_sha256 TEXT, source_commit TEXT,
    status TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, error TEXT, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS run_params (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS run_metrics (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value REAL NOT NULL, step INTEGER, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS run_tags (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS run_artifacts (run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (run_id, name));
CREATE INDEX IF NOT EXISTS run_metrics_by_run ON run_metrics(run_id, key);
";

/// The run store's schema versions. 1 is the schema as it stood when versioning began, with who
/// runs a run (pid, host, process start) so that a killed one is found; a SQLite store made
/// before gets what it lacks of it.
const MIGRATIONS: &[Migration] = &[Migration { version: 1, apply: schema_v1 }];

fn schema_v1(t: &mut Tx<'_>) -> mlops_core::store::Result<()> {
    t.ddl(SCHEMA)?;
    if !t.has_column("runs", "owner_pid")? {
        t.ddl(
            "ALTER TABLE runs ADD COLUMN owner_pid INTEGER; ALTER TABLE runs ADD COLUMN owner_host TEXT; ALTER TABLE runs ADD COLUMN owner_start INTEGER;",
        )?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store at `path`: a SQLite file (WAL, a 5 s busy timeout)
    /// or a `postgres://` URL (the password in `PGPASSWORD`).
    pub fn open(path: &Path) -> Result<Store> {
        let db = mlops_core::store::Store::open(&Location::from_path(path))?;
        db.set_busy_timeout(Duration::from_secs(5))?;
        Store::with_store(db)
    }

    /// The run store on an open store (its schema brought up to date; runs whose process ended
    /// are marked killed).
    pub fn with_store(db: mlops_core::store::Store) -> Result<Store> {
        db.migrate("runs", MIGRATIONS)?;
        let store = Store { db };
        store.mark_killed()?;
        Ok(store)
    }

    /// Marks `killed` the running runs whose process has ended (on this host: a run started
    /// elsewhere cannot be told and stays `running`). Returns how many.
    fn mark_killed(&self) -> Result<usize> {
        let rows = self.db.query(
            "SELECT id, owner_pid, owner_host, owner_start FROM runs WHERE status = 'running' AND owner_pid IS NOT NULL",
            &[],
        )?;
        let owned: Vec<(String, Owner)> = rows
            .iter()
            .map(|r| {
                let start: Option<i64> = r.get(3)?;
                Ok((r.get(0)?, Owner { pid: r.get(1)?, host: r.get(2)?, start: start.map(|s| s as u64) }))
            })
            .collect::<Result<_>>()?;
        let mut marked = 0;
        for (id, owner) in owned.into_iter().filter(|(_, o)| o.liveness() == Liveness::Gone) {
            let error = format!(
                "its process (pid {} on {}) ended without ending the run: killed, or the machine stopped",
                owner.pid, owner.host
            );
            marked += self.db.execute(
                "UPDATE runs SET status = 'killed', ended_at = ?2, error = ?3 WHERE id = ?1 AND status = 'running'",
                &[&id, &now(), &error],
            )? as usize;
            tracing::warn!(run = %id, pid = owner.pid, "a run whose process ended is marked killed");
        }
        Ok(marked)
    }

    /// Starts a run and returns its id.
    pub fn start_run(&self, info: &RunInfo) -> Result<String> {
        let started = now();
        let id = self.db.transaction(|tx| -> Result<String> {
        tx.lock("runs")?;
        let seq: i64 = tx.query_one("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs", &[])?;
        let digest = mlops_core::hash::sha256_bytes(
            format!("{}\0{}\0{started}\0{seq}\0{}", info.experiment, info.name, std::process::id()).as_bytes(),
        );
        let id = mlops_core::hash::to_hex(&digest[..8]);
        let owner = Owner::current();
        tx.execute(
            "INSERT INTO runs (id, experiment, name, parent, dataset_version, config_sha256, source_commit, status, started_at, seq, owner_pid, owner_host, owner_start)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?9, ?10, ?11, ?12)",
            &[
                &id,
                &info.experiment,
                &info.name,
                &info.parent,
                &info.dataset_version,
                &info.config_sha256,
                &info.source_commit,
                &started,
                &seq,
                &owner.pid,
                &owner.host,
                &owner.start.map(|s| s as i64),
            ],
        )?;
        Ok(id)
        })?;
        tracing::info!(run = %id, experiment = %info.experiment, name = %info.name, "run started");
        Ok(id)
    }

    fn require_running(&self, id: &str) -> Result<()> {
        let status: Option<String> =
            self.db.query_opt("SELECT status FROM runs WHERE id = ?1", &[&id])?.map(|r| r.get(0)).transpose()?;
        match status.as_deref() {
            None => Err(self.no_run(id)),
            Some("running") => Ok(()),
            Some(other) => Err(StoreError::Closed { id: id.to_string(), status: other.to_string() }),
        }
    }

    /// Records a parameter (a later value for the same key replaces it).
    pub fn log_param(&self, id: &str, key: &str, value: &str) -> Result<()> {
        self.require_running(id)?;
        self.db.execute(
            "INSERT INTO run_params (run_id, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (run_id, key) DO UPDATE SET value = ?3",
            &[&id, &key, &value],
        )?;
        Ok(())
    }

    /// Records a metric value, with a step for iterative models.
    pub fn log_metric(&self, id: &str, key: &str, value: f64, step: Option<i64>) -> Result<()> {
        if !value.is_finite() {
            return Err(StoreError::BadMetric { id: id.to_string(), key: key.to_string(), value });
        }
        self.require_running(id)?;
        // The value's place among the run's: counted under a lock on the run, so two writers
        // (two machines on PostgreSQL) never take the same place.
        self.db.transaction(|tx| -> Result<()> {
            tx.lock(&format!("runs/{id}"))?;
            tx.execute(INSERT_METRIC, &[&id, &key, &value, &step])?;
            Ok(())
        })?;
        Ok(())
    }

    /// Records a series of values of one metric, steps 0, 1, 2, … (losses after each iteration
    /// of an iterative model), in one transaction.
    pub fn log_metric_steps(&self, id: &str, key: &str, values: &[f64]) -> Result<()> {
        if let Some(&value) = values.iter().find(|v| !v.is_finite()) {
            return Err(StoreError::BadMetric { id: id.to_string(), key: key.to_string(), value });
        }
        self.require_running(id)?;
        self.db.transaction(|tx| -> Result<()> {
            tx.lock(&format!("runs/{id}"))?;
            for (step, value) in values.iter().enumerate() {
                tx.execute(INSERT_METRIC, &[&id, &key, value, &step])?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Sets a tag (any time, also after the run ended).
    pub fn set_tag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        self.resolve(id)?;
        self.db.execute(
            "INSERT INTO run_tags (run_id, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (run_id, key) DO UPDATE SET value = ?3",
            &[&id, &key, &value],
        )?;
        Ok(())
    }

    /// Records where an artifact of the run was written (any time, also after the run ended:
    /// reports and logs are often written last).
    pub fn log_artifact(&self, id: &str, name: &str, path: &Path) -> Result<()> {
        self.resolve(id)?;
        self.db.execute(
            "INSERT INTO run_artifacts (run_id, name, path) VALUES (?1, ?2, ?3) ON CONFLICT (run_id, name) DO UPDATE SET path = ?3",
            &[&id, &name, &path.to_string_lossy().as_ref()],
        )?;
        Ok(())
    }

    /// Ends a run as finished or failed (with the error).
    pub fn finish(&self, id: &str, status: RunStatus, error: Option<&str>) -> Result<()> {
        self.require_running(id)?;
        self.db.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, error = ?4 WHERE id = ?1",
            &[&id, &status.as_str(), &now(), &error],
        )?;
        tracing::info!(run = %id, status = status.as_str(), "run ended");
        Ok(())
    }

    fn no_run(&self, id: &str) -> StoreError {
        StoreError::NoRun { id: id.to_string(), store: self.db.location().to_string() }
    }

    /// The full id of the run whose id starts with `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<String> {
        let rows =
            self.db.query("SELECT id FROM runs WHERE id LIKE CAST(?1 AS TEXT) || '%' ORDER BY seq", &[&prefix])?;
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect::<mlops_core::store::Result<_>>()?;
        match ids.len() {
            0 => Err(self.no_run(prefix)),
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            _ => Err(StoreError::Ambiguous { id: prefix.to_string(), matches: ids }),
        }
    }

    /// One run, by id or unique prefix.
    pub fn run(&self, id: &str) -> Result<Run> {
        let id = self.resolve(id)?;
        self.db.read(|tx| {
            let row = tx.query_opt(
                "SELECT id, experiment, name, parent, dataset_version, config_sha256, source_commit, status, started_at, ended_at, error FROM runs WHERE id = ?1",
                &[&id],
            )?;
            let r = row.ok_or_else(|| self.no_run(&id))?;
            let mut run = Run {
                id: r.get(0)?,
                info: RunInfo {
                    experiment: r.get(1)?,
                    name: r.get(2)?,
                    parent: r.get(3)?,
                    dataset_version: r.get(4)?,
                    config_sha256: r.get(5)?,
                    source_commit: r.get(6)?,
                },
                status: RunStatus::parse(&r.get::<String>(7)?),
                started_at: r.get(8)?,
                ended_at: r.get(9)?,
                error: r.get(10)?,
                params: BTreeMap::new(),
                metrics: BTreeMap::new(),
                history: BTreeMap::new(),
                tags: BTreeMap::new(),
                artifacts: BTreeMap::new(),
            };
            let mut pairs = |query: &str| -> Result<BTreeMap<String, String>> {
                let rows = tx.query(query, &[&id])?;
                Ok(rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect::<mlops_core::store::Result<_>>()?)
            };
            run.params = pairs("SELECT key, value FROM run_params WHERE run_id = ?1")?;
            run.tags = pairs("SELECT key, value FROM run_tags WHERE run_id = ?1")?;
            run.artifacts = pairs("SELECT name, path FROM run_artifacts WHERE run_id = ?1")?;
            for r in tx.query("SELECT key, value, step FROM run_metrics WHERE run_id = ?1 ORDER BY seq", &[&id])? {
                let (key, point): (String, MetricPoint) = (r.get(0)?, MetricPoint { value: r.get(1)?, step: r.get(2)? });
                run.metrics.insert(key.clone(), point.value);
                run.history.entry(key).or_default().push(point);
            }
            Ok(run)
        })
    }

    /// Every run, oldest first; only those of `experiment` when given.
    pub fn runs(&self, experiment: Option<&str>) -> Result<Vec<Run>> {
        let rows = self.db.query(
            "SELECT id FROM runs WHERE CAST(?1 AS TEXT) IS NULL OR experiment = ?1 ORDER BY seq",
            &[&experiment],
        )?;
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect::<mlops_core::store::Result<_>>()?;
        ids.iter().map(|id| self.run(id)).collect()
    }
}

/// One metric value; its `seq` orders the run's values as they were logged.
const INSERT_METRIC: &str = "INSERT INTO run_metrics (run_id, key, value, step, seq) VALUES (?1, ?2, ?3, ?4, (SELECT COUNT(*) FROM run_metrics WHERE run_id = ?1))";
