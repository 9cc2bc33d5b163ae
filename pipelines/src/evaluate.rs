//! Step 14 in the training run: every metric of a fitted model on a part, its feature
//! importances by name, and the evaluation report of a final run (with charts from step 9): ROC
//! and precision-recall curves, confusion matrix, calibration, residuals and feature importance,
//! embedded as SVG in one HTML file, with the evaluation as JSON next to it.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use step09_visualize::{Chart, MAX_POINTS, Plot, Series};
use step11_candidates::{Labels, Model};
use step14_evaluate::{Evaluation, Outputs, ReportMeta};

use crate::error::{PipelineError, Result};
use crate::target::TargetInfo;

/// Feature importances by name, largest first (empty for families without them).
pub(crate) fn named_importances(model: &Model, features: &[String]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> =
        model.feature_importances().map(|v| features.iter().cloned().zip(v).collect()).unwrap_or_default();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Every metric of a model on a part (the error is the model's or the metric's message).
pub(crate) fn assess(
    model: &Model,
    x: &Array2<f64>,
    y: &Labels,
    target: &TargetInfo,
) -> std::result::Result<Evaluation, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match y {
        Labels::Classes { y: truth, .. } => {
            let proba = model.predict_proba(x).map_err(|e| text(&e))?.ok_or("the model gives no probabilities")?;
            let predicted: Vec<usize> = model.predict(x).map_err(|e| text(&e))?.iter().map(|&c| c as usize).collect();
            step14_evaluate::evaluate(Outputs::Classes {
                truth,
                proba: &proba,
                labels: &target.classes,
                predicted: Some(&predicted),
            })
            .map_err(|e| text(&e))
        }
        Labels::Values(truth) => {
            let predicted = model.predict(x).map_err(|e| text(&e))?;
            step14_evaluate::evaluate(Outputs::Values { truth, predicted: &predicted }).map_err(|e| text(&e))
        }
    }
}

/// Every `step`-th index so that at most `max` of `n` remain.
fn thin(n: usize, max: usize) -> impl Iterator<Item = usize> {
    let step = n.div_ceil(max.max(1)).max(1);
    (0..n).step_by(step)
}

fn line(title: &str, x: &str, y: &str, series: Vec<Series>) -> Plot {
    Plot { title: title.into(), chart: Chart::Line { x_label: x.into(), y_label: y.into(), dates: false, series } }
}

fn diagonal(name: &str) -> Series {
    Series { name: name.into(), points: vec![(0.0, 0.0), (1.0, 1.0)] }
}

/// The charts of an evaluation, with their captions.
pub fn charts(eval: &Evaluation, meta: &ReportMeta) -> Vec<Plot> {
    let mut plots = Vec::new();
    if !eval.roc.is_empty() {
        let mut series: Vec<Series> = eval
            .roc
            .iter()
            .map(|c| Series {
                name: format!("{} (AUC {})", c.class, c.area.map_or("–".into(), |a| format!("{a:.3}"))),
                points: c.curve.fpr.iter().copied().zip(c.curve.tpr.iter().copied()).collect(),
            })
            .collect();
        series.push(diagonal("chance"));
        plots.push(line("ROC curve", "false-positive rate", "true-positive rate", series));
        let series = eval
            .pr
            .iter()
            .map(|c| Series {
                name: format!("{} (AP {})", c.class, c.area.map_or("–".into(), |a| format!("{a:.3}"))),
                points: c.curve.recall.iter().copied().zip(c.curve.precision.iter().copied()).collect(),
            })
            .collect();
        plots.push(line("Precision-recall curve", "recall", "precision", series));
    }
    if let Some(m) = &eval.classification {
        let values = m
            .confusion
            .iter()
            .map(|row| {
                let total: usize = row.iter().sum();
                row.iter().map(|&c| (total > 0).then(|| c as f64 / total as f64)).collect()
            })
            .collect();
        plots.push(Plot {
            title: "Confusion matrix (share of each true class; rows true, columns predicted)".into(),
            chart: Chart::Heatmap { names: eval.labels.clone(), values, annotate: true },
        });
    }
    if let Some(c) = &eval.calibration {
        let observed = Series {
            name: "model".into(),
            points: c.prob_pred.iter().copied().zip(c.prob_true.iter().copied()).collect(),
        };
        plots.push(line(
            "Calibration (reliability diagram)",
            "mean predicted probability",
            "share of positives",
            vec![observed, diagonal("perfectly calibrated")],
        ));
    }
    if let Some(r) = &eval.regression {
        let truth: Vec<f64> = eval.predicted.iter().zip(&r.residuals).map(|(p, e)| p + e).collect();
        let keep: Vec<usize> = thin(truth.len(), MAX_POINTS).collect();
        let (lo, hi) = truth
            .iter()
            .chain(&eval.predicted)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        plots.push(Plot {
            title: "Predicted against true".into(),
            chart: Chart::Scatter {
                x_label: "true".into(),
                y_label: "predicted".into(),
                hue: None,
                series: vec![
                    Series {
                        name: "rows".into(),
                        points: keep.iter().map(|&i| (truth[i], eval.predicted[i])).collect(),
                    },
                    Series { name: "perfect".into(), points: vec![(lo, lo), (hi, hi)] },
                ],
            },
        });
        plots.push(Plot {
            title: "Residuals against predicted".into(),
            chart: Chart::Scatter {
                x_label: "predicted".into(),
                y_label: "residual (true - predicted)".into(),
                hue: None,
                series: vec![Series {
                    name: "rows".into(),
                    points: keep.iter().map(|&i| (eval.predicted[i], r.residuals[i])).collect(),
                }],
            },
        });
        plots.push(Plot {
            title: "Residuals".into(),
            chart: Chart::Histogram {
                x_label: "residual (true - predicted)".into(),
                dates: false,
                histogram: step07_eda::histogram(&r.residuals, 30),
            },
        });
    }
    if !meta.importances.is_empty() {
        plots.push(Plot {
            title: "Feature importance (top 20)".into(),
            chart: Chart::Bar {
                x_label: "feature".into(),
                y_label: "importance".into(),
                bars: meta.importances.iter().take(20).cloned().collect(),
            },
        });
    }
    plots
}

/// Draws the charts and writes `evaluation.html` and `evaluation.json` into `dir`; returns the
/// HTML path. Everything is drawn before the first file is written.
pub fn write_report(eval: &Evaluation, meta: &ReportMeta, dir: &Path) -> Result<PathBuf> {
    let visualize = |e| PipelineError::step("visualize", e);
    let figures = charts(eval, meta)
        .iter()
        .map(|p| Ok((p.title.clone(), step09_visualize::to_svg(p).map_err(visualize)?)))
        .collect::<Result<Vec<_>>>()?;
    let html = step14_evaluate::render_html(eval, meta, &figures);
    let io = |e| PipelineError::step("evaluate", e);
    let json = dir.join("evaluation.json");
    mlops_core::io::atomic_write_json(&json, &serde_json::json!({"meta": meta, "evaluation": eval})).map_err(io)?;
    let page = dir.join("evaluation.html");
    mlops_core::io::atomic_write(&page, html.as_bytes()).map_err(io)?;
    tracing::info!(report = %page.display(), bytes = html.len(), "evaluation report written");
    Ok(page)
}
