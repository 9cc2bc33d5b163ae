//! Atomic writes: a file or directory appears complete under its name, or not at all.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{CoreError, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hidden sibling name unique to this process and call: `.name.tmp-PID-N`.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| CoreError::io("cannot create directory", parent, e))?;
    }
    Ok(())
}

/// Writes a file through `write` into a temporary sibling, syncs it and renames it over `path`.
///
/// If `write` fails, the temporary file is removed and `path` keeps its old content.
pub fn atomic_write_with<F, E>(path: &Path, write: F) -> std::result::Result<(), E>
where
    F: FnOnce(&mut BufWriter<File>) -> std::result::Result<(), E>,
    E: From<CoreError>,
{
    ensure_parent(path)?;
    let tmp = temp_sibling(path);
    let file = File::create(&tmp).map_err(|e| CoreError::io("cannot create", &tmp, e))?;
    let mut writer = BufWriter::new(file);
    let outcome = write(&mut writer).and_then(|()| {
        let file = writer.into_inner().map_err(|e| CoreError::io("cannot write", &tmp, e.into_error()))?;
        file.sync_all().map_err(|e| CoreError::io("cannot sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| CoreError::io("cannot rename into place", path, e))?;
        Ok(())
    });
    if outcome.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    outcome
}

/// Writes bytes atomically.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |w| w.write_all(bytes).map_err(|e| CoreError::io("cannot write", path, e)))
}

/// Writes pretty JSON atomically.
pub fn atomic_write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|source| CoreError::Json { context: format!("cannot encode {}", path.display()), source })?;
    text.push(b'\n');
    atomic_write(path, &text)
}

/// Builds a directory through `fill` in a temporary sibling and renames it to `path`.
///
/// `path` must not exist yet (a directory cannot be renamed over a non-empty one). On failure the
/// temporary directory is removed and nothing appears under `path`.
pub fn atomic_dir<F, E>(path: &Path, fill: F) -> std::result::Result<(), E>
where
    F: FnOnce(&Path) -> std::result::Result<(), E>,
    E: From<CoreError>,
{
    ensure_parent(path)?;
    let tmp = temp_sibling(path);
    fs::create_dir(&tmp).map_err(|e| CoreError::io("cannot create directory", &tmp, e))?;
    let outcome = fill(&tmp).and_then(|()| {
        fs::rename(&tmp, path).map_err(|e| CoreError::io("cannot rename into place", path, e))?;
        Ok(())
    });
    if outcome.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_old_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        atomic_write(&path, b"old").unwrap();
        let failed: Result<()> = atomic_write_with(&path, |w| {
            w.write_all(b"half").map_err(|e| CoreError::io("x", "y", e))?;
            Err(CoreError::io("simulated", "y", std::io::Error::other("boom")))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");
    }

    #[test]
    fn failed_dir_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("v1");
        let failed: Result<()> = atomic_dir(&target, |tmp| {
            fs::write(tmp.join("part"), b"x").unwrap();
            Err(CoreError::io("simulated", "y", std::io::Error::other("boom")))
        });
        assert!(failed.is_err());
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
