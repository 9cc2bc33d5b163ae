//! Errors of the visualize step.

/// What stops a chart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The plot names a column the data does not have.
    #[error("{plot}: column `{column}` not found (available: {})", available.join(", "))]
    MissingColumn {
        /// Which plot and key (`plot scatter: x`).
        plot: String,
        /// The column.
        column: String,
        /// The columns there are.
        available: Vec<String>,
    },
    /// A column of the wrong type: a number was needed, or a date for a time axis.
    #[error("{plot}: column `{column}` is {found}; {needed}")]
    WrongType {
        /// Which plot and key.
        plot: String,
        /// The column.
        column: String,
        /// Its type.
        found: String,
        /// What the plot needs.
        needed: String,
    },
    /// Nothing to draw.
    #[error("{plot}: {message}")]
    NoData {
        /// Which plot.
        plot: String,
        /// Why.
        message: String,
    },
    /// A setting is out of range.
    #[error("{plot}: {message}")]
    Invalid {
        /// Which plot and key.
        plot: String,
        /// What is wrong.
        message: String,
    },
    /// The drawing library failed.
    #[error("drawing {title:?} failed: {message}")]
    Draw {
        /// The plot's title.
        title: String,
        /// What plotters said.
        message: String,
    },
    /// Reading the frame or writing a file failed.
    #[error(transparent)]
    Core(#[from] mlops_core::CoreError),
    /// Profiling for a heatmap failed.
    #[error(transparent)]
    Eda(#[from] step07_eda::EdaError),
}

/// Result of the visualize step.
pub type Result<T, E = PlotError> = std::result::Result<T, E>;
