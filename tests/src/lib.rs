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

    /// Replaces the first `from` in a project file by `to`, in place (the file must have it).
    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.join(file)).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        self.write(file, text.replacen(from, to, 1));
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

    /// Runs `mlops` in the project folder with extra environment variables.
    pub fn mlops_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(mlops_bin())
            .args(args)
            .current_dir(self.path())
            .env_remove("MLOPS_LOG")
            .envs(env.iter().copied())
            .output()
            .unwrap();
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

/// A running `mlops serve` on a free loopback port; stopped with SIGTERM on drop.
pub struct Served {
    child: std::process::Child,
    /// `host:port`.
    pub addr: String,
    /// What `mlops serve --json` printed once listening.
    pub info: serde_json::Value,
}

impl Project {
    /// Starts `mlops serve --port 0 --json` with `args` and waits until it listens.
    pub fn serve(&self, args: &[&str]) -> Served {
        self.serve_with_env(args, &[])
    }

    /// [`Project::serve`] with extra environment variables.
    pub fn serve_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Served {
        use std::io::BufRead;
        let mut child = Command::new(mlops_bin())
            .args(["--json", "serve", "--port", "0"])
            .args(args)
            .current_dir(self.path())
            .env_remove("MLOPS_LOG")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
                panic!("mlops serve exited before listening:\n{text}\n{err}");
            }
            text.push_str(&line);
            if line.trim_end() == "}" {
                break;
            }
        }
        let info: serde_json::Value = serde_json::from_str(&text).unwrap();
        let addr = info["url"].as_str().unwrap().trim_start_matches("http://").to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Served { child, addr, info }
    }
}

impl Served {
    /// One HTTP/1.1 request over a fresh loopback connection: (status, body).
    pub fn request(&self, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, body.to_string())
    }

    /// POSTs JSON: (status, answer as JSON).
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let (status, text) = self.request("POST", path, "application/json", &body.to_string());
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// Sends SIGTERM and waits: (exit success, stderr).
    pub fn terminate(mut self) -> (bool, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (status.success(), err)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One persistent HTTP/1.1 connection (keep-alive), as pooled clients hold them: a request
/// fails if the connection breaks under it.
pub struct KeepAlive {
    addr: String,
    stream: Option<std::io::BufReader<std::net::TcpStream>>,
}

/// An answer read over a [`KeepAlive`] connection: the same as the deploy probe's.
pub use step19_deploy::Answer;

impl KeepAlive {
    /// A client for `host:port`; it connects on the first request and again after an error.
    pub fn new(addr: &str) -> KeepAlive {
        KeepAlive { addr: addr.to_string(), stream: None }
    }

    /// POSTs `body` as JSON and reads the answer (`Content-Length` framed).
    pub fn post(&mut self, path: &str, body: &str) -> std::io::Result<Answer> {
        let outcome = self.exchange(path, body);
        if outcome.is_err() {
            self.stream = None;
        }
        outcome
    }

    fn exchange(&mut self, path: &str, body: &str) -> std::io::Result<Answer> {
        use std::io::{BufRead, Read, Write};
        if self.stream.is_none() {
            let s = std::net::TcpStream::connect(&self.addr)?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
            s.set_nodelay(true)?;
            self.stream = Some(std::io::BufReader::new(s));
        }
        let reader = self.stream.as_mut().ok_or_else(|| std::io::Error::other("not connected"))?;
        write!(
            reader.get_mut(),
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut status_line = String::new();
        if reader.read_line(&mut status_line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed before an answer"));
        }
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let length: usize =
            headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        if headers.iter().any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close")) {
            self.stream = None;
        }
        Ok(Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }
}
