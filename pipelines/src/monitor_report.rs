//! The monitoring dashboard: one self-contained HTML file with the workflow seed's four panels
//! (prediction volume over time, accuracy over time, the prediction distribution, response time),
//! the drift table with each column's reference-against-current histogram, data quality and the
//! open alerts; and `monitor.json` beside it with everything the page shows. Charts are step 9's
//! SVG, hover tooltips included; the histograms are drawn inline with a tooltip per bar.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use mlops_core::html::{STYLE, escape, fmt_num};
use step09_visualize::{Chart, Plot, Series, to_svg};
use step22_monitor::alerts::Transition;
use step22_monitor::drift::{ColumnDrift, DataDrift};

use crate::error::{PipelineError, Result};
use crate::monitor::{Histograms, Monitored};

/// The dashboard's file name.
pub const HTML: &str = "monitor.html";
/// Its JSON twin's.
pub const JSON: &str = "monitor.json";

/// Writes `monitor.html` and `monitor.json` into `dir` (each to a temporary name, then renamed).
pub fn write_report(dir: &Path, m: &Monitored) -> Result<(PathBuf, PathBuf)> {
    let io = |path: &Path, e| PipelineError::step("monitor", mlops_core::CoreError::io("cannot write", path, e));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let json_path = dir.join(JSON);
    mlops_core::io::atomic_write_json(&json_path, m).map_err(|e| PipelineError::step("monitor", e))?;
    let html_path = dir.join(HTML);
    mlops_core::io::atomic_write(&html_path, html(m)?.as_bytes()).map_err(|e| PipelineError::step("monitor", e))?;
    Ok((html_path, json_path))
}

fn svg(plot: &Plot) -> Result<String> {
    to_svg(plot).map_err(|e| PipelineError::step("monitor", e))
}

/// The dashboard's HTML.
pub fn html(m: &Monitored) -> Result<String> {
    let mut out = String::with_capacity(64 * 1024);
    let title = match m.version {
        Some(v) => format!("{} v{v}", m.model),
        None => m.model.clone(),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Monitoring: {t}</title><style>{STYLE}\
         .ok{{color:#166534}}.bad{{color:#b91c1c;font-weight:600}}.hist svg{{width:240px}}</style></head><body>\
         <nav><ul><li><a href=\"#summary\">Summary</a></li><li><a href=\"#volume\">Prediction volume</a></li>\
         <li><a href=\"#accuracy\">Accuracy</a></li><li><a href=\"#distribution\">Predictions</a></li>\
         <li><a href=\"#latency\">Response time</a></li><li><a href=\"#drift\">Data drift</a></li>\
         <li><a href=\"#features\">Feature drift</a></li><li><a href=\"#quality\">Data quality</a></li>\
         <li><a href=\"#alerts\">Alerts</a></li></ul></nav>\
         <header><h1>Monitoring: {t}</h1><p>{uri} · window {w} · {req} request(s), {rows} row(s) · at {at}</p></header><main>",
        t = escape(&title),
        uri = escape(&m.uri),
        w = escape(&m.window_label),
        req = m.requests,
        rows = m.rows,
        at = escape(&m.at),
    );
    summary(&mut out, m);
    panels(&mut out, m)?;
    if let Some(d) = &m.inputs {
        drift_table(&mut out, ("drift", "Data drift: the columns a caller sends"), d, &m.histograms);
    } else {
        out.push_str("<section id=\"drift\"><h2>Data drift</h2><p>Not measured: see the notes.</p></section>");
    }
    if let Some(d) = &m.features {
        drift_table(
            &mut out,
            ("features", "Feature drift: the model's inputs after the package's pipeline"),
            d,
            &m.feature_histograms,
        );
    }
    quality(&mut out, m);
    alerts(&mut out, m);
    out.push_str("</main></body></html>\n");
    Ok(out)
}

fn summary(out: &mut String, m: &Monitored) {
    out.push_str("<section id=\"summary\"><h2>Summary</h2><table><tr><th>what</th><th>value</th></tr>");
    let mut row = |k: &str, v: String| {
        let _ = write!(out, "<tr><td>{}</td><td>{v}</td></tr>", escape(k));
    };
    match &m.inputs {
        Some(d) => row(
            "columns drifted",
            format!(
                "{} of {} ({}){}",
                d.drifted,
                d.columns.len(),
                pct(d.share),
                if d.dataset_drift { " <span class=\"bad\">dataset drift</span>" } else { "" }
            ),
        ),
        None => row("columns drifted", "not measured".into()),
    }
    if let Some(p) = &m.predictions {
        row("prediction drift", drifted(p));
    }
    if let Some(a) = &m.accuracy {
        for (metric, value) in &a.overall {
            let base = m.baseline.get(metric).map(|b| format!(" (baseline {})", fmt_num(*b))).unwrap_or_default();
            row(metric, format!("{}{base}", fmt_num(*value)));
        }
        row("labelled predictions", a.labelled.to_string());
    } else {
        row("accuracy", "no actual outcomes yet (`mlops monitor feedback`)".into());
    }
    if let Some(l) = &m.health.latency {
        row("latency p50 / p95 / p99", format!("{} / {} / {} ms", fmt_num(l.p50), fmt_num(l.p95), fmt_num(l.p99)));
    }
    if let Some(rate) = m.health.error_rate {
        row("refused or failed requests", format!("{} ({})", m.health.refused, pct(rate)));
    }
    let open = m.alerts.iter().filter(|a| a.transition != Transition::Resolved).count();
    row("open alerts", open.to_string());
    out.push_str("</table>");
    for note in &m.notes {
        let _ = write!(out, "<p class=\"warn\">{}</p>", escape(note));
    }
    out.push_str("</section>");
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn drifted(d: &ColumnDrift) -> String {
    let scores: Vec<String> = d
        .scores
        .iter()
        .map(|s| format!("{} {} (threshold {})", s.method.name(), fmt_num(s.value), fmt_num(s.threshold)))
        .collect();
    format!(
        "{} {}",
        if d.drifted { "<span class=\"bad\">drifted</span>" } else { "<span class=\"ok\">no drift</span>" },
        escape(&scores.join(", "))
    )
}

/// The timeline's width in words.
fn width_words(seconds: u32) -> String {
    match seconds {
        s if s >= 86_400 => "day".into(),
        s if s >= 3600 => "hour".into(),
        600 => "10 minutes".into(),
        60 => "minute".into(),
        10 => "10 seconds".into(),
        _ => "second".into(),
    }
}

/// The four panels of the workflow seed, on the window's timeline (buckets of 1 s to 1 day,
/// sized to the traffic).
fn panels(out: &mut String, m: &Monitored) -> Result<()> {
    let width = width_words(m.health.timeline_seconds);
    let keys: Vec<&String> = m.health.timeline.keys().collect();
    let label = |key: &str| m.timeline_label(key);
    let x_label = format!("buckets of one {width} (UTC), from {}", keys.first().map_or(String::new(), |k| label(k)));
    let bars: Vec<(String, f64)> =
        m.health.timeline.iter().map(|(k, v)| (short_label(&label(k)), v.rows as f64)).collect();
    let volume = Plot {
        title: format!("Prediction volume: rows per {width}"),
        chart: Chart::Bar { x_label: format!("{width} (UTC)"), y_label: "rows predicted".into(), bars },
    };
    figure(out, "volume", "Prediction volume over time", &volume, keys.is_empty())?;

    let position = |key: &str| keys.iter().position(|k| k.as_str() == key).map(|i| i as f64);
    let accuracy = m.accuracy.as_ref().map(|a| {
        // The headline metrics on one scale (log loss and the errors of a regressor have their
        // own), each with its baseline at training as a flat line.
        let shown: Vec<&String> =
            a.overall.keys().filter(|k| ["accuracy", "f1_macro", "roc_auc", "r2"].contains(&k.as_str())).collect();
        let last = keys.len().saturating_sub(1) as f64;
        let mut series: Vec<Series> = shown
            .iter()
            .map(|metric| Series {
                name: (*metric).clone(),
                points: a.timeline.iter().filter_map(|(k, ms)| Some((position(k)?, *ms.get(*metric)?))).collect(),
            })
            .collect();
        series.extend(shown.iter().filter_map(|metric| {
            let b = *m.baseline.get(*metric)?;
            Some(Series { name: format!("{metric} at training"), points: vec![(0.0, b), (last.max(1.0), b)] })
        }));
        Plot {
            title: format!("Accuracy over time: labelled predictions per {width}"),
            chart: Chart::Line { x_label: x_label.clone(), y_label: "score".into(), dates: false, series },
        }
    });
    match accuracy {
        Some(p) => figure(out, "accuracy", "Accuracy over time", &p, false)?,
        None => out.push_str(
            "<section id=\"accuracy\"><h2>Accuracy over time</h2><p>No actual outcomes in this window yet: send them with <code>mlops monitor feedback</code> or <code>POST /feedback</code>.</p></section>",
        ),
    }

    let distribution = m.prediction_histogram.as_ref().map(|h| Plot {
        title: "Prediction distribution: share of rows per prediction, on the test part and now".into(),
        chart: Chart::Bar {
            x_label: "prediction".into(),
            y_label: "share of rows".into(),
            bars: h
                .bins
                .iter()
                .zip(&h.current)
                .zip(&h.reference)
                .flat_map(|((b, c), r)| [(format!("{b}: test"), *r), (format!("{b}: now"), *c)])
                .collect(),
        },
    });
    match distribution {
        Some(p) => figure(out, "distribution", "Prediction distribution", &p, false)?,
        None => out.push_str(
            "<section id=\"distribution\"><h2>Prediction distribution</h2><p>No predictions in this window.</p></section>",
        ),
    }

    let line = |name: &str, pick: fn(&step22_monitor::Latency) -> f64| Series {
        name: name.into(),
        points: m.health.timeline.values().enumerate().map(|(i, h)| (i as f64, pick(&h.latency))).collect(),
    };
    let latency = Plot {
        title: format!("Response time per {width}"),
        chart: Chart::Line {
            x_label,
            y_label: "milliseconds".into(),
            dates: false,
            series: vec![line("p50", |l| l.p50), line("p95", |l| l.p95), line("p99", |l| l.p99)],
        },
    };
    figure(out, "latency", "Response time", &latency, keys.is_empty())
}

/// A bucket's label without the date when it has a time (`10:40:10`).
fn short_label(label: &str) -> String {
    label.split_once('T').map_or_else(|| label.to_string(), |(_, time)| time.to_string())
}

fn figure(out: &mut String, id: &str, heading: &str, plot: &Plot, empty: bool) -> Result<()> {
    if empty {
        let _ = write!(
            out,
            "<section id=\"{id}\"><h2>{}</h2><p>No requests in this window.</p></section>",
            escape(heading)
        );
        return Ok(());
    }
    let _ = write!(out, "<section id=\"{id}\"><h2>{}</h2><figure>{}</figure></section>", escape(heading), svg(plot)?);
    Ok(())
}

fn drift_table(
    out: &mut String,
    (id, heading): (&str, &str),
    d: &DataDrift,
    histograms: &std::collections::BTreeMap<String, Histograms>,
) {
    let _ = write!(
        out,
        "<section id=\"{id}\"><h2>{}</h2><p>{} of {} column(s) drifted ({}; the dataset drifts from {}){}</p>\
         <table><tr><th>column</th><th>kind</th><th>method</th><th>score</th><th>threshold</th><th>drifted</th>\
         <th>reference</th><th>current</th><th>reference (grey) against current (blue)</th></tr>",
        escape(heading),
        d.drifted,
        d.columns.len(),
        pct(d.share),
        pct(d.share_threshold),
        if d.dataset_drift { " <span class=\"bad\">dataset drift</span>" } else { "" },
    );
    for c in &d.columns {
        let hist = histograms.get(&c.column).map(|h| histogram_svg(&c.column, h)).unwrap_or_default();
        let score = c.scores.iter().map(|s| fmt_num(s.value)).collect::<Vec<_>>().join(" / ");
        let threshold = c.scores.iter().map(|s| fmt_num(s.threshold)).collect::<Vec<_>>().join(" / ");
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{score}</td><td>{threshold}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"hist\">{hist}</td></tr>",
            escape(&c.column),
            match c.kind {
                step22_monitor::drift::ColumnKind::Numeric => "numeric",
                step22_monitor::drift::ColumnKind::Categorical => "categorical",
            },
            c.method.name(),
            if c.drifted { "<span class=\"bad\">yes</span>" } else { "<span class=\"ok\">no</span>" },
            c.reference_values + c.reference_missing,
            c.current_values + c.current_missing,
        );
    }
    out.push_str("</table>");
    for (column, why) in &d.skipped {
        let _ = write!(out, "<p class=\"warn\">{}: not compared: {}</p>", escape(column), escape(why));
    }
    out.push_str("</section>");
}

/// A small histogram: per bin, the reference's share (grey) and the current share (blue) side by
/// side, each bar with a tooltip.
fn histogram_svg(column: &str, h: &Histograms) -> String {
    let (w, ht, pad) = (240.0, 70.0, 2.0);
    let n = h.bins.len().max(1) as f64;
    let top = h.reference.iter().chain(&h.current).copied().fold(0.0_f64, f64::max).max(1e-12);
    let slot = (w - 2.0 * pad) / n;
    let bar = (slot / 2.0 - 0.5).max(0.5);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"{}\">",
        escape(&format!("{column}: reference against current"))
    );
    for (i, label) in h.bins.iter().enumerate() {
        for (k, (shares, colour, side)) in
            [(&h.reference, "#9aa5b1", "reference"), (&h.current, "#2563eb", "current")].into_iter().enumerate()
        {
            let v = shares.get(i).copied().unwrap_or(0.0);
            let bh = (v / top) * (ht - 4.0);
            let x = pad + slot * i as f64 + bar * k as f64;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{colour}\"><title>{}</title></rect>",
                ht - bh,
                escape(&format!("{column} {label}: {side} {}", pct(v)))
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn quality(out: &mut String, m: &Monitored) {
    out.push_str(
        "<section id=\"quality\"><h2>Data quality</h2><table><tr><th>column</th><th>values</th><th>missing</th>\
         <th>missing share</th><th>reference missing share</th><th>unseen categories</th><th>out of range</th><th>rejected requests</th></tr>",
    );
    for q in &m.quality {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&q.column),
            q.values,
            q.missing,
            pct(q.missing_share),
            q.reference_missing_share.map_or_else(|| "-".into(), pct),
            q.unseen,
            q.out_of_range,
            q.rejected
        );
    }
    out.push_str("</table></section>");
}

fn alerts(out: &mut String, m: &Monitored) {
    out.push_str("<section id=\"alerts\"><h2>Alerts</h2>");
    if m.alerts.is_empty() {
        out.push_str("<p class=\"ok\">No alert is open.</p></section>");
        return;
    }
    out.push_str("<table><tr><th>alert</th><th>severity</th><th>state</th><th>since</th><th>what</th></tr>");
    for a in &m.alerts {
        let state = match a.transition {
            Transition::Fired => "fired now",
            Transition::StillOpen => "open",
            Transition::Resolved => "resolved now",
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{state}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(&a.name),
            escape(&format!("{:?}", a.severity).to_lowercase()),
            escape(&a.opened_at),
            escape(&a.message)
        );
    }
    out.push_str("</table></section>");
}
