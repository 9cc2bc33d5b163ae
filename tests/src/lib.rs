//! Helpers for the end-to-end tests: a throw-away project folder with the shipped configs and
//! data, and a runner for the real `mlops` binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `mlops` binary built from this workspace: `$MLOPS_BIN`, or `mlops` beside the test
/// binary's folder (`target/debug/mlops`), which `make test` builds first.
pub fn mlops_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MLOPS_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe.parent().and_then(Path::parent).expect("target profile folder").join("mlops");
    assert!(bin.is_file(), "{} is missing: build it with `cargo build --bin mlops` (make test does)", bin.display());
    bin
}

/// A command's outcome, with its output as text.
pub struct Run {
    /// Whether it exited with 0.
    pub success: bool,
    /// Exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A project folder with `configs/` and `data/raw/` copied from the repository.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Project {
    /// A fresh copy of the shipped configs and raw data.
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["configs", "data/raw"] {
            let from = repo().join(sub);
            let to = dir.path().join(sub);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                if entry.path().is_file() {
                    std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        }
        Project { dir }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the project.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file inside the project.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The shipped data config with `from` replaced by `to` (for bad-input variants).
    pub fn config_with(&self, from: &str, to: &str) -> PathBuf {
        self.file_with("configs/data.yaml", from, to)
    }

    /// A copy of a project file with `from` replaced by `to`, as `configs/variant-<name>`.
    pub fn file_with(&self, file: &str, from: &str, to: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.join(file)).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        let name = Path::new(file).file_name().unwrap().to_string_lossy().to_string();
        let variant =
            if name == "data.yaml" { "configs/variant.yaml".to_string() } else { format!("configs/variant-{name}") };
        self.write(&variant, text.replacen(from, to, 1))
    }

    /// Runs `mlops` in the project folder.
    pub fn mlops(&self, args: &[&str]) -> Run {
        let output =
            Command::new(mlops_bin()).args(args).current_dir(self.path()).env_remove("MLOPS_LOG").output().unwrap();
        Run::from(output)
    }

    /// Runs `mlops` expecting exit code 1 and an error on stderr containing every `expected` text.
    pub fn fails(&self, args: &[&str], expected: &[&str]) {
        let run = self.mlops(args);
        assert!(!run.success, "{args:?} should fail:\n{}", run.stdout);
        assert_eq!(run.code, Some(1), "{args:?}");
        for e in expected {
            assert!(run.stderr.contains(e), "{args:?}: error lacks {e:?}:\n{}", run.stderr);
        }
    }

    /// Whether anything was written under `data/processed`.
    pub fn processed_is_empty(&self) -> bool {
        let dir = self.join("data/processed");
        !dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none()
    }
}
