//! The window read from a real prediction log, accuracy from feedback, alert state, sinks and the config.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use mlops_core::testing::TestStore;

use crate::drift::{ColumnKind, Sample};
use crate::{ModelRef, MonitorError, Novelty, Volume, Window, read_current};

mlops_core::store_tests!(
    a_window_holds_one_models_requests_with_their_values_volume_latency_and_novelty,
    feedback_joined_to_the_window_gives_accuracy_overall_and_per_hour,
);

/// One logged request: at, model, version, columns, inputs, outputs, latency, novel.
type Logged<'a> = (&'a str, &'a str, u32, &'a str, &'a str, &'a str, f64, Option<&'a str>);

/// A store (on `at`'s backend) with the server's own prediction log table (step 20 creates it)
/// and `requests` in it; its setting as a path, as configs give it.
fn store_on(at: &TestStore, requests: &[Logged<'_>]) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(at.setting());
    step20_serve::read_predictions(&path, None, 1).unwrap();
    let db = at.open();
    for (i, (when, model, version, columns, inputs, outputs, latency, novel)) in requests.iter().enumerate() {
        let rows = serde_json::from_str::<Vec<serde_json::Value>>(inputs).unwrap().len();
        db.execute(
            "INSERT INTO prediction_requests (request_id, at, model_name, model_version, route, rows, columns, inputs, outputs, latency_ms, novel)
             VALUES (?1, ?2, ?3, ?4, '/invocations', ?5, ?6, ?7, ?8, ?9, ?10)",
            &[&format!("r{i}"), when, model, version, &rows, columns, inputs, outputs, latency, novel],
        )
        .unwrap();
    }
    path
}

/// [`store_on`] a SQLite file of its own.
fn store(requests: &[Logged<'_>]) -> (TestStore, std::path::PathBuf) {
    let at = TestStore::sqlite();
    let path = store_on(&at, requests);
    (at, path)
}

fn kinds() -> BTreeMap<String, ColumnKind> {
    [("mass".to_string(), ColumnKind::Numeric), ("island".to_string(), ColumnKind::Categorical)].into()
}

fn a_window_holds_one_models_requests_with_their_values_volume_latency_and_novelty(at: &TestStore) {
    let path = store_on(
        at,
        &[
            (
                "2026-12-07T09:59:59.000000Z",
                "penguins",
                1,
                r#"["island","mass"]"#,
                r#"[["Biscoe",3500.0]]"#,
                r#"[{"prediction":"Adelie"}]"#,
                1.5,
                None,
            ),
            (
                "2026-12-07T10:00:00.000000Z",
                "penguins",
                1,
                r#"["island","mass"]"#,
                r#"[["Biscoe",4000.5],["Dream",null]]"#,
                r#"[{"prediction":"Gentoo","probabilities":[0.1,0.9]},{"prediction":"Adelie"}]"#,
                2.0,
                Some(r#"{"island":{"unseen":1}}"#),
            ),
            (
                "2026-12-07T10:30:00.000000Z",
                "penguins",
                2,
                r#"["island","mass"]"#,
                r#"[["Torgersen",1.0]]"#,
                r#"[{"prediction":"Adelie"}]"#,
                9.0,
                None,
            ),
            (
                "2026-12-07T10:40:00.000000Z",
                "other",
                1,
                r#"["island","mass"]"#,
                r#"[["Torgersen",1.0]]"#,
                r#"[{"prediction":"Adelie"}]"#,
                9.0,
                None,
            ),
            // An older client that did not send `mass`.
            (
                "2026-12-07T11:15:00.000000Z",
                "penguins",
                1,
                r#"["island"]"#,
                r#"[["Dream"]]"#,
                r#"[{"prediction":"Chinstrap"}]"#,
                3.0,
                Some(r#"{"mass":{"out_of_range":2}}"#),
            ),
            (
                "2026-12-07T12:00:00.000000Z",
                "penguins",
                1,
                r#"["island","mass"]"#,
                r#"[["Biscoe",5000.0]]"#,
                r#"[{"prediction":"Gentoo"}]"#,
                4.0,
                None,
            ),
        ],
    );
    let model = ModelRef { name: "penguins".into(), version: Some(1) };
    // Bounds in another offset and format than the log's select by time, not by text.
    let window = Window::parse(Some("2026-12-07T11:00:00+01:00"), Some("2026-12-07T12:00:00Z")).unwrap();
    let current = read_current(&path, &model, &window, &kinds(), ColumnKind::Categorical).unwrap();
    assert_eq!(
        (current.requests, current.rows),
        (2, 3),
        "version 2, the other model and the instants outside are left out"
    );
    let Sample::Numeric(mass) = &current.columns["mass"] else { panic!("mass is numeric") };
    assert_eq!(
        (mass.values(), mass.missing()),
        (&[4000.5][..], 2),
        "a null and a column the request lacked are missing"
    );
    let Sample::Categorical(island) = &current.columns["island"] else { panic!("island is categorical") };
    assert_eq!(island.counts(), &BTreeMap::from([("Biscoe".to_string(), 1), ("Dream".to_string(), 2)]));
    let Sample::Categorical(labels) = &current.predictions else { panic!("labels are categories") };
    assert_eq!(labels.counts().values().sum::<u64>(), 3);
    assert_eq!(
        current.hours,
        BTreeMap::from([
            ("2026-12-07T10".to_string(), Volume { requests: 1, rows: 2, latency_ms: vec![2.0] }),
            ("2026-12-07T11".to_string(), Volume { requests: 1, rows: 1, latency_ms: vec![3.0] })
        ])
    );
    assert_eq!(current.novel["island"], Novelty { unseen: 1, out_of_range: 0 });
    assert_eq!(current.novel["mass"], Novelty { unseen: 0, out_of_range: 2 });
    assert_eq!(current.span, Some(("2026-12-07T10:00:00.000000Z".into(), "2026-12-07T11:15:00.000000Z".into())));

    let health = crate::health(&current);
    assert_eq!((health.requests, health.rows, health.min_rows_per_hour), (2, 3, Some(1)));
    let latency = health.latency.unwrap();
    assert_eq!((latency.p50, latency.max), (2.5, 3.0));
    assert!((latency.p99 - 2.99).abs() < 1e-12, "numpy's linear percentile: {}", latency.p99);
    assert_eq!(health.per_hour["2026-12-07T11"].latency.p99, 3.0);

    let reference: BTreeMap<String, Sample> = [(
        "mass".to_string(),
        Sample::Numeric(crate::drift::Numbers::new([Some(3000.0), None, Some(4000.0), Some(5000.0)])),
    )]
    .into();
    let q = crate::quality(&current, Some(&reference));
    assert_eq!(q.iter().map(|c| c.column.as_str()).collect::<Vec<_>>(), ["island", "mass"]);
    assert_eq!((q[0].unseen, q[0].missing, q[0].reference_missing_share), (1, 0, None));
    assert_eq!((q[1].values, q[1].missing, q[1].out_of_range), (1, 2, 2));
    assert!((q[1].missing_share - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(q[1].reference_missing_share, Some(0.25));

    let keys: std::collections::HashSet<String> =
        ["Dream".to_string(), "Biscoe".to_string(), "Nowhere".to_string()].into();
    let found = crate::find_by_key(&path, &model, "island", &keys).unwrap();
    assert_eq!(found.len(), 2, "a key never sent is absent: {found:?}");
    assert_eq!(found["Dream"], ("r4".to_string(), 0), "the latest prediction of a key wins");
    assert_eq!(found["Biscoe"], ("r5".to_string(), 0));

    let every_version = ModelRef { name: "penguins".into(), version: None };
    let all = read_current(&path, &every_version, &Window::default(), &kinds(), ColumnKind::Categorical).unwrap();
    assert_eq!((all.requests, all.rows), (5, 6));
    assert_eq!(crate::health(&all).min_rows_per_hour, Some(1), "09, 10, 11 and 12 each had a request");
    let gap = Window::parse(Some("2026-12-07T10:00:00Z"), None).unwrap();
    let gap = read_current(&path, &every_version, &gap, &kinds(), ColumnKind::Categorical).unwrap();
    assert_eq!(crate::health(&gap).min_rows_per_hour, Some(1));
    let nobody = ModelRef { name: "nobody".into(), version: None };
    assert_eq!(
        read_current(&path, &nobody, &Window::default(), &kinds(), ColumnKind::Categorical).unwrap().requests,
        0
    );
}

#[test]
fn a_missing_store_is_named_and_not_created_and_a_broken_entry_is_named_by_its_seq() {
    let err = Window::parse(Some("yesterday"), None).unwrap_err().to_string();
    assert!(err.starts_with("--from: `yesterday` "), "{err}");
    let err = Window::parse(Some("2026-12-07T10:00:00Z"), Some("2026-12-07T09:00:00Z")).unwrap_err().to_string();
    assert!(err.starts_with("--to: `2026-12-07T09:00:00.000000Z` it is not after `from`"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/registry.db");
    let model = ModelRef { name: "penguins".into(), version: None };
    let err = read_current(&missing, &model, &Window::default(), &kinds(), ColumnKind::Categorical).unwrap_err();
    assert!(matches!(err, MonitorError::NoStore { .. }), "{err}");
    assert!(err.to_string().contains("no/such/registry.db: no store there"), "{err}");
    assert!(!dir.path().join("no").exists(), "reading created a folder");
    // Every reader of the store says the same and creates nothing.
    let classes = crate::Outcomes::Classes(vec!["Adelie".into()]);
    let err = crate::read_accuracy(&missing, &model, &Window::default(), &classes, 13).unwrap_err();
    assert!(matches!(err, MonitorError::NoStore { .. }), "{err}");
    let err = crate::find_by_key(&missing, &model, "island", &Default::default()).unwrap_err();
    assert!(matches!(err, MonitorError::NoStore { .. }), "{err}");
    assert!(crate::alerts::open_alerts(&missing, "penguins").is_err());
    assert!(!dir.path().join("no").exists(), "reading created a folder");

    let (_dir, path) = store(&[
        (
            "2026-12-07T10:00:00.000000Z",
            "penguins",
            1,
            r#"["island"]"#,
            r#"[["Biscoe"]]"#,
            r#"[{"prediction":"Adelie"}]"#,
            1.0,
            None,
        ),
        (
            "2026-12-07T10:00:01.000000Z",
            "penguins",
            1,
            r#"["island"]"#,
            r#"[["Biscoe"],["Dream"]]"#,
            r#"[{"prediction":"Adelie"}]"#,
            1.0,
            None,
        ),
    ]);
    let err = read_current(&path, &model, &Window::default(), &kinds(), ColumnKind::Categorical).unwrap_err();
    assert!(err.to_string().contains("prediction_requests entry 2: 1 outputs and `rows` = 2 disagree"), "{err}");
}

mod alerts {
    use crate::alerts::{
        AlertRule, Condition, Findings, Severity, Transition, append_jsonl, check_code, check_rules, evaluate,
        open_alerts,
    };

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> mlops_core::Result<T> {
        mlops_core::config::parse_yaml(text, std::path::Path::new("configs/monitoring.yaml"))
    }

    fn rules() -> Vec<AlertRule> {
        yaml(
            "
- name: dataset drift
  when: dataset_drift
  severity: critical
- name: flipper
  when: {column_drift: flipper_length_mm}
- name: accuracy
  when: {performance_drop: {metric: accuracy, more_than: 0.05}}
  severity: critical
- name: quiet
  when: {predictions_per_hour_below: 10}
- name: slow
  when: {latency_p99_ms_above: 50}
- name: errors
  when: {error_rate_above: 0.01}
",
        )
        .unwrap()
    }

    fn transitions(events: &[crate::alerts::AlertEvent]) -> Vec<(&str, Transition)> {
        events.iter().map(|e| (e.name.as_str(), e.transition)).collect()
    }

    mlops_core::store_tests!(an_alert_fires_once_stays_open_and_is_resolved_when_its_rule_no_longer_holds);

    fn an_alert_fires_once_stays_open_and_is_resolved_when_its_rule_no_longer_holds(
        at: &mlops_core::testing::TestStore,
    ) {
        let store = std::path::PathBuf::from(at.setting());
        let dir = tempfile::tempdir().unwrap();
        let rules = rules();
        check_rules(&rules).unwrap();
        if at.location.sqlite_path().is_some() {
            // Alert state lives beside the log: a store that is not there is not made.
            let err = evaluate(&store, "penguins", &rules, &Findings::default(), "t").unwrap_err();
            assert!(matches!(err, crate::MonitorError::NoStore { .. }) && !store.exists(), "{err}");
            rusqlite::Connection::open(&store).unwrap();
        }
        let drifted = Findings {
            dataset_drift: true,
            drifted_columns: vec!["flipper_length_mm".into(), "island".into()],
            dataset_columns: Some((2, 3)),
            metrics: [("accuracy".to_string(), (0.97, 0.90))].into(),
            min_predictions_per_hour: Some(40),
            latency_p99_ms: Some(3.0),
            error_rate: Some(0.0),
        };
        let first = evaluate(&store, "penguins", &rules, &drifted, "2026-12-07T10:00:00Z").unwrap();
        assert_eq!(
            transitions(&first),
            [("dataset drift", Transition::Fired), ("flipper", Transition::Fired), ("accuracy", Transition::Fired)]
        );
        assert!(
            first[2].message.contains("accuracy 0.9000 is 0.0700 worse than the baseline 0.9700"),
            "{}",
            first[2].message
        );
        assert_eq!(first[0].message, "the dataset drifted: 2 of 3 columns");
        assert_eq!(check_code(&first), 2, "a critical alert is open");
        // The next run finds the same: nothing fires again.
        let second = evaluate(&store, "penguins", &rules, &drifted, "2026-12-07T11:00:00Z").unwrap();
        assert!(second.iter().all(|e| e.transition == Transition::StillOpen && e.opened_at == "2026-12-07T10:00:00Z"));
        // The model recovers but the column still drifts and traffic is thin.
        let better = Findings {
            dataset_drift: false,
            drifted_columns: vec!["flipper_length_mm".into()],
            metrics: [("accuracy".to_string(), (0.97, 0.95))].into(),
            min_predictions_per_hour: Some(3),
            ..drifted.clone()
        };
        let third = evaluate(&store, "penguins", &rules, &better, "2026-12-07T12:00:00Z").unwrap();
        assert_eq!(
            transitions(&third),
            [
                ("quiet", Transition::Fired),
                ("flipper", Transition::StillOpen),
                ("dataset drift", Transition::Resolved),
                ("accuracy", Transition::Resolved)
            ]
        );
        assert_eq!(check_code(&third), 1, "only warnings are open");
        let open: Vec<String> = open_alerts(&store, "penguins").unwrap().into_iter().map(|a| a.0).collect();
        assert_eq!(open, ["flipper", "quiet"]);
        // Another model's alerts are its own.
        assert!(open_alerts(&store, "other").unwrap().is_empty());
        // A rule taken out of the config resolves its open alert; a healthy run leaves nothing open.
        let fewer: Vec<AlertRule> = rules.iter().filter(|r| r.name != "quiet").cloned().collect();
        let healthy = Findings { drifted_columns: vec![], min_predictions_per_hour: Some(100), ..better };
        let fourth = evaluate(&store, "penguins", &fewer, &healthy, "2026-12-07T13:00:00Z").unwrap();
        assert_eq!(transitions(&fourth), [("flipper", Transition::Resolved), ("quiet", Transition::Resolved)]);
        assert_eq!(check_code(&fourth), 0);
        // And a rule that holds again fires again.
        let again = evaluate(&store, "penguins", &rules, &drifted, "2026-12-07T14:00:00Z").unwrap();
        assert_eq!(again.iter().filter(|e| e.transition == Transition::Fired).count(), 3);

        let log = dir.path().join("alerts/alerts.jsonl");
        append_jsonl(&log, &first).unwrap();
        append_jsonl(&log, &second).unwrap();
        append_jsonl(&log, &third).unwrap();
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3 + 3, "fired and resolved alerts are written, still-open ones are not repeated");
        assert_eq!(lines[3]["transition"], "fired");
        // A sink that cannot be written names its file.
        let blocked = log.join("under-a-file.jsonl");
        let err = append_jsonl(&blocked, &first).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:", blocked.display())), "{err}");
        assert_eq!(lines[3]["severity"], "warning");
    }

    #[test]
    fn lower_is_better_metrics_drop_when_they_rise_and_missing_findings_never_fire() {
        let rule = Condition::PerformanceDrop { metric: "rmse".into(), more_than: 0.5 };
        let f = Findings { metrics: [("rmse".to_string(), (2.0, 2.6))].into(), ..Findings::default() };
        assert!(rule.holds(&f).is_some());
        let f = Findings { metrics: [("rmse".to_string(), (2.0, 1.0))].into(), ..Findings::default() };
        assert!(rule.holds(&f).is_none(), "a smaller error is no drop");
        for c in [
            Condition::PredictionsPerHourBelow(5),
            Condition::LatencyP99MsAbove(1.0),
            Condition::ErrorRateAbove(0.0),
            rule,
        ] {
            assert!(c.holds(&Findings::default()).is_none(), "{c:?} fired without a value");
        }
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule_and_the_key() {
        let mut rules = rules();
        rules[3].name = "flipper".into();
        assert!(
            check_rules(&rules)
                .unwrap_err()
                .to_string()
                .starts_with("alerts[3].name: `flipper` names another alert too")
        );
        let mut rules = super::alerts::rules();
        rules[5].when = Condition::ErrorRateAbove(1.5);
        assert!(
            check_rules(&rules)
                .unwrap_err()
                .to_string()
                .starts_with("alerts[5].when.error_rate_above: 1.5 is out of range")
        );
        let err = yaml::<Vec<AlertRule>>("- name: x\n  when: {latency_p99: 3}\n").unwrap_err().to_string();
        assert!(err.contains("configs/monitoring.yaml") && err.contains("unknown variant `latency_p99`"), "{err}");
        assert_eq!(
            yaml::<Vec<AlertRule>>("- name: x\n  when: dataset_drift\n").unwrap()[0].severity,
            Severity::Warning
        );
    }
}

mod webhook {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::http::StatusCode;

    use crate::alerts::{AlertEvent, Severity, Transition, Webhook, post_webhook};

    /// A receiver on loopback that answers the n-th request (from 0) with `answer(n)` after
    /// `delay`, keeping the bodies it was sent.
    fn receiver(
        answer: fn(usize) -> StatusCode,
        delay: Duration,
    ) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (h, b) = (hits.clone(), bodies.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/hook",
                    axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                        let (h, b) = (h.clone(), b.clone());
                        async move {
                            let n = h.fetch_add(1, Ordering::SeqCst);
                            b.lock().unwrap().push(body);
                            tokio::time::sleep(delay).await;
                            answer(n)
                        }
                    }),
                );
                axum::serve(tokio::net::TcpListener::from_std(listener).unwrap(), app).await.unwrap();
            });
        });
        (url, hits, bodies)
    }

    fn events() -> Vec<AlertEvent> {
        let event = |name: &str, transition| AlertEvent {
            model: "penguins".into(),
            name: name.into(),
            severity: Severity::Critical,
            transition,
            message: "the dataset drifted (3 columns)".into(),
            opened_at: "2026-12-07T10:00:00Z".into(),
            at: "2026-12-07T10:00:00Z".into(),
        };
        vec![
            event("drift", Transition::Fired),
            event("slow", Transition::StillOpen),
            event("quiet", Transition::Resolved),
        ]
    }

    #[test]
    fn a_receiver_that_fails_first_gets_the_alerts_after_retries() {
        let (url, hits, bodies) =
            receiver(|n| if n < 2 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::NO_CONTENT }, Duration::ZERO);
        let hook = Webhook { url, backoff_ms: 20, ..Webhook::default() };
        let delivered = post_webhook(&hook, &events()).unwrap();
        assert_eq!((delivered.alerts, delivered.attempts, hits.load(Ordering::SeqCst)), (2, 3, 3));
        let names: Vec<String> = bodies.lock().unwrap()[2]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["drift", "quiet"], "an alert still open is not sent again");
        // Nothing new: no request at all.
        let quiet = events().into_iter().filter(|e| e.transition == Transition::StillOpen).collect::<Vec<_>>();
        assert_eq!(post_webhook(&hook, &quiet).unwrap().attempts, 0);
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_receiver_that_times_out_refuses_or_is_not_there_is_named_with_the_attempts() {
        let (url, hits, _) = receiver(|_| StatusCode::OK, Duration::from_secs(3));
        let slow = Webhook { url, timeout_ms: 200, retries: 1, backoff_ms: 10 };
        let err = post_webhook(&slow, &events()).unwrap_err().to_string();
        assert!(err.ends_with("/hook: no answer within 200 ms (after 2 attempt(s))"), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 2);

        let (url, hits, _) = receiver(|_| StatusCode::BAD_REQUEST, Duration::ZERO);
        let err =
            post_webhook(&Webhook { url, backoff_ms: 10, ..Webhook::default() }, &events()).unwrap_err().to_string();
        assert!(err.contains("answered 400 Bad Request; not retried (after 1 attempt(s))"), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let gone = Webhook { url: format!("http://{closed}/hook"), retries: 2, backoff_ms: 10, ..Webhook::default() };
        let err = post_webhook(&gone, &events()).unwrap_err().to_string();
        assert!(err.contains("cannot reach it") && err.ends_with("(after 3 attempt(s))"), "{err}");
    }
}

fn feedback_joined_to_the_window_gives_accuracy_overall_and_per_hour(at: &TestStore) {
    use crate::{Outcomes, read_accuracy};
    use step20_serve::{Actual, record_feedback};
    let path = store_on(
        at,
        &[
            (
                "2026-12-07T10:00:00.000000Z",
                "penguins",
                1,
                r#"["island"]"#,
                r#"[["Biscoe"],["Dream"]]"#,
                r#"[{"prediction":"Adelie","probabilities":[0.8,0.2]},{"prediction":"Gentoo","probabilities":[0.3,0.7]}]"#,
                1.0,
                None,
            ),
            (
                "2026-12-07T11:00:00.000000Z",
                "penguins",
                1,
                r#"["island"]"#,
                r#"[["Biscoe"],["Dream"]]"#,
                r#"[{"prediction":"Adelie","probabilities":[0.6,0.4]},{"prediction":"Adelie","probabilities":[0.9,0.1]}]"#,
                1.0,
                None,
            ),
            (
                "2026-12-07T13:00:00.000000Z",
                "penguins",
                1,
                r#"["island"]"#,
                r#"[["Biscoe"]]"#,
                r#"[{"prediction":"Gentoo","probabilities":[0.1,0.9]}]"#,
                1.0,
                None,
            ),
        ],
    );
    let actual =
        |id: &str, row: u32, label: &str| Actual { request_id: id.into(), row, actual: serde_json::json!(label) };
    let fed = [
        actual("r0", 0, "Adelie"),
        actual("r0", 1, "Gentoo"),
        actual("r1", 0, "Gentoo"),
        actual("r1", 1, "Emperor"),
        actual("r2", 0, "Gentoo"),
    ];
    let outcome = record_feedback(&path, &fed, "2026-12-07T14:00:00Z").unwrap().unwrap();
    assert_eq!(outcome.recorded, 5);
    let model = ModelRef { name: "penguins".into(), version: Some(1) };
    let classes = Outcomes::Classes(vec!["Adelie".into(), "Gentoo".into()]);
    let window = Window::parse(None, Some("2026-12-07T12:00:00Z")).unwrap();
    let acc = read_accuracy(&path, &model, &window, &classes, 13).unwrap();
    assert_eq!(
        (acc.labelled, acc.unknown_labels),
        (4, 1),
        "the hour-13 request is outside; Emperor is no class of the model"
    );
    assert!((acc.overall["accuracy"] - 2.0 / 3.0).abs() < 1e-12, "{:?}", acc.overall);
    assert!(acc.overall.contains_key("roc_auc") && acc.overall.contains_key("f1"));
    assert_eq!(acc.per_hour["2026-12-07T10"]["accuracy"], 1.0);
    assert_eq!(acc.per_hour["2026-12-07T11"]["accuracy"], 0.0);
    // A window without feedback scores nothing and says so by its counts.
    let later = Window::parse(Some("2026-12-07T15:00:00Z"), None).unwrap();
    assert_eq!(read_accuracy(&path, &model, &later, &classes, 13).unwrap(), crate::Accuracy::default());
}

#[test]
fn a_monitoring_config_reads_from_yaml_and_bad_values_name_their_key() {
    use crate::{MonitorConfig, parse_span};
    let parse = |text: &str| {
        mlops_core::config::parse_yaml::<MonitorConfig>(text, std::path::Path::new("configs/monitoring.yaml"))
    };
    let config = parse(
        "
window: {last: 7d}
drift:
  share: 0.4
  columns:
    Flipper Length (mm): {method: psi, threshold: 0.2}
alerts:
  - {name: drift, when: dataset_drift, severity: critical}
sinks:
  jsonl: reports/monitoring/alerts.jsonl
  webhook: {url: 'http://127.0.0.1:9/hook', retries: 2}
",
    )
    .unwrap();
    config.check().unwrap();
    assert_eq!(config.drift.rule("Flipper Length (mm)").threshold, Some(0.2));
    assert_eq!(config.sinks.webhook.as_ref().unwrap().timeout_ms, 5000, "defaults fill what is not given");
    assert_eq!(parse_span("90m").unwrap(), chrono::Duration::minutes(90));
    for (bad, want) in [
        ("0h", "not a positive span"),
        ("3y", "the unit is one of m, h, d, w"),
        ("h", "not a span"),
        ("99999999999w", "longer than a century"),
    ] {
        assert!(parse_span(bad).unwrap_err().contains(want), "{bad}");
    }
    let err = parse("window: {last: 3y}\n").unwrap().check().unwrap_err().to_string();
    assert!(err.starts_with("window.last: `3y`"), "{err}");
    let err = parse("sinks: {webhook: {url: 'ftp://x'}}\n").unwrap().check().unwrap_err().to_string();
    assert!(err.starts_with("sinks.webhook.url: `ftp://x` is not an http"), "{err}");
    let err = parse("drift: {share: 2}\n").unwrap().check().unwrap_err().to_string();
    assert!(err.starts_with("drift.share: 2 is not in (0, 1]"), "{err}");
    let err = parse("drift: {shares: 0.5}\n").unwrap_err().to_string();
    assert!(err.contains("configs/monitoring.yaml") && err.contains("unknown field `shares`"), "{err}");
}

/// The log's rows are read without a JSON tree: every value comes out as the tree would give it,
/// text with escapes included, and the rows are counted.
#[test]
fn logged_rows_read_without_a_json_tree_keep_every_value() {
    use crate::LoggedValue;
    let text = r#"[["Biscoe", 1.5, null, true, "a \"quoted\" name\n", 3], ["Dream", -2e3, 7, false, "", 0]]"#;
    let mut seen: Vec<Vec<String>> = Vec::new();
    let seed = crate::cell::Rows {
        on_row: |row: &[LoggedValue<'_>]| {
            seen.push(row.iter().map(|v| serde_json::to_string(v).unwrap()).collect());
        },
    };
    let mut reader = serde_json::Deserializer::from_str(text);
    let rows = serde::de::DeserializeSeed::deserialize(seed, &mut reader).unwrap();
    assert_eq!(rows, 2);
    let tree: Vec<Vec<serde_json::Value>> = serde_json::from_str(text).unwrap();
    let expected: Vec<Vec<String>> = tree
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| match v.as_f64() {
                    Some(x) => serde_json::to_string(&x).unwrap(),
                    None => v.to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(seen, expected);
    let bad = serde::de::DeserializeSeed::deserialize(
        crate::cell::Rows { on_row: |_: &[LoggedValue<'_>]| {} },
        &mut serde_json::Deserializer::from_str(r#"[["Biscoe", {"x": 1}]]"#),
    );
    assert!(bad.is_err(), "an object is not a logged value");
}
