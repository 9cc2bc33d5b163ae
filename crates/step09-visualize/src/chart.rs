//! Charts as data (already aggregated: bins, quartiles, densities, sampled points) and their
//! drawing with plotters on any backend.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use step07_eda::{Histogram, fmt_num};

/// The font every chart uses; registered once from the embedded DejaVu Sans.
pub(crate) const FONT: &str = "sans-serif";

/// Colours for series and groups (matplotlib's tab10).
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A named list of points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points (x, y), in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A box of a box plot: quartiles, whiskers and the points beyond them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoxStats {
    /// Group name.
    pub name: String,
    /// Lower whisker: the smallest value within `q1 - 1.5·IQR`.
    pub low: f64,
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// Upper whisker: the largest value within `q3 + 1.5·IQR`.
    pub high: f64,
    /// Values beyond the whiskers (at most a few hundred are kept).
    pub outliers: Vec<f64>,
    /// Values in the group.
    pub count: usize,
}

/// A violin: a density curve of one group, with its quartiles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violin {
    /// Group name.
    pub name: String,
    /// (value, density) along the value axis.
    pub density: Vec<(f64, f64)>,
    /// First quartile, median, third quartile.
    pub quartiles: (f64, f64, f64),
    /// Values in the group.
    pub count: usize,
}

/// One cell of a pair-plot grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PairCell {
    /// On the diagonal: the column's histogram, one per hue group, on shared edges.
    Histograms(Vec<(String, Histogram)>),
    /// Off the diagonal: points of column `x` against column `y`, one series per hue group.
    Points(Vec<Series>),
}

/// What to draw: every kind the toolkit draws, with its data already reduced to what is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Chart {
    /// Lines over an ordered x (a time series when `dates` is set).
    Line {
        /// X axis label.
        x_label: String,
        /// Y axis label.
        y_label: String,
        /// X values are days since 1970-01-01 (shown as dates).
        dates: bool,
        /// One line per series.
        series: Vec<Series>,
    },
    /// Bars, one per category.
    Bar {
        /// X axis label.
        x_label: String,
        /// Y axis label.
        y_label: String,
        /// (category, value).
        bars: Vec<(String, f64)>,
    },
    /// Counts in bins.
    Histogram {
        /// X axis label.
        x_label: String,
        /// Edges are days since 1970-01-01 (shown as dates).
        #[serde(default)]
        dates: bool,
        /// The bins.
        histogram: Histogram,
    },
    /// Points, one colour per hue group.
    Scatter {
        /// X axis label.
        x_label: String,
        /// Y axis label.
        y_label: String,
        /// Hue column, for the legend title.
        hue: Option<String>,
        /// One series per group.
        series: Vec<Series>,
    },
    /// Box plots side by side.
    Box {
        /// Value axis label.
        y_label: String,
        /// One box per group.
        boxes: Vec<BoxStats>,
    },
    /// Violin plots side by side.
    Violin {
        /// Value axis label.
        y_label: String,
        /// One violin per group.
        violins: Vec<Violin>,
    },
    /// A matrix of values in [-1, 1] as coloured cells.
    Heatmap {
        /// Row and column names.
        names: Vec<String>,
        /// The matrix (`None` where undefined).
        values: Vec<Vec<Option<f64>>>,
        /// Print each value in its cell.
        annotate: bool,
    },
    /// Sample quantiles against normal quantiles, with the fitted line.
    Qq {
        /// The column.
        label: String,
        /// (theoretical, sample) quantile pairs.
        points: Vec<(f64, f64)>,
        /// Least-squares line: (slope, intercept).
        line: (f64, f64),
    },
    /// A grid of scatter plots with histograms on the diagonal.
    Pairs {
        /// The columns, in grid order.
        names: Vec<String>,
        /// Hue groups, in legend order.
        groups: Vec<String>,
        /// `names.len()²` cells, row by row.
        cells: Vec<PairCell>,
    },
    /// Density curves overlaid, for comparing distributions.
    Densities {
        /// X axis label.
        x_label: String,
        /// One curve per distribution.
        series: Vec<Series>,
    },
}

/// A chart with its title.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plot {
    /// Title drawn above the chart.
    pub title: String,
    /// The chart.
    pub chart: Chart,
}

impl Plot {
    /// Natural size in pixels.
    pub fn size(&self) -> (u32, u32) {
        match &self.chart {
            Chart::Heatmap { names, .. } => {
                let side = (names.len() as u32 * 48 + 260).clamp(420, 1400);
                (side, side - 60)
            }
            Chart::Pairs { names, .. } => {
                let side = (names.len() as u32 * 190 + 120).clamp(400, 1600);
                (side + 120, side)
            }
            Chart::Bar { bars, .. } if bars.len() > 12 => ((bars.len() as u32 * 34 + 160).min(1600), 480),
            _ => (760, 460),
        }
    }
}

/// A hover area in pixels and its text, collected while drawing; the SVG output turns each into a
/// transparent shape with a `<title>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tip {
    /// Left, top, right, bottom in pixels.
    pub rect: (i32, i32, i32, i32),
    /// Tooltip text.
    pub text: String,
}

pub(crate) type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => {
            let pad = (hi - lo) * 0.04;
            (lo - pad, hi + pad)
        }
        (true, true) => (lo - 0.5, hi + 0.5),
        _ => (0.0, 1.0),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max.saturating_sub(1)).collect::<String>())
    }
}

fn date_label(days: f64) -> String {
    mlops_core::Value::Date(days.round().clamp(i32::MIN as f64, i32::MAX as f64) as i32).to_string()
}

/// Draws a plot onto an area, collecting hover tips in the area's pixel coordinates.
pub(crate) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &Plot, tips: &mut Vec<Tip>) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let area = root.titled(&plot.title, (FONT, 20))?;
    match &plot.chart {
        Chart::Line { x_label, y_label, dates, series } => {
            let (x0, x1) = span(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
            let (y0, y1) = span(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .margin_right(40)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            let fmt_x = |v: &f64| if *dates { date_label(*v) } else { fmt_num(*v) };
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&fmt_x)
                .y_label_formatter(&|v| fmt_num(*v))
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 15))
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            for (i, s) in series.iter().enumerate() {
                let c = colour(i);
                chart
                    // One pixel wide: plotters' bitmap backend draws wide polylines with spikes
                    // at sharp turns, which time series are full of.
                    .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(1)))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                let step = (s.points.len() / 300).max(1);
                for &(x, y) in s.points.iter().step_by(step) {
                    let (px, py) = chart.backend_coord(&(x, y));
                    tips.push(Tip {
                        rect: (px - 4, py - 4, px + 4, py + 4),
                        text: format!("{}: {} → {}", s.name, fmt_x(&x), fmt_num(y)),
                    });
                }
            }
            if series.len() > 1 {
                legend(&mut chart)?;
            }
        }
        Chart::Bar { x_label, y_label, bars } => {
            let n = bars.len().max(1);
            let top = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-12) * 1.08;
            let bottom = bars.iter().map(|b| b.1).fold(0.0f64, f64::min);
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(if n > 8 { 90 } else { 44 })
                .y_label_area_size(70)
                .build_cartesian_2d((0..n - 1).into_segmented(), bottom..top)?;
            let label = |v: &SegmentValue<usize>| match v {
                SegmentValue::CenterOf(i) => bars.get(*i).map(|b| truncate(&b.0, 14)).unwrap_or_default(),
                _ => String::new(),
            };
            let style = if n > 8 {
                (FONT, 12).into_font().transform(FontTransform::Rotate90).into_text_style(&area)
            } else {
                (FONT, 13).into_font().into_text_style(&area)
            };
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_labels(n)
                .x_label_formatter(&label)
                .x_label_style(style)
                .y_label_formatter(&|v| fmt_num(*v))
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 15))
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            for (i, (name, value)) in bars.iter().enumerate() {
                let a = (SegmentValue::Exact(i), 0.0);
                let b = (SegmentValue::Exact(i + 1), *value);
                let (p, q) = (chart.backend_coord(&a), chart.backend_coord(&b));
                // A gap of a tenth of the slot on each side keeps neighbouring bars apart.
                let gap = ((q.0 - p.0).abs() / 10).max(1);
                let mut bar = Rectangle::new([a, b], colour(0).mix(0.85).filled());
                bar.set_margin(0, 0, gap as u32, gap as u32);
                chart.draw_series(std::iter::once(bar))?;
                tips.push(Tip {
                    rect: (p.0.min(q.0), p.1.min(q.1), p.0.max(q.0), p.1.max(q.1)),
                    text: format!("{name}: {}", fmt_num(*value)),
                });
            }
        }
        Chart::Histogram { x_label, dates, histogram } => histogram_on(&area, x_label, *dates, histogram, tips)?,
        Chart::Scatter { x_label, y_label, hue, series } => {
            let (x0, x1) = span(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
            let (y0, y1) = span(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            mesh(&mut chart, x_label, y_label)?;
            for (i, s) in series.iter().enumerate() {
                let c = colour(i);
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.mix(0.7).filled())))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| Circle::new((x + 6, y), 4, c.filled()));
                let step = (s.points.len() / 1500).max(1);
                for &(x, y) in s.points.iter().step_by(step) {
                    let (px, py) = chart.backend_coord(&(x, y));
                    let group = hue.as_ref().map(|h| format!("{h}={}, ", s.name)).unwrap_or_default();
                    tips.push(Tip {
                        rect: (px - 3, py - 3, px + 3, py + 3),
                        text: format!("{group}{x_label}={}, {y_label}={}", fmt_num(x), fmt_num(y)),
                    });
                }
            }
            if hue.is_some() {
                legend(&mut chart)?;
            }
        }
        Chart::Box { y_label, boxes } => {
            let (y0, y1) =
                span(boxes.iter().flat_map(|b| [b.low, b.high].into_iter().chain(b.outliers.iter().copied())));
            let n = boxes.len().max(1);
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(-0.5..n as f64 - 0.5, y0..y1)?;
            group_mesh(&mut chart, boxes.iter().map(|b| b.name.as_str()).collect(), y_label)?;
            for (i, b) in boxes.iter().enumerate() {
                let (x, c) = (i as f64, colour(i));
                let w = 0.3;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - w, b.q1), (x + w, b.q3)],
                    c.mix(0.35).filled(),
                )))?;
                chart
                    .draw_series(std::iter::once(Rectangle::new([(x - w, b.q1), (x + w, b.q3)], c.stroke_width(2))))?;
                for seg in [
                    vec![(x - w, b.median), (x + w, b.median)],
                    vec![(x, b.q3), (x, b.high)],
                    vec![(x, b.q1), (x, b.low)],
                    vec![(x - w / 2.0, b.high), (x + w / 2.0, b.high)],
                    vec![(x - w / 2.0, b.low), (x + w / 2.0, b.low)],
                ] {
                    chart.draw_series(std::iter::once(PathElement::new(seg, BLACK.stroke_width(2))))?;
                }
                chart.draw_series(b.outliers.iter().map(|&v| Circle::new((x, v), 3, c.stroke_width(1))))?;
                let (p, q) = (chart.backend_coord(&(x - w, b.high)), chart.backend_coord(&(x + w, b.low)));
                tips.push(Tip {
                    rect: (p.0, p.1, q.0, q.1),
                    text: format!(
                        "{}: n={}, whiskers {}–{}, Q1 {}, median {}, Q3 {}, {} beyond the whiskers",
                        b.name,
                        b.count,
                        fmt_num(b.low),
                        fmt_num(b.high),
                        fmt_num(b.q1),
                        fmt_num(b.median),
                        fmt_num(b.q3),
                        b.outliers.len()
                    ),
                });
            }
        }
        Chart::Violin { y_label, violins } => {
            let (y0, y1) = span(violins.iter().flat_map(|v| v.density.iter().map(|p| p.0)));
            let n = violins.len().max(1);
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(-0.5..n as f64 - 0.5, y0..y1)?;
            group_mesh(&mut chart, violins.iter().map(|v| v.name.as_str()).collect(), y_label)?;
            for (i, v) in violins.iter().enumerate() {
                let (x, c) = (i as f64, colour(i));
                let peak = v.density.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-300);
                let half = |d: f64| d / peak * 0.42;
                let mut outline: Vec<(f64, f64)> = v.density.iter().map(|&(y, d)| (x - half(d), y)).collect();
                outline.extend(v.density.iter().rev().map(|&(y, d)| (x + half(d), y)));
                chart.draw_series(std::iter::once(Polygon::new(outline.clone(), c.mix(0.45).filled())))?;
                chart.draw_series(std::iter::once(PathElement::new(outline, c.stroke_width(2))))?;
                let (q1, med, q3) = v.quartiles;
                chart.draw_series(std::iter::once(PathElement::new(vec![(x, q1), (x, q3)], BLACK.stroke_width(4))))?;
                chart.draw_series(std::iter::once(Circle::new((x, med), 4, WHITE.filled())))?;
                let (p, q) = (chart.backend_coord(&(x - 0.42, y1)), chart.backend_coord(&(x + 0.42, y0)));
                tips.push(Tip {
                    rect: (p.0, p.1, q.0, q.1),
                    text: format!(
                        "{}: n={}, Q1 {}, median {}, Q3 {}",
                        v.name,
                        v.count,
                        fmt_num(q1),
                        fmt_num(med),
                        fmt_num(q3)
                    ),
                });
            }
        }
        Chart::Heatmap { names, values, annotate } => heatmap_on(&area, names, values, *annotate, tips)?,
        Chart::Qq { label, points, line } => {
            let (x0, x1) = span(points.iter().map(|p| p.0));
            let (y0, y1) = span(points.iter().map(|p| p.1).chain([line.0 * x0 + line.1, line.0 * x1 + line.1]));
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            mesh(&mut chart, "theoretical quantiles (standard normal)", &format!("ordered values of {label}"))?;
            chart
                .draw_series(LineSeries::new(
                    [(x0, line.0 * x0 + line.1), (x1, line.0 * x1 + line.1)],
                    colour(3).stroke_width(2),
                ))?
                .label("normal fit")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour(3).stroke_width(2)));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour(0).filled())))?
                .label(label.as_str())
                .legend(|(x, y)| Circle::new((x + 6, y), 4, colour(0).filled()));
            for &(t, s) in points {
                let (px, py) = chart.backend_coord(&(t, s));
                tips.push(Tip {
                    rect: (px - 3, py - 3, px + 3, py + 3),
                    text: format!("theoretical {}, sample {}", fmt_num(t), fmt_num(s)),
                });
            }
            legend(&mut chart)?;
        }
        Chart::Pairs { names, groups, cells } => {
            let k = names.len().max(1);
            let (grid, key) = area.split_horizontally(area.dim_in_pixel().0.saturating_sub(120));
            let panels = grid.split_evenly((k, k));
            let ranges: Vec<(f64, f64)> = (0..k)
                .map(|c| {
                    let from_points = (0..k).filter_map(|r| match cells.get(r * k + c) {
                        Some(PairCell::Points(series)) => {
                            Some(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect::<Vec<_>>())
                        }
                        Some(PairCell::Histograms(h)) => {
                            Some(h.iter().flat_map(|(_, h)| h.edges.iter().copied()).collect())
                        }
                        None => None,
                    });
                    span(from_points.flatten())
                })
                .collect();
            for (idx, panel) in panels.iter().enumerate() {
                let (r, c) = (idx / k, idx % k);
                let x_range = ranges[c];
                let mut builder = ChartBuilder::on(panel);
                builder.margin(4).x_label_area_size(if r + 1 == k { 30 } else { 0 }).y_label_area_size(if c == 0 {
                    44
                } else {
                    0
                });
                match cells.get(idx) {
                    Some(PairCell::Histograms(hists)) => {
                        let top = hists.iter().flat_map(|(_, h)| h.counts.iter()).copied().max().unwrap_or(1).max(1)
                            as f64
                            * 1.05;
                        let mut chart = builder.build_cartesian_2d(x_range.0..x_range.1, 0.0..top)?;
                        chart
                            .configure_mesh()
                            .disable_mesh()
                            .label_style((FONT, 10))
                            .x_labels(4)
                            .y_labels(3)
                            .x_label_formatter(&|v| fmt_num(*v))
                            .y_label_formatter(&|v| fmt_num(*v))
                            .draw()?;
                        for (g, (group, h)) in hists.iter().enumerate() {
                            let c = colour(g);
                            for (b, &count) in h.counts.iter().enumerate() {
                                let (a, z) = ((h.edges[b], 0.0), (h.edges[b + 1], count as f64));
                                chart.draw_series(std::iter::once(Rectangle::new([a, z], c.mix(0.45).filled())))?;
                                let (p, q) = (chart.backend_coord(&a), chart.backend_coord(&z));
                                tips.push(Tip {
                                    rect: (p.0, q.1, q.0, p.1),
                                    text: format!(
                                        "{}{} in [{}, {}): {count}",
                                        names[r],
                                        if groups.len() > 1 { format!(" ({group})") } else { String::new() },
                                        fmt_num(h.edges[b]),
                                        fmt_num(h.edges[b + 1])
                                    ),
                                });
                            }
                        }
                    }
                    Some(PairCell::Points(series)) => {
                        let y_range = ranges[r];
                        let mut chart = builder.build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
                        chart
                            .configure_mesh()
                            .disable_mesh()
                            .label_style((FONT, 10))
                            .x_labels(4)
                            .y_labels(4)
                            .x_label_formatter(&|v| fmt_num(*v))
                            .y_label_formatter(&|v| fmt_num(*v))
                            .draw()?;
                        for (g, s) in series.iter().enumerate() {
                            chart.draw_series(
                                s.points.iter().map(|&p| Circle::new(p, 2, colour(g).mix(0.6).filled())),
                            )?;
                        }
                    }
                    None => {}
                }
                if c == 0 {
                    panel.draw(&Text::new(truncate(&names[r], 24), (2, 2), (FONT, 12).into_font().color(&BLACK)))?;
                }
                if r == 0 && c > 0 {
                    panel.draw(&Text::new(truncate(&names[c], 24), (6, 2), (FONT, 12).into_font().color(&BLACK)))?;
                }
            }
            if groups.len() > 1 {
                for (g, name) in groups.iter().enumerate() {
                    let y = 30 + g as i32 * 22;
                    key.draw(&Rectangle::new([(8, y), (22, y + 14)], colour(g).filled()))?;
                    key.draw(&Text::new(truncate(name, 12), (28, y), (FONT, 13).into_font().color(&BLACK)))?;
                }
            }
        }
        Chart::Densities { x_label, series } => {
            let (x0, x1) = span(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
            let top =
                series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0f64, f64::max).max(1e-300) * 1.08;
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, 0.0..top)?;
            mesh(&mut chart, x_label, "density")?;
            for (i, s) in series.iter().enumerate() {
                let c = colour(i);
                chart
                    .draw_series(
                        AreaSeries::new(s.points.iter().copied(), 0.0, c.mix(0.25)).border_style(c.stroke_width(2)),
                    )?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], c.mix(0.5).filled()));
                let step = (s.points.len() / 60).max(1);
                for &(x, y) in s.points.iter().step_by(step) {
                    let (px, py) = chart.backend_coord(&(x, y));
                    tips.push(Tip {
                        rect: (px - 4, py - 4, px + 4, py + 4),
                        text: format!("{}: density {} at {}", s.name, fmt_num(y), fmt_num(x)),
                    });
                }
            }
            legend(&mut chart)?;
        }
    }
    Ok(())
}

type Cartesian<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

fn mesh<DB: DrawingBackend>(chart: &mut Cartesian<'_, DB>, x_label: &str, y_label: &str) -> Drawn<DB> {
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
}

/// Axes for side-by-side groups at x = 0, 1, …
fn group_mesh<DB: DrawingBackend>(chart: &mut Cartesian<'_, DB>, names: Vec<&str>, y_label: &str) -> Drawn<DB> {
    let label = move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-9 && i >= 0.0 {
            names.get(i as usize).map(|n| truncate(n, 16)).unwrap_or_default()
        } else {
            String::new()
        }
    };
    let n = chart.x_range().end.ceil() as usize + 1;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(2) * 2 + 1)
        .x_label_formatter(&label)
        .y_desc(y_label)
        .y_label_formatter(&|v| fmt_num(*v))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>) -> Drawn<DB> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
}

/// A histogram on an area (also the report's per-column chart).
pub(crate) fn histogram_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x_label: &str,
    dates: bool,
    h: &Histogram,
    tips: &mut Vec<Tip>,
) -> Drawn<DB> {
    let show = |v: f64| if dates { date_label(v) } else { fmt_num(v) };
    let (x0, x1) = match (h.edges.first(), h.edges.last()) {
        (Some(a), Some(b)) if b > a => (*a, *b),
        _ => (0.0, 1.0),
    };
    let top = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.08;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("count")
        .x_labels(if dates { 6 } else { 10 })
        .x_label_formatter(&|v| show(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let total: usize = h.counts.iter().sum();
    for (i, &count) in h.counts.iter().enumerate() {
        let (a, b) = ((h.edges[i], 0.0), (h.edges[i + 1], count as f64));
        chart.draw_series(std::iter::once(Rectangle::new([a, b], colour(0).mix(0.8).filled())))?;
        chart.draw_series(std::iter::once(Rectangle::new([a, b], WHITE.stroke_width(1))))?;
        let (p, q) = (chart.backend_coord(&a), chart.backend_coord(&(h.edges[i + 1], top)));
        let close = if i + 1 == h.counts.len() { "]" } else { ")" };
        tips.push(Tip {
            rect: (p.0, q.1, q.0, p.1),
            text: format!(
                "[{}, {}{close}: {count} ({:.1}%)",
                show(h.edges[i]),
                show(h.edges[i + 1]),
                count as f64 * 100.0 / total.max(1) as f64
            ),
        });
    }
    Ok(())
}

/// Blue for -1 through white for 0 to red for +1 (a diverging map like `coolwarm`).
fn diverging(v: f64) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let (end, w) = if t < 0.0 { ((59.0, 76.0, 192.0), -t) } else { ((180.0, 4.0, 38.0), t) };
    let mix = |a: f64, b: f64| (a + (b - a) * w).round() as u8;
    RGBColor(mix(247.0, end.0), mix(247.0, end.1), mix(247.0, end.2))
}

fn heatmap_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[String],
    values: &[Vec<Option<f64>>],
    annotate: bool,
    tips: &mut Vec<Tip>,
) -> Drawn<DB> {
    let n = names.len();
    if n == 0 {
        return Ok(());
    }
    let (w, h) = area.dim_in_pixel();
    let (left, top, right_key, bottom) = (150i32, 10i32, 90i32, 120i32);
    let cell = ((w as i32 - left - right_key).min(h as i32 - top - bottom) / n as i32).max(8);
    let font = (cell / 3).clamp(8, 14);
    for (i, row) in values.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let (x, y) = (left + j as i32 * cell, top + i as i32 * cell);
            let fill = v.map_or(RGBColor(220, 220, 220), diverging);
            area.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], fill.filled()))?;
            area.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], WHITE.stroke_width(1)))?;
            // Rounding may leave "-0.00"; zero has no sign.
            let shown =
                v.map_or_else(|| "n/a".to_string(), |v| format!("{:.2}", if v.abs() < 0.005 { 0.0 } else { v }));
            if annotate && cell >= 26 {
                let ink = if v.is_some_and(|v| v.abs() > 0.6) { WHITE } else { BLACK };
                let style = (FONT, font).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
                area.draw(&Text::new(shown.clone(), (x + cell / 2, y + cell / 2), style))?;
            }
            let (bx, by) = area.get_base_pixel();
            tips.push(Tip {
                rect: (bx + x, by + y, bx + x + cell, by + y + cell),
                text: format!("{} × {}: {shown}", names[i], names[j]),
            });
        }
    }
    for (i, name) in names.iter().enumerate() {
        let style = (FONT, 13).into_font().color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
        area.draw(&Text::new(truncate(name, 20), (left - 6, top + i as i32 * cell + cell / 2), style))?;
        let rotated = (FONT, 13).into_font().transform(FontTransform::Rotate90).color(&BLACK);
        area.draw(&Text::new(
            truncate(name, 16),
            (left + i as i32 * cell + cell / 2 + 6, top + n as i32 * cell + 6),
            rotated,
        ))?;
    }
    // Colour key: -1 at the bottom to +1 at the top.
    let (kx, k_top, k_h) = (left + n as i32 * cell + 24, top, n as i32 * cell);
    let steps = 40;
    for s in 0..steps {
        let v = 1.0 - 2.0 * (s as f64 + 0.5) / steps as f64;
        let y = k_top + s * k_h / steps;
        area.draw(&Rectangle::new([(kx, y), (kx + 16, y + k_h / steps + 1)], diverging(v).filled()))?;
    }
    for (v, y) in [(1.0, k_top), (0.0, k_top + k_h / 2), (-1.0, k_top + k_h)] {
        let style = (FONT, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(format!("{v:+.0}"), (kx + 22, y), style))?;
    }
    Ok(())
}
