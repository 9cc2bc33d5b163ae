//! Errors of the runs: each wraps a step's error and names the step.

use std::path::PathBuf;

use step02_validate::Report;

/// What stops a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The configuration is wrong (file, key, line).
    #[error("config: {0}")]
    Config(#[source] mlops_core::CoreError),
    /// A source could not be read.
    #[error("ingest `{source_name}`: {error}")]
    Ingest {
        /// The source's name.
        source_name: String,
        /// What went wrong.
        #[source]
        error: Box<step01_ingest::IngestError>,
    },
    /// Validation found `error`-severity failures; nothing was written.
    #[error("validate `{source_name}`: {} check(s) failed with severity error; nothing was written", report.errors())]
    ValidationFailed {
        /// The source that failed.
        source_name: String,
        /// The full report.
        report: Box<Report>,
    },
    /// A step failed.
    #[error("{step}: {source}")]
    Step {
        /// The step's name.
        step: &'static str,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The target column cannot be learned from a part as it is (the message names the column,
    /// the part and the row).
    #[error("{step}: {message}")]
    Target {
        /// The step that read the target (`train`, `fit`).
        step: &'static str,
        /// The target column.
        column: String,
        /// What is wrong, and what to do about it.
        message: String,
    },
    /// A part's feature columns cannot be the models' input (the message names the column, the
    /// part and the row).
    #[error("{step}: {message}")]
    Features {
        /// The step that built the input.
        step: &'static str,
        /// The part: `training`, `validation`, `test`, `fold training`, ...
        part: String,
        /// What is wrong.
        message: String,
    },
    /// A fitted model could not predict or be scored.
    #[error("{step}: model `{model}`: {message}")]
    Scoring {
        /// The step that asked it: `evaluate`, `select`, `fit`.
        step: &'static str,
        /// The model family.
        model: String,
        /// What went wrong.
        message: String,
    },
    /// A record of the run could not be encoded as JSON or YAML.
    #[error("{step}: cannot encode {what}: {message}")]
    Encode {
        /// The step writing it.
        step: &'static str,
        /// The record: `the run`, `the folds`, ...
        what: &'static str,
        /// The encoder's message.
        message: String,
    },
    /// A worker thread of a step died before giving its result.
    #[error("{step}: a worker thread failed")]
    Worker {
        /// The step.
        step: &'static str,
    },
    /// A deployment cannot be carried out as asked (the message names the setting or the model).
    #[error("{step}: {message}")]
    Deploy {
        /// `containerize`, `deploy kubernetes`, `deploy local`, ...
        step: &'static str,
        /// What is wrong, naming the setting, the model URI or the folder.
        message: String,
    },
    /// An input file's format is not known from its extension.
    #[error(
        "{path}: unknown file type; use .csv, .tsv, .xlsx, .xls, .ods, .parquet, .json, .ndjson or a config source"
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A command-line argument is wrong (named as on the command line: `--target`).
    #[error("{argument}: {message}")]
    Argument {
        /// The argument.
        argument: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The data a lifecycle retraining runs on cannot be made.
    #[error("retraining data: {message}")]
    Retraining {
        /// What is wrong, naming the file or the column.
        message: String,
    },
    /// An output file's extension is neither `.parquet` nor `.csv`.
    #[error("{path}: output must end in .parquet or .csv")]
    BadOutput {
        /// The file.
        path: PathBuf,
    },
}

impl PipelineError {
    /// Wraps a step's error.
    pub fn step(step: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        PipelineError::Step { step, source: Box::new(source) }
    }
}

/// Result with [`PipelineError`] as the default error.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
