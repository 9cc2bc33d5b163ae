//! The server on an ephemeral loopback port, driven over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fixture;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlops_core::{Row, TaskKind};
use serde_json::{Value as Json, json};
use step17_registry::{RegisterInfo, Registry};
use step20_serve::{CategoryPolicy, ModelSource, ServeConfig, Server};

struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<step20_serve::Result<step20_serve::Stopped>>,
    http: reqwest::Client,
}

impl Running {
    async fn start(config: ServeConfig, source: ModelSource, store: Option<&Path>) -> Running {
        let server = Server::bind(ServeConfig { port: 0, ..config }, source, store).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Running { base, stop: Some(tx), task, http: reqwest::Client::new() }
    }

    /// Stops the server; every row it predicted was written to the log or counted as dropped.
    async fn stop(mut self) -> step20_serve::Stopped {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let stopped = self.task.await.unwrap().unwrap();
        if stopped.logged {
            assert_eq!(stopped.predicted, stopped.log_written + stopped.log_dropped, "{stopped:?}");
        }
        stopped
    }

    async fn post(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Json) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Json::String(text)))
    }

    async fn json(&self, path: &str, body: &Json) -> (u16, Json) {
        self.post(path, "application/json", body.to_string()).await
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn package_source(dir: &Path, task: TaskKind) -> ModelSource {
    ModelSource::Package(fixture::package(dir, "pkg", task, 1.0))
}

/// What the scorer gives for rows 0..n, without HTTP: the reference for bit-for-bit checks.
fn direct(dir: &Path, n: usize) -> (Vec<Json>, Vec<Vec<f64>>) {
    let scorer = ModelSource::Package(dir.join("pkg")).load(CategoryPolicy::Warn).unwrap();
    let mut rows: Vec<Row> = (0..n).map(fixture::row).collect();
    let scored = scorer.score(&mut rows).unwrap();
    (scored.predicted.iter().map(|&p| scorer.label(p)).collect(), scored.proba.unwrap())
}

fn records(n: usize) -> Vec<Json> {
    (0..n).map(fixture::raw).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_and_format_gives_the_same_predictions_as_the_scorer() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Running::start(ServeConfig::default(), package_source(dir.path(), TaskKind::BinaryClassification), None).await;
    let n = 12;
    let (labels, proba) = direct(dir.path(), n);
    let recs = records(n);
    let columns: Vec<&str> = ["x", "n", "color", "day", "flag", "note"].into();
    let split_data: Vec<Vec<Json>> = recs.iter().map(|r| columns.iter().map(|c| r[c].clone()).collect()).collect();
    let columnar: serde_json::Map<String, Json> =
        columns.iter().map(|c| (c.to_string(), Json::Array(recs.iter().map(|r| r[c].clone()).collect()))).collect();
    let bodies = [
        json!({ "dataframe_split": { "columns": columns, "data": split_data } }),
        json!({ "dataframe_split": { "index": (0..n).collect::<Vec<_>>(), "columns": columns, "data": split_data } }),
        json!({ "dataframe_records": recs }),
        json!({ "instances": recs }),
        json!({ "instances": split_data }),
        json!({ "inputs": columnar }),
        json!({ "inputs": recs, "params": { "ignored": true } }),
    ];
    for body in &bodies {
        let (status, answer) = server.json("/invocations", body).await;
        assert_eq!(status, 200, "{body}: {answer}");
        assert_eq!(answer["predictions"], Json::Array(labels.clone()), "{body}");
    }
    // CSV with a header, columns in another order and an extra column.
    let mut csv = String::from("note,extra,day,color,flag,n,x\n");
    for r in &recs {
        csv.push_str(&format!(
            "{},zzz,{},{},{},{},{}\n",
            r["note"].as_str().unwrap(),
            r["day"].as_str().unwrap(),
            r["color"].as_str().unwrap(),
            r["flag"],
            r["n"],
            r["x"]
        ));
    }
    let (status, answer) = server.post("/invocations", "text/csv", csv).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["predictions"], Json::Array(labels.clone()));

    // OIP: one tensor per column, then one [N, F] tensor; probabilities bit for bit.
    let tensors: Vec<Json> = columns
        .iter()
        .map(|c| {
            let datatype = match *c {
                "x" => "FP64",
                "n" => "INT64",
                "flag" => "BOOL",
                _ => "BYTES",
            };
            json!({ "name": c, "shape": [n], "datatype": datatype, "data": recs.iter().map(|r| r[c].clone()).collect::<Vec<_>>() })
        })
        .collect();
    let flat: Vec<Json> = split_data.iter().flatten().cloned().collect();
    let whole = json!({ "id": "t1", "inputs": [{ "name": "input-0", "shape": [n, columns.len()], "datatype": "BYTES", "data": flat }] });
    for body in [json!({ "id": "t1", "inputs": tensors }), whole] {
        let (status, answer) = server.json("/v2/models/pkg/infer", &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["id"], "t1");
        assert_eq!(answer["model_name"], "pkg");
        let outputs = answer["outputs"].as_array().unwrap();
        assert_eq!(outputs[0]["name"], "label");
        assert_eq!(outputs[0]["data"], Json::Array(labels.clone()));
        assert_eq!(outputs[1]["shape"], json!([n, 2]));
        let served: Vec<u64> =
            outputs[1]["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap().to_bits()).collect();
        let expected: Vec<u64> = proba.iter().flatten().map(|p| p.to_bits()).collect();
        assert_eq!(served, expected, "probabilities differ in their bits");
    }
    let (status, answer) = server.json("/v2/models/pkg/versions/1/infer", &json!({ "inputs": [{ "name": "x", "shape": [1], "datatype": "FP64", "data": [1.0] }], "outputs": [{ "name": "label" }] })).await;
    assert_eq!(status, 400, "missing columns in OIP: {answer}");
    assert!(answer["error"].as_str().unwrap().contains("`color`"), "{answer}");

    // The workflow's routes.
    let (status, one) = server.json("/predict", &json!({ "features": recs[3] })).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["prediction"], labels[3]);
    let top = proba[3].iter().copied().fold(0.0, f64::max);
    assert_eq!(one["probability"].as_f64().unwrap().to_bits(), top.to_bits());
    let band = if top > 0.8 {
        "high"
    } else if top > 0.6 {
        "medium"
    } else {
        "low"
    };
    assert_eq!(one["confidence"], band);
    assert_eq!(one["probabilities"]["yes"].as_f64().unwrap().to_bits(), proba[3][1].to_bits());
    let (status, bare) = server.json("/predict", &recs[3]).await;
    assert_eq!((status, &bare["prediction"]), (200, &labels[3]));
    let (status, batch) = server.json("/predict/batch", &json!({ "instances": recs })).await;
    assert_eq!(status, 200);
    let predicted: Vec<Json> =
        batch["predictions"].as_array().unwrap().iter().map(|p| p["prediction"].clone()).collect();
    assert_eq!(predicted, labels);

    for (path, needle) in [
        ("/ping", "\n"),
        ("/health", "\"healthy\""),
        ("/version", env!("CARGO_PKG_VERSION")),
        ("/v2", "\"mlops-toolkit\""),
        ("/v2/health/live", "\"live\":true"),
        ("/v2/health/ready", "\"ready\":true"),
        ("/v2/models/pkg", "\"BYTES\""),
        ("/v2/models/pkg/ready", "\"ready\":true"),
        ("/model_info", "\"logistic_regression\""),
        ("/openapi.json", "\"/v2/models/{name}/infer\""),
    ] {
        let (status, text) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {text}");
        assert!(text.contains(needle), "{path}: {text}");
    }
    for path in ["/v2/models/pkg/versions/1", "/v2/models/pkg/versions/1/ready"] {
        let (status, text) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {text}");
    }
    let (status, text) = server.get("/v2/models/pkg/versions/2/ready").await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("`pkg version 2` is not served here"), "{text}");
    let (status, answer) = server.json("/v2/models/pkg/versions/2/infer", &json!({ "inputs": [] })).await;
    assert_eq!(status, 404, "{answer}");
    // No token configured: reload is refused, not open.
    let r = server.http.post(format!("{}/admin/reload", server.base)).bearer_auth("x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("MLOPS_ADMIN_TOKEN"));
    let (status, text) = server.get("/v2/models/other/ready").await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("`pkg`"), "{text}");
    let (status, _) = server.get("/no/such/route").await;
    assert_eq!(status, 404);

    let (_, metrics) = server.get("/metrics").await;
    for needle in [
        "mlops_requests_total{route=\"/invocations\",status=\"200\"} 8",
        "mlops_request_duration_seconds_bucket{route=\"/invocations\",le=\"+Inf\"} 8",
        "mlops_rejected_inputs_total{reason=\"malformed\"} 1",
        "mlops_model_version{model=\"pkg\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    // Rows predicted: 8 bodies and 2 tensors of n rows, 2 single rows (row 3), one batch of n.
    let yes = labels.iter().filter(|l| *l == "yes").count();
    let expected = 11 * yes + 2 * usize::from(labels[3] == "yes");
    let line = metrics.lines().find(|l| l.starts_with("mlops_predictions_total{label=\"yes\"}")).unwrap();
    assert_eq!(line.rsplit(' ').next().unwrap(), expected.to_string(), "{line}");
    server.stop().await;
}

/// A value unlike the training data (an unseen category, a number outside the training range) is
/// answered, counted per column in `/metrics` and recorded with the request in the prediction log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_unlike_the_training_data_are_answered_counted_per_column_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let server = Running::start(
        ServeConfig::default(),
        package_source(dir.path(), TaskKind::BinaryClassification),
        Some(&store),
    )
    .await;
    let mut odd = fixture::raw(1);
    odd["color"] = json!("green");
    odd["x"] = json!(500.0);
    let mut low = fixture::raw(2);
    low["x"] = json!(-3);
    let (status, answer) =
        server.json("/invocations", &json!({ "dataframe_records": [fixture::raw(0), odd, low] })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 3);
    let (status, answer) = server.json("/invocations", &json!({ "instances": [fixture::raw(3)] })).await;
    assert_eq!(status, 200, "{answer}");
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.contains("mlops_unseen_categories_total{column=\"color\"} 1\n"), "{metrics}");
    assert!(metrics.contains("mlops_out_of_range_total{column=\"x\"} 2\n"), "{metrics}");
    server.stop().await;
    let conn = rusqlite::Connection::open(&store).unwrap();
    let novel: Vec<Option<String>> = conn
        .prepare("SELECT novel FROM prediction_requests ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(novel, [Some(r#"{"x":{"out_of_range":2},"color":{"unseen":1}}"#.to_string()), None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_naming_the_column_and_never_a_500() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        unknown_categories: CategoryPolicy::Strict,
        max_batch_rows: 5,
        max_body_bytes: 4096,
        ..ServeConfig::default()
    };
    let server = Running::start(config, package_source(dir.path(), TaskKind::BinaryClassification), None).await;
    let with = |key: &str, value: Json| {
        let mut r = fixture::raw(1);
        r[key] = value;
        json!({ "dataframe_records": [fixture::raw(0), r] })
    };
    let without = |key: &str| {
        let mut r = fixture::raw(1);
        r.as_object_mut().unwrap().remove(key);
        json!({ "dataframe_records": [r] })
    };
    let cases: Vec<(Json, u16, &str)> = vec![
        (without("x"), 400, "`x`"),
        (without("day"), 400, "`day`"),
        (with("x", json!("heavy")), 400, "`x`: has type string, expected float"),
        (with("n", json!(1.5)), 400, "`n`"),
        (with("flag", json!("yes")), 400, "`flag`"),
        (with("day", json!("yesterday")), 400, "`day`"),
        (with("color", json!("green")), 422, "`color`: unseen category \"green\""),
        (with("x", Json::Null), 422, "`x`: null or NaN"),
        (json!({ "dataframe_records": [fixture::raw(0)], "instances": [] }), 400, "exactly one of"),
        (json!({ "records": [] }), 400, "unknown key `records`"),
        (json!([1, 2]), 400, "JSON object"),
        (json!({ "dataframe_split": { "columns": ["x"], "data": [[1, 2]] } }), 400, "dataframe_split.data[0]"),
        (json!({ "instances": (0..6).map(fixture::raw).collect::<Vec<_>>() }), 413, "6 rows"),
    ];
    for (body, status, needle) in &cases {
        let (got, answer) = server.json("/invocations", body).await;
        assert_eq!(got, *status, "{body} -> {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{body}: {message:?} lacks {needle:?}");
        assert_eq!(answer["error_code"], if *status == 422 { "INVALID_PARAMETER_VALUE" } else { "BAD_REQUEST" });
    }
    let (status, answer) = server.json("/invocations", &with("x", json!("heavy"))).await;
    assert_eq!((status, answer["column"].as_str(), answer["row"].as_u64()), (400, Some("x"), Some(1)));
    // Not JSON at all, a CSV NaN, a wrong content type, a body over the limit.
    let (status, answer) = server.post("/invocations", "application/json", "{\"instances\": [").await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("not valid JSON"));
    let (status, answer) = server.post("/invocations", "text/csv", "x,n,color,day\nNaN,1,red,2024-01-01\n").await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["column"], "x");
    let (status, answer) = server.post("/invocations", "text/plain", "x\n1\n").await;
    assert_eq!(status, 415, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("text/plain"));
    let big = format!("{{\"instances\": [{}]}}", "1,".repeat(5000));
    let (status, answer) = server.post("/invocations", "application/json", big).await;
    assert_eq!(status, 413, "{answer}");
    // Extra columns are ignored; the optional ones may be left out.
    let mut extra = fixture::raw(2);
    extra["unexpected"] = json!([1, 2, 3]);
    extra.as_object_mut().unwrap().remove("note");
    extra["flag"] = Json::Null;
    let (status, answer) = server.json("/invocations", &json!({ "dataframe_records": [extra] })).await;
    assert_eq!(status, 200, "{answer}");
    // The other routes say the same in their own words.
    let (status, answer) = server.json("/predict", &json!({ "features": { "x": 1.0 } })).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["column"], "color");
    let (status, answer) = server
        .json(
            "/v2/models/pkg/infer",
            &json!({ "inputs": [{ "name": "t", "shape": [2, 6], "datatype": "FP64", "data": [1, 2, 3] }] }),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("holds 12 values"), "{answer}");
    let (status, answer) = server.json("/v2/models/nope/infer", &json!({ "inputs": [] })).await;
    assert_eq!(status, 404, "{answer}");
    // `/predict/batch` names the row and the column, and keeps to the same limits.
    let mut missing = fixture::raw(1);
    missing.as_object_mut().unwrap().remove("x");
    let mut fractional = fixture::raw(2);
    fractional["n"] = json!(1.5);
    let mut missing_value = fixture::raw(2);
    missing_value["x"] = Json::Null;
    // Each body with its status, the `[column, row]` the answer names, and part of its message.
    let none = json!([null, null]);
    let batch_cases: Vec<(Json, u16, Json, &str)> = vec![
        (json!({ "instances": [fixture::raw(0), missing] }), 400, json!(["x", 1]), "`x`"),
        (json!([fixture::raw(0), fixture::raw(1), fractional]), 400, json!(["n", 2]), "`n`"),
        (json!([fixture::raw(0), fixture::raw(1), missing_value]), 422, json!(["x", 2]), "`x`: null or NaN"),
        (json!({ "rows": [fixture::raw(0)] }), 400, none.clone(), "{\"instances\": [...]}"),
        (json!("x"), 400, none.clone(), "a list of records"),
        (json!({ "instances": [1, 2] }), 400, none.clone(), "`instances[0]` is not an object"),
        (json!({ "instances": (0..6).map(fixture::raw).collect::<Vec<_>>() }), 413, none, "6 rows"),
    ];
    for (body, status, named, needle) in &batch_cases {
        let (got, answer) = server.json("/predict/batch", body).await;
        assert_eq!(got, *status, "{body} -> {answer}");
        assert_eq!(&json!([answer["column"], answer["row"]]), named, "{body} -> {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{body}: {message:?} lacks {needle:?}");
        assert_eq!(answer["error_code"], if *status == 422 { "INVALID_PARAMETER_VALUE" } else { "BAD_REQUEST" });
    }
    let (status, answer) = server.post("/predict/batch", "application/json", "[{\"x\": 1").await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("not valid JSON"), "{answer}");
    // Still serving.
    let (status, _) = server.json("/invocations", &json!({ "instances": [fixture::raw(0)] })).await;
    assert_eq!(status, 200);
    let (_, metrics) = server.get("/metrics").await;
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
    assert!(metrics.contains("mlops_rejected_inputs_total{reason=\"invalid\"}"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oip_tensors_whose_datatype_is_unknown_or_does_not_hold_their_data_get_400_naming_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Running::start(ServeConfig::default(), package_source(dir.path(), TaskKind::BinaryClassification), None).await;
    let n = 3;
    let recs = records(n);
    // One tensor per column, with the datatypes a client takes from `GET /v2/models/pkg`.
    let tensors = |edit: &dyn Fn(&str) -> Option<(&'static str, Json)>| -> Json {
        let inputs: Vec<Json> = ["x", "n", "color", "day", "flag", "note"]
            .iter()
            .map(|c| {
                let datatype = match *c {
                    "x" => "FP64",
                    "n" => "INT64",
                    "flag" => "BOOL",
                    _ => "BYTES",
                };
                let data = Json::Array(recs.iter().map(|r| r[c].clone()).collect());
                let (datatype, data) = edit(c).unwrap_or((datatype, data));
                json!({ "name": c, "shape": [n], "datatype": datatype, "data": data })
            })
            .collect();
        json!({ "inputs": inputs })
    };
    let (status, answer) = server.json("/v2/models/pkg/infer", &tensors(&|_| None)).await;
    assert_eq!(status, 200, "the unchanged tensors are served: {answer}");
    // Missing values are null in any datatype.
    let with_null = tensors(&|c| (c == "n").then(|| ("INT64", json!([1, null, 3]))));
    let (status, answer) = server.json("/v2/models/pkg/infer", &with_null).await;
    assert_eq!(status, 200, "{answer}");
    let cases: Vec<(&str, &'static str, Json, &str)> = vec![
        ("x", "NOT_A_TYPE", json!([0.5, 1.5, 2.5]), "unknown datatype `NOT_A_TYPE`"),
        ("x", "fp64", json!([0.5, 1.5, 2.5]), "unknown datatype `fp64`"),
        ("x", "INT64", json!([0.5, 1.5, 2.5]), "datatype INT64 does not hold `data[0]` = 0.5"),
        ("n", "INT64", json!([1, 2.5, 3]), "datatype INT64 does not hold `data[1]` = 2.5"),
        // A datatype that does not fit the column: a number column takes FP16-FP64, INT64, BYTES.
        ("n", "UINT8", json!([1, 2, 3]), "datatype UINT8 cannot carry the column's int values"),
        ("flag", "INT64", json!([1, 0, 1]), "datatype INT64 cannot carry the column's bool values"),
        ("x", "FP64", json!(["0.5", 1.5, 2.5]), "datatype FP64 does not hold `data[0]` = \"0.5\""),
        ("flag", "BOOL", json!([true, "yes", false]), "datatype BOOL does not hold `data[1]` = \"yes\""),
        ("flag", "BOOL", json!([true, 1, false]), "datatype BOOL does not hold `data[1]` = 1"),
    ];
    for (column, datatype, data, needle) in cases {
        let body = tensors(&|c| (c == column).then(|| (datatype, data.clone())));
        let (status, answer) = server.json("/v2/models/pkg/infer", &body).await;
        assert_eq!(status, 400, "{column} as {datatype} {data}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("input `{column}`: {needle}")), "{message:?} lacks {needle:?}");
    }
    // A tensor named after no input is ignored, but its data must still be what its datatype
    // holds.
    for (datatype, data, needle) in [
        ("UINT8", json!([1, -2, 3]), "datatype UINT8 does not hold `data[1]` = -2"),
        ("INT8", json!([1, 2, 300]), "datatype INT8 does not hold `data[2]` = 300"),
    ] {
        let mut body = tensors(&|_| None);
        body["inputs"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "extra", "shape": [n], "datatype": datatype, "data": data }));
        let (status, answer) = server.json("/v2/models/pkg/infer", &body).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("input `extra`: {needle}")), "{message:?} lacks {needle:?}");
    }
    let mut body = tensors(&|_| None);
    body["inputs"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "extra", "shape": [n], "datatype": "INT8", "data": [1, 2, 3] }));
    let (status, answer) = server.json("/v2/models/pkg/infer", &body).await;
    assert_eq!(status, 200, "an input the model does not read is ignored: {answer}");
    // BYTES carries any JSON value (a table's mixed columns in one tensor can only be BYTES); the
    // signature's conversion then refuses what does not fit the column, naming it.
    let body = tensors(&|c| (c == "x").then(|| ("BYTES", json!(["heavy", 1.5, 2.5]))));
    let (status, answer) = server.json("/v2/models/pkg/infer", &body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("`x`: has type string, expected float"), "{answer}");
    // The whole table as one [N, F] tensor: FP64 cannot hold the text columns.
    let flat: Vec<Json> =
        recs.iter().flat_map(|r| ["x", "n", "color", "day", "flag", "note"].map(|c| r[c].clone())).collect();
    let whole =
        |datatype: &str| json!({ "inputs": [{ "name": "t", "shape": [n, 6], "datatype": datatype, "data": flat }] });
    let (status, answer) = server.json("/v2/models/pkg/infer", &whole("FP64")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("input `t`: datatype FP64 does not hold `data[2]` = \"red\""),
        "{answer}"
    );
    let (status, answer) = server.json("/v2/models/pkg/infer", &whole("BYTES")).await;
    assert_eq!(status, 200, "{answer}");
    // A shape whose sizes multiply past any count of values is refused, naming the input, and
    // answered (the product once overflowed and took the handler down).
    for shape in [json!([4_294_967_296u64, 4_294_967_296u64]), json!([u64::MAX, 2]), json!([u64::MAX])] {
        let body = json!({ "inputs": [{ "name": "t", "shape": shape, "datatype": "BYTES", "data": flat }] });
        let (status, answer) = server.json("/v2/models/pkg/infer", &body).await;
        assert_eq!(status, 400, "shape {shape}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains("input `t`: shape") && message.contains("values"), "{message:?}");
    }
    let (_, metrics) = server.get("/metrics").await;
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_called_with_the_wrong_method_gets_405_naming_the_allowed_one() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Running::start(ServeConfig::default(), package_source(dir.path(), TaskKind::BinaryClassification), None).await;
    for (method, path, allowed) in [
        (reqwest::Method::GET, "/invocations", "POST"),
        (reqwest::Method::GET, "/predict/batch", "POST"),
        (reqwest::Method::PUT, "/v2/models/pkg/infer", "POST"),
        (reqwest::Method::POST, "/health", "GET"),
        (reqwest::Method::DELETE, "/model_info", "GET"),
    ] {
        let r = server.http.request(method.clone(), format!("{}{path}", server.base)).send().await.unwrap();
        let allow = r.headers().get("allow").and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
        assert!(allow.as_deref().is_some_and(|a| a.contains(allowed)), "{method} {path}: allow {allow:?}");
    }
    // The routes still answer their own method.
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regressors_answer_values() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(ServeConfig::default(), package_source(dir.path(), TaskKind::Regression), None).await;
    let scorer = ModelSource::Package(dir.path().join("pkg")).load(CategoryPolicy::Warn).unwrap();
    let mut rows: Vec<Row> = (0..3).map(fixture::row).collect();
    let expected = scorer.score(&mut rows).unwrap().predicted;
    let (status, answer) = server.json("/invocations", &json!({ "instances": records(3) })).await;
    assert_eq!(status, 200, "{answer}");
    let got: Vec<u64> =
        answer["predictions"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap().to_bits()).collect();
    assert_eq!(got, expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let (status, one) = server.json("/predict", &fixture::raw(1)).await;
    assert_eq!(status, 200);
    assert_eq!(one["prediction"].as_f64().unwrap().to_bits(), expected[1].to_bits());
    assert!(one["probability"].is_null());
    let (_, answer) = server.json("/v2/models/pkg/infer", &json!({ "inputs": [{ "name": "t", "shape": [1, 6], "datatype": "BYTES", "data": [[0.5, 0, "red", "2024-01-01", true, null]] }] })).await;
    assert_eq!(answer["outputs"][0]["name"], "prediction", "{answer}");
    server.stop().await;
}

/// A registry with versions 1 and 2 of `m` (different models), `champion` on 1.
fn registry(dir: &Path) -> (PathBuf, PathBuf) {
    let store = dir.join("registry.db");
    let artifacts = dir.join("artifacts");
    let mut reg = Registry::open(&store, &artifacts, "test").unwrap();
    for (i, c) in [(1, 1.0), (2, 0.01)] {
        let pkg = fixture::package(dir, &format!("pkg{i}"), TaskKind::BinaryClassification, c);
        reg.register("m", &pkg, &RegisterInfo::default()).unwrap();
    }
    reg.set_alias("m", "champion", 1).unwrap();
    (store, artifacts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_loses_no_request_and_the_log_gets_every_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let (store, artifacts) = registry(dir.path());
    let source =
        ModelSource::Registry { store: store.clone(), artifacts: artifacts.clone(), uri: "models:/m@champion".into() };
    let config = ServeConfig { admin_token: Some("s3cret".into()), poll_seconds: 0, ..ServeConfig::default() };
    let server = Arc::new(Running::start(config, source, Some(&store)).await);
    let body = json!({ "dataframe_records": records(3) }).to_string();
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (server, body, done, stop) = (server.clone(), body.clone(), done.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = server
                    .http
                    .post(format!("{}/predict/batch", server.base))
                    .header("content-type", "application/json")
                    .body(json!({ "instances": records(3) }).to_string())
                    .send()
                    .await
                    .expect("no request may fail during a reload");
                assert_eq!(r.status().as_u16(), 200);
                let answer: Json = r.json().await.unwrap();
                versions.push(answer["model_version"].as_u64().unwrap());
                done.fetch_add(1, Ordering::Relaxed);
                let _ = &body;
            }
            versions
        }));
    }
    while done.load(Ordering::Relaxed) < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // A wrong token changes nothing; the right one swaps to the version the alias now names.
    let mut reg = Registry::open(&store, &artifacts, "test").unwrap();
    reg.set_alias("m", "champion", 2).unwrap();
    let reload = |token: &'static str| {
        let server = server.clone();
        async move {
            let r = server.http.post(format!("{}/admin/reload", server.base)).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Json>().await.unwrap())
        }
    };
    let (status, _) = reload("wrong").await;
    assert_eq!(status, 401);
    let (status, answer) = reload("s3cret").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["previous_version"].as_u64(), answer["version"].as_u64()), (Some(1), Some(2)));
    let after = done.load(Ordering::Relaxed);
    while done.load(Ordering::Relaxed) < after + 50 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut served = 0;
    for c in clients {
        let versions = c.await.unwrap();
        served += versions.len();
        let first_v2 = versions.iter().position(|&v| v == 2).unwrap_or(versions.len());
        assert!(versions[first_v2..].iter().all(|&v| v == 2), "a client went back to version 1: {versions:?}");
    }
    let (_, info) = server.get("/model_info").await;
    assert!(info.contains("\"version\":2"), "{info}");
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.contains("mlops_model_reloads_total 1"), "{metrics}");
    assert!(metrics.contains("mlops_model_version{model=\"m\"} 2"), "{metrics}");
    let server = Arc::into_inner(server).unwrap();
    server.stop().await;
    // Every served row is in the log, with the version that answered it.
    let logged = step20_serve::read_predictions(&store, Some("m"), usize::MAX).unwrap();
    assert_eq!(logged.len(), served * 3);
    assert!(logged.iter().any(|l| l.model_version == Some(1)) && logged.iter().any(|l| l.model_version == Some(2)));
    let first = &logged[0];
    assert_eq!(first.route, "/predict/batch");
    assert_eq!(first.inputs["color"], "red");
    assert_eq!(
        (&first.inputs["day"], &first.inputs["x"], &first.inputs["n"]),
        (&json!("2024-01-01"), &json!(0.5), &json!(0))
    );
    assert!(first.outputs["probabilities"].as_array().is_some_and(|p| p.len() == 2), "{:?}", first.outputs);
    // The outputs read back as the answer gave them: a class label and probabilities summing to 1.
    for l in &logged {
        assert!(l.outputs["prediction"].as_str().is_some_and(|c| c == "no" || c == "yes"), "{:?}", l.outputs);
        let p: f64 = l.outputs["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
        assert!((p - 1.0).abs() < 1e-9, "{:?}", l.outputs);
    }
    // SQL users see the same rows through the `prediction_log` view.
    assert_eq!(
        view_rows(&store),
        logged.iter().map(|l| (l.seq, l.row, l.inputs.clone(), l.outputs.clone())).collect::<Vec<_>>()
    );
}

/// The `prediction_log` view's rows: request entry, row, inputs and outputs.
fn view_rows(store: &Path) -> Vec<(i64, i64, Json, Json)> {
    let db = rusqlite::Connection::open(store).unwrap();
    let mut stmt = db.prepare("SELECT seq, row, inputs, outputs FROM prediction_log ORDER BY seq, row").unwrap();
    stmt.query_map([], |r| {
        let json = |k| r.get::<_, String>(k).map(|t| serde_json::from_str::<Json>(&t).unwrap());
        Ok((r.get(0)?, r.get(1)?, json(2)?, json(3)?))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

#[test]
fn a_log_written_one_row_per_prediction_is_moved_over_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let db = rusqlite::Connection::open(&store).unwrap();
    db.execute_batch(
        r#"CREATE TABLE prediction_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL,
               row INTEGER NOT NULL, at TEXT NOT NULL, model_name TEXT NOT NULL, model_version INTEGER,
               route TEXT NOT NULL, inputs TEXT NOT NULL, outputs TEXT NOT NULL, latency_ms REAL NOT NULL);
           CREATE INDEX prediction_log_model_at ON prediction_log (model_name, at);
           INSERT INTO prediction_log VALUES
             (1, 'r1', 0, '2026-01-01T00:00:00Z', 'm', 1, '/invocations',
              '{"color":"red","flag":true,"n":3,"x":0.5,"a b":null}', '{"prediction":"yes","probabilities":[0.25,0.75]}', 1.5),
             (2, 'r1', 1, '2026-01-01T00:00:00Z', 'm', 1, '/invocations',
              '{"color":"blue","flag":false,"n":-1,"x":2.0,"a b":"q\"t"}', '{"prediction":"no","probabilities":[0.5,0.5]}', 1.5),
             (3, 'r2', 0, '2026-01-01T00:00:01Z', 'other', NULL, '/predict', '{"y":1}', '{"prediction":2.5}', 0.25);"#,
    )
    .unwrap();
    drop(db);
    let logged = step20_serve::read_predictions(&store, None, 100).unwrap();
    let rows: Vec<_> =
        logged.iter().map(|l| (l.request_id.as_str(), l.model_version, l.inputs.clone(), l.outputs.clone())).collect();
    assert_eq!(
        rows,
        [
            (
                "r1",
                Some(1),
                json!({"color":"red","flag":true,"n":3,"x":0.5,"a b":null}),
                json!({"prediction":"yes","probabilities":[0.25,0.75]})
            ),
            (
                "r1",
                Some(1),
                json!({"color":"blue","flag":false,"n":-1,"x":2.0,"a b":"q\"t"}),
                json!({"prediction":"no","probabilities":[0.5,0.5]})
            ),
            ("r2", None, json!({"y":1}), json!({"prediction":2.5})),
        ]
    );
    // Read again (already moved): the same rows; the view lists them too, and the newest-first limit holds.
    assert_eq!(step20_serve::read_predictions(&store, None, 100).unwrap(), logged);
    assert_eq!(view_rows(&store).len(), 3);
    let newest = step20_serve::read_predictions(&store, Some("m"), 1).unwrap();
    assert_eq!((newest.len(), newest[0].inputs["color"].as_str()), (1, Some("blue")));
    // An entry damaged outside the server is refused by name, not read as nothing.
    let db = rusqlite::Connection::open(&store).unwrap();
    db.execute("UPDATE prediction_requests SET inputs = '{\"x\": 1}' WHERE request_id = 'r2'", []).unwrap();
    drop(db);
    let err = step20_serve::read_predictions(&store, None, 100).unwrap_err().to_string();
    assert!(err.contains("`inputs` of entry 3") && err.contains("registry.db"), "{err}");
}

/// The value of an unlabelled counter in a Prometheus text exposition, if the metric is there.
fn counter(metrics: &str, name: &str) -> Option<u64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn served_version(server: &Running) -> Option<u64> {
    serde_json::from_str::<Json>(&server.get("/model_info").await.1).unwrap()["version"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_follows_the_alias_and_a_broken_target_keeps_the_old_model() {
    let dir = tempfile::tempdir().unwrap();
    let (store, artifacts) = registry(dir.path());
    let source =
        ModelSource::Registry { store: store.clone(), artifacts: artifacts.clone(), uri: "models:/m@champion".into() };
    let config = ServeConfig { poll_seconds: 1, ..ServeConfig::default() };
    let server = Running::start(config, source, None).await;
    assert_eq!(served_version(&server).await, Some(1));
    let mut reg = Registry::open(&store, &artifacts, "test").unwrap();
    reg.set_alias("m", "champion", 2).unwrap();
    let started = std::time::Instant::now();
    while served_version(&server).await != Some(2) {
        assert!(started.elapsed().as_secs() < 60, "the server did not follow the alias");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    reg.delete_alias("m", "champion").unwrap();
    // Polls go on every second; wait (generously, on a busy machine) until one has failed.
    let started = std::time::Instant::now();
    let (failures, metrics) = loop {
        let (_, metrics) = server.get("/metrics").await;
        let failures = counter(&metrics, "mlops_model_reload_failures_total");
        if failures.is_some_and(|n| n >= 1) || started.elapsed().as_secs() >= 60 {
            break (failures, metrics);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(failures.is_some_and(|n| n >= 1), "no reload failure counted ({failures:?}):\n{metrics}");
    assert_eq!(served_version(&server).await, Some(2), "an alias that resolves to nothing keeps the old model");
    let (status, text) = server.get("/v2/health/ready").await;
    assert_eq!(status, 200, "{text}");
    reg.set_alias("m", "champion", 1).unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_does_not_load_or_a_port_in_use_fails_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let err = Server::bind(ServeConfig::default(), ModelSource::Package(dir.path().join("missing")), None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("missing"), "{err}");
    let (store, artifacts) = registry(dir.path());
    let source =
        |uri: &str| ModelSource::Registry { store: store.clone(), artifacts: artifacts.clone(), uri: uri.into() };
    let err = Server::bind(ServeConfig::default(), source("models:/m@nope"), None).await.err().unwrap().to_string();
    assert!(err.contains("no alias `nope`"), "{err}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let err = Server::bind(ServeConfig { port, ..ServeConfig::default() }, source("models:/m@champion"), None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    let config = ServeConfig {
        confidence: step20_serve::ConfidenceThresholds { high: 0.5, medium: 0.7 },
        ..ServeConfig::default()
    };
    let err = Server::bind(config, source("models:/m@champion"), None).await.err().unwrap().to_string();
    assert!(err.contains("`confidence`"), "{err}");
    // The prediction log's Kafka topic: each wrong value named by its key.
    let good = step20_serve::KafkaLogConfig {
        brokers: vec!["127.0.0.1:9092".into()],
        topic: "predictions".into(),
        buffer: 10,
        timeout_seconds: 1.0,
        drain_seconds: 1.0,
    };
    for (kafka, key) in [
        (step20_serve::KafkaLogConfig { brokers: Vec::new(), ..good.clone() }, "prediction_log.kafka.brokers"),
        (step20_serve::KafkaLogConfig { topic: String::new(), ..good.clone() }, "prediction_log.kafka.topic"),
        (step20_serve::KafkaLogConfig { buffer: 0, ..good.clone() }, "prediction_log.kafka.buffer"),
        (step20_serve::KafkaLogConfig { timeout_seconds: 0.0, ..good.clone() }, "prediction_log.kafka.timeout_seconds"),
        (
            step20_serve::KafkaLogConfig { drain_seconds: f64::NAN, ..good.clone() },
            "prediction_log.kafka.drain_seconds",
        ),
    ] {
        let config = ServeConfig {
            prediction_log: step20_serve::PredictionLogConfig { kafka: Some(kafka), ..Default::default() },
            ..ServeConfig::default()
        };
        let err = Server::bind(config, source("models:/m@champion"), None).await.err().unwrap().to_string();
        assert!(err.contains(&format!("`{key}`")), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_queue_drops_and_counts_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let config = ServeConfig {
        prediction_log: step20_serve::PredictionLogConfig { enabled: true, queue: 4, kafka: None },
        ..ServeConfig::default()
    };
    let server = Running::start(config, package_source(dir.path(), TaskKind::BinaryClassification), Some(&store)).await;
    // Five rows never fit a queue of four: dropped and counted; the request is answered.
    let (status, _) = server.json("/invocations", &json!({ "instances": records(5) })).await;
    assert_eq!(status, 200);
    let (status, _) = server.json("/invocations", &json!({ "instances": records(2) })).await;
    assert_eq!(status, 200);
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.contains("mlops_prediction_log_dropped_total 5"), "{metrics}");
    server.stop().await;
    assert_eq!(step20_serve::read_predictions(&store, None, 100).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_gets_408_and_slow_headers_are_cut_off_and_the_server_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig { request_timeout_ms: 200, header_timeout_ms: 300, ..ServeConfig::default() };
    let server = Running::start(config, package_source(dir.path(), TaskKind::BinaryClassification), None).await;
    // A client that announces a body and stops sending half-way: the delay is the client's, 408.
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"instances\"")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(60), slow.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout_ms") && answer.contains("body"), "{answer}");
    // A client that sends its request head a byte at a time, one byte every 50 ms: the server
    // closes the connection once `header_timeout_ms` has passed, long before the head is whole.
    let mut trickle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = std::time::Instant::now();
    let mut closed = false;
    for b in head {
        if trickle.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(std::time::Duration::from_millis(50), trickle.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => {
                // hyper may answer 408 before closing.
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            }
            Err(_) => {}
        }
    }
    assert!(closed, "the connection stayed open for the whole head ({:?})", started.elapsed());
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    let (status, _) = server.json("/invocations", &json!({ "instances": records(1) })).await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// At the stop signal a kept-alive connection may already carry the client's next request: it is
/// answered (and the connection closed after it) rather than cut off unread; a connection that
/// sends nothing is closed soon after, so the stop does not wait for the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_on_a_kept_alive_connection_as_the_server_stops_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn answer(stream: &mut tokio::net::TcpStream) -> String {
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
        String::from_utf8_lossy(&buf[..n]).to_lowercase()
    }
    let dir = tempfile::tempdir().unwrap();
    let server =
        Running::start(ServeConfig::default(), package_source(dir.path(), TaskKind::BinaryClassification), None).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    let (mut busy, mut idle) =
        (tokio::net::TcpStream::connect(&addr).await.unwrap(), tokio::net::TcpStream::connect(&addr).await.unwrap());
    for stream in [&mut busy, &mut idle] {
        stream.write_all(ping).await.unwrap();
        let first = answer(stream).await;
        assert!(first.starts_with("http/1.1 200") && !first.contains("connection: close"), "{first}");
    }
    let started = std::time::Instant::now();
    let stop = tokio::spawn(server.stop());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    busy.write_all(ping).await.unwrap();
    let second = answer(&mut busy).await;
    assert!(second.starts_with("http/1.1 200") && second.contains("connection: close"), "{second}");
    assert_eq!(answer(&mut busy).await, "", "the connection is closed after the answer");
    assert_eq!(answer(&mut idle).await, "", "an idle connection is closed");
    stop.await.unwrap();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "the stop waited {took:?} (grace is 30 s)");
}

/// A registered package whose file was changed and whose manifest was rewritten to match passes
/// step 16's checksums; loading it through a `models:/` URI compares the manifest with the one
/// the registry recorded and refuses it.
#[test]
fn a_registered_package_rewritten_to_match_its_changed_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, artifacts) = registry(dir.path());
    let source = ModelSource::Registry { store: store.clone(), artifacts, uri: "models:/m@champion".into() };
    let origin = source.resolve().unwrap();
    // Flip a byte of model.json and write its new checksum into the manifest.
    let model = origin.path.join("model.json");
    let mut bytes = std::fs::read(&model).unwrap();
    let at = bytes.iter().position(|b| b.is_ascii_digit()).unwrap();
    bytes[at] = if bytes[at] == b'9' { b'8' } else { bytes[at] + 1 };
    std::fs::write(&model, &bytes).unwrap();
    let manifest_path = origin.path.join("manifest.json");
    let mut manifest: Json = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let sha = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&bytes));
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["path"] == "model.json" {
            f["sha256"] = json!(sha);
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    step16_package::load(&origin.path).expect("the files match the rewritten manifest");
    let err = source.load(CategoryPolicy::Warn).unwrap_err().to_string();
    assert!(err.contains("the registry recorded") && err.contains("manifest.json"), "{err}");
    let err = step17_registry::verify_manifest(&origin.path, step17_registry::content_address(&origin.path).unwrap())
        .unwrap_err();
    assert!(matches!(err, step17_registry::RegistryError::Tampered { .. }), "{err}");
}

/// The prediction log's store is removed while the server runs: predictions are still answered,
/// `/health` says unhealthy and why, the lost rows are counted as dropped (never as written into
/// the unlinked file), and a store put back at the path is written to again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_removed_under_the_server_is_reported_and_its_loss_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, artifacts) = registry(dir.path());
    let source =
        ModelSource::Registry { store: store.clone(), artifacts: artifacts.clone(), uri: "models:/m@champion".into() };
    let server = Running::start(ServeConfig { poll_seconds: 0, ..ServeConfig::default() }, source, Some(&store)).await;
    let metric = |name: &'static str| {
        let server = &server;
        async move { counter(&server.get("/metrics").await.1, name).unwrap_or(0) }
    };
    let wait_for = |name: &'static str, at_least: u64| {
        let metric = &metric;
        async move {
            let started = std::time::Instant::now();
            while metric(name).await < at_least {
                assert!(started.elapsed().as_secs() < 60, "{name} never reached {at_least}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    let body = json!({ "dataframe_records": records(3) });
    assert_eq!(server.json("/invocations", &body).await.0, 200);
    wait_for("mlops_prediction_log_written_total", 3).await;
    let (status, text) = server.get("/health").await;
    assert_eq!(status, 200, "{text}");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store.display()));
    }
    let (status, text) = server.get("/health").await;
    assert_eq!(status, 503, "{text}");
    let health: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(health["status"], "unhealthy");
    assert!(health["problem"].as_str().unwrap().contains("registry.db"), "{text}");
    for _ in 0..4 {
        assert_eq!(server.json("/invocations", &body).await.0, 200, "predictions are still answered");
    }
    wait_for("mlops_prediction_log_dropped_total", 12).await;
    assert_eq!(metric("mlops_prediction_log_written_total").await, 3, "nothing written into the removed file");
    assert_eq!(metric("mlops_prediction_log_broken").await, 1);
    assert!(!store.exists(), "the removed store is not created again");
    // A store put back at the path (a restored backup, a new registry) is written to again.
    drop(Registry::open(&store, &artifacts, "test").unwrap());
    assert_eq!(server.json("/invocations", &body).await.0, 200);
    wait_for("mlops_prediction_log_written_total", 6).await;
    assert_eq!(metric("mlops_prediction_log_broken").await, 0);
    let (status, text) = server.get("/health").await;
    assert_eq!(status, 200, "{text}");
    let conn = rusqlite::Connection::open(&store).unwrap();
    let logged: i64 = conn.query_row("SELECT SUM(rows) FROM prediction_requests", [], |r| r.get(0)).unwrap();
    assert_eq!(logged, 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_records_actuals_of_logged_predictions_and_refuses_bad_ones_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let server = Running::start(
        ServeConfig::default(),
        package_source(dir.path(), TaskKind::BinaryClassification),
        Some(&store),
    )
    .await;
    let (status, answer) = server.json("/predict/batch", &json!(records(3))).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["request_id"].as_str().unwrap().to_string();
    let label = answer["predictions"][0]["prediction"].clone();
    // The log is written behind the answer: wait for the request to be there.
    for _ in 0..200 {
        if step20_serve::read_predictions(&store, None, 10).unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (status, answer) = server
        .json(
            "/feedback",
            &json!([
                { "request_id": id, "row": 0, "actual": label },
                { "request_id": id, "row": 2, "actual": "some other label" },
                { "request_id": "never-sent", "actual": label },
            ]),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({ "recorded": 2, "replaced": 0, "unknown": [{ "index": 2, "request_id": "never-sent", "row": 0 }] })
    );
    let (status, answer) =
        server.json("/feedback", &json!({ "actuals": [{ "request_id": id, "actual": true }] })).await;
    assert_eq!((status, answer["replaced"].as_u64()), (200, Some(1)), "{answer}");
    // Wrong input: a 4xx naming what is wrong, nothing recorded.
    let (status, answer) = server
        .json(
            "/feedback",
            &json!([{ "request_id": id, "row": 1, "actual": label }, { "request_id": id, "actual": null }]),
        )
        .await;
    assert_eq!((status, answer["index"].as_u64()), (422, Some(1)), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("null is not a label"), "{answer}");
    let (status, answer) = server.json("/feedback", &json!({ "labels": [] })).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("under \"actuals\""), "{answer}");
    let (status, answer) = server.json("/feedback", &json!([{ "request_id": id, "actual": "a", "weight": 2 }])).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("unknown field `weight`"), "{answer}");
    let (status, _) = server.json("/feedback", &json!([{ "request_id": id, "row": -1, "actual": "a" }])).await;
    assert_eq!(status, 400);
    server.stop().await;
    let conn = rusqlite::Connection::open(&store).unwrap();
    let kept: Vec<(i64, String)> = conn
        .prepare("SELECT row, actual FROM prediction_feedback ORDER BY row")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        kept,
        [(0, "\"true\"".to_string()), (2, "\"some other label\"".to_string())],
        "the refused request recorded nothing"
    );

    let plain = tempfile::tempdir().unwrap();
    let server = Running::start(ServeConfig::default(), package_source(plain.path(), TaskKind::Regression), None).await;
    let (status, answer) = server.json("/feedback", &json!([{ "request_id": "x", "actual": 1.5 }])).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("keeps no prediction log"), "{answer}");
    server.stop().await;
}

/// The prediction log's topic, read back as a user would: each message a row of the log, with
/// its request id and row.
async fn topic_rows(broker: &str, topic: &str) -> Vec<(String, i64)> {
    use step01_ingest::{KafkaSource, Reader, SourceConfig};
    let source = SourceConfig::Kafka(KafkaSource {
        brokers: vec![broker.to_string()],
        topic: topic.to_string(),
        group: None,
        from: Default::default(),
        until: Default::default(),
        format: Default::default(),
        columns: None,
        separator: ".".into(),
        max_level: None,
        timeout_seconds: 5.0,
    });
    let frame = tokio::task::spawn_blocking(move || source.read("log").unwrap().frame).await.unwrap();
    if frame.height() == 0 {
        return Vec::new();
    }
    let ids = frame.column("request_id").unwrap().str().unwrap().clone();
    let rows = frame.column("row").unwrap().i64().unwrap().clone();
    assert!(frame.column("inputs.x").is_ok() && frame.column("outputs.prediction").is_ok(), "{frame}");
    let mut out: Vec<(String, i64)> =
        ids.iter().zip(rows.iter()).map(|(i, r)| (i.unwrap().to_string(), r.unwrap())).collect();
    out.sort();
    out
}

/// Waits (at most 60 s) until `/metrics` shows `name` at `want`.
async fn wait_for(server: &Running, name: &str, want: u64) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, metrics) = server.get("/metrics").await;
        if counter(&metrics, name) == Some(want) || std::time::Instant::now() > deadline {
            return metrics;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A real Kafka-protocol broker (tansu): every predicted row reaches the topic; while the broker
/// is down rows wait in the buffer, and after its restart all of them arrive; a buffer too small
/// for the outage drops rows and counts every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prediction_log_reaches_kafka_and_a_broker_restart_loses_nothing_within_the_buffer() {
    use mlops_core::testing::KafkaBroker;
    let mut broker = KafkaBroker::start().unwrap();
    broker.create_topic("predictions", 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let address = broker.address();
    let kafka = |buffer: usize| step20_serve::KafkaLogConfig {
        brokers: vec![address.clone()],
        topic: "predictions".into(),
        buffer,
        timeout_seconds: 2.0,
        drain_seconds: 1.0,
    };
    let config = ServeConfig {
        prediction_log: step20_serve::PredictionLogConfig { enabled: true, queue: 65_536, kafka: Some(kafka(10_000)) },
        ..ServeConfig::default()
    };
    let server = Running::start(config, package_source(dir.path(), TaskKind::BinaryClassification), Some(&store)).await;
    for _ in 0..20 {
        assert_eq!(server.json("/invocations", &json!({ "instances": records(3) })).await.0, 200);
    }
    let metrics = wait_for(&server, "mlops_prediction_log_kafka_published_total", 60).await;
    assert_eq!(counter(&metrics, "mlops_prediction_log_kafka_published_total"), Some(60), "{metrics}");
    let logged = |store: PathBuf| {
        let mut rows: Vec<(String, i64)> = step20_serve::read_predictions(&store, None, 10_000)
            .unwrap()
            .into_iter()
            .map(|p| (p.request_id, p.row))
            .collect();
        rows.sort();
        rows
    };
    let before = topic_rows(&broker.address(), "predictions").await;
    assert_eq!(before, logged(store.clone()));

    // The broker goes down: rows are answered, logged, and wait for it.
    broker.stop();
    for _ in 0..30 {
        assert_eq!(server.json("/invocations", &json!({ "instances": records(2) })).await.0, 200);
    }
    let metrics = wait_for(&server, "mlops_prediction_log_kafka_broken", 1).await;
    assert_eq!(counter(&metrics, "mlops_prediction_log_kafka_broken"), Some(1), "{metrics}");
    // It comes back empty (in-memory storage): once its topic is there, every waiting row arrives.
    broker.restart().unwrap();
    broker.create_topic("predictions", 2).unwrap();
    let metrics = wait_for(&server, "mlops_prediction_log_kafka_published_total", 120).await;
    assert_eq!(counter(&metrics, "mlops_prediction_log_kafka_published_total"), Some(120), "{metrics}");
    assert_eq!(counter(&metrics, "mlops_prediction_log_kafka_dropped_total"), Some(0), "{metrics}");
    assert_eq!(counter(&metrics, "mlops_prediction_log_kafka_broken"), Some(0), "{metrics}");
    let after = topic_rows(&broker.address(), "predictions").await;
    let all = logged(store.clone());
    let outage: Vec<(String, i64)> = all.iter().filter(|r| !before.contains(r)).cloned().collect();
    assert_eq!(after, outage, "the rows logged while the broker was down, each once");
    server.stop().await;

    // A buffer of 5 rows through an outage of 20: what does not fit is dropped and counted.
    broker.stop();
    let config = ServeConfig {
        prediction_log: step20_serve::PredictionLogConfig { enabled: true, queue: 65_536, kafka: Some(kafka(5)) },
        ..ServeConfig::default()
    };
    let second = tempfile::tempdir().unwrap();
    let small = second.path().join("small.db");
    let server =
        Running::start(config, package_source(second.path(), TaskKind::BinaryClassification), Some(&small)).await;
    for _ in 0..20 {
        assert_eq!(server.json("/invocations", &json!({ "instances": records(1) })).await.0, 200);
    }
    let metrics = wait_for(&server, "mlops_prediction_log_written_total", 20).await;
    let dropped = counter(&metrics, "mlops_prediction_log_kafka_dropped_total").unwrap();
    assert!(dropped >= 10, "{metrics}");
    broker.restart().unwrap();
    broker.create_topic("predictions", 2).unwrap();
    let metrics = wait_for(&server, "mlops_prediction_log_kafka_published_total", 20 - dropped).await;
    assert_eq!(counter(&metrics, "mlops_prediction_log_kafka_published_total"), Some(20 - dropped), "{metrics}");
    assert_eq!(topic_rows(&broker.address(), "predictions").await.len() as u64, 20 - dropped);
    server.stop().await;
}
