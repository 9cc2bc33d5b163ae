//! Feedback: the actual outcome of logged predictions, kept beside the prediction log and joined
//! to it by request id and row, so that accuracy can be measured once the truth arrives.

use std::path::Path;

use mlops_core::store::Location;
use serde::{Deserialize, Serialize};

use crate::{Result, ServeError};

/// Why a feedback transaction ends without committing.
enum Refused {
    /// An actual of the wrong type: the whole batch is refused.
    Bad(BadActual),
    /// The store failed.
    Store(mlops_core::store::StoreError),
}

impl From<mlops_core::store::StoreError> for Refused {
    fn from(e: mlops_core::store::StoreError) -> Refused {
        Refused::Store(e)
    }
}

/// The actual outcome of one logged prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actual {
    /// The request that was answered (the `X-Request-Id` the server gave or was given).
    pub request_id: String,
    /// The row within the request, from 0.
    #[serde(default, deserialize_with = "row_number")]
    pub row: u32,
    /// The true label (classifiers) or value (regressors).
    pub actual: serde_json::Value,
}

/// A row number as JSON Schema's `integer` allows it: `3` or `3.0`.
fn row_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("row {n} is not a row number (0 to {})", u32::MAX)))
}

/// What recording feedback did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FeedbackOutcome {
    /// Actuals recorded for predictions that had none.
    pub recorded: usize,
    /// Actuals that replaced an earlier one for the same prediction (a corrected label).
    pub replaced: usize,
    /// Actuals whose request id and row name no logged prediction (not recorded), with their
    /// place in the input (from 0).
    pub unknown: Vec<UnknownActual>,
}

/// An actual that names no logged prediction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnknownActual {
    /// Its place in the input (from 0).
    pub index: usize,
    /// Its request id.
    pub request_id: String,
    /// Its row.
    pub row: u32,
}

/// Why an actual is refused (nothing of its batch is recorded).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("actual {index} (request {request_id}, row {row}): {message}")]
pub struct BadActual {
    /// Its place in the input (from 0).
    pub index: usize,
    /// Its request id.
    pub request_id: String,
    /// Its row.
    pub row: u32,
    /// What is wrong.
    pub message: String,
}

/// Records `actuals` in the store at `path`, in one transaction: each is checked against the
/// prediction it names (a classifier's actual is a label, text or a number or boolean read as
/// text; a regressor's is a number), an unknown request id or row is counted and left out, and a
/// wrong type refuses the whole batch (nothing is written). The store must exist.
pub fn record_feedback(
    path: &Path,
    actuals: &[Actual],
    at: &str,
) -> Result<std::result::Result<FeedbackOutcome, BadActual>> {
    let location = Location::from_path(path);
    if location.is_missing_file() {
        return Err(ServeError::Db(mlops_core::store::StoreError::Config {
            location: location.to_string(),
            message: "no store there".into(),
        }));
    }
    if location.sqlite_path().is_some() {
        crate::log::open(path)?;
    }
    let db = mlops_core::store::Store::open(&location)?;
    db.migrate("prediction_log", crate::log::MIGRATIONS)?;
    let done = db.transaction(|tx| -> std::result::Result<FeedbackOutcome, Refused> {
        // Actuals find their request by id; on SQLite the log's writer keeps this index from the
        // first feedback on (on PostgreSQL the log's migration 2 made it: DDL here would lock the
        // table against the servers' writers until this transaction ends).
        if tx.backend() == mlops_core::store::Backend::Sqlite {
            tx.batch("CREATE INDEX IF NOT EXISTS prediction_requests_request ON prediction_requests (request_id)")?;
        }
        let mut outcome = FeedbackOutcome::default();
        for (index, a) in actuals.iter().enumerate() {
            let found = tx.query_opt(
                "SELECT rows, outputs FROM prediction_requests WHERE request_id = ?1 ORDER BY seq DESC LIMIT 1",
                &[&a.request_id],
            )?;
            let predicted = match found {
                Some(r) if i64::from(a.row) < r.get::<i64>(0)? => {
                    let outputs: serde_json::Value = serde_json::from_str(&r.get::<String>(1)?).unwrap_or_default();
                    outputs.get(a.row as usize).and_then(|o| o.get("prediction")).cloned().unwrap_or_default()
                }
                _ => {
                    outcome.unknown.push(UnknownActual { index, request_id: a.request_id.clone(), row: a.row });
                    continue;
                }
            };
            let bad = |message: String| BadActual { index, request_id: a.request_id.clone(), row: a.row, message };
            let actual = match (&predicted, &a.actual) {
                (serde_json::Value::String(_), serde_json::Value::String(s)) => serde_json::Value::String(s.clone()),
                (serde_json::Value::String(_), v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    serde_json::Value::String(v.to_string())
                }
                (serde_json::Value::String(label), v) => {
                    return Err(Refused::Bad(bad(format!(
                        "{v} is not a label (the model predicts labels such as \"{label}\")"
                    ))));
                }
                (_, serde_json::Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => a.actual.clone(),
                (_, serde_json::Value::String(s)) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
                    serde_json::json!(s.trim().parse::<f64>().unwrap_or_default())
                }
                (_, v) => {
                    return Err(Refused::Bad(bad(format!("{v} is not a finite number (the model predicts values)"))));
                }
            };
            let seen = tx
                .query_opt(
                    "SELECT 1 FROM prediction_feedback WHERE request_id = ?1 AND row = ?2",
                    &[&a.request_id, &a.row],
                )?
                .is_some();
            tx.execute(
                "INSERT INTO prediction_feedback (request_id, row, actual, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (request_id, row) DO UPDATE SET actual = ?3, at = ?4",
                &[&a.request_id, &a.row, &actual.to_string(), &at],
            )?;
            if seen {
                outcome.replaced += 1;
            } else {
                outcome.recorded += 1;
            }
        }
        Ok(outcome)
    });
    // A refused batch wrote nothing: its transaction was rolled back.
    let outcome = match done {
        Ok(outcome) => outcome,
        Err(Refused::Bad(bad)) => return Ok(Err(bad)),
        Err(Refused::Store(e)) => return Err(e.into()),
    };
    tracing::info!(
        recorded = outcome.recorded,
        replaced = outcome.replaced,
        unknown = outcome.unknown.len(),
        "feedback"
    );
    Ok(Ok(outcome))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store(requests: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        crate::read_predictions(&path, None, 1).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (id, outputs) in requests {
            let rows = serde_json::from_str::<Vec<serde_json::Value>>(outputs).unwrap().len() as i64;
            let inputs = serde_json::to_string(&vec![vec![1.0]; rows as usize]).unwrap();
            conn.execute(
                "INSERT INTO prediction_requests (request_id, at, model_name, model_version, route, rows, columns, inputs, outputs, latency_ms)
                 VALUES (?1, '2026-12-07T10:00:00.000000Z', 'm', 1, '/invocations', ?2, '[\"x\"]', ?3, ?4, 1.0)",
                rusqlite::params![id, rows, inputs, outputs],
            )
            .unwrap();
        }
        (dir, path)
    }

    fn actual(id: &str, row: u32, actual: serde_json::Value) -> Actual {
        Actual { request_id: id.into(), row, actual }
    }

    fn recorded(path: &Path) -> Vec<(String, i64, String)> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let table: bool = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'prediction_feedback')", [], |r| {
                r.get(0)
            })
            .unwrap();
        if !table {
            return Vec::new();
        }
        let mut stmt =
            conn.prepare("SELECT request_id, row, actual FROM prediction_feedback ORDER BY request_id, row").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn actuals_join_their_prediction_unknown_ones_are_counted_and_a_correction_replaces() {
        let (_dir, path) = store(&[
            ("a", r#"[{"prediction":"Adelie"},{"prediction":"Gentoo"}]"#),
            ("b", r#"[{"prediction":"Adelie"}]"#),
        ]);
        let first = [
            actual("a", 0, serde_json::json!("Adelie")),
            actual("a", 1, serde_json::json!("Chinstrap")),
            actual("a", 2, serde_json::json!("Adelie")),
            actual("zzz", 0, serde_json::json!("Adelie")),
            actual("b", 0, serde_json::json!(7)),
        ];
        let outcome = record_feedback(&path, &first, "2026-12-07T11:00:00Z").unwrap().unwrap();
        assert_eq!((outcome.recorded, outcome.replaced), (3, 0));
        assert_eq!(
            outcome.unknown,
            [
                UnknownActual { index: 2, request_id: "a".into(), row: 2 },
                UnknownActual { index: 3, request_id: "zzz".into(), row: 0 }
            ]
        );
        let again = record_feedback(&path, &[actual("a", 1, serde_json::json!("Gentoo"))], "2026-12-07T12:00:00Z")
            .unwrap()
            .unwrap();
        assert_eq!((again.recorded, again.replaced), (0, 1));
        assert_eq!(
            recorded(&path),
            [
                ("a".into(), 0, "\"Adelie\"".into()),
                ("a".into(), 1, "\"Gentoo\"".into()),
                ("b".into(), 0, "\"7\"".into())
            ]
        );
    }

    #[test]
    fn a_wrong_type_refuses_the_batch_and_a_missing_store_is_an_error() {
        let (_dir, path) = store(&[("r", r#"[{"prediction":41.5},{"prediction":39.0}]"#)]);
        let batch = [actual("r", 0, serde_json::json!(40.0)), actual("r", 1, serde_json::json!("heavy"))];
        let err = record_feedback(&path, &batch, "2026-12-07T11:00:00Z").unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "actual 1 (request r, row 1): \"heavy\" is not a finite number (the model predicts values)"
        );
        assert!(recorded(&path).is_empty(), "nothing of a refused batch is written");
        let ok = record_feedback(&path, &[actual("r", 1, serde_json::json!(" 38.5 "))], "t").unwrap().unwrap();
        assert_eq!(ok.recorded, 1);
        assert_eq!(recorded(&path), [("r".into(), 1, "38.5".into())]);

        let (_dir, path) = store(&[("c", r#"[{"prediction":"Adelie"}]"#)]);
        let err = record_feedback(&path, &[actual("c", 0, serde_json::json!(null))], "t").unwrap().unwrap_err();
        assert!(err.message.starts_with("null is not a label (the model predicts labels such as \"Adelie\")"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing.db");
        assert!(record_feedback(&missing, &[], "t").is_err());
        assert!(!missing.exists(), "no store is created");
    }
}
