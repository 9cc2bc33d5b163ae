//! The fit/transform contract and the [`FeaturePipeline`] that carries fitted operations from
//! training to serving.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ops::Op;
use crate::schema::ColumnSchema;
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
    /// What the first operation reads, when the pipeline starts at a source (the prepare run's
    /// does): the source's columns as they arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInputs>,
}

/// The columns of the source a pipeline starts from, as the source delivers them (original
/// names, types as read, raw categories), with a few of its rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInputs {
    /// The source's name in the data config (the primary source).
    pub name: String,
    /// Its columns, in order, and the columns of joined sources too large to embed (which a
    /// caller then sends).
    pub columns: Vec<ColumnSchema>,
    /// Its first rows, as read.
    #[serde(default)]
    pub examples: Vec<Row>,
}

/// The part of a pipeline that some wanted columns depend on: see [`FeaturePipeline::road_to`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Road {
    /// The operations that write (or remove) a wanted column or one they read, in order. Row
    /// filters are left out: at inference they change no value.
    pub ops: Vec<Op>,
    /// The columns those operations (or the wanted columns themselves) read that none of them
    /// writes first: what a caller must send.
    pub inputs: BTreeSet<String>,
}

impl FeaturePipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Self { format_version: PIPELINE_FORMAT_VERSION, ops: Vec::new(), source: None }
    }

    /// The operations that `wanted` depends on and the columns they start from, found by walking
    /// the operations backwards: an operation is kept when it writes a column still needed, and
    /// then the columns it reads are needed instead (a rename keeps only the pairs needed). On
    /// any row the kept operations give the wanted columns exactly as the whole pipeline does.
    pub fn road_to<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> Road {
        let mut needed: BTreeSet<String> = wanted.into_iter().map(str::to_string).collect();
        let mut kept = Vec::new();
        for op in self.ops.iter().rev() {
            match op {
                // A pair is kept when its new name is needed, or when its old name is: after the
                // rename the old name is gone, and a later read of it finds nothing.
                Op::Rename { mapping } => {
                    let pairs: Vec<(String, String)> = mapping
                        .iter()
                        .filter(|(from, to)| needed.contains(to) || needed.contains(from))
                        .cloned()
                        .collect();
                    if pairs.is_empty() {
                        continue;
                    }
                    let mut next = needed.clone();
                    for (from, to) in &pairs {
                        next.remove(to);
                        if !needed.contains(to) {
                            next.remove(from);
                        }
                    }
                    next.extend(pairs.iter().filter(|(_, to)| needed.contains(to)).map(|(from, _)| from.clone()));
                    needed = next;
                    kept.push(Op::Rename { mapping: pairs });
                }
                Op::Drop { columns } => {
                    let gone: Vec<String> = columns.iter().filter(|c| needed.contains(*c)).cloned().collect();
                    if !gone.is_empty() {
                        gone.iter().for_each(|c| {
                            needed.remove(c);
                        });
                        kept.push(Op::Drop { columns: gone });
                    }
                }
                op if op.is_row_filter() => {}
                op => {
                    let writes = op.writes();
                    let removes = match op {
                        Op::OneHot { column, drop_input: true, .. }
                        | Op::TargetEncode { column, drop_input: true, .. } => needed.contains(column),
                        _ => false,
                    };
                    if !removes && !writes.iter().any(|w| needed.contains(w)) {
                        continue;
                    }
                    let reads = op.inputs();
                    for w in writes.iter().filter(|w| !reads.contains(w)) {
                        needed.remove(w);
                    }
                    needed.extend(reads);
                    kept.push(op.clone());
                }
            }
        }
        kept.reverse();
        Road { ops: kept, inputs: needed }
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
