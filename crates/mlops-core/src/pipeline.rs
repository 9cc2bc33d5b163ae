//! The fit/transform contract and the [`FeaturePipeline`] that carries fitted operations from
//! training to serving.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ops::Op;
use crate::value::Row;
use crate::{CoreError, Result};

/// Something fitted that transforms data: a whole frame and single rows, with identical results.
pub trait Transform {
    /// Transforms one row in place (serving).
    fn transform_row(&self, row: &mut Row) -> Result<()>;

    /// Transforms a frame for inference: one output row per input row.
    #[cfg(feature = "frame")]
    fn transform_frame(&self, df: polars::prelude::DataFrame) -> Result<polars::prelude::DataFrame>;
}

/// Parameters that learn from training rows: `fit` sees only the frame it is given, and returns a
/// fitted value that can be serialized and applied to any other data.
#[cfg(feature = "frame")]
pub trait Fit {
    /// What fitting produces.
    type Fitted: Serialize;
    /// What can go wrong.
    type Error;
    /// Learns from the training rows.
    fn fit(&self, train: &polars::prelude::DataFrame) -> std::result::Result<Self::Fitted, Self::Error>;
}

impl Transform for Op {
    fn transform_row(&self, row: &mut Row) -> Result<()> {
        self.apply_row(row)
    }

    #[cfg(feature = "frame")]
    fn transform_frame(&self, df: polars::prelude::DataFrame) -> Result<polars::prelude::DataFrame> {
        self.apply_frame(df, crate::frame::Stage::Inference)
    }
}

/// The version of the pipeline file format this build reads and writes.
pub const PIPELINE_FORMAT_VERSION: u32 = 1;

/// The ordered fitted operations of steps 3-5 (and later feature engineering). Training
/// evaluation, batch inference and the server all transform data through it and nothing else.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturePipeline {
    /// File format version, checked on load.
    pub format_version: u32,
    /// Operations, applied in order.
    pub ops: Vec<Op>,
}

impl FeaturePipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Self { format_version: PIPELINE_FORMAT_VERSION, ops: Vec::new() }
    }

    /// Appends fitted operations.
    pub fn extend(&mut self, ops: impl IntoIterator<Item = Op>) {
        self.ops.extend(ops);
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Transforms several rows.
    pub fn transform_rows(&self, rows: &mut [Row]) -> Result<()> {
        rows.iter_mut().try_for_each(|r| self.transform_row(r))
    }

    /// Transforms a frame at the given stage (training applies row filters).
    #[cfg(feature = "frame")]
    pub fn apply_frame(
        &self,
        mut df: polars::prelude::DataFrame,
        stage: crate::frame::Stage,
    ) -> Result<polars::prelude::DataFrame> {
        for op in &self.ops {
            df = op.apply_frame(df, stage)?;
        }
        Ok(df)
    }

    /// Writes the pipeline as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::atomic_write_json(path, self)
    }

    /// Reads a pipeline; an unknown format version is an error.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| CoreError::io("cannot read pipeline", path, e))?;
        let pipeline: FeaturePipeline = serde_json::from_slice(&text).map_err(|source| CoreError::Json {
            context: format!("{}: not a feature pipeline", path.display()),
            source,
        })?;
        if pipeline.format_version != PIPELINE_FORMAT_VERSION {
            return Err(CoreError::Config {
                file: path.to_path_buf(),
                key: "format_version".into(),
                line: None,
                column: None,
                message: format!(
                    "format version {} is not supported by this build (expects {PIPELINE_FORMAT_VERSION})",
                    pipeline.format_version
                ),
            });
        }
        Ok(pipeline)
    }
}

impl Transform for FeaturePipeline {
    fn transform_row(&self, row: &mut Row) -> Result<()> {
        self.ops.iter().try_for_each(|op| op.apply_row(row))
    }

    #[cfg(feature = "frame")]
    fn transform_frame(&self, df: polars::prelude::DataFrame) -> Result<polars::prelude::DataFrame> {
        self.apply_frame(df, crate::frame::Stage::Inference)
    }
}
