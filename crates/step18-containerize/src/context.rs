//! Writing the build context: every file into a temporary sibling directory, then one rename.

use std::fs;
use std::path::Path;

use mlops_core::CoreError;

use crate::{ContainerizeParams, ImageFacts, Result};

/// The parts of the toolkit's source tree the build stage compiles.
/// (The whole `tests` crate: cargo checks every target path of a workspace member.)
const SOURCES: [&str; 5] = ["Cargo.toml", "Cargo.lock", "crates", "pipelines", "tests"];

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::metadata(from).map_err(|e| CoreError::io("cannot read", from, e))?;
    if meta.is_file() {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| CoreError::io("cannot create directory", parent, e))?;
        }
        fs::copy(from, to).map_err(|e| CoreError::io("cannot copy", from, e))?;
        return Ok(());
    }
    fs::create_dir_all(to).map_err(|e| CoreError::io("cannot create directory", to, e))?;
    let mut entries: Vec<_> = fs::read_dir(from)
        .map_err(|e| CoreError::io("cannot read directory", from, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| CoreError::io("cannot read directory", from, e))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        // Build output and hidden files never go into the image.
        if text == "target" || text.starts_with('.') {
            continue;
        }
        copy_tree(&entry.path(), &to.join(&name))?;
    }
    Ok(())
}

/// Writes the build context for the package in `package` into `out`: `Dockerfile`,
/// `.dockerignore`, `docker-compose.yml`, `nginx.conf` (when the proxy is enabled), `README.md`,
/// `model/` (the package) and `src/` (the toolkit's sources under `source_root`). An `out` that
/// exists and is not empty is refused unless `force`; on failure nothing is left behind and an
/// existing `out` is untouched. Returns the files written at the top level.
pub fn write_context(
    out: &Path,
    params: &ContainerizeParams,
    facts: &ImageFacts,
    (package, source_root): (&Path, &Path),
    force: bool,
) -> Result<Vec<String>> {
    params.check()?;
    let mut files = vec![
        ("Dockerfile".to_string(), crate::dockerfile(params, facts)),
        (".dockerignore".to_string(), crate::dockerignore()),
        ("docker-compose.yml".to_string(), crate::compose(params, facts)),
        ("README.md".to_string(), crate::readme(params, facts)),
    ];
    if params.proxy.enabled {
        files.push(("nginx.conf".to_string(), crate::nginx_conf(params, facts)));
    }
    mlops_core::io::atomic_dir_replace(out, force, |tmp| -> Result<()> {
        for (file, text) in &files {
            let path = tmp.join(file);
            fs::write(&path, text).map_err(|e| CoreError::io("cannot write", &path, e))?;
        }
        copy_tree(package, &tmp.join("model"))?;
        for part in SOURCES {
            copy_tree(&source_root.join(part), &tmp.join("src").join(part))?;
        }
        Ok(())
    })?;
    tracing::info!(out = %out.display(), model = %facts.model, version = facts.version, "build context written");
    let mut names: Vec<String> = files.into_iter().map(|(f, _)| f).collect();
    names.extend(["model/".to_string(), "src/".to_string()]);
    Ok(names)
}
