//! The rules and the dashboard held against a live step 20 server's `/metrics`, and the rules
//! against `promtool`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Step 20's own test package: a small classifier with every input type, written by its tests.
#[path = "../../../step20-serve/tests/fixture/mod.rs"]
mod fixture;

use std::path::Path;
use std::process::Command;

use mlops_core::TaskKind;
use serde_json::{Value, json};
use step20_serve::{ModelSource, ServeConfig, Server};

use super::{SCORING_ROUTES, grafana_dashboard, metric_names, prometheus_rules};
use crate::alerts::AlertRule;

/// The fixture package's directory is named `pkg`: the server reports that as the model's name.
const MODEL: &str = "pkg";

fn rules(yaml: &str) -> Vec<AlertRule> {
    mlops_core::config::parse_yaml(yaml, Path::new("configs/monitoring.yaml")).unwrap()
}

/// A config with every kind of rule, names that need quoting and two names that CamelCase alike.
fn every_kind() -> Vec<AlertRule> {
    rules(
        r#"
- name: dataset drift
  when: dataset_drift
  severity: critical
- name: flipper
  when: {column_drift: flipper_length_mm}
- name: accuracy
  when: {performance_drop: {metric: accuracy, more_than: 0.05}}
  severity: critical
- name: "quiet: {{ $value }} \"hours\""
  when: {predictions_per_hour_below: 10}
- name: slow-p99
  when: {latency_p99_ms_above: 250}
- name: slow p99
  when: {latency_p99_ms_above: 1500}
  severity: critical
- name: errors
  when: {error_rate_above: 0.01}
"#,
    )
}

/// The rule file parsed back: `groups[0].rules`.
fn parsed_rules(text: &str) -> Vec<Value> {
    let file: Value = mlops_core::config::parse_yaml(text, Path::new("rules.yml")).unwrap();
    let groups = file["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{text}");
    assert_eq!(groups[0]["name"], "mlops-pkg");
    groups[0]["rules"].as_array().unwrap().clone()
}

fn rule<'a>(rules: &'a [Value], alert: &str) -> &'a Value {
    rules.iter().find(|r| r["alert"] == alert).unwrap_or_else(|| panic!("no alert {alert} in {rules:#?}"))
}

/// Every PromQL expression of the dashboard: the panels' targets and the variables' queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_string()))
        .collect();
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if var["type"] == "query" {
            exprs.push(var["query"].as_str().unwrap().to_string());
        }
    }
    exprs
}

/// Whether `route` is one of the alternatives of [`SCORING_ROUTES`] (which uses `.+` only).
fn scoring(route: &str) -> bool {
    SCORING_ROUTES.split('|').any(|alt| match alt.split_once(".+") {
        Some((pre, post)) => route.len() > pre.len() + post.len() && route.starts_with(pre) && route.ends_with(post),
        None => route == alt,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_read_is_one_a_live_server_exports() {
    let dir = tempfile::tempdir().unwrap();
    let package = fixture::package(dir.path(), MODEL, TaskKind::BinaryClassification, 1.0);
    let server = Server::bind(ServeConfig { port: 0, ..ServeConfig::default() }, ModelSource::Package(package), None)
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let post = |path: &str, body: String| {
        http.post(format!("{base}{path}")).header("content-type", "application/json").body(body).send()
    };

    // One answered request with a value of each kind unlike the training data (an unseen colour,
    // an x above the training range), so every labelled series exists; one refused request.
    let mut novel = fixture::raw(1);
    novel["color"] = json!("green");
    novel["x"] = json!(1000.0);
    let good = post("/invocations", json!({ "dataframe_records": [novel] }).to_string()).await.unwrap();
    assert_eq!(good.status(), 200, "{}", good.text().await.unwrap());
    let bad = post("/invocations", "{\"dataframe_records\": [".into()).await.unwrap();
    assert_eq!(bad.status(), 400);
    // The other scoring routes (their answers do not matter: each is counted under its route
    // template) and a probe, which is not a scoring route.
    for (path, body) in [
        ("/predict", json!({ "features": fixture::raw(2) })),
        ("/predict/batch", json!({ "instances": [fixture::raw(3)] })),
        ("/v2/models/pkg/infer", json!({ "inputs": [] })),
        ("/v2/models/pkg/versions/1/infer", json!({ "inputs": [] })),
    ] {
        post(path, body.to_string()).await.unwrap();
    }
    http.get(format!("{base}/ping")).send().await.unwrap();
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let _ = stop.send(());
    running.await.unwrap().unwrap();

    // The names of the exported series, as written (a histogram's `_bucket`, `_sum`, `_count`).
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    assert!(series.contains(&"mlops_unseen_categories_total"), "{metrics}");
    assert!(series.contains(&"mlops_out_of_range_total"), "{metrics}");
    assert!(metrics.contains("mlops_rejected_inputs_total{reason=\"malformed\"} 1"), "{metrics}");
    // The model scope every expression uses matches this server.
    assert!(metrics.contains("mlops_model_version{model=\"pkg\"} 0"), "{metrics}");

    let rule_exprs: Vec<String> = [every_kind(), Vec::new()]
        .iter()
        .flat_map(|config| parsed_rules(&prometheus_rules(MODEL, config)))
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rule_exprs.len(), 7 + 6, "{rule_exprs:#?}");
    let panel_exprs = dashboard_exprs(&grafana_dashboard(MODEL));
    assert!(panel_exprs.len() >= 15, "{panel_exprs:#?}");
    let mut missing = Vec::new();
    for expr in rule_exprs.iter().chain(&panel_exprs) {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "`{expr}` reads no mlops metric");
        for name in names {
            if !series.contains(&name.as_str()) {
                missing.push(format!("{name} (in `{expr}`)"));
            }
        }
    }
    assert!(missing.is_empty(), "not exported by the server: {missing:#?}\n{metrics}");

    // Every scoring route the server labelled is in the routes the expressions select; the probe
    // is not.
    let routes: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("mlops_requests_total{"))
        .filter_map(|l| l.split("route=\"").nth(1)?.split('"').next())
        .collect();
    let expected = [
        "/invocations",
        "/ping",
        "/predict",
        "/predict/batch",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ];
    assert_eq!(routes.iter().copied().collect::<Vec<_>>(), expected, "{metrics}");
    for route in routes {
        assert_eq!(scoring(route), route != "/ping", "{route}");
    }
}

#[test]
fn every_rule_kind_becomes_an_alert_or_a_comment_with_its_threshold_labels_and_a_valid_name() {
    let text = prometheus_rules(MODEL, &every_kind());
    let rules = parsed_rules(&text);
    let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "MlopsQuietValueHours",
            "MlopsSlowP99",
            "MlopsSlowP992",
            "MlopsErrors",
            "MlopsModelReloadFailed",
            "MlopsPredictionLogBroken",
            "MlopsPredictionLogDropping",
        ],
        "{text}"
    );
    for r in &rules {
        assert!(r["expr"].as_str().unwrap().contains("mlops_model_version{model=\"pkg\"}"), "{r}");
        assert_eq!(r["labels"]["model"], "pkg", "{r}");
        assert!(["warning", "critical"].contains(&r["labels"]["severity"].as_str().unwrap()), "{r}");
        assert!(r["for"].is_string() && r["annotations"]["summary"].is_string(), "{r}");
        assert!(r["annotations"]["description"].is_string(), "{r}");
    }
    let slow = rule(&rules, "MlopsSlowP99");
    assert!(slow["expr"].as_str().unwrap().ends_with(" > 0.25"), "{slow}");
    assert!(slow["expr"].as_str().unwrap().starts_with("histogram_quantile(0.99, sum by (le) (rate("), "{slow}");
    assert_eq!(slow["labels"]["severity"], "warning");
    let slower = rule(&rules, "MlopsSlowP992");
    assert!(slower["expr"].as_str().unwrap().ends_with(" > 1.5"), "{slower}");
    assert_eq!(slower["labels"]["severity"], "critical");
    assert!(rule(&rules, "MlopsErrors")["expr"].as_str().unwrap().ends_with(" > 0.01"));
    let quiet = rule(&rules, "MlopsQuietValueHours");
    assert!(quiet["expr"].as_str().unwrap().ends_with(") or vector(0)) < 10"), "{quiet}");
    // The rule's name reaches the annotation as text, not as a template action.
    assert!(quiet["annotations"]["description"].as_str().unwrap().contains("quiet: {{`{{`}} $value }} \"hours\""));
    // The data-side rules are listed for `mlops monitor --check`, not written as alerts.
    assert!(text.contains("`mlops monitor --check` evaluates them"), "{text}");
    for line in [
        "#   - dataset drift: dataset_drift (critical)",
        "#   - flipper: column_drift flipper_length_mm (warning)",
        "#   - accuracy: performance_drop accuracy more than 0.05 (critical)",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn the_threshold_follows_the_configured_limit_and_a_missing_kind_gets_its_default() {
    let with = |ms: u32| {
        let config = rules(&format!("- {{name: latency, when: {{latency_p99_ms_above: {ms}}}}}"));
        parsed_rules(&prometheus_rules(MODEL, &config))
    };
    let expr = |rules: &[Value], name: &str| rule(rules, name)["expr"].as_str().unwrap().to_string();
    assert!(expr(&with(250), "MlopsLatency").ends_with(" > 0.25"));
    assert!(expr(&with(75), "MlopsLatency").ends_with(" > 0.075"));
    assert!(expr(&with(2000), "MlopsLatency").ends_with(" > 2"));
    // A config latency rule replaces the default one; the other kinds get theirs.
    let names: Vec<String> = with(250).iter().map(|r| r["alert"].as_str().unwrap().to_string()).collect();
    assert!(!names.contains(&"MlopsLatencyHigh".to_string()), "{names:?}");
    assert!(
        names.contains(&"MlopsErrorRateHigh".to_string()) && names.contains(&"MlopsPredictionVolumeLow".to_string())
    );

    let defaults = parsed_rules(&prometheus_rules(MODEL, &[]));
    assert!(expr(&defaults, "MlopsLatencyHigh").ends_with(" > 0.5"));
    assert!(expr(&defaults, "MlopsErrorRateHigh").ends_with(" > 0.05"));
    assert_eq!(rule(&defaults, "MlopsErrorRateHigh")["labels"]["severity"], "critical");
    assert!(expr(&defaults, "MlopsPredictionVolumeLow").ends_with(" < 1"));
    assert_eq!(defaults.len(), 6);
    assert!(prometheus_rules(MODEL, &[]).contains("# Data-side rules (drift, performance): none"));
}

/// Runs `promtool` with `args` in `dir`; `None` (with a notice) when it is not installed, unless
/// `CI` is set: there `.ci/run` installs it, so a missing one fails.
fn promtool(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool").args(args).current_dir(dir).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: promtool is not on PATH (apt-get install prometheus); CI fails here");
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("promtool is not on PATH and CI is set: .ci/run installs it (Debian package prometheus)")
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    }
}

/// `promtool check rules` accepts the file written for a config with every kind of rule (and the
/// defaults for a model whose name needs quoting and escaping), and parses every query of the
/// dashboard, written as recording rules with Grafana's variables replaced. Without `promtool` on
/// PATH the test prints a skip notice and passes, unless the environment variable `CI` is set,
/// where it fails.
#[test]
fn promtool_accepts_the_rules_written_for_a_config_with_every_kind_of_rule() {
    let dir = tempfile::tempdir().unwrap();
    let odd = "odd \"name\" {{x}}";
    std::fs::write(dir.path().join("rules.yml"), prometheus_rules(MODEL, &every_kind())).unwrap();
    std::fs::write(dir.path().join("defaults.yml"), prometheus_rules(odd, &[])).unwrap();
    let queries: Vec<Value> = dashboard_exprs(&grafana_dashboard(odd))
        .iter()
        .map(|e| {
            // `label_values(SELECTOR, instance)` is Grafana's: its selector is the PromQL.
            let e = e.strip_prefix("label_values(").map_or(e.as_str(), |s| s.trim_end_matches(", instance)"));
            e.replace("$__rate_interval", "5m").replace("$instance", ".*")
        })
        .enumerate()
        .map(|(i, expr)| json!({ "record": format!("dashboard_query_{i}"), "expr": expr }))
        .collect();
    let count = queries.len();
    let file = json!({ "groups": [{ "name": "dashboard", "rules": queries }] });
    std::fs::write(dir.path().join("dashboard.json"), file.to_string()).unwrap();
    let Some(out) = promtool(dir.path(), &["check", "rules", "rules.yml", "defaults.yml", "dashboard.json"]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("SUCCESS: 7 rules found"), "{stdout}");
    assert!(stdout.contains("SUCCESS: 6 rules found"), "{stdout}");
    assert!(stdout.contains(&format!("SUCCESS: {count} rules found")), "{stdout}");
}

/// The alerts fire in `promtool test rules` on series made up to meet them, and only for the
/// model's own servers (another model's server with a broken log raises nothing). Skipped like
/// the check above without `promtool`.
#[test]
fn promtool_fires_the_alerts_on_series_that_meet_them_and_only_for_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = rules(
        "
- {name: slow, when: {latency_p99_ms_above: 250}}
- {name: errors, when: {error_rate_above: 0.1}}
- {name: quiet, when: {predictions_per_hour_below: 100}}
",
    );
    // Annotations are left out: promtool would compare their expanded text too.
    let mut rules = parsed_rules(&prometheus_rules(MODEL, &config));
    for r in &mut rules {
        r.as_object_mut().unwrap().remove("annotations");
    }
    let file = json!({ "groups": [{ "name": "mlops-pkg", "rules": rules }] });
    std::fs::write(dir.path().join("rules.json"), file.to_string()).unwrap();

    // Server `a` serves pkg: every scoring request takes 0.25-0.5 s, 20% answered 500, 30
    // predictions an hour, a reload fails at minute 3, its log is broken. Server `b` serves
    // another model and its log is broken too.
    let a = "instance=\"a\",job=\"mlops\"";
    let b = "instance=\"b\",job=\"mlops\"";
    let series =
        |name: &str, labels: &str, values: &str| json!({ "series": format!("{name}{{{labels}}}"), "values": values });
    let route = "route=\"/invocations\"";
    let mut input = vec![
        series("mlops_model_version", &format!("model=\"pkg\",{a}"), "3+0x40"),
        series("mlops_model_version", &format!("model=\"other\",{b}"), "1+0x40"),
        series("mlops_prediction_log_broken", a, "1+0x40"),
        series("mlops_prediction_log_broken", b, "1+0x40"),
        series("mlops_model_reload_failures_total", a, "0 0 0 1+0x37"),
        series("mlops_model_reload_failures_total", b, "0+0x40"),
        series("mlops_prediction_log_dropped_total", a, "0+0x40"),
        series("mlops_predictions_total", &format!("label=\"yes\",{a}"), "0+0.5x40"),
        series("mlops_requests_total", &format!("{route},status=\"200\",{a}"), "0+8x40"),
        series("mlops_requests_total", &format!("{route},status=\"500\",{a}"), "0+2x40"),
        series("mlops_requests_total", &format!("route=\"/metrics\",status=\"200\",{a}"), "0+100x40"),
        series("mlops_request_duration_seconds_bucket", &format!("{route},le=\"+Inf\",{a}"), "0+10x40"),
    ];
    for le in ["0.1", "0.25"] {
        input.push(series("mlops_request_duration_seconds_bucket", &format!("{route},le=\"{le}\",{a}"), "0+0x40"));
    }
    for le in ["0.5", "1", "5"] {
        input.push(series("mlops_request_duration_seconds_bucket", &format!("{route},le=\"{le}\",{a}"), "0+10x40"));
    }
    let alert = |severity: &str, server: bool| {
        let mut labels = json!({ "severity": severity, "model": "pkg" });
        if server {
            labels["instance"] = json!("a");
            labels["job"] = json!("mlops");
        }
        json!({ "exp_labels": labels })
    };
    let expect =
        |name: &str, alerts: Vec<Value>| json!({ "eval_time": "30m", "alertname": name, "exp_alerts": alerts });
    let tests = json!({
        "rule_files": ["rules.json"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input,
            "alert_rule_test": [
                expect("MlopsSlow", vec![alert("warning", false)]),
                expect("MlopsErrors", vec![alert("warning", false)]),
                expect("MlopsQuiet", vec![alert("warning", false)]),
                expect("MlopsPredictionLogBroken", vec![alert("critical", true)]),
                expect("MlopsPredictionLogDropping", vec![]),
                expect("MlopsErrorRateHigh", vec![]),
                // The failure at minute 3 is out of the 15-minute window at minute 30...
                expect("MlopsModelReloadFailed", vec![]),
            ],
        }, {
            "interval": "1m",
            "input_series": [
                series("mlops_model_version", &format!("model=\"pkg\",{a}"), "3+0x40"),
                series("mlops_model_reload_failures_total", a, "0 0 0 1+0x37"),
            ],
            "alert_rule_test": [
                // ...and inside it at minute 10.
                { "eval_time": "10m", "alertname": "MlopsModelReloadFailed",
                  "exp_alerts": [alert("warning", true)] },
            ],
        }],
    });
    std::fs::write(dir.path().join("tests.json"), tests.to_string()).unwrap();
    let Some(out) = promtool(dir.path(), &["test", "rules", "tests.json"]) else { return };
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn metric_names_are_the_mlops_identifiers_outside_strings_each_once() {
    let expr = r#"sum(rate(mlops_requests_total{route=~"mlops_not_a_metric",status=~"5.."}[5m])) / sum(rate(mlops_requests_total[5m])) > 0.05 and on (instance) mlops_model_version{model='mlops_x\'y'} or histogram_quantile(0.5, mlops_request_duration_seconds_bucket) + up"#;
    assert_eq!(
        metric_names(expr),
        ["mlops_requests_total", "mlops_model_version", "mlops_request_duration_seconds_bucket"]
    );
    assert!(metric_names("vector(1) + 5m").is_empty());
}

#[test]
fn the_dashboard_is_deterministic_with_a_valid_uid_and_a_prometheus_query_in_every_panel() {
    let d = grafana_dashboard("penguins-species");
    assert_eq!(d, grafana_dashboard("penguins-species"));
    assert_eq!(d["uid"], "mlops-penguins-species");
    assert_eq!(d["schemaVersion"], 39);
    assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert!(
        d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource")
    );
    let panels = d["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels.iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "Scoring requests per second",
            "Latency",
            "Error rate",
            "Predictions per second by label",
            "Rejected inputs by reason",
            "Values unlike the training data",
            "Prediction log",
            "Model version and reloads",
        ]
    );
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{p}");
        for t in p["targets"].as_array().unwrap() {
            assert!(t["expr"].as_str().unwrap().contains("instance=~\"$instance\""), "{t}");
        }
    }
    let latency: Vec<&str> =
        panels[1]["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap()).collect();
    for q in ["0.50", "0.95", "0.99"] {
        assert!(latency.iter().any(|e| e.starts_with(&format!("histogram_quantile({q}, "))), "{latency:?}");
    }

    // A uid is at most 40 letters, digits, `-` and `_`, and names that clean up alike differ.
    let uids: Vec<String> = ["a.b", "a_b", &"m".repeat(200), "x"]
        .iter()
        .map(|m| grafana_dashboard(m)["uid"].as_str().unwrap().to_string())
        .collect();
    for uid in &uids {
        assert!(uid.len() <= 40 && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{uid}");
    }
    assert_ne!(uids[0], uids[1]);
    assert_eq!(uids[3], "mlops-x");
}
