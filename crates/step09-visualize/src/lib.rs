//! Step 9, visualize: charts to SVG (with hover tooltips) and PNG, with plotters.
//!
//! In: a `DataFrame` and a [`PlotSpec`] (line, bar, histogram, scatter with hue, box, violin,
//! correlation heatmap, Q-Q against the normal, pair grid, density comparison), or a profile of
//! step 7. Out: a [`Plot`] (the chart's data, already reduced to bins, quartiles, densities or
//! thinned points) rendered by [`to_svg`] or [`to_png`]; and the EDA report's figures
//! ([`report_figures`]).
//!
//! Invariants:
//! - text is drawn with an embedded font (DejaVu Sans), so titles, axis labels and legends render
//!   the same on every machine, with no system fonts;
//! - a plot's size does not grow with the rows: scatter and pair panels keep at most
//!   [`MAX_POINTS`] points (every k-th row), densities are computed on 1024 bins;
//! - the same frame and spec give byte-identical SVG and PNG.
//!
//! ```
//! use polars::prelude::*;
//! use step09_visualize::{PlotSpec, plot, to_svg};
//!
//! let df = df!("mass" => [3750.0, 3800.0, 3250.0, 4100.0, 3900.0])?;
//! let spec = PlotSpec::Histogram { column: "mass".into(), bins: 5, title: None };
//! let svg = to_svg(&plot(&df, &spec)?)?;
//! assert!(svg.contains("Distribution of mass") && svg.contains("<title>"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chart;
mod error;
mod frame;
mod render;
mod report;

pub use chart::{BoxStats, Chart, PairCell, Plot, Series, Tip, Violin};
pub use error::{PlotError, Result};
pub use frame::{MAX_POINTS, Method, PlotSpec, QqPoints, ValueTransform, box_stats, density, plot, qq_points};
pub use render::{Format, render, to_png, to_svg};
pub use report::report_figures;

#[cfg(test)]
mod tests;
