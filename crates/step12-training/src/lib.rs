//! Step 12, training: the run store. Every training attempt is a tracked **run** in the embedded
//! SQLite database (`models/registry/registry.db`): its experiment, parameters, metrics (with a
//! step for iterative models), tags, artifact paths, dataset version, config hash, source
//! commit, start and end times, and status (running, finished, failed).
//!
//! In: what a trainer learns as it goes. Out: [`Run`] records to list, show and compare, as
//! MLflow's tracking does. The trainer that fits candidates and logs into this store arrives with
//! the rest of the model issue.
//!
//! Invariants:
//! - every change is one transaction; the database runs in WAL mode with a busy timeout, so a
//!   reader never sees half a run and two processes can log at once;
//! - a run that fails is kept, with status `failed` and the error, never deleted;
//! - run ids are unique and stable: 16 hex digits.
//!
//! ```
//! use step12_training::{RunInfo, Status, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&dir.path().join("registry.db"))?;
//! let id = store.start_run(&RunInfo { experiment: "penguins".into(), name: "logistic".into(), ..RunInfo::default() })?;
//! store.log_param(&id, "c", "1.0")?;
//! store.log_metric(&id, "accuracy", 0.97, None)?;
//! store.finish(&id, Status::Finished, None)?;
//! assert_eq!(store.run(&id)?.metrics["accuracy"], 0.97);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod store;

pub use store::{MetricPoint, Run, RunInfo, Status, Store, StoreError};

#[cfg(test)]
mod tests;
