//! Spreading independent pieces of work (columns, pairs of columns) over the cores.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` applied to every item, the items shared out over the available cores; results in item order.
/// Workers take the next item as they finish one, so uneven items still balance.
///
/// `None` when a worker panicked, so callers can turn it into their own error.
///
/// ```
/// let squares = mlops_core::par::map(&[1, 2, 3], |x| x * x);
/// assert_eq!(squares, Some(vec![1, 4, 9]));
/// ```
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Option<Vec<R>> {
    let workers = cores().min(items.len());
    if workers <= 1 {
        return Some(items.iter().map(f).collect());
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (next, f) = (&next, &f);
                s.spawn(move || {
                    let mut own = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break own };
                        own.push((i, f(item)));
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for h in handles {
            all.extend(h.join().ok()?);
        }
        Some(all)
    })?;
    if done.len() != items.len() {
        return None;
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    Some(done.into_iter().map(|(_, r)| r).collect())
}

/// [`map`] over owned items: each item moves into `f` on the worker that takes it. `None` when
/// a worker panicked.
///
/// ```
/// let lengths = mlops_core::par::map_owned(vec![vec![1], vec![2, 3]], |v| v.len());
/// assert_eq!(lengths, Some(vec![1, 2]));
/// ```
pub fn map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Option<Vec<R>> {
    let slots: Vec<std::sync::Mutex<Option<T>>> = items.into_iter().map(|t| std::sync::Mutex::new(Some(t))).collect();
    map(&slots, |slot| slot.lock().ok().and_then(|mut s| s.take()).map(&f))?.into_iter().collect()
}

/// The cores this process may use, read once: the standard library's
/// `available_parallelism` reads the cgroup's CPU quota from files on every call, which costs
/// more than a small piece of parallel work.
///
/// ```
/// assert!(mlops_core::par::cores() >= 1);
/// ```
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Stack of the threads [`join`] starts. Small on purpose: a thread's stack is mapped afresh
/// for every thread, and a default one (2 MiB) is backed by a transparent huge page that the
/// kernel zeroes in full on the first touch, which costs more than a short piece of work.
const JOIN_STACK: usize = 256 * 1024;

/// Runs `a` on a new thread (with a 256 KiB stack) and `b` on this one, and returns both
/// results, as `rayon::join` does. If no thread can be started, `a` runs here after `b`.
///
/// ```
/// let (left, right) = mlops_core::par::join(|| (1..=10).sum::<u32>(), || (11..=20).sum::<u32>());
/// assert_eq!(left + right, 210);
/// ```
pub fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    let task = std::sync::Mutex::new(Some(a));
    let take = || task.lock().ok().and_then(|mut t| t.take());
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new().stack_size(JOIN_STACK).spawn_scoped(s, || take().map(|a| a()));
        let right = b();
        let left = match handle {
            Ok(h) => h.join().ok().flatten(),
            Err(_) => None,
        };
        // The helper did not run `a` (it could not start, or panicked before taking it).
        let left = match left {
            Some(v) => v,
            None => match take() {
                Some(a) => a(),
                None => std::panic::resume_unwind(Box::new("a thread of par::join panicked")),
            },
        };
        (left, right)
    })
}
