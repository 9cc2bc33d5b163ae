//! The validation report: every failed check with counts and samples.

use std::fmt;

use mlops_core::table::Table;
use serde::{Deserialize, Serialize};

use crate::schema::Severity;

/// One failing row of a check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// 0-based row index in the validated data.
    pub row: usize,
    /// The offending value(s), as text.
    pub value: String,
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The check: `required`, `type`, `nullable`, `min`, `max`, `allowed`, `regex`, `min_length`,
    /// `max_length`, `unique`, `extra_column`, `compound_unique`, `rows`, `foreign_key` or
    /// `rule:<name>`.
    pub check: String,
    /// The column(s) checked, comma-separated; absent for row-count checks.
    pub column: Option<String>,
    /// How much it matters.
    pub severity: Severity,
    /// Rows that failed.
    pub count: usize,
    /// Share of rows that failed, 0-100.
    pub percent: f64,
    /// What was expected.
    pub message: String,
    /// The first few failing rows.
    pub samples: Vec<Sample>,
}

/// The outcome of validating one frame: all findings, not just the first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Rows validated.
    pub rows: usize,
    /// Columns in the data.
    pub columns: usize,
    /// Checks evaluated.
    pub checks: usize,
    /// Checks that failed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// No `error`-severity check failed.
    pub fn passed(&self) -> bool {
        self.errors() == 0
    }

    /// Number of failed `error` checks.
    pub fn errors(&self) -> usize {
        self.failures.iter().filter(|f| f.severity == Severity::Error).count()
    }

    /// Number of failed `warn` checks.
    pub fn warnings(&self) -> usize {
        self.failures.iter().filter(|f| f.severity == Severity::Warn).count()
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{} checks on {} rows x {} columns: {} passed, {} error(s), {} warning(s)",
            self.checks,
            self.rows,
            self.columns,
            self.checks - self.failures.len(),
            self.errors(),
            self.warnings()
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        if self.failures.is_empty() {
            return Ok(());
        }
        let mut table = Table::new(["severity", "check", "column", "failed", "%", "expected", "samples (row: value)"])
            .align_right(3)
            .align_right(4);
        for failure in &self.failures {
            let samples: Vec<String> = failure.samples.iter().map(|s| format!("{}: {}", s.row, s.value)).collect();
            table.row([
                failure.severity.to_string(),
                failure.check.clone(),
                failure.column.clone().unwrap_or_default(),
                failure.count.to_string(),
                format!("{:.1}", failure.percent),
                failure.message.clone(),
                samples.join("; "),
            ]);
        }
        write!(f, "{table}")
    }
}
