//! Prometheus alerting rules and a Grafana dashboard for one served model, over the metrics that
//! step 20's `GET /metrics` exports.
//!
//! In: the model's name and the alert rules of `configs/monitoring.yaml`. Out: the text of a
//! Prometheus rule file ([`prometheus_rules`]) and a dashboard to import into Grafana
//! ([`grafana_dashboard`]); [`metric_names`] lists the metrics a PromQL expression reads, so a
//! test can hold both against what a live server exports.
//!
//! Scope: every expression keeps only the scrape targets (`instance`, `job`) whose
//! `mlops_model_version` gauge carries `model="<model>"`, so one Prometheus can watch the servers
//! of several models and an alert labelled with a model is about that model's servers. Service
//! alerts read the scoring routes only ([`SCORING_ROUTES`]): the probes and `/metrics` itself
//! would otherwise dilute latency and error rate.
//!
//! Invariants: nothing here reads a clock, touches the network or prints; the same inputs give
//! the same bytes.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::alerts::{AlertRule, Condition, Severity};

/// The `route` label values of the server's scoring routes, as a PromQL regular expression (fully
/// anchored, as PromQL's `=~` is). The server labels a request with its matched route template,
/// so the Open Inference Protocol routes carry `{name}` and `{version}` literally.
pub const SCORING_ROUTES: &str = "/invocations|/predict|/predict/batch|/v2/models/.+/infer";

/// The default latency alert's limit on the p99 of the scoring routes, in milliseconds.
const DEFAULT_LATENCY_P99_MS: f64 = 500.0;
/// The default error alert's limit on the share of scoring requests answered with a 5xx.
const DEFAULT_ERROR_RATE: f64 = 0.05;
/// The default volume alert's least number of predictions in the last hour.
const DEFAULT_PREDICTIONS_PER_HOUR: u64 = 1;

/// The kinds of service-side rule, each with a default when the config has none of its kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Latency,
    Errors,
    Volume,
}

impl Kind {
    /// How long the condition must hold before the alert fires: long enough that one slow
    /// scrape or a burst of bad requests during a deployment does not page anyone.
    fn hold(self) -> &'static str {
        match self {
            Kind::Latency | Kind::Errors => "10m",
            Kind::Volume => "15m",
        }
    }

    /// The alert name when the config's name gives none (and of the default rule).
    fn fallback_name(self) -> &'static str {
        match self {
            Kind::Latency => "MlopsLatencyHigh",
            Kind::Errors => "MlopsErrorRateHigh",
            Kind::Volume => "MlopsPredictionVolumeLow",
        }
    }
}

/// One alerting rule as written to the file.
struct Alert {
    name: String,
    expr: String,
    hold: &'static str,
    severity: Severity,
    summary: String,
    description: String,
}

/// The names of the rules that are always written (reserved before config names are turned into
/// alert names, so a config rule cannot take one).
const FIXED_NAMES: [&str; 3] = ["MlopsModelReloadFailed", "MlopsPredictionLogBroken", "MlopsPredictionLogDropping"];

/// A Prometheus alerting-rules file (YAML, one group `mlops-<model>`) for the server's own metrics.
///
/// Each service-side rule of `rules` becomes one alert named `Mlops` + the rule's name in
/// CamelCase (a number is appended when two names meet), with `for:`, labels `severity` and
/// `model`, and annotations `summary` and `description`:
///
/// - `latency_p99_ms_above: L`: the p99 of the scoring routes' latency histogram over 5 minutes
///   is above `L / 1000` seconds, for 10 minutes;
/// - `error_rate_above: R`: the share of scoring requests answered with a 5xx over 5 minutes is
///   above `R`, for 10 minutes (no traffic: no value, no alert; the volume rule covers that);
/// - `predictions_per_hour_below: N`: the model made fewer than `N` predictions in the last hour
///   (none at all, or no series yet, counts as 0), for 15 minutes.
///
/// When the config has no rule of one of these kinds, a default one is written in its place:
/// `MlopsLatencyHigh` (p99 above 500 ms, warning), `MlopsErrorRateHigh` (more than 5% 5xx,
/// critical) and `MlopsPredictionVolumeLow` (no prediction in an hour, warning).
///
/// Always written, per server: `MlopsModelReloadFailed` (a reload failed in the last 15 minutes;
/// the old model keeps serving; warning), `MlopsPredictionLogBroken` (the prediction log cannot
/// write for 5 minutes, so monitoring is blind; critical) and `MlopsPredictionLogDropping`
/// (entries were dropped in the last 15 minutes; warning).
///
/// The data-side rules (`dataset_drift`, `column_drift`, `performance_drop`) need the reference
/// data and the logged inputs, not counters: they are listed in a comment at the top of the file
/// as evaluated by `mlops monitor --check`.
pub fn prometheus_rules(model: &str, rules: &[AlertRule]) -> String {
    let scope = Scope::new(model);
    let mut used: BTreeSet<String> = FIXED_NAMES.iter().map(|n| n.to_string()).collect();
    used.extend([Kind::Latency, Kind::Errors, Kind::Volume].map(|k| k.fallback_name().to_string()));
    let mut alerts = Vec::new();
    let mut data_side = Vec::new();
    let mut seen = Vec::new();
    for rule in rules {
        let origin = format!("rule `{}` of the monitoring config", rule.name);
        let (kind, alert) = match &rule.when {
            Condition::LatencyP99MsAbove(ms) => (Kind::Latency, scope.latency(*ms, &origin)),
            Condition::ErrorRateAbove(rate) => (Kind::Errors, scope.errors(*rate, &origin)),
            Condition::PredictionsPerHourBelow(n) => (Kind::Volume, scope.volume(*n, &origin)),
            other => {
                data_side.push(format!("{}: {} ({})", rule.name, data_condition(other), severity_name(rule.severity)));
                continue;
            }
        };
        seen.push(kind);
        let name = unique(&mut used, alert_name(&rule.name).unwrap_or_else(|| kind.fallback_name().to_string()));
        alerts.push(Alert { name, severity: rule.severity, ..alert });
    }
    let default = "a default: the monitoring config has no rule of this kind";
    for (kind, alert) in [
        (Kind::Latency, scope.latency(DEFAULT_LATENCY_P99_MS, default)),
        (Kind::Errors, Alert { severity: Severity::Critical, ..scope.errors(DEFAULT_ERROR_RATE, default) }),
        (Kind::Volume, scope.volume(DEFAULT_PREDICTIONS_PER_HOUR, default)),
    ] {
        if !seen.contains(&kind) {
            alerts.push(Alert { name: kind.fallback_name().to_string(), ..alert });
        }
    }
    alerts.extend(scope.fixed());

    let mut out = String::new();
    let _ =
        writeln!(out, "# Prometheus alerting rules for the model `{}`, written by mlops (step 22).", comment(model));
    let _ = writeln!(out, "# They read the metrics of the model's servers (step 20's GET /metrics); load them with");
    let _ = writeln!(out, "# `rule_files:` in prometheus.yml and check them with `promtool check rules`.");
    let _ = writeln!(out, "#");
    if data_side.is_empty() {
        let _ = writeln!(out, "# Data-side rules (drift, performance): none in the monitoring config.");
    } else {
        let _ = writeln!(out, "# Data-side rules are not Prometheus rules: `mlops monitor --check` evaluates them");
        let _ = writeln!(out, "# against the prediction log and the reference data:");
        for line in &data_side {
            let _ = writeln!(out, "#   - {}", comment(line));
        }
    }
    let _ = writeln!(out, "groups:");
    let _ = writeln!(out, "  - name: {}", quote(&format!("mlops-{model}")));
    let _ = writeln!(out, "    rules:");
    for a in &alerts {
        let _ = writeln!(out, "      - alert: {}", a.name);
        let _ = writeln!(out, "        expr: {}", quote(&a.expr));
        let _ = writeln!(out, "        for: {}", a.hold);
        let _ = writeln!(out, "        labels:");
        let _ = writeln!(out, "          severity: {}", severity_name(a.severity));
        // Label values are expanded as templates too.
        let _ = writeln!(out, "          model: {}", quote(&literal(model)));
        let _ = writeln!(out, "        annotations:");
        let _ = writeln!(out, "          summary: {}", quote(&a.summary));
        let _ = writeln!(out, "          description: {}", quote(&a.description));
    }
    out
}

/// The expressions of one model's alerts.
struct Scope {
    /// The model's name as text for annotations (template delimiters made literal).
    model: String,
    /// `and on (instance, job) mlops_model_version{model="..."}`: keeps the model's servers.
    only: String,
}

impl Scope {
    fn new(model: &str) -> Scope {
        Scope {
            model: literal(model),
            only: format!("and on (instance, job) mlops_model_version{{model={}}}", promql_string(model)),
        }
    }

    fn latency(&self, ms: f64, origin: &str) -> Alert {
        let Scope { model, only } = self;
        let seconds = ms / 1000.0;
        Alert {
            name: String::new(),
            expr: format!(
                "histogram_quantile(0.99, sum by (le) (rate(mlops_request_duration_seconds_bucket{{route=~\"{SCORING_ROUTES}\"}}[5m]) {only})) > {seconds}"
            ),
            hold: Kind::Latency.hold(),
            severity: Severity::Warning,
            summary: format!("{model}: p99 latency above {ms} ms"),
            description: format!(
                "The 99th percentile of the scoring routes' latency over 5 minutes is {{{{ $value | humanizeDuration }}}}, above {ms} ms for 10 minutes ({}).",
                literal(origin)
            ),
        }
    }

    fn errors(&self, rate: f64, origin: &str) -> Alert {
        let Scope { model, only } = self;
        let requests = format!("mlops_requests_total{{route=~\"{SCORING_ROUTES}\"");
        Alert {
            name: String::new(),
            expr: format!(
                "sum(rate({requests},status=~\"5..\"}}[5m]) {only}) / sum(rate({requests}}}[5m]) {only}) > {rate}"
            ),
            hold: Kind::Errors.hold(),
            severity: Severity::Warning,
            summary: format!("{model}: more than {rate} of scoring requests fail"),
            description: format!(
                "{{{{ $value | humanizePercentage }}}} of the scoring requests over 5 minutes were answered with a 5xx, more than {rate} for 10 minutes ({}).",
                literal(origin)
            ),
        }
    }

    fn volume(&self, n: u64, origin: &str) -> Alert {
        let Scope { model, only } = self;
        Alert {
            name: String::new(),
            // `or vector(0)`: a server that never predicted has no series, and that is the case
            // this rule is for.
            expr: format!("(sum(increase(mlops_predictions_total[1h]) {only}) or vector(0)) < {n}"),
            hold: Kind::Volume.hold(),
            severity: Severity::Warning,
            summary: format!("{model}: fewer than {n} predictions in an hour"),
            description: format!(
                "The model made {{{{ $value | humanize }}}} predictions in the last hour, fewer than {n}, for 15 minutes ({}).",
                literal(origin)
            ),
        }
    }

    /// The rules written whatever the config says, per server.
    fn fixed(&self) -> [Alert; 3] {
        let Scope { model, only } = self;
        let [reload, broken, dropping] = FIXED_NAMES;
        [
            Alert {
                name: reload.to_string(),
                expr: format!("increase(mlops_model_reload_failures_total[15m]) > 0 {only}"),
                hold: "0m",
                severity: Severity::Warning,
                summary: format!("{model}: a model reload failed"),
                description: "{{ $labels.instance }} failed to load the model its alias now points at in the last 15 minutes; it keeps serving the previous one. Check the package and the server's log.".to_string(),
            },
            Alert {
                name: broken.to_string(),
                expr: format!("mlops_prediction_log_broken == 1 {only}"),
                hold: "5m",
                severity: Severity::Critical,
                summary: format!("{model}: the prediction log cannot write"),
                description: "{{ $labels.instance }} cannot write its prediction log (the store was removed or replaced): monitoring sees none of its predictions.".to_string(),
            },
            Alert {
                name: dropping.to_string(),
                expr: format!("increase(mlops_prediction_log_dropped_total[15m]) > 0 {only}"),
                hold: "5m",
                severity: Severity::Warning,
                summary: format!("{model}: the prediction log drops entries"),
                description: "{{ $labels.instance }} dropped {{ $value | humanize }} prediction log entries in the last 15 minutes (the queue was full or the store could not be written): monitoring sees only part of the traffic.".to_string(),
            },
        ]
    }
}

/// What a data-side condition checks, for the comment.
fn data_condition(c: &Condition) -> String {
    match c {
        Condition::DatasetDrift => "dataset_drift".to_string(),
        Condition::ColumnDrift(column) => format!("column_drift {column}"),
        Condition::PerformanceDrop { metric, more_than } => format!("performance_drop {metric} more than {more_than}"),
        Condition::PredictionsPerHourBelow(n) => format!("predictions_per_hour_below {n}"),
        Condition::LatencyP99MsAbove(ms) => format!("latency_p99_ms_above {ms}"),
        Condition::ErrorRateAbove(rate) => format!("error_rate_above {rate}"),
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// `Mlops` and the ASCII letters and digits of `name` in CamelCase (`p99 latency` →
/// `MlopsP99Latency`); `None` when it has none.
fn alert_name(name: &str) -> Option<String> {
    let mut out = String::from("Mlops");
    for word in name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    (out.len() > "Mlops".len()).then_some(out)
}

/// `name`, or `name2`, `name3`, ... when taken; recorded as taken.
fn unique(used: &mut BTreeSet<String>, name: String) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while used.contains(&candidate) {
        candidate = format!("{name}{n}");
        n += 1;
    }
    used.insert(candidate.clone());
    candidate
}

/// A YAML double-quoted scalar: `"` and `\` escaped, and every character YAML would not take
/// as printable (controls, line and paragraph separators, the byte order mark) as `\uXXXX`.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a YAML comment: one line.
fn comment(text: &str) -> String {
    text.chars().map(|c| if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') { ' ' } else { c }).collect()
}

/// Text placed in an annotation, which Prometheus expands as a Go template: a `{{` in a name
/// must stay text.
fn literal(text: &str) -> String {
    text.replace("{{", "{{`{{`}}")
}

/// A PromQL double-quoted string.
fn promql_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Grafana dashboard (JSON, schema version 39) for one model's servers.
///
/// Import it as it is (its `__inputs` asks for a Prometheus data source, `DS_PROMETHEUS`) or
/// provision it (a data source variable of that name picks one). An `instance` variable lists the
/// servers whose `mlops_model_version` carries this model's name, and every panel reads those
/// only. The uid is `mlops-<model>` when that is a valid uid of at most 40 characters, else
/// `mlops-`, the model's name cut to its valid characters and 12 hexadecimal digits of its
/// SHA-256: the same model always gets the same dashboard, and importing it again replaces it.
///
/// Panels: scoring requests per second by route and status; latency p50, p95 and p99
/// (`histogram_quantile`); error rate (5xx and 4xx shares); predictions per second by label;
/// rejected inputs by reason; unseen categories and out-of-range values by column; the prediction
/// log's written and dropped entries and whether it is broken; the model version and reloads.
pub fn grafana_dashboard(model: &str) -> Value {
    let ds = json!({ "type": "prometheus", "uid": "${DS_PROMETHEUS}" });
    let on = "instance=~\"$instance\"";
    let scoring = format!("{on},route=~\"{SCORING_ROUTES}\"");
    let rate = |selector: &str| format!("rate({selector}[$__rate_interval])");
    let quantile = |q: &str| {
        let buckets = rate(&format!("mlops_request_duration_seconds_bucket{{{scoring}}}"));
        (format!("histogram_quantile({q}, sum by (le) ({buckets}))"), format!("p{}", &q[2..]))
    };
    let requests = |status: &str| rate(&format!("mlops_requests_total{{{scoring}{status}}}"));
    let model_sel = format!("mlops_model_version{{model={},{on}}}", promql_string(model));
    let [p50, p95, p99] = ["0.50", "0.95", "0.99"].map(quantile);

    let panels = vec![
        Panel::new(
            "Scoring requests per second",
            "Requests to the scoring routes, by route and status.",
            "reqps",
            vec![(format!("sum by (route, status) ({})", requests("")), "{{route}} {{status}}".into())],
        ),
        Panel::new("Latency", "Percentiles of the scoring routes' response time.", "s", vec![p50, p95, p99]),
        Panel::new(
            "Error rate",
            "Share of scoring requests answered with a 5xx (the server failed) or a 4xx (the input was refused).",
            "percentunit",
            vec![
                (format!("sum({}) / sum({})", requests(",status=~\"5..\""), requests("")), "5xx".into()),
                (format!("sum({}) / sum({})", requests(",status=~\"4..\""), requests("")), "4xx".into()),
            ],
        ),
        Panel::new(
            "Predictions per second by label",
            "Rows predicted, by predicted class (`value` for a regressor).",
            "short",
            vec![(
                format!("sum by (label) ({})", rate(&format!("mlops_predictions_total{{{on}}}"))),
                "{{label}}".into(),
            )],
        ),
        Panel::new(
            "Rejected inputs by reason",
            "Requests refused for their input: malformed, invalid, too large, unsupported media type.",
            "reqps",
            vec![(
                format!("sum by (reason) ({})", rate(&format!("mlops_rejected_inputs_total{{{on}}}"))),
                "{{reason}}".into(),
            )],
        ),
        Panel::new(
            "Values unlike the training data",
            "Per input column: categories not seen in training and numbers outside the training range, answered.",
            "short",
            vec![
                (
                    format!("sum by (column) ({})", rate(&format!("mlops_unseen_categories_total{{{on}}}"))),
                    "unseen category: {{column}}".into(),
                ),
                (
                    format!("sum by (column) ({})", rate(&format!("mlops_out_of_range_total{{{on}}}"))),
                    "out of range: {{column}}".into(),
                ),
            ],
        ),
        Panel::new(
            "Prediction log",
            "Entries written to the prediction log and dropped (queue full or store not writable) per second, and the servers whose log cannot write (broken).",
            "short",
            vec![
                (format!("sum({})", rate(&format!("mlops_prediction_log_written_total{{{on}}}"))), "written".into()),
                (format!("sum({})", rate(&format!("mlops_prediction_log_dropped_total{{{on}}}"))), "dropped".into()),
                (format!("sum(mlops_prediction_log_broken{{{on}}})"), "broken".into()),
            ],
        ),
        Panel::new(
            "Model version and reloads",
            "The registered version served (0: a package path), and reloads after the alias moved, failed ones apart.",
            "short",
            vec![
                (format!("max({model_sel})"), "version".into()),
                (format!("sum(increase(mlops_model_reloads_total{{{on}}}[$__rate_interval]))"), "reloads".into()),
                (
                    format!("sum(increase(mlops_model_reload_failures_total{{{on}}}[$__rate_interval]))"),
                    "failed reloads".into(),
                ),
            ],
        ),
    ];
    let panels: Vec<Value> = panels
        .into_iter()
        .enumerate()
        .map(|(i, Panel { title, description, unit, queries })| {
            let targets: Vec<Value> = queries
                .into_iter()
                .zip('A'..)
                .map(|((expr, legend), ref_id)| {
                    json!({
                        "datasource": ds,
                        "expr": expr,
                        "legendFormat": legend,
                        "range": true,
                        "refId": ref_id.to_string(),
                    })
                })
                .collect();
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "description": description,
                "datasource": ds,
                "gridPos": { "h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8 },
                "fieldConfig": {
                    "defaults": { "unit": unit, "min": 0, "custom": { "drawStyle": "line", "fillOpacity": 10 } },
                    "overrides": [],
                },
                "options": {
                    "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
                    "tooltip": { "mode": "multi", "sort": "desc" },
                },
                "targets": targets,
            })
        })
        .collect();
    let instances = format!("label_values(mlops_model_version{{model={}}}, instance)", promql_string(model));
    json!({
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the model's servers.",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }],
        "__requires": [
            { "type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0" },
            { "type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0" },
            { "type": "panel", "id": "timeseries", "name": "Time series", "version": "" },
        ],
        "uid": dashboard_uid(model),
        "title": format!("mlops: {model}"),
        "description": format!("Service health of the model `{model}` from its servers' /metrics (written by mlops, step 22)."),
        "tags": ["mlops", "model-serving"],
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-6h", "to": "now" },
        "refresh": "30s",
        "timezone": "browser",
        "annotations": { "list": [] },
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "DS_PROMETHEUS",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": false,
                    "multi": false,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                },
                {
                    "name": "instance",
                    "label": "Server",
                    "type": "query",
                    "datasource": ds,
                    "definition": instances,
                    "query": instances,
                    "current": {},
                    "hide": 0,
                    "includeAll": true,
                    "multi": true,
                    "options": [],
                    "refresh": 2,
                    "regex": "",
                    "sort": 1,
                },
            ],
        },
        "panels": panels,
    })
}

/// A dashboard panel before layout.
struct Panel {
    title: &'static str,
    /// What it shows, for the panel's info tooltip.
    description: &'static str,
    /// Grafana's unit of its values.
    unit: &'static str,
    /// PromQL and legend of each query.
    queries: Vec<(String, String)>,
}

impl Panel {
    fn new(title: &'static str, description: &'static str, unit: &'static str, queries: Vec<(String, String)>) -> Self {
        Panel { title, description, unit, queries }
    }
}

/// The dashboard's uid: `mlops-<model>` when valid (letters, digits, `-`, `_`; at most 40
/// characters), else a readable prefix and part of the name's SHA-256.
fn dashboard_uid(model: &str) -> String {
    const MAX: usize = 40;
    let plain = format!("mlops-{model}");
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if plain.len() <= MAX && model.chars().all(valid) {
        return plain;
    }
    let hash = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(model.as_bytes()));
    let kept: String = model.chars().map(|c| if valid(c) { c } else { '_' }).take(MAX - "mlops-".len() - 13).collect();
    format!("mlops-{kept}-{}", &hash[..12])
}

/// The metric names a PromQL expression reads: identifiers starting with `mlops_`, outside
/// strings, in order of first appearance, each once. A histogram's series keep their suffix as
/// written (`mlops_request_duration_seconds_bucket`).
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut chars = expr.char_indices().peekable();
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while let Some((start, c)) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                // A string: skip to its closing quote (backslash escapes, except in raw strings).
                let mut escaped = false;
                for (_, d) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && c != '`' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
            }
            '#' => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            c if ident_start(c) => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, d)) = chars.peek() {
                    if !ident(d) {
                        break;
                    }
                    end = i + d.len_utf8();
                    chars.next();
                }
                let word = &expr[start..end];
                if word.starts_with("mlops_") && !names.iter().any(|n| n == word) {
                    names.push(word.to_string());
                }
            }
            c if c.is_ascii_digit() => {
                // A number (`5m`, `1e3`, `0x1f`): its letters are not a name.
                while chars.peek().is_some_and(|&(_, d)| ident(d) || d == '.') {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    names
}

#[cfg(test)]
mod tests;
