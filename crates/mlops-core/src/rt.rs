//! Blocking calls into async clients (the PostgreSQL client, object storage) from code that may
//! itself run on a tokio runtime's worker (a server's handler).

/// Runs `f` on a thread of its own when this thread drives a tokio runtime: a client that blocks
/// on a runtime of its own is refused inside another. Elsewhere `f` runs here, at no cost.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
