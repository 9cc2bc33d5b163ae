//! Step 12, training: the run store. Every training attempt is a tracked **run** in the store
//! (`mlops_core::store`: the embedded SQLite file `models/registry/registry.db` by default, or a
//! PostgreSQL database that a team's machines share): its experiment, parameters, metrics (with a
//! step for iterative models), tags, artifact paths, dataset version, config hash, source
//! commit, start and end times, and status (running, finished, failed).
//!
//! In: candidates (step 11 model specs), training rows, validation rows and an [`Evaluate`]
//! implementation (step 14's metrics, handed in by `pipelines`). Out: an [`CandidateOutcome`] per
//! candidate and [`Run`] records to list, show and compare, as MLflow's tracking does. A candidate
//! that fails is recorded as a failed run and the others go on.
//!
//! Invariants:
//! - every change is one transaction (SQLite in WAL mode with a busy timeout), so a reader never
//!   sees half a run and two processes, or two machines on PostgreSQL, can log at once;
//! - a run that fails is kept, with status `failed` and the error, never deleted;
//! - run ids are unique and stable: 16 hex digits.
//!
//! ```
//! use step12_training::{RunInfo, RunStatus, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&dir.path().join("registry.db"))?;
//! let id = store.start_run(&RunInfo { experiment: "penguins".into(), name: "logistic".into(), ..RunInfo::default() })?;
//! store.log_param(&id, "c", "1.0")?;
//! store.log_metric(&id, "accuracy", 0.97, None)?;
//! store.finish(&id, RunStatus::Finished, None)?;
//! assert_eq!(store.run(&id)?.metrics["accuracy"], 0.97);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod store;
mod trainer;

pub use store::{MetricPoint, Run, RunInfo, RunStatus, Store, StoreError};
pub use trainer::{Candidate, CandidateOutcome, Evaluate, TrainingData, spec_params, train};

#[cfg(test)]
mod tests;
