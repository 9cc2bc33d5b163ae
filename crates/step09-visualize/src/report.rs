//! The charts of the EDA report, drawn from a profile's aggregates (no rows needed).

use step07_eda::{Figure, Histogram, Kind, Profile, Slot};

use crate::chart::{BoxStats, Chart, Plot};
use crate::{Result, to_svg};

fn figure(slot: Slot, plot: Plot) -> Result<Figure> {
    Ok(Figure { slot, svg: to_svg(&plot)?, title: plot.title })
}

/// The report's figures: a null-count bar chart, one chart per column (histogram or value
/// counts), the Pearson and Spearman heatmaps, and robust-scaled box plots of the numeric columns.
pub fn report_figures(profile: &Profile) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    let nulls: Vec<(String, f64)> =
        profile.variables.iter().filter(|v| v.nulls.count > 0).map(|v| (v.name.clone(), v.nulls.percent)).collect();
    if !nulls.is_empty() {
        let chart = Chart::Bar { x_label: "column".into(), y_label: "% null".into(), bars: nulls };
        out.push(figure(Slot::Missing, Plot { title: "Missing values per column".into(), chart })?);
    }
    for v in &profile.variables {
        let chart = match (v.kind, &v.numeric, &v.categories, &v.temporal) {
            (Kind::Numeric, Some(n), _, _) => {
                Some(Chart::Histogram { x_label: v.name.clone(), dates: false, histogram: n.histogram.clone() })
            }
            (Kind::Categorical, _, Some(c), _) => {
                let mut bars: Vec<(String, f64)> = c.values.iter().map(|f| (f.value.clone(), f.count as f64)).collect();
                if c.other > 0 {
                    bars.push(("(other)".into(), c.other as f64));
                }
                Some(Chart::Bar { x_label: v.name.clone(), y_label: "count".into(), bars })
            }
            (Kind::Temporal, _, _, Some(t)) => {
                // Timestamps are binned in microseconds; the axis shows days.
                let per_day = if v.dtype == Some(mlops_core::DType::Date) { 1.0 } else { 86_400e6 };
                let histogram = Histogram {
                    edges: t.histogram.edges.iter().map(|e| e / per_day).collect(),
                    counts: t.histogram.counts.clone(),
                };
                Some(Chart::Histogram { x_label: v.name.clone(), dates: true, histogram })
            }
            _ => None,
        };
        if let Some(chart) = chart.filter(|c| !matches!(c, Chart::Bar { bars, .. } if bars.is_empty())) {
            let title = if v.kind == Kind::Categorical {
                format!("{}: value counts", v.name)
            } else {
                format!("Distribution of {}", v.name)
            };
            out.push(figure(Slot::Variable(v.name.clone()), Plot { title, chart })?);
        }
    }
    let c = &profile.correlations;
    if c.columns.len() >= 2 {
        for (slot, name, values) in [(Slot::Pearson, "Pearson", &c.pearson), (Slot::Spearman, "Spearman", &c.spearman)]
        {
            let chart = Chart::Heatmap { names: c.columns.clone(), values: values.clone(), annotate: true };
            out.push(figure(slot, Plot { title: format!("{name} correlation"), chart })?);
        }
    }
    // Columns have different units, so each box is scaled by its own median and IQR; the fences of
    // the IQR rule then sit at -1.5 - (median - q1)/IQR and so on, and the tooltips say so.
    let boxes: Vec<BoxStats> = profile
        .variables
        .iter()
        .filter_map(|v| v.numeric.as_ref().map(|n| (v, n)))
        .map(|(v, n)| {
            let iqr = n.q3 - n.q1;
            let scale = if iqr > 0.0 { iqr } else { 1.0 };
            let z = |x: f64| (x - n.median) / scale;
            BoxStats {
                name: v.name.clone(),
                low: z(n.outliers.lower.max(n.min)),
                q1: z(n.q1),
                median: 0.0,
                q3: z(n.q3),
                high: z(n.outliers.upper.min(n.max)),
                outliers: [n.min, n.max]
                    .into_iter()
                    .filter(|&x| x < n.outliers.lower || x > n.outliers.upper)
                    .map(z)
                    .collect(),
                count: v.count,
            }
        })
        .collect();
    if !boxes.is_empty() {
        let chart = Chart::Box { y_label: "(value − median) / IQR".into(), boxes };
        out.push(figure(
            Slot::Outliers,
            Plot { title: "Numeric columns on a common scale (IQR fences, min and max)".into(), chart },
        )?);
    }
    Ok(out)
}
