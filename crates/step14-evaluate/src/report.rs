//! One evaluation of a fitted model on held-out rows: every metric of its task, the curves, and a
//! self-contained HTML report with charts handed in as inline SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mlops_core::TaskKind;
use mlops_core::html::{STYLE, escape, fmt_num};
use serde::Serialize;

use crate::{
    Calibration, ClassificationMetrics, EvalError, PrCurve, RegressionMetrics, Result, RocCurve, average_precision,
    calibration_curve, classification, pr_curve, regression, roc_auc, roc_curve,
};

/// What a model said about the evaluation rows, with the truth.
#[derive(Clone, Copy, Debug)]
pub enum Outputs<'a> {
    /// A classifier: true class indices, class probabilities per row, class names.
    Classes {
        /// True class per row.
        truth: &'a [usize],
        /// Probabilities per row (each sums to 1).
        proba: &'a [Vec<f64>],
        /// Class names, in index order.
        labels: &'a [String],
        /// The predicted class per row, when the model's labels are not simply the likeliest
        /// class (an SVM's come from the votes of its pairwise machines, as scikit-learn's
        /// `predict`); `None`: the likeliest class.
        predicted: Option<&'a [usize]>,
    },
    /// A regressor: true and predicted values.
    Values {
        /// True values.
        truth: &'a [f64],
        /// Predictions.
        predicted: &'a [f64],
    },
}

/// A curve of one class against the rest (binary: the positive class).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassCurve<C> {
    /// The class.
    pub class: String,
    /// The curve.
    pub curve: C,
    /// Its area: ROC-AUC, or average precision for a PR curve.
    pub area: Option<f64>,
}

/// Everything measured on the evaluation rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// The task.
    pub task: TaskKind,
    /// Rows evaluated.
    pub rows: usize,
    /// Class names (empty for regression).
    pub labels: Vec<String>,
    /// Classification metrics, confusion matrix and report.
    pub classification: Option<ClassificationMetrics>,
    /// ROC curves: the positive class of a binary task, every class against the rest otherwise.
    pub roc: Vec<ClassCurve<RocCurve>>,
    /// Precision-recall curves, as the ROC curves.
    pub pr: Vec<ClassCurve<PrCurve>>,
    /// Reliability of the positive class's probability (binary), 10 uniform bins.
    pub calibration: Option<Calibration>,
    /// Regression metrics with residuals.
    pub regression: Option<RegressionMetrics>,
    /// Predictions of a regressor, in row order (for the predicted-vs-true chart).
    pub predicted: Vec<f64>,
}

/// Argmax of a probability row (the first on a tie), as a classifier predicts.
pub fn argmax(row: &[f64]) -> usize {
    row.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
}

/// Measures a model's outputs against the truth.
pub fn evaluate(outputs: Outputs<'_>) -> Result<Evaluation> {
    match outputs {
        Outputs::Classes { truth, proba, labels, predicted } => {
            let classes = labels.len();
            if classes < 2 {
                return Err(EvalError::BadInput { what: "labels", message: "needs at least two classes".into() });
            }
            let predicted: Vec<usize> = match predicted {
                Some(p) if p.len() == truth.len() => p.to_vec(),
                Some(p) => {
                    return Err(EvalError::BadInput {
                        what: "predicted",
                        message: format!("{} predictions for {} rows", p.len(), truth.len()),
                    });
                }
                None => proba.iter().map(|p| argmax(p)).collect(),
            };
            let metrics = classification(truth, &predicted, Some(proba), classes)?;
            let positives: Vec<usize> = if classes == 2 { vec![1] } else { (0..classes).collect() };
            let (mut roc, mut pr) = (Vec::new(), Vec::new());
            for c in positives {
                let hits: Vec<bool> = truth.iter().map(|&t| t == c).collect();
                let scores: Vec<f64> = proba.iter().map(|p| p[c]).collect();
                let class = labels[c].clone();
                roc.push(ClassCurve {
                    class: class.clone(),
                    curve: roc_curve(&hits, &scores)?,
                    area: roc_auc(&hits, &scores)?,
                });
                let ap = if hits.iter().any(|&h| h) { Some(average_precision(&hits, &scores)?) } else { None };
                pr.push(ClassCurve { class, curve: pr_curve(&hits, &scores)?, area: ap });
            }
            let calibration = if classes == 2 {
                let hits: Vec<bool> = truth.iter().map(|&t| t == 1).collect();
                let scores: Vec<f64> = proba.iter().map(|p| p[1]).collect();
                Some(calibration_curve(&hits, &scores, 10)?)
            } else {
                None
            };
            Ok(Evaluation {
                task: if classes == 2 { TaskKind::BinaryClassification } else { TaskKind::MulticlassClassification },
                rows: truth.len(),
                labels: labels.to_vec(),
                classification: Some(metrics),
                roc,
                pr,
                calibration,
                regression: None,
                predicted: Vec::new(),
            })
        }
        Outputs::Values { truth, predicted } => Ok(Evaluation {
            task: TaskKind::Regression,
            rows: truth.len(),
            labels: Vec::new(),
            classification: None,
            roc: Vec::new(),
            pr: Vec::new(),
            calibration: None,
            regression: Some(regression(truth, predicted)?),
            predicted: predicted.to_vec(),
        }),
    }
}

impl Evaluation {
    /// The single-number metrics by name (the names of [`crate::Metric`]), for run tracking.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        crate::Metric::ALL
            .iter()
            .filter_map(|m| {
                let v = match (&self.classification, &self.regression) {
                    (Some(c), _) => m.of_classification(c),
                    (_, Some(r)) => m.of_regression(r),
                    _ => None,
                };
                v.map(|v| (m.name(), v))
            })
            .collect()
    }
}

/// What the report says about the model and where it came from.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReportMeta {
    /// Heading, e.g. `random_forest_classifier on penguins@74da6486`.
    pub title: String,
    /// Model family.
    pub model: String,
    /// Hyperparameters.
    pub params: BTreeMap<String, String>,
    /// The run the model was trained in.
    pub run_id: String,
    /// Dataset version.
    pub dataset: String,
    /// Which rows were evaluated (`test`).
    pub part: String,
    /// Cross-validation: metric, mean, std.
    pub cv: Option<(String, f64, f64)>,
    /// Seconds to fit on the training part.
    pub fit_seconds: f64,
    /// Feature importances (name, share), largest first.
    pub importances: Vec<(String, f64)>,
    /// When the report was made (RFC 3339).
    pub generated_at: String,
    /// Toolkit version.
    pub toolkit_version: String,
}

/// The sections of the report, in order, with their anchors.
pub const SECTIONS: [(&str, &str); 5] = [
    ("model", "Model"),
    ("metrics", "Metrics"),
    ("errors", "Errors by class"),
    ("charts", "Charts"),
    ("importance", "Feature importance"),
];

fn row(h: &mut String, cells: &[String]) {
    h.push_str("<tr>");
    for c in cells {
        let _ = write!(h, "<td>{c}</td>");
    }
    h.push_str("</tr>");
}

/// The evaluation as one HTML document: no scripts and nothing fetched from elsewhere; charts
/// are the `(caption, svg)` pairs given.
pub fn render_html(eval: &Evaluation, meta: &ReportMeta, figures: &[(String, String)]) -> String {
    let mut h = String::with_capacity(32 * 1024 + figures.iter().map(|f| f.1.len()).sum::<usize>());
    let title = escape(&meta.title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Evaluation: {title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head><body>\n<nav><ul>"
    );
    for (id, name) in SECTIONS {
        let _ = write!(h, "<li><a href=\"#{id}\">{name}</a></li>");
    }
    let _ = write!(
        h,
        "</ul></nav>\n<header><h1>{title}</h1><p>{} rows of the {} part · generated {} by mlops {}</p></header>\n<main>\n",
        eval.rows,
        escape(&meta.part),
        escape(&meta.generated_at),
        escape(&meta.toolkit_version)
    );

    h.push_str("<section id=\"model\"><h2>Model</h2><table>");
    let mut facts = vec![
        ("family".to_string(), meta.model.clone()),
        ("run".to_string(), meta.run_id.clone()),
        ("dataset".to_string(), meta.dataset.clone()),
        ("fit time".to_string(), format!("{} s", fmt_num(meta.fit_seconds))),
    ];
    if let Some((metric, mean, std)) = &meta.cv {
        facts.push((format!("CV {metric}"), format!("{} ± {}", fmt_num(*mean), fmt_num(*std))));
    }
    facts.extend(meta.params.iter().map(|(k, v)| (format!("param {k}"), v.clone())));
    for (k, v) in facts {
        row(&mut h, &[escape(&k), escape(&v)]);
    }
    h.push_str("</table></section>\n");

    h.push_str("<section id=\"metrics\"><h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>");
    for (k, v) in eval.metrics() {
        row(&mut h, &[escape(&k), fmt_num(v)]);
    }
    for c in &eval.pr {
        if let Some(ap) = c.area {
            row(&mut h, &[format!("average precision ({})", escape(&c.class)), fmt_num(ap)]);
        }
    }
    h.push_str("</table></section>\n");

    h.push_str("<section id=\"errors\"><h2>Errors by class</h2>");
    if let Some(m) = &eval.classification {
        h.push_str("<h3>Classification report</h3><table><tr><th>class</th><th>precision</th><th>recall</th><th>f1</th><th>support</th></tr>");
        for r in &m.report {
            let name = eval.labels.get(r.class).map_or_else(|| r.class.to_string(), |l| escape(l));
            row(&mut h, &[name, fmt_num(r.precision), fmt_num(r.recall), fmt_num(r.f1), r.support.to_string()]);
        }
        h.push_str("</table><h3>Confusion matrix (rows: true class, columns: predicted)</h3><table><tr><th></th>");
        for l in &eval.labels {
            let _ = write!(h, "<th>{}</th>", escape(l));
        }
        h.push_str("</tr>");
        for (t, counts) in m.confusion.iter().enumerate() {
            let mut cells = vec![eval.labels.get(t).map_or_else(|| t.to_string(), |l| escape(l))];
            cells.extend(counts.iter().map(usize::to_string));
            row(&mut h, &cells);
        }
        h.push_str("</table>");
    } else if let Some(r) = &eval.regression {
        let mut sorted: Vec<f64> = r.residuals.clone();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| sorted.get(((sorted.len().saturating_sub(1)) as f64 * p).round() as usize).copied();
        h.push_str("<h3>Residuals (true − predicted)</h3><table><tr><th>statistic</th><th>value</th></tr>");
        let mean = r.residuals.iter().sum::<f64>() / r.residuals.len().max(1) as f64;
        row(&mut h, &["mean".into(), fmt_num(mean)]);
        for (name, p) in [("min", 0.0), ("5%", 0.05), ("median", 0.5), ("95%", 0.95), ("max", 1.0)] {
            row(&mut h, &[name.into(), q(p).map_or_else(|| "–".into(), fmt_num)]);
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n<section id=\"charts\"><h2>Charts</h2>");
    for (caption, svg) in figures {
        let _ = write!(h, "<figure>{svg}<figcaption>{}</figcaption></figure>", escape(caption));
    }
    h.push_str("</section>\n<section id=\"importance\"><h2>Feature importance</h2>");
    if meta.importances.is_empty() {
        h.push_str("<p>This model family gives no feature importances.</p>");
    } else {
        h.push_str("<table><tr><th>feature</th><th>importance</th></tr>");
        for (name, v) in &meta.importances {
            row(&mut h, &[escape(name), fmt_num(*v)]);
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n</main></body></html>\n");
    h
}
