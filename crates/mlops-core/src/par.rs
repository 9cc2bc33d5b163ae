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
    let workers = std::thread::available_parallelism().map_or(1, usize::from).min(items.len());
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
