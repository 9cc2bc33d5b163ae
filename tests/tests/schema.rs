//! Schema-driven: schemathesis (pinned in tests/requirements.txt) fuzzes the model server against
//! its own `GET /openapi.json`, every route and method, with every check it has: no answer is a
//! 5xx; every answer's status, media type, headers and body are ones the document declares; a
//! request the document allows is answered, one it refuses gets a 4xx; `/admin/reload` refuses a
//! missing or wrong token. A few findings of earlier runs are kept as plain requests first.

use std::path::Path;

use e2e::{Project, Served};
use serde_json::{Value as Json, json};

/// The bearer token of `POST /admin/reload` in the run.
const TOKEN: &str = "schemathesis-admin-token";

/// Examples per operation and phase: the run takes about half a minute on two cores.
const EXAMPLES: &str = "25";

/// Drops one false finding of schemathesis: a `text/csv` body drawn as another JSON type (the
/// "wrong type" case) goes out as its text, one line, which is a CSV header without rows that the
/// server rightly answers 200.
const HOOKS: &str = r#"import schemathesis


@schemathesis.hook
def filter_failure(context, failure, case, response):
    return not (
        type(failure).__name__ == "AcceptedNegativeData"
        and case.media_type == "text/csv"
        and not isinstance(case.body, str)
    )
"#;

/// The run's settings: no cache of earlier failures (each run starts clean), the hooks, and the
/// token for the document's `bearer` scheme.
fn settings(dir: &Path) -> String {
    format!(
        "hooks = {:?}\n\n[cache]\nenabled = false\n\n[auth.openapi.bearer]\nbearer = \"{TOKEN}\"\n",
        dir.join("hooks.py").display().to_string()
    )
}

/// The served model's document.
fn document(s: &Served) -> Json {
    let (status, body) = s.request("GET", "/openapi.json", "application/json", "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// What earlier runs found, one request or one look at the document each.
fn findings(s: &Served) {
    let doc = document(s);
    let paths = &doc["paths"];
    // The text routes said application/json.
    for route in ["/ping", "/version", "/metrics"] {
        let content = &paths[route]["get"]["responses"]["200"]["content"];
        assert!(content.get("text/plain").is_some() && content.get("application/json").is_none(), "{route}: {content}");
    }
    // The OIP model routes declared neither their path parameters nor their 404.
    for route in ["/v2/models/{name}", "/v2/models/{name}/versions/{version}/infer"] {
        let op = paths[route].as_object().unwrap().values().next().unwrap();
        let params: Vec<&str> =
            op["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(params.contains(&"name"), "{route}: {params:?}");
        assert!(op["responses"].get("404").is_some(), "{route}");
    }
    let (status, body) = s.request("GET", "/v2/models/another-model/ready", "application/json", "");
    assert_eq!(status, 404, "{body}");
    // /admin/reload declared no 401 (nor its bearer scheme), and answers one without the token.
    assert!(paths["/admin/reload"]["post"]["responses"].get("401").is_some());
    assert_eq!(paths["/admin/reload"]["post"]["security"], json!([{ "bearer": [] }]));
    let (status, body) = s.request("POST", "/admin/reload", "application/json", "");
    assert_eq!(status, 401, "{body}");
    // /health answers 503 `unhealthy` while predictions are not logged: its body is not an error's.
    let unhealthy = &paths["/health"]["get"]["responses"]["503"]["content"]["application/json"]["schema"];
    assert_eq!(unhealthy["anyOf"][0]["properties"]["status"]["const"], "unhealthy", "{unhealthy}");
    // `confidence` is null for a regressor: its type must say so (OpenAPI 3.1).
    let confidence = &doc["components"]["schemas"]["Prediction"]["properties"]["confidence"];
    assert_eq!(confidence["type"], json!(["string", "null"]), "{confidence}");
    // Bodies the document allowed and the server refuses: `{}` for /predict/batch (no
    // `instances`), all four keys at once for /invocations.
    let (status, answer) = s.post_json("/predict/batch", &json!({}));
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = s.post_json(
        "/invocations",
        &json!({ "dataframe_split": {}, "dataframe_records": [], "instances": null, "inputs": null }),
    );
    assert_eq!(status, 400, "{answer}");
    // Tensor data that is a bare value, or nested unlike its shape, was read as if flat: the
    // protocol's data is a list, flat or nested as the shape says.
    for data in [json!(5), json!({}), json!([[5]])] {
        let tensor = json!({ "inputs": [{ "name": "unknown", "shape": [1], "datatype": "BYTES", "data": data }] });
        let (status, answer) = s.post_json("/v2/models/penguins-species/infer", &tensor);
        assert_eq!(status, 400, "{data}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("`data` must be a list"), "{answer}");
    }
    let nested = json!({ "inputs": [{ "name": "unknown", "shape": [1, 1], "datatype": "BYTES", "data": [[5]] }] });
    let (_, answer) = s.post_json("/v2/models/penguins-species/infer", &nested);
    assert!(!answer["error"].as_str().unwrap_or("").contains("`data`"), "data nested as its shape says: {answer}");
}

#[test]
fn the_model_server_answers_every_request_as_its_openapi_document_says() {
    let p = Project::new();
    let run = p.mlops(&["--quiet", "train", "--config", "configs/training.yaml"]);
    assert!(run.success, "{}", run.stderr);
    let token = format!("admin_token: {TOKEN}");
    p.file_with("configs/deployment.yaml", "admin_token_env: MLOPS_ADMIN_TOKEN", &token);
    let s = p.serve(&["--config", "configs/variant-deployment.yaml"]);
    findings(&s);
    let operations: usize =
        document(&s)["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();

    // Schemathesis and Hypothesis write their state (a cache, examples) under the working folder.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("hooks.py"), HOOKS).unwrap();
    std::fs::write(work.path().join("schemathesis.toml"), settings(work.path())).unwrap();
    let url = format!("http://{}/openapi.json", s.addr);
    let out = std::process::Command::new("schemathesis")
        .args(["--config-file", "schemathesis.toml", "--no-color", "run", &url])
        .args(["--checks", "all", "--max-examples", EXAMPLES, "--generation-deterministic"])
        // Unfiltered, the route that served the document is left out; this filter selects every route.
        .args(["--include-path-regex", "^/"])
        // One worker: with two, schemathesis 4.32.5 fails in its own data generation (a KeyError).
        .args(["--workers", "1", "--request-timeout", "30"])
        .current_dir(work.path())
        .env("HYPOTHESIS_STORAGE_DIRECTORY", work.path().join(".hypothesis"))
        .output()
        .expect("schemathesis (make test-deps)");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis: the server and its document disagree:\n{report}");
    let tested = format!("{operations} selected / {operations} total");
    assert!(report.contains(&tested), "not every operation of the document was tested:\n{report}");
}
