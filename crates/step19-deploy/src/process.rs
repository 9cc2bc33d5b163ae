//! The deployment's background processes: liveness, identity and signals (Linux `/proc` where
//! it exists, so that a recycled pid is never taken for ours).

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, test_kill_process};

fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Whether `pid` runs and its command line holds `marker` (an argument that names it, such as
/// `--port\0PORT`); a zombie counts as gone.
pub(crate) fn alive(pid: u32, marker: &str) -> bool {
    let Some(p) = pid_of(pid) else { return false };
    let proc = std::path::Path::new("/proc");
    if proc.join("self").exists() {
        let dir = proc.join(pid.to_string());
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else { return false };
        // The state follows the parenthesized command name.
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
        if matches!(state, Some('Z' | 'X') | None) {
            return false;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        if cmdline.is_empty() {
            // Empty for a kernel thread (never ours), and for a moment while a process we just
            // started is still being exec'd (seen right after `spawn` returned).
            let flags = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse::<u64>().ok());
            const PF_KTHREAD: u64 = 0x0020_0000;
            return flags.is_some_and(|f| f & PF_KTHREAD == 0);
        }
        return String::from_utf8_lossy(&cmdline).contains(marker);
    }
    test_kill_process(p).is_ok()
}

/// Sends SIGHUP (the router re-reads the store), if `pid` is still the process `marker` names.
pub(crate) fn hang_up(pid: u32, marker: &str) -> bool {
    alive(pid, marker) && pid_of(pid).is_some_and(|p| kill_process(p, Signal::HUP).is_ok())
}

/// SIGTERM, then SIGKILL if it is still there after `grace`. True when it is gone.
pub(crate) fn terminate(pid: u32, marker: &str, grace: Duration) -> bool {
    let Some(p) = pid_of(pid) else { return true };
    if !alive(pid, marker) {
        return true;
    }
    let _ = kill_process(p, Signal::TERM);
    if wait_gone(pid, marker, grace) {
        return true;
    }
    tracing::warn!(pid, "did not stop within {grace:?} of SIGTERM; killing it");
    let _ = kill_process(p, Signal::KILL);
    wait_gone(pid, marker, Duration::from_secs(5))
}

fn wait_gone(pid: u32, marker: &str, within: Duration) -> bool {
    let start = Instant::now();
    while alive(pid, marker) {
        if start.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
