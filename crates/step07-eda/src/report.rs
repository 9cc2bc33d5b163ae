//! The self-contained HTML report: tables from the profile, charts handed in as inline SVG.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mlops_core::html::STYLE;
pub use mlops_core::html::{escape, fmt_num};

use crate::Result;
use crate::profile::{ColumnSummary, Kind, Profile};

/// Where a chart goes in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Null counts of every column, in the overview.
    Missing,
    /// The distribution of one column, in its variable section.
    Variable(String),
    /// The Pearson heatmap.
    Pearson,
    /// The Spearman heatmap.
    Spearman,
    /// Box plots of the numeric columns, in the outliers section.
    Outliers,
    /// A chart asked for in config (`plots:`), in the charts section.
    Chart,
}

/// A rendered chart: inline SVG (with `<title>` tooltips) and where it belongs.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Its place.
    pub slot: Slot,
    /// Caption.
    pub title: String,
    /// The `<svg>` element.
    pub svg: String,
}

/// What the report says about where the data came from.
#[derive(Clone, Debug, Default)]
pub struct ReportMeta {
    /// Heading, for example `penguins@74da6486454098ff`.
    pub title: String,
    /// When the report was made (RFC 3339).
    pub generated_at: String,
    /// Toolkit version.
    pub toolkit_version: String,
    /// Charts written next to the report but not embedded, because they draw individual rows
    /// (scatter plots, pair grids): their paths relative to the report.
    pub chart_files: Vec<String>,
}

/// The sections of the report, in order, with their anchors: the table of contents.
pub const SECTIONS: [(&str, &str); 8] = [
    ("overview", "Overview"),
    ("warnings", "Warnings"),
    ("variables", "Variables"),
    ("correlations", "Correlations"),
    ("missing", "Missing values"),
    ("outliers", "Outliers"),
    ("duplicates", "Duplicates and constants"),
    ("charts", "Charts"),
];

/// The anchor of a column's section: `var-` and the name's letters and digits, with the column's
/// position so distinct names never share an anchor.
pub fn anchor(index: usize, name: &str) -> String {
    let slug: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("var-{index}-{slug}")
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), fmt_num)
}

fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// The report as one HTML document: no scripts, styles or images from elsewhere, and no rows of
/// the data, only the profile's aggregates and the charts given.
pub fn render_html(profile: &Profile, meta: &ReportMeta, figures: &[Figure]) -> String {
    let mut h = String::with_capacity(64 * 1024 + figures.iter().map(|f| f.svg.len()).sum::<usize>());
    let title = escape(&meta.title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>EDA report: {title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head><body>\n"
    );
    toc(&mut h, profile);
    let _ = write!(
        h,
        "<header><h1>EDA report: {title}</h1><p>{} rows × {} columns · generated {} by mlops {}</p></header>\n<main>\n",
        profile.rows,
        profile.columns,
        escape(&meta.generated_at),
        escape(&meta.toolkit_version)
    );
    let figure = |h: &mut String, slot: &Slot| {
        for f in figures.iter().filter(|f| &f.slot == slot) {
            let _ = writeln!(
                h,
                "<figure data-chart=\"{}\">{}<figcaption>{}</figcaption></figure>",
                escape(&f.title),
                f.svg,
                escape(&f.title)
            );
        }
    };

    // Overview.
    let _ = write!(h, "<section id=\"overview\"><h2>Overview</h2><table>");
    let total_nulls: usize = profile.variables.iter().map(|v| v.nulls.count).sum();
    let cells = (profile.rows * profile.columns).max(1);
    for (k, v) in [
        ("Rows", profile.rows.to_string()),
        ("Columns", profile.columns.to_string()),
        ("Memory", bytes(profile.memory_bytes)),
        ("Missing cells", format!("{total_nulls} ({:.2}%)", total_nulls as f64 * 100.0 / cells as f64)),
        ("Duplicate rows", format!("{} ({:.2}%)", profile.duplicates.count, profile.duplicates.percent)),
        ("Warnings", profile.warnings.len().to_string()),
    ] {
        let _ = write!(h, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    h.push_str("</table><h3>Types</h3><table><tr><th>type</th><th>columns</th></tr>");
    for (t, n) in &profile.types {
        let _ = write!(h, "<tr><td>{}</td><td>{n}</td></tr>", escape(t));
    }
    h.push_str("</table></section>\n");

    // Warnings.
    h.push_str("<section id=\"warnings\"><h2>Warnings</h2>");
    if profile.warnings.is_empty() {
        h.push_str("<p>None.</p>");
    } else {
        h.push_str("<ul>");
        for w in &profile.warnings {
            let _ = write!(h, "<li class=\"warn\">{}</li>", escape(&w.message()));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>\n");

    // Variables.
    h.push_str("<section id=\"variables\"><h2>Variables</h2>");
    for (i, v) in profile.variables.iter().enumerate() {
        variable(&mut h, i, v, profile);
        figure(&mut h, &Slot::Variable(v.name.clone()));
        h.push_str("</div>\n");
    }
    h.push_str("</section>\n");

    // Correlations.
    h.push_str("<section id=\"correlations\"><h2>Correlations</h2>");
    let c = &profile.correlations;
    if c.columns.len() < 2 {
        h.push_str("<p>Fewer than two numeric columns: nothing to correlate.</p>");
    } else {
        figure(&mut h, &Slot::Pearson);
        figure(&mut h, &Slot::Spearman);
        h.push_str("<h3>Highly correlated pairs</h3>");
        if c.high.is_empty() {
            h.push_str("<p>None over the threshold.</p>");
        } else {
            h.push_str("<table><tr><th>column</th><th>column</th><th>Pearson</th><th>Spearman</th></tr>");
            for p in &c.high {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&p.a),
                    escape(&p.b),
                    opt(p.pearson),
                    opt(p.spearman)
                );
            }
            h.push_str("</table>");
        }
    }
    h.push_str("</section>\n");

    // Missing values.
    h.push_str("<section id=\"missing\"><h2>Missing values</h2>");
    figure(&mut h, &Slot::Missing);
    h.push_str("<table><tr><th>column</th><th>nulls</th><th>percent</th></tr>");
    for v in profile.variables.iter().filter(|v| v.nulls.count > 0) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.2}%</td></tr>",
            escape(&v.name),
            v.nulls.count,
            v.nulls.percent
        );
    }
    h.push_str("</table></section>\n");

    // Outliers.
    h.push_str("<section id=\"outliers\"><h2>Outliers (IQR rule)</h2>");
    figure(&mut h, &Slot::Outliers);
    h.push_str(
        "<table><tr><th>column</th><th>lower fence</th><th>upper fence</th><th>outliers</th><th>percent</th></tr>",
    );
    for v in &profile.variables {
        if let Some(n) = &v.numeric {
            let o = &n.outliers;
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td></tr>",
                escape(&v.name),
                fmt_num(o.lower),
                fmt_num(o.upper),
                o.count,
                o.percent
            );
        }
    }
    h.push_str("</table></section>\n");

    // Duplicates and constants.
    let _ = write!(
        h,
        "<section id=\"duplicates\"><h2>Duplicates and constants</h2><p>{} duplicate row(s) ({:.2}% of rows).</p>",
        profile.duplicates.count, profile.duplicates.percent
    );
    if profile.constant_columns.is_empty() {
        h.push_str("<p>No constant columns.</p>");
    } else {
        let names: Vec<String> =
            profile.constant_columns.iter().map(|c| format!("<code>{}</code>", escape(c))).collect();
        let _ = write!(h, "<p>Constant columns: {}.</p>", names.join(", "));
    }
    h.push_str("</section>\n");

    // Charts from config.
    h.push_str("<section id=\"charts\"><h2>Charts</h2>");
    let configured = figures.iter().any(|f| f.slot == Slot::Chart);
    if !configured && meta.chart_files.is_empty() {
        h.push_str("<p>No charts configured (add a <code>plots:</code> section).</p>");
    }
    figure(&mut h, &Slot::Chart);
    if !meta.chart_files.is_empty() {
        h.push_str("<p>Written next to this report (they draw individual rows, so they are not embedded):</p><ul>");
        for f in &meta.chart_files {
            let _ = write!(h, "<li><code>{}</code></li>", escape(f));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>\n</main></body></html>\n");
    h
}

fn toc(h: &mut String, profile: &Profile) {
    h.push_str("<nav><strong>Contents</strong><ul>");
    for (id, label) in SECTIONS {
        let _ = write!(h, "<li><a href=\"#{id}\">{label}</a>");
        if id == "variables" {
            h.push_str("<ul>");
            for (i, v) in profile.variables.iter().enumerate() {
                let _ = write!(h, "<li><a href=\"#{}\">{}</a></li>", anchor(i, &v.name), escape(&v.name));
            }
            h.push_str("</ul>");
        }
        h.push_str("</li>");
    }
    h.push_str("</ul></nav>\n");
}

/// A column's heading and statistics table; leaves its `<div>` open for its chart.
fn variable(h: &mut String, i: usize, v: &ColumnSummary, profile: &Profile) {
    let t = v.dtype.map_or_else(|| v.storage.clone(), |t| t.to_string());
    let _ = write!(h, "<h3 id=\"{}\">{}<span class=\"tag\">{}</span>", anchor(i, &v.name), escape(&v.name), escape(&t));
    for w in profile.warnings.iter().filter(|w| w.column() == Some(v.name.as_str())) {
        let _ = write!(h, "<span class=\"tag warn\" title=\"{}\">warning</span>", escape(&w.message()));
    }
    h.push_str("</h3><div class=\"var\"><table>");
    let mut row = |k: &str, val: String| {
        let _ = write!(h, "<tr><th>{k}</th><td>{}</td></tr>", escape(&val));
    };
    row("count", v.count.to_string());
    row("nulls", format!("{} ({:.2}%)", v.nulls.count, v.nulls.percent));
    row("unique", v.unique.to_string());
    row("memory", bytes(v.memory_bytes));
    if let Some(n) = &v.numeric {
        row("mean", fmt_num(n.mean));
        row("std", opt(n.std));
        row("min", fmt_num(n.min));
        row("25%", fmt_num(n.q1));
        row("50%", fmt_num(n.median));
        row("75%", fmt_num(n.q3));
        row("max", fmt_num(n.max));
        row("skew", opt(n.skew));
        row("kurtosis", opt(n.kurtosis));
        row("zeros", n.zeros.to_string());
        row("outliers (IQR)", format!("{} ({:.2}%)", n.outliers.count, n.outliers.percent));
    }
    if let Some(t) = &v.temporal {
        row("min", t.min.clone());
        row("max", t.max.clone());
    }
    h.push_str("</table>");
    if !v.top.is_empty() && v.kind != Kind::Other {
        h.push_str("<table><tr><th>top values</th><th>count</th></tr>");
        for f in &v.top {
            let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", escape(&f.value), f.count);
        }
        h.push_str("</table>");
    }
}

/// The paths a report was written to.
#[derive(Clone, Debug)]
pub struct Written {
    /// `eda.json`.
    pub json: PathBuf,
    /// `eda.html`.
    pub html: PathBuf,
}

/// Writes `eda.json` and `eda.html` into `dir`, each to a temporary name first.
pub fn write_report(dir: &Path, profile: &Profile, html: &str) -> Result<Written> {
    let json = dir.join("eda.json");
    let page = dir.join("eda.html");
    mlops_core::io::atomic_write_json(&json, profile)?;
    mlops_core::io::atomic_write(&page, html.as_bytes())?;
    Ok(Written { json, html: page })
}
