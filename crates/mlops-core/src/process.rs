//! Which process owns something (a run, a temporary file), and whether that process is still
//! there: Linux `/proc` where it exists, with the process's start time so that a recycled pid is
//! never taken for the owner. Elsewhere nothing is ever declared gone.

use serde::{Deserialize, Serialize};

/// A process: its pid, the host it runs on and when it started (clock ticks after boot, from
/// `/proc/PID/stat`; `None` where there is no `/proc`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// Start time in clock ticks after boot.
    pub start: Option<u64>,
}

/// Whether an owner still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It runs.
    Alive,
    /// It ended (or its pid now belongs to another process).
    Gone,
    /// It cannot be told from here (another host, no `/proc`).
    Unknown,
}

/// This machine's host name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`), `None` when it is not running or is
/// a zombie.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the parenthesized command name start at field 3 (the state).
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X") | None) {
        return None;
    }
    fields.nth(22 - 4)?.parse().ok()
}

fn has_proc() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner { pid, host: host(), start: start_time(pid) }
    }

    /// Whether it still runs, as far as this machine can tell.
    pub fn liveness(&self) -> Liveness {
        if self.host != host() || !has_proc() {
            return Liveness::Unknown;
        }
        match (start_time(self.pid), self.start) {
            (None, _) => Liveness::Gone,
            (Some(now), Some(then)) if now != then => Liveness::Gone,
            _ => Liveness::Alive,
        }
    }
}

/// Whether process `pid` of this machine has surely ended (`false` when it runs or when this
/// machine cannot tell).
pub fn pid_gone(pid: u32) -> bool {
    has_proc() && start_time(pid).is_none()
}

/// Who makes a change (the registry's audit log): `MLOPS_ACTOR`, else the OS user, else
/// `unknown`.
pub fn actor() -> String {
    ["MLOPS_ACTOR", "USER", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn this_process_is_alive_and_an_ended_child_is_gone() {
        let me = Owner::current();
        assert_eq!(me.liveness(), Liveness::Alive);
        assert!(me.start.is_some());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(pid_gone(pid));
        assert_eq!(Owner { pid, ..me.clone() }.liveness(), Liveness::Gone);
        // A recycled pid: same pid, another start time.
        let recycled = Owner { start: me.start.map(|s| s + 1), ..me.clone() };
        assert_eq!(recycled.liveness(), Liveness::Gone);
        assert_eq!(Owner { host: "elsewhere".into(), ..me }.liveness(), Liveness::Unknown);
    }
}
