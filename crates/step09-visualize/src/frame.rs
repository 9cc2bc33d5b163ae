//! Plots described in config (`plots:`) or on the command line, reduced from a frame to the data
//! a chart shows.

use std::collections::BTreeMap;

use mlops_core::DType;
use mlops_core::frame::{dtype_of, f64_column, keys};
use polars::prelude::{DataFrame, DataType, TimeUnit};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};
use step07_eda::{EdaParams, histogram};

use crate::chart::{BoxStats, Chart, PairCell, Plot, Series, Violin};
use crate::{PlotError, Result};

/// Points drawn per scatter or pair panel at most; larger frames are thinned to every k-th row.
pub const MAX_POINTS: usize = 5000;

/// Correlation method of a heatmap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Pearson's r.
    #[default]
    Pearson,
    /// Spearman's rho.
    Spearman,
}

/// The second distribution of a comparison plot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueTransform {
    /// Natural logarithm (positive values only).
    #[default]
    Log,
    /// `ln(1 + x)` (values above -1).
    Log1p,
    /// Square root (non-negative values).
    Sqrt,
}

fn thirty() -> usize {
    30
}

fn yes() -> bool {
    true
}

/// One plot of the `plots:` section (or of `mlops plot KIND`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlotSpec {
    /// A line per `y` column over `x` (a date, timestamp or number); values sharing an `x` are averaged.
    Line {
        /// The x column.
        x: String,
        /// The y columns.
        y: Vec<String>,
        /// Title (default: generated).
        #[serde(default)]
        title: Option<String>,
    },
    /// Counts of the most frequent values of a column.
    Bar {
        /// The column.
        column: String,
        /// Bars at most.
        #[serde(default = "thirty")]
        top: usize,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
    /// A numeric column in equal-width bins.
    Histogram {
        /// The column.
        column: String,
        /// Bins.
        #[serde(default = "thirty")]
        bins: usize,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
    /// `y` against `x`, coloured by `hue`.
    Scatter {
        /// The x column.
        x: String,
        /// The y column.
        y: String,
        /// A column whose values colour the points.
        #[serde(default)]
        hue: Option<String>,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
    /// Box plots of a numeric column, one per value of `by`.
    Box {
        /// The numeric column.
        column: String,
        /// Grouping column.
        #[serde(default)]
        by: Option<String>,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
    /// Violin plots of a numeric column, one per value of `by`.
    Violin {
        /// The numeric column.
        column: String,
        /// Grouping column.
        #[serde(default)]
        by: Option<String>,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
    /// Correlation matrix of numeric columns (all of them when `columns` is empty).
    Heatmap {
        /// The columns.
        #[serde(default)]
        columns: Vec<String>,
        /// Pearson or Spearman.
        #[serde(default)]
        method: Method,
        /// Print values in the cells.
        #[serde(default = "yes")]
        annotate: bool,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
    /// Quantiles of a numeric column against the normal distribution's.
    Qq {
        /// The column.
        column: String,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
    /// Scatter plots of every pair of `columns`, histograms on the diagonal.
    Pairs {
        /// The numeric columns (2 to 6).
        columns: Vec<String>,
        /// A column whose values colour the points.
        #[serde(default)]
        hue: Option<String>,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
    /// The density of a column overlaid with the density of its transform (raw against log).
    Compare {
        /// The numeric column.
        column: String,
        /// The transform.
        #[serde(default)]
        transform: ValueTransform,
        /// Title.
        #[serde(default)]
        title: Option<String>,
    },
}

impl PlotSpec {
    /// The kind, as written in config.
    pub fn kind(&self) -> &'static str {
        match self {
            PlotSpec::Line { .. } => "line",
            PlotSpec::Bar { .. } => "bar",
            PlotSpec::Histogram { .. } => "histogram",
            PlotSpec::Scatter { .. } => "scatter",
            PlotSpec::Box { .. } => "box",
            PlotSpec::Violin { .. } => "violin",
            PlotSpec::Heatmap { .. } => "heatmap",
            PlotSpec::Qq { .. } => "qq",
            PlotSpec::Pairs { .. } => "pairs",
            PlotSpec::Compare { .. } => "compare",
        }
    }

    /// A file name stem: the kind and the columns, e.g. `scatter-bill_length_mm-bill_depth_mm`.
    pub fn file_stem(&self) -> String {
        let parts: Vec<&str> = match self {
            PlotSpec::Line { x, y, .. } => std::iter::once(x.as_str()).chain(y.iter().map(String::as_str)).collect(),
            PlotSpec::Bar { column, .. }
            | PlotSpec::Histogram { column, .. }
            | PlotSpec::Qq { column, .. }
            | PlotSpec::Compare { column, .. } => vec![column],
            PlotSpec::Box { column, by, .. } | PlotSpec::Violin { column, by, .. } => {
                std::iter::once(column.as_str()).chain(by.as_deref()).collect()
            }
            PlotSpec::Scatter { x, y, hue, .. } => [x.as_str(), y.as_str()].into_iter().chain(hue.as_deref()).collect(),
            PlotSpec::Heatmap { method, .. } => vec![if *method == Method::Pearson { "pearson" } else { "spearman" }],
            PlotSpec::Pairs { columns, .. } => columns.iter().map(String::as_str).collect(),
        };
        let raw = std::iter::once(self.kind()).chain(parts).collect::<Vec<_>>().join("-");
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
    }
}

/// Reads columns for one plot, naming the plot in errors.
struct Reader<'a> {
    df: &'a DataFrame,
    plot: String,
}

impl Reader<'_> {
    fn exists(&self, key: &str, column: &str) -> Result<()> {
        if self.df.column(column).is_ok() {
            return Ok(());
        }
        Err(PlotError::MissingColumn {
            plot: format!("{}: {key}", self.plot),
            column: column.to_string(),
            available: self.df.get_column_names().iter().map(|s| s.to_string()).collect(),
        })
    }

    /// A numeric column, NaN for nulls.
    fn numbers(&self, key: &str, column: &str) -> Result<Vec<f64>> {
        self.exists(key, column)?;
        let dt = self.df.column(column).map(|c| c.dtype().clone()).unwrap_or(DataType::Null);
        if !matches!(dtype_of(&dt), Some(DType::Int | DType::Float)) {
            return Err(PlotError::WrongType {
                plot: format!("{}: {key}", self.plot),
                column: column.to_string(),
                found: dt.to_string(),
                needed: "a numeric column is needed".into(),
            });
        }
        Ok(f64_column(self.df, column)?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }

    /// An x axis: dates and timestamps as days since 1970 (flagged), or numbers.
    fn axis(&self, key: &str, column: &str) -> Result<(Vec<f64>, bool)> {
        self.exists(key, column)?;
        let col = self.df.column(column).map_err(|e| mlops_core::CoreError::polars(column, e))?;
        let per_day = match col.dtype() {
            DataType::Date => Some(1.0),
            DataType::Datetime(TimeUnit::Nanoseconds, _) => Some(86_400e9),
            DataType::Datetime(TimeUnit::Microseconds, _) => Some(86_400e6),
            DataType::Datetime(TimeUnit::Milliseconds, _) => Some(86_400e3),
            _ => None,
        };
        let Some(per_day) = per_day else {
            return Ok((self.numbers(key, column)?, false));
        };
        let ints =
            col.to_physical_repr().cast(&DataType::Int64).map_err(|e| mlops_core::CoreError::polars(column, e))?;
        let ints = ints.i64().map_err(|e| mlops_core::CoreError::polars(column, e))?;
        Ok((ints.iter().map(|v| v.map_or(f64::NAN, |v| v as f64 / per_day)).collect(), true))
    }

    /// Group keys of a column (`None` for nulls), or one group when there is no column.
    fn groups(&self, key: &str, column: Option<&str>) -> Result<Option<Vec<Option<String>>>> {
        let Some(column) = column else { return Ok(None) };
        self.exists(key, column)?;
        Ok(Some(keys(self.df, column)?))
    }

    fn no_data(&self, message: &str) -> PlotError {
        PlotError::NoData { plot: self.plot.clone(), message: message.to_string() }
    }
}

/// Splits row indices by group, groups in sorted order; all rows in one group named `all` when
/// there is no grouping column. Rows with a null group are left out.
fn split(n: usize, groups: Option<&[Option<String>]>) -> Vec<(String, Vec<usize>)> {
    let Some(groups) = groups else { return vec![("all".to_string(), (0..n).collect())] };
    let mut by: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        if let Some(g) = g {
            by.entry(g.as_str()).or_default().push(i);
        }
    }
    by.into_iter().map(|(g, rows)| (g.to_string(), rows)).collect()
}

/// Every k-th of the rows, so at most `max` remain (systematic thinning: deterministic, and it
/// keeps the shape of large clouds).
fn thin(rows: Vec<usize>, max: usize) -> Vec<usize> {
    let step = rows.len().div_ceil(max.max(1)).max(1);
    rows.into_iter().step_by(step).collect()
}

fn finite_sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_unstable_by(f64::total_cmp);
    v
}

fn quantile(ascending: &[f64], q: f64) -> f64 {
    let pos = q * (ascending.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(ascending.len() - 1);
    ascending[lo] + (ascending[hi] - ascending[lo]) * (pos - lo as f64)
}

/// Tukey's box: quartiles, whiskers at the most extreme values within 1.5 IQR, the rest as outliers.
pub fn box_stats(name: &str, ascending: &[f64]) -> Option<BoxStats> {
    if ascending.is_empty() {
        return None;
    }
    let (q1, median, q3) = (quantile(ascending, 0.25), quantile(ascending, 0.5), quantile(ascending, 0.75));
    let (lo_fence, hi_fence) = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1));
    let low = ascending.iter().copied().find(|&v| v >= lo_fence).unwrap_or(q1);
    let high = ascending.iter().rev().copied().find(|&v| v <= hi_fence).unwrap_or(q3);
    let beyond: Vec<f64> = ascending.iter().copied().filter(|&v| v < low || v > high).collect();
    let step = beyond.len().div_ceil(300).max(1);
    Some(BoxStats {
        name: name.to_string(),
        low,
        q1,
        median,
        q3,
        high,
        outliers: beyond.into_iter().step_by(step).collect(),
        count: ascending.len(),
    })
}

/// A Gaussian kernel density estimate (Scott's bandwidth, as `scipy.stats.gaussian_kde` and
/// seaborn use) at `points` values spanning the data and three bandwidths beyond. The data are
/// binned first, so large columns cost no more than small ones.
pub fn density(ascending: &[f64], points: usize) -> Vec<(f64, f64)> {
    let n = ascending.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = ascending.iter().sum::<f64>() / n as f64;
    let sd =
        if n > 1 { (ascending.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    let bw = if sd > 0.0 { sd * (n as f64).powf(-0.2) } else { mean.abs().max(1.0) * 1e-3 };
    let (lo, hi) = (ascending[0] - 3.0 * bw, ascending[n - 1] + 3.0 * bw);
    let bins = histogram(ascending, 1024);
    let centres: Vec<(f64, f64)> = bins
        .counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| ((bins.edges[i] + bins.edges[i + 1]) / 2.0, c as f64))
        .collect();
    let norm = 1.0 / (n as f64 * bw * (2.0 * std::f64::consts::PI).sqrt());
    (0..points)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / (points - 1).max(1) as f64;
            let d: f64 = centres.iter().map(|&(c, w)| w * (-0.5 * ((x - c) / bw).powi(2)).exp()).sum();
            (x, d * norm)
        })
        .collect()
}

/// (theoretical, sample) quantile pairs and the fitted line's (slope, intercept).
pub type QqPoints = (Vec<(f64, f64)>, (f64, f64));

/// Normal probability plot points (Filliben's plotting positions, as `scipy.stats.probplot`) and
/// the least-squares line; at most 500 quantiles are drawn.
pub fn qq_points(ascending: &[f64]) -> Option<QqPoints> {
    let n = ascending.len();
    if n < 2 {
        return None;
    }
    let normal = Normal::new(0.0, 1.0).ok()?;
    let m = n.min(500);
    let points: Vec<(f64, f64)> = (0..m)
        .map(|k| {
            let i = if m == n { k } else { (k as f64 * (n - 1) as f64 / (m - 1) as f64).round() as usize };
            let p = match i {
                0 => 1.0 - 0.5f64.powf(1.0 / n as f64),
                i if i == n - 1 => 0.5f64.powf(1.0 / n as f64),
                i => (i as f64 + 1.0 - 0.3175) / (n as f64 + 0.365),
            };
            (normal.inverse_cdf(p), ascending[i])
        })
        .collect();
    let (mx, my) =
        (points.iter().map(|p| p.0).sum::<f64>() / m as f64, points.iter().map(|p| p.1).sum::<f64>() / m as f64);
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Some((points, (slope, my - slope * mx)))
}

/// Builds the plot a spec describes from a frame.
pub fn plot(df: &DataFrame, spec: &PlotSpec) -> Result<Plot> {
    let r = Reader { df, plot: format!("plot {}", spec.kind()) };
    if df.height() == 0 {
        return Err(r.no_data("the data has no rows"));
    }
    let (title, chart) = match spec {
        PlotSpec::Line { x, y, title } => {
            if y.is_empty() {
                return Err(PlotError::Invalid { plot: r.plot, message: "y: name at least one column".into() });
            }
            let (xs, dates) = r.axis("x", x)?;
            let mut series = Vec::new();
            for name in y {
                let ys = r.numbers("y", name)?;
                // The mean of y at each distinct x, in x order (seaborn's lineplot estimator).
                let mut by_x: BTreeMap<u64, (f64, f64, usize)> = BTreeMap::new();
                for (&a, &b) in xs.iter().zip(&ys) {
                    if a.is_finite() && b.is_finite() {
                        let key = if a >= 0.0 { a.to_bits() ^ (1 << 63) } else { !a.to_bits() };
                        let e = by_x.entry(key).or_insert((a, 0.0, 0));
                        e.1 += b;
                        e.2 += 1;
                    }
                }
                series.push(Series {
                    name: name.clone(),
                    points: by_x.values().map(|&(a, s, n)| (a, s / n as f64)).collect(),
                });
            }
            if series.iter().all(|s| s.points.is_empty()) {
                return Err(r.no_data("no row has both x and y"));
            }
            let y_label = if y.len() == 1 { y[0].clone() } else { "value".into() };
            (
                title.clone().unwrap_or_else(|| format!("{} over {x}", y.join(", "))),
                Chart::Line { x_label: x.clone(), y_label, dates, series },
            )
        }
        PlotSpec::Bar { column, top, title } => {
            r.exists("column", column)?;
            if *top == 0 {
                return Err(PlotError::Invalid { plot: r.plot, message: "top: must be at least 1".into() });
            }
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for k in keys(df, column)?.into_iter().flatten() {
                *counts.entry(k).or_insert(0) += 1;
            }
            let mut bars: Vec<(String, f64)> = counts.into_iter().map(|(k, n)| (k, n as f64)).collect();
            bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            bars.truncate(*top);
            if bars.is_empty() {
                return Err(r.no_data(&format!("`{column}` has only nulls")));
            }
            (
                title.clone().unwrap_or_else(|| format!("{column}: value counts")),
                Chart::Bar { x_label: column.clone(), y_label: "count".into(), bars },
            )
        }
        PlotSpec::Histogram { column, bins, title } => {
            if !(1..=1000).contains(bins) {
                return Err(PlotError::Invalid { plot: r.plot, message: "bins: must be between 1 and 1000".into() });
            }
            let v = r.numbers("column", column)?;
            let h = histogram(&v, *bins);
            if h.counts.is_empty() {
                return Err(r.no_data(&format!("`{column}` has no finite values")));
            }
            (
                title.clone().unwrap_or_else(|| format!("Distribution of {column}")),
                Chart::Histogram { x_label: column.clone(), dates: false, histogram: h },
            )
        }
        PlotSpec::Scatter { x, y, hue, title } => {
            let (xs, ys) = (r.numbers("x", x)?, r.numbers("y", y)?);
            let groups = r.groups("hue", hue.as_deref())?;
            let series: Vec<Series> = split(df.height(), groups.as_deref())
                .into_iter()
                .map(|(name, rows)| {
                    let rows: Vec<usize> =
                        rows.into_iter().filter(|&i| xs[i].is_finite() && ys[i].is_finite()).collect();
                    Series { name, points: thin(rows, MAX_POINTS).into_iter().map(|i| (xs[i], ys[i])).collect() }
                })
                .filter(|s| !s.points.is_empty())
                .collect();
            if series.is_empty() {
                return Err(r.no_data("no row has both x and y"));
            }
            (
                title.clone().unwrap_or_else(|| format!("{y} against {x}")),
                Chart::Scatter { x_label: x.clone(), y_label: y.clone(), hue: hue.clone(), series },
            )
        }
        PlotSpec::Box { column, by, title } | PlotSpec::Violin { column, by, title } => {
            let v = r.numbers("column", column)?;
            let groups = r.groups("by", by.as_deref())?;
            let parts: Vec<(String, Vec<f64>)> = split(df.height(), groups.as_deref())
                .into_iter()
                .map(|(name, rows)| (name, finite_sorted(rows.into_iter().map(|i| v[i]))))
                .filter(|(_, vals)| !vals.is_empty())
                .collect();
            if parts.is_empty() {
                return Err(r.no_data(&format!("`{column}` has no finite values")));
            }
            let suffix = by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default();
            if matches!(spec, PlotSpec::Box { .. }) {
                let boxes = parts.iter().filter_map(|(n, vals)| box_stats(n, vals)).collect();
                (
                    title.clone().unwrap_or_else(|| format!("{column}{suffix}")),
                    Chart::Box { y_label: column.clone(), boxes },
                )
            } else {
                let violins = parts
                    .iter()
                    .map(|(n, vals)| Violin {
                        name: n.clone(),
                        density: density(vals, 100),
                        quartiles: (quantile(vals, 0.25), quantile(vals, 0.5), quantile(vals, 0.75)),
                        count: vals.len(),
                    })
                    .collect();
                (
                    title.clone().unwrap_or_else(|| format!("{column}{suffix}: distribution shape")),
                    Chart::Violin { y_label: column.clone(), violins },
                )
            }
        }
        PlotSpec::Heatmap { columns, method, annotate, title } => {
            let wanted: Vec<String> = if columns.is_empty() {
                df.columns()
                    .iter()
                    .filter(|c| matches!(dtype_of(c.dtype()), Some(DType::Int | DType::Float)))
                    .map(|c| c.name().to_string())
                    .collect()
            } else {
                for c in columns {
                    r.numbers("columns", c)?;
                }
                columns.clone()
            };
            if wanted.len() < 2 {
                return Err(r.no_data("a heatmap needs at least two numeric columns"));
            }
            let params = EdaParams { columns: wanted, ..EdaParams::default() };
            let corr = step07_eda::profile(df, &params)?.correlations;
            let (name, values) = match method {
                Method::Pearson => ("Pearson", corr.pearson),
                Method::Spearman => ("Spearman", corr.spearman),
            };
            (
                title.clone().unwrap_or_else(|| format!("{name} correlation")),
                Chart::Heatmap { names: corr.columns, values, annotate: *annotate },
            )
        }
        PlotSpec::Qq { column, title } => {
            let v = finite_sorted(r.numbers("column", column)?.into_iter());
            let (points, line) =
                qq_points(&v).ok_or_else(|| r.no_data(&format!("`{column}` needs at least two values")))?;
            (
                title.clone().unwrap_or_else(|| format!("Q-Q plot of {column} against the normal")),
                Chart::Qq { label: column.clone(), points, line },
            )
        }
        PlotSpec::Pairs { columns, hue, title } => {
            if !(2..=6).contains(&columns.len()) {
                return Err(PlotError::Invalid {
                    plot: r.plot,
                    message: "columns: name 2 to 6 numeric columns".into(),
                });
            }
            let values: Vec<Vec<f64>> = columns.iter().map(|c| r.numbers("columns", c)).collect::<Result<_>>()?;
            let groups = r.groups("hue", hue.as_deref())?;
            let parts = split(df.height(), groups.as_deref());
            let per_panel = (MAX_POINTS / 2).max(1);
            let mut cells = Vec::with_capacity(columns.len() * columns.len());
            for (i, yv) in values.iter().enumerate() {
                for (j, xv) in values.iter().enumerate() {
                    if i == j {
                        let all = histogram(xv, 20);
                        let hists = parts
                            .iter()
                            .map(|(g, rows)| {
                                let mut h = all.clone();
                                h.counts.iter_mut().for_each(|c| *c = 0);
                                for &row in rows {
                                    let x = xv[row];
                                    if x.is_finite() && !h.edges.is_empty() {
                                        let b = h.edges[1..].partition_point(|&e| e <= x).min(h.counts.len() - 1);
                                        h.counts[b] += 1;
                                    }
                                }
                                (g.clone(), h)
                            })
                            .collect();
                        cells.push(PairCell::Histograms(hists));
                    } else {
                        let series = parts
                            .iter()
                            .map(|(g, rows)| {
                                let rows: Vec<usize> =
                                    rows.iter().copied().filter(|&k| xv[k].is_finite() && yv[k].is_finite()).collect();
                                Series {
                                    name: g.clone(),
                                    points: thin(rows, per_panel / parts.len().max(1))
                                        .into_iter()
                                        .map(|k| (xv[k], yv[k]))
                                        .collect(),
                                }
                            })
                            .collect();
                        cells.push(PairCell::Points(series));
                    }
                }
            }
            let names: Vec<String> = parts.iter().map(|(g, _)| g.clone()).collect();
            (
                title.clone().unwrap_or_else(|| "Pair plot".to_string()),
                Chart::Pairs { names: columns.clone(), groups: names, cells },
            )
        }
        PlotSpec::Compare { column, transform, title } => {
            let raw = finite_sorted(r.numbers("column", column)?.into_iter());
            let (label, f): (&str, fn(f64) -> f64) = match transform {
                ValueTransform::Log => ("log", f64::ln),
                ValueTransform::Log1p => ("log1p", f64::ln_1p),
                ValueTransform::Sqrt => ("sqrt", f64::sqrt),
            };
            let changed = finite_sorted(raw.iter().map(|&x| f(x)));
            if raw.len() < 2 || changed.len() < 2 {
                return Err(r.no_data(&format!("`{column}` needs at least two values where {label} is defined")));
            }
            let series = vec![
                Series { name: format!("{column} (original)"), points: density(&raw, 200) },
                Series { name: format!("{label}({column})"), points: density(&changed, 200) },
            ];
            (
                title.clone().unwrap_or_else(|| format!("{column}: original against {label}")),
                Chart::Densities { x_label: column.clone(), series },
            )
        }
    };
    Ok(Plot { title, chart })
}
