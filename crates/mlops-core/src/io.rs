//! Atomic writes: a file or directory appears complete under its name, or not at all.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{CoreError, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hidden sibling name unique to this process and call: `.name.tmp-PID-N`. Temporaries of
/// `path` that processes which have ended left behind (killed mid-write) are removed first.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    remove_stale_temps(path);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Removes the temporaries of `path` (`.name.tmp-PID-N`, files or folders) whose process has
/// ended, as `kill -9` leaves them. Returns how many went. Those of running processes stay.
pub fn remove_stale_temps(path: &Path) -> usize {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { return 0 };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(parent) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !crate::process::pid_gone(pid) {
            continue;
        }
        let stale = entry.path();
        let gone = if stale.is_dir() { fs::remove_dir_all(&stale) } else { fs::remove_file(&stale) };
        if gone.is_ok() {
            tracing::info!(path = %stale.display(), pid, "removed a temporary left by a process that ended");
            removed += 1;
        }
    }
    removed
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
    atomic_write_to(path, |tmp| {
        let file = File::create(tmp).map_err(|e| CoreError::io("cannot create", tmp, e))?;
        let mut writer = BufWriter::new(file);
        write(&mut writer)?;
        writer.into_inner().map_err(|e| CoreError::io("cannot write", tmp, e.into_error()))?;
        Ok(())
    })
}

/// Like [`atomic_write_with`] for writers that open the file themselves: `write` gets the
/// temporary sibling's path; the file it leaves there is synced and renamed over `path`.
///
/// If `write` fails, the temporary file is removed and `path` keeps its old content.
pub fn atomic_write_to<F, E>(path: &Path, write: F) -> std::result::Result<(), E>
where
    F: FnOnce(&Path) -> std::result::Result<(), E>,
    E: From<CoreError>,
{
    ensure_parent(path)?;
    let tmp = temp_sibling(path);
    let outcome = write(&tmp).and_then(|()| {
        let file = File::open(&tmp).map_err(|e| CoreError::io("cannot open", &tmp, e))?;
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

/// Where [`atomic_dir_named`] put a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placed {
    /// Renamed into place.
    New(PathBuf),
    /// A directory of that name already existed; the new one was discarded.
    Existing(PathBuf),
}

/// Builds a directory in a temporary folder under `parent` and moves it to the name `fill`
/// returns, which may depend on what was written (a content hash). If that name already exists,
/// the new directory is discarded and the existing one kept; on failure nothing remains.
pub fn atomic_dir_named<F, E>(parent: &Path, fill: F) -> std::result::Result<Placed, E>
where
    F: FnOnce(&Path) -> std::result::Result<String, E>,
    E: From<CoreError>,
{
    let created_parent = !parent.exists();
    fs::create_dir_all(parent).map_err(|e| CoreError::io("cannot create directory", parent, e))?;
    let tmp = temp_sibling(&parent.join("staging"));
    fs::create_dir(&tmp).map_err(|e| CoreError::io("cannot create directory", &tmp, e))?;
    let outcome = fill(&tmp).and_then(|name| {
        let target = parent.join(name);
        if target.exists() {
            let _ = fs::remove_dir_all(&tmp);
            return Ok(Placed::Existing(target));
        }
        fs::rename(&tmp, &target).map_err(|e| CoreError::io("cannot rename into place", &target, e))?;
        Ok(Placed::New(target))
    });
    if outcome.is_err() {
        let _ = fs::remove_dir_all(&tmp);
        if created_parent {
            // Only succeeds while empty: a folder this call made for nothing goes too.
            let _ = fs::remove_dir(parent);
        }
    }
    outcome
}

/// Builds a directory in a temporary sibling of `out` through `fill`, then moves it to `out`.
///
/// An `out` that exists and is not empty is refused with [`CoreError::NotEmpty`] unless
/// `replace`; then it is replaced whole. On failure nothing new remains and `out` is untouched.
pub fn atomic_dir_replace<F, E>(out: &Path, replace: bool, fill: F) -> std::result::Result<(), E>
where
    F: FnOnce(&Path) -> std::result::Result<(), E>,
    E: From<CoreError>,
{
    let not_empty = out.is_dir() && fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true);
    if (not_empty || out.is_file()) && !replace {
        return Err(CoreError::NotEmpty(out.to_path_buf()).into());
    }
    ensure_parent(out)?;
    let tmp = temp_sibling(out);
    fs::create_dir(&tmp).map_err(|e| CoreError::io("cannot create directory", &tmp, e))?;
    let outcome = fill(&tmp).and_then(|()| {
        if out.is_dir() {
            fs::remove_dir_all(out).map_err(|e| CoreError::io("cannot replace", out, e))?;
        } else if out.exists() {
            fs::remove_file(out).map_err(|e| CoreError::io("cannot replace", out, e))?;
        }
        fs::rename(&tmp, out).map_err(|e| CoreError::io("cannot rename into place", out, e))?;
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
    fn write_to_a_path_replaces_whole_or_keeps_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.bin");
        let ok: Result<()> =
            atomic_write_to(&path, |tmp| fs::write(tmp, b"new").map_err(|e| CoreError::io("cannot write", tmp, e)));
        ok.unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let failed: Result<()> = atomic_write_to(&path, |tmp| {
            fs::write(tmp, b"half").map_err(|e| CoreError::io("x", tmp, e))?;
            Err(CoreError::io("simulated", tmp, std::io::Error::other("boom")))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"new");
        // A writer that never created its file: the error names the temporary file.
        let missing: Result<()> = atomic_write_to(&path, |_| Ok(()));
        assert!(missing.unwrap_err().to_string().contains(".a.bin.tmp-"));
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "temporary file left behind");
    }

    #[test]
    fn named_dir_keeps_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        let placed: Result<Placed> = atomic_dir_named(dir.path(), |tmp| {
            fs::write(tmp.join("a"), b"1").unwrap();
            Ok("v1".to_string())
        });
        assert_eq!(placed.unwrap(), Placed::New(dir.path().join("v1")));
        let again: Result<Placed> = atomic_dir_named(dir.path(), |tmp| {
            fs::write(tmp.join("a"), b"2").unwrap();
            Ok("v1".to_string())
        });
        assert_eq!(again.unwrap(), Placed::Existing(dir.path().join("v1")));
        assert_eq!(fs::read(dir.path().join("v1/a")).unwrap(), b"1");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "staging folder left behind");
    }

    #[test]
    fn failed_dir_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("dataset");
        let failed: Result<Placed> = atomic_dir_named(&parent, |tmp| {
            fs::write(tmp.join("part"), b"x").unwrap();
            Err(CoreError::io("simulated", "y", std::io::Error::other("boom")))
        });
        assert!(failed.is_err());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{:?}",
            fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>()
        );
    }
}
