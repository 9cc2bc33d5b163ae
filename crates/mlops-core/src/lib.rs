//! The few types every step of the MLOps toolkit shares.
//!
//! What goes in and out: step crates fit their parameters on training rows into [`Op`]s, collect
//! them in a [`FeaturePipeline`], and hand frames (`polars` `DataFrame`) to each other. This crate
//! holds that contract and the helpers every step needs: the base error, column types and model
//! signatures, an expression language for derived columns and rules, typed YAML loading with
//! file/key/line errors, atomic writes, SHA-256 content hashes and seeds.
//!
//! Invariants:
//! - every [`Op`] gives the same result on a frame and on each of its rows (property-tested);
//! - every [`Op`] and [`FeaturePipeline`] round-trips through serde unchanged;
//! - the row path never needs polars: build without the `frame` feature for serving-only crates.
//!
//! ```
//! use mlops_core::{FeaturePipeline, Op, Row, Transform, Value};
//!
//! let mut pipeline = FeaturePipeline::new();
//! pipeline.extend([
//!     Op::FillNull { column: "mass".into(), value: Value::Float(4200.0) },
//!     Op::Scale { column: "mass".into(), center: 4200.0, scale: 800.0 },
//! ]);
//! let mut row = Row::from([("mass".to_string(), Value::Null)]);
//! pipeline.transform_row(&mut row).unwrap();
//! assert_eq!(row["mass"], Value::Float(0.0));
//! ```

pub mod config;
mod dedup;
mod error;
pub mod expr;
#[cfg(feature = "frame")]
pub mod frame;
pub mod hash;
pub mod html;
pub mod io;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "objects")]
pub mod objects;
pub mod ops;
pub mod par;
mod pipeline;
pub mod process;
#[cfg(any(feature = "store", feature = "objects"))]
mod rt;
pub mod schema;
mod seed;
pub mod stats;
#[cfg(feature = "store")]
pub mod store;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
mod value;

pub use error::{CoreError, Result};
pub use expr::Expr;
pub use ops::Op;
pub use ops::features;
#[cfg(feature = "frame")]
pub use pipeline::Fit;
pub use pipeline::{FeaturePipeline, PIPELINE_FORMAT_VERSION, Road, SourceInputs, Transform};
pub use schema::{ColumnSchema, Signature, TaskKind};
pub use seed::{Draws, Seed};
pub use value::{DType, Row, Scalar, Value};

#[cfg(all(test, feature = "frame"))]
mod tests;
