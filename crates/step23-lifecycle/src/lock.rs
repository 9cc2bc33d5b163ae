//! One lifecycle run at a time per store: beside a SQLite store, an OS file lock, which the
//! kernel releases when the process ends however it ends (`kill -9` included), so a crashed run
//! never blocks the next; on PostgreSQL, a session advisory lock, which the server releases when
//! the holder's connection ends (the same guarantee across machines).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{LifecycleError, Result};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: Option<File>,
    _session: Option<mlops_core::store::Store>,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lifecycle lock of the store `store` without waiting (the file lock of
    /// [`crate::lock_path`] for SQLite, an advisory lock for PostgreSQL): another holder is
    /// [`LifecycleError::Locked`].
    pub fn for_store(store: &Path) -> Result<RunLock> {
        let location = mlops_core::store::Location::from_path(store);
        if location.sqlite_path().is_some() {
            return RunLock::acquire(&crate::lock_path(store));
        }
        let session = mlops_core::store::Store::open(&location)?;
        let held: bool =
            session.read(|t| t.query_one("SELECT pg_try_advisory_lock(hashtext('mlops/lifecycle'))", &[]))?;
        if !held {
            let holder: Option<String> = session
                .read(|t| {
                t.query_one(
                    "SELECT MIN(a.application_name || ' pid ' || a.pid || ' since ' || CAST(a.backend_start AS TEXT))
                     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE l.locktype = 'advisory' AND l.granted AND l.objid = CAST(hashtext('mlops/lifecycle') AS oid)",
                    &[],
                )
                })
                .ok()
                .flatten();
            return Err(LifecycleError::Locked {
                path: PathBuf::from(location.to_string()),
                holder: holder.unwrap_or_else(|| "holder unknown".into()),
            });
        }
        tracing::debug!(store = %location, "lifecycle lock taken");
        Ok(RunLock { _file: None, _session: Some(session), path: PathBuf::from(location.to_string()) })
    }

    /// Takes the lock in `path` (created if missing) without waiting: another holder is
    /// [`LifecycleError::Locked`], naming the holder's process id and start time.
    pub fn acquire(path: &Path) -> Result<RunLock> {
        let io = |source| LifecycleError::Io { path: path.to_path_buf(), source };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LifecycleError::Locked {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() { "holder unknown".into() } else { holder.to_string() },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the next one's message.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(
            file,
            "process {} since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
        .map_err(io)?;
        file.flush().map_err(io)?;
        tracing::debug!(path = %path.display(), "lifecycle lock taken");
        Ok(RunLock { _file: Some(file), _session: None, path: path.to_path_buf() })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
