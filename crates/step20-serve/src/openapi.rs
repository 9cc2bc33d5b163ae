//! The OpenAPI 3.1 description of every route, with the served model's input columns.
//!
//! The request schemas say what the server accepts: a body they allow is answered 2xx, and one
//! they refuse gets a 4xx (schemathesis checks both ways in the end-to-end tests). Where the
//! server takes more than JSON Schema can say (columns in any order, lists of any equal length,
//! nested tensor data), the schema shows the one-row form and the description says the rest.

use mlops_core::{ColumnSchema, DType, TaskKind};
use serde_json::{Map, Value as Json, json};

use crate::config::CategoryPolicy;
use crate::protocol::Datatype;
use crate::scorer::Scorer;

/// A `$ref` to a component schema.
fn schema_ref(name: &str) -> Json {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A date the server reads whatever the month (`YYYY-MM-DD`, days 01-28 in the pattern's form).
const DATE: &str = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])";
/// The time of a datetime (`THH:MM:SS`, optionally with a fraction and a `Z`).
const TIME: &str = "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?Z?";

/// One non-null value of a column, as JSON carries it.
fn value_schema(c: &ColumnSchema, policy: CategoryPolicy) -> Json {
    let mut schema = match c.dtype {
        DType::Float => json!({ "type": "number" }),
        DType::Int => json!({ "type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX }),
        DType::Bool => json!({ "type": "boolean" }),
        DType::Str => json!({ "type": "string" }),
        DType::Date => json!({ "type": "string", "format": "date" }),
        // Naive (no offset): `format: date-time` would promise offsets the server does not read.
        DType::Datetime => json!({ "type": "string", "pattern": format!("^{DATE}({TIME})?$") }),
    };
    if let Some(cats) = &c.categories {
        if policy == CategoryPolicy::Strict {
            schema["enum"] = json!(cats);
        } else {
            schema["examples"] = json!(cats.iter().take(5).collect::<Vec<_>>());
        }
    }
    schema
}

/// One value of a column: its type, or null where the model takes missing values.
fn cell(c: &ColumnSchema, policy: CategoryPolicy) -> Json {
    let value = value_schema(c, policy);
    if c.nullable { json!({ "anyOf": [value, { "type": "null" }] }) } else { value }
}

/// The columns' names in signature order.
fn names(scorer: &Scorer) -> Vec<&str> {
    scorer.inputs().iter().map(|c| c.name.as_str()).collect()
}

/// The names of the columns a row must carry.
fn required(scorer: &Scorer) -> Vec<&str> {
    scorer.inputs().iter().filter(|c| !c.nullable).map(|c| c.name.as_str()).collect()
}

/// A list of exactly one item.
fn one_of_list(item: Json) -> Json {
    json!({ "type": "array", "items": item, "minItems": 1, "maxItems": 1 })
}

/// An error status a route answers, when, and the schema of its (JSON) body.
struct Failure {
    status: &'static str,
    when: &'static str,
    body: Json,
}

fn failure(status: &'static str, when: &'static str, body: &Json) -> Failure {
    Failure { status, when, body: body.clone() }
}

/// What every route may answer besides its own (`error`: its protocol's error body): the shared
/// request path reads any body, within the timeout, before the route runs.
fn shared_errors(error: &Json) -> Vec<Failure> {
    vec![
        failure("400", "the request body could not be read", error),
        failure("408", "the request body did not arrive within `request_timeout_ms`", error),
        failure("413", "the request body is over `max_body_bytes`", error),
        failure("503", "the request took longer than `request_timeout_ms`", &schema_ref("Error")),
    ]
}

/// The errors of a route that scores rows (`error`: its protocol's error body).
fn scoring_errors(error: &Json) -> Vec<Failure> {
    let mut errors = shared_errors(error);
    errors[0].when = "malformed body, missing column or wrong type (names the column and row)";
    errors[2].when = "body over `max_body_bytes`, or more rows than `max_batch_rows`";
    errors.push(failure(
        "422",
        "null or NaN where the model takes no missing values, an infinite number, an unseen category under the strict policy, or a value the feature pipeline refuses",
        error,
    ));
    errors.push(failure("500", "the model failed on valid input (a bug: report it)", error));
    errors
}

/// An operation: its 200 answer (`media type`, schema) and its errors.
fn op(summary: &str, ok: (&str, Json), errors: Vec<Failure>) -> Json {
    let mut responses = Map::new();
    responses.insert("200".into(), json!({ "description": "OK", "content": { ok.0: { "schema": ok.1 } } }));
    for Failure { status, when, body } in errors {
        responses.insert(
            status.into(),
            json!({ "description": when, "content": { "application/json": { "schema": body } } }),
        );
    }
    json!({ "summary": summary, "responses": responses })
}

/// A JSON operation without a body.
fn get(summary: &str, response: Json) -> Json {
    op(summary, ("application/json", response), shared_errors(&schema_ref("Error")))
}

/// A text operation without a body.
fn get_text(summary: &str) -> Json {
    op(summary, ("text/plain", json!({ "type": "string" })), shared_errors(&schema_ref("Error")))
}

/// A path parameter, with the served model's value as its example.
fn path_parameter(name: &str, description: &str, example: &str) -> Json {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": { "type": "string" }, "example": example,
    })
}

/// An Open Inference Protocol route on the model `{name}` (and `{version}`): 404 for another.
fn oip_model_op(mut o: Json, scorer: &Scorer, versioned: bool) -> Json {
    let version = scorer.origin.version.map_or_else(|| "1".to_string(), |v| v.to_string());
    let mut parameters = vec![path_parameter("name", "the served model's name", &scorer.origin.name)];
    if versioned {
        parameters.push(path_parameter("version", "the served model's version", &version));
    }
    o["parameters"] = json!(parameters);
    o["responses"]["404"] = json!({
        "description": "this server does not serve that model (or version)",
        "content": { "application/json": { "schema": schema_ref("OipError") } },
    });
    // A path segment whose percent-encoding is not UTF-8 is refused before the route runs.
    o["responses"]["400"]["content"]["text/plain"] = json!({ "schema": { "type": "string" } });
    o
}

/// A request body of the given media types (`(media type, schema)`).
fn with_body(mut o: Json, description: &str, content: &[(&str, Json)]) -> Json {
    let content: Map<String, Json> = content.iter().map(|(m, s)| ((*m).to_string(), json!({ "schema": s }))).collect();
    o["requestBody"] = json!({ "required": true, "description": description, "content": content });
    o
}

/// A CSV body as a pattern: a header alone (no rows: always answered), or the signature's
/// columns in order with rows of their types.
fn csv_pattern(scorer: &Scorer, policy: CategoryPolicy) -> String {
    let text = "[^,\"\\r\\n]";
    let cells: Vec<String> = scorer
        .inputs()
        .iter()
        .map(|c| {
            let value = match (c.dtype, &c.categories) {
                (DType::Str, Some(cats)) if policy == CategoryPolicy::Strict => {
                    // The categories a cell can hold unquoted, as the reader trims it.
                    let plain =
                        |s: &&String| !s.is_empty() && s.trim() == s.as_str() && !s.contains([',', '"', '\r', '\n']);
                    let cats: Vec<String> = cats.iter().filter(plain).map(|s| regex_escape(s)).collect();
                    if cats.is_empty() { "[^\\s\\S]".to_string() } else { format!("({})", cats.join("|")) }
                }
                (DType::Float, _) => "-?[0-9]{1,15}(\\.[0-9]{1,15})?".to_string(),
                (DType::Int, _) => "-?[0-9]{1,18}".to_string(),
                (DType::Bool, _) => "(true|false|True|False|TRUE|FALSE|0|1)".to_string(),
                (DType::Str, _) => format!("{text}*[^,\"\\s]{text}*"),
                (DType::Date, _) => DATE.to_string(),
                (DType::Datetime, _) => format!("{DATE}({TIME})?"),
            };
            if c.nullable { format!("({value})?") } else { value }
        })
        .collect();
    let header = names(scorer).iter().map(|n| regex_escape(n)).collect::<Vec<_>>().join(",");
    let row = cells.join(",");
    // Blank lines are skipped wherever they are.
    format!("^[\\r\\n]*([^\\r\\n]*|{header}([\\r\\n]+{row})+)[\\r\\n]*$")
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\^$.|?*+()[]{}/".contains(c);
            special.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// One column's tensor of one row (`/v2/.../infer`): a variant per kind of datatype that
/// carries the column, with the data that datatype holds and the column takes.
fn tensor(c: &ColumnSchema, policy: CategoryPolicy) -> Json {
    let int64 = json!({ "type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX });
    let groups: Vec<(Vec<&str>, Json)> = match c.dtype {
        DType::Float => vec![(vec!["FP16", "FP32", "FP64", "BYTES"], value_schema(c, policy)), (vec!["INT64"], int64)],
        DType::Int => vec![
            (vec!["INT64", "BYTES"], value_schema(c, policy)),
            // A float tensor of an integer column: whole numbers a float holds exactly.
            (
                vec!["FP16", "FP32", "FP64"],
                json!({ "type": "integer", "exclusiveMinimum": -WHOLE, "exclusiveMaximum": WHOLE }),
            ),
        ],
        DType::Bool => vec![(vec!["BOOL", "BYTES"], value_schema(c, policy))],
        DType::Str | DType::Date | DType::Datetime => vec![(vec!["BYTES"], value_schema(c, policy))],
    };
    let variants: Vec<Json> = groups
        .into_iter()
        .map(|(datatypes, value)| {
            let value = if c.nullable { json!({ "anyOf": [value, { "type": "null" }] }) } else { value };
            json!({ "properties": { "datatype": { "enum": datatypes } }, "anyOf": one_row_layouts(&value) })
        })
        .collect();
    json!({
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": { "name": { "const": c.name } },
        "anyOf": variants,
    })
}

/// The largest whole number an integer column takes as a float (`3.0`): beyond it a float
/// has lost the integer's last digits.
const WHOLE: f64 = 9.0e15;

/// The shapes and data of a one-row column tensor: `[1]` with flat data, `[1, 1]` with flat or
/// nested data.
fn one_row_layouts(value: &Json) -> Json {
    json!([
        { "properties": { "shape": { "const": [1] }, "data": one_of_list(value.clone()) } },
        { "properties": {
            "shape": { "const": [1, 1] },
            "data": { "anyOf": [one_of_list(value.clone()), one_of_list(one_of_list(value.clone()))] },
        } },
    ])
}

/// The document.
pub(crate) fn document(scorer: &Scorer) -> Json {
    let policy = scorer.policy();
    let mut properties = Map::new();
    let mut positional = Vec::new();
    let mut one_row_columns = Map::new();
    for c in scorer.inputs() {
        properties.insert(c.name.clone(), cell(c, policy));
        positional.push(cell(c, policy));
        one_row_columns.insert(c.name.clone(), json!({ "anyOf": [cell(c, policy), one_of_list(cell(c, policy))] }));
    }
    let width = scorer.inputs().len();
    let row = schema_ref("Row");
    let records = json!({ "type": "array", "items": row });
    let positional_rows = json!({ "type": "array", "items": schema_ref("PositionalRow") });
    // `instances` and `inputs`: records, lists in signature order, or an object of columns.
    let any_shape = json!({ "anyOf": [records, positional_rows, schema_ref("Columns"), schema_ref("NoColumns")] });
    let mlflow = ["dataframe_split", "dataframe_records", "instances", "inputs"].map(|key| {
        let value = match key {
            "dataframe_split" => schema_ref("Split"),
            "dataframe_records" => records.clone(),
            _ => any_shape.clone(),
        };
        json!({
            "type": "object", "required": [key], "additionalProperties": false,
            "properties": { key: value, "params": { "description": "MLflow's inference parameters: accepted and ignored" } },
        })
    });

    let mlflow_error = schema_ref("Error");
    let oip_error = schema_ref("OipError");
    let task = scorer.task();
    let label = if task == TaskKind::Regression {
        json!({ "type": ["number", "null"] })
    } else {
        json!({ "type": "string", "enum": scorer.classes() })
    };
    let version =
        json!({ "type": ["integer", "null"], "description": "the registered version (null: a package path)" });
    let predictions_of = |item: Json| json!({ "type": "object", "required": ["predictions"], "properties": { "predictions": { "type": "array", "items": item } } });

    let invocations = with_body(
        op(
            "MLflow scoring: one of dataframe_split, dataframe_records, instances, inputs (JSON), or text/csv with a header",
            ("application/json", predictions_of(label.clone())),
            {
                let mut e = scoring_errors(&mlflow_error);
                e.push(failure("415", "a content type other than application/json or text/csv", &mlflow_error));
                e
            },
        ),
        "JSON with exactly one of `dataframe_split` (`columns` in any order: the schema shows the signature's), \
         `dataframe_records`, `instances` or `inputs` (records, lists in signature order, or an object of \
         equally long column lists: the schema shows one row), and optionally `params` (ignored); or a CSV \
         with a header row (columns in any order; the pattern shows the signature's).",
        &[
            ("application/json", json!({ "anyOf": mlflow })),
            ("text/csv", json!({ "type": "string", "pattern": csv_pattern(scorer, policy) })),
        ],
    );

    let infer = |versioned: bool| {
        let o = op(
            "OIP inference: one tensor per input column (shape [N] or [N, 1]), or one [N, F] tensor in signature order",
            ("application/json", schema_ref("InferenceResponse")),
            scoring_errors(&oip_error),
        );
        let o = with_body(
            o,
            "Tensors of any length N, in any order, their data a list, flat or nested as the shape says; \
             the schema shows one row. Tensors named after no input are ignored.",
            &[("application/json", schema_ref("InferenceRequest"))],
        );
        oip_model_op(o, scorer, versioned)
    };
    let oip_get = |summary: &str, response: Json, versioned: bool| {
        let o = op(summary, ("application/json", response), shared_errors(&oip_error));
        oip_model_op(o, scorer, versioned)
    };

    let mut reload = get(
        "Reload the model the source points at now (Authorization: Bearer <token>)",
        json!({
            "type": "object", "required": ["reloaded", "previous_version", "version"],
            "properties": { "reloaded": { "type": "boolean" }, "previous_version": version, "version": version },
        }),
    );
    for (code, what) in [
        ("401", "`Authorization: Bearer <token>` is missing or wrong"),
        ("403", "reload is disabled: the server was started without a token"),
        ("409", "the model was not reloaded (the current one keeps serving)"),
    ] {
        reload["responses"][code] =
            json!({ "description": what, "content": { "application/json": { "schema": mlflow_error } } });
    }
    reload["security"] = json!([{ "bearer": [] }]);

    let health_of = |status: &str| {
        json!({
            "type": "object", "required": ["status", "model_loaded", "model", "version"],
            "properties": {
                "status": { "const": status }, "model_loaded": { "type": "boolean" },
                "model": { "type": "string" }, "version": version,
                "problem": { "type": "string", "description": "why predictions are answered but not logged" },
            },
        })
    };
    let mut health = get("Health and the served model", health_of("healthy"));
    health["responses"]["503"] = json!({
        "description": "unhealthy: predictions are answered but not logged (the prediction log's store is gone), \
                        or the request took longer than `request_timeout_ms`",
        "content": { "application/json": { "schema": { "anyOf": [health_of("unhealthy"), schema_ref("Error")] } } },
    });

    let paths = json!({
        "/invocations": { "post": invocations },
        "/ping": { "get": get_text("MLflow liveness (an empty line)") },
        "/health": { "get": health },
        "/version": { "get": get_text("Toolkit version") },
        "/v2": { "get": op("OIP server metadata", ("application/json", json!({
            "type": "object", "required": ["name", "version", "extensions"],
            "properties": {
                "name": { "type": "string" }, "version": { "type": "string" },
                "extensions": { "type": "array", "items": { "type": "string" } },
            },
        })), shared_errors(&oip_error)) },
        "/v2/health/live": { "get": op("OIP liveness", ("application/json", json!({
            "type": "object", "required": ["live"], "properties": { "live": { "type": "boolean" } },
        })), shared_errors(&oip_error)) },
        "/v2/health/ready": { "get": op("OIP readiness", ("application/json", json!({
            "type": "object", "required": ["ready"], "properties": { "ready": { "type": "boolean" } },
        })), shared_errors(&oip_error)) },
        "/v2/models/{name}": { "get": oip_get("OIP model metadata", schema_ref("ModelMetadata"), false) },
        "/v2/models/{name}/versions/{version}": { "get": oip_get("OIP model metadata", schema_ref("ModelMetadata"), true) },
        "/v2/models/{name}/ready": { "get": oip_get("OIP model readiness", schema_ref("ModelReady"), false) },
        "/v2/models/{name}/versions/{version}/ready": { "get": oip_get("OIP model readiness", schema_ref("ModelReady"), true) },
        "/v2/models/{name}/infer": { "post": infer(false) },
        "/v2/models/{name}/versions/{version}/infer": { "post": infer(true) },
        "/predict": { "post": with_body(
            op(
                "One row of named features (bare, or under `features`): prediction, probability, confidence",
                ("application/json", json!({ "allOf": [schema_ref("Prediction"), {
                    "type": "object", "required": ["model_version", "request_id"],
                    "properties": { "model_version": version, "request_id": { "type": "string" } },
                }] })),
                scoring_errors(&mlflow_error),
            ),
            "One row: the columns, or an object whose only key is `features` holding them.",
            &[("application/json", json!({ "anyOf": [row, {
                "type": "object", "required": ["features"], "additionalProperties": false,
                "properties": { "features": row },
            }] }))],
        ) },
        "/predict/batch": { "post": with_body(
            op(
                "Several rows (a list, or under `instances`)",
                ("application/json", json!({
                    "type": "object", "required": ["predictions", "model_version", "request_id"],
                    "properties": {
                        "predictions": { "type": "array", "items": schema_ref("Prediction") },
                        "model_version": version, "request_id": { "type": "string" },
                    },
                })),
                scoring_errors(&mlflow_error),
            ),
            "A list of records, or an object with the list under `instances` (other keys are ignored).",
            &[("application/json", json!({ "anyOf": [records, {
                "type": "object", "required": ["instances"], "properties": { "instances": records },
            }] }))],
        ) },
        "/model_info": { "get": get("Model type, version, alias, signature, metrics, lineage, load time", json!({
            "type": "object",
            "required": ["model_type", "name", "version", "alias", "uri", "task", "target", "classes", "params",
                         "features_count", "signature", "metrics", "lineage", "loaded_at", "package"],
            "properties": {
                "model_type": { "type": "string" }, "name": { "type": "string" }, "version": version,
                "alias": { "type": ["string", "null"] }, "uri": { "type": "string" }, "task": { "type": "string" },
                "target": { "type": "string" }, "classes": { "type": "array", "items": { "type": "string" } },
                "params": { "type": "object" }, "features_count": { "type": "integer", "minimum": 0 },
                "signature": { "type": "object", "required": ["inputs"], "properties": { "inputs": { "type": "array" } } },
                "metrics": { "type": "object" }, "lineage": { "type": "object" },
                "loaded_at": { "type": "string", "format": "date-time" }, "package": { "type": "string" },
            },
        })) },
        "/metrics": { "get": get_text("Prometheus metrics (text exposition format 0.0.4)") },
        "/openapi.json": { "get": get("This document", json!({
            "type": "object", "required": ["openapi", "info", "paths"],
            "properties": { "openapi": { "type": "string" }, "info": { "type": "object" }, "paths": { "type": "object" } },
        })) },
        "/admin/reload": { "post": reload },
        "/feedback": { "post": with_body(
            op(
                "Actual outcomes of logged predictions, joined to them by request id and row",
                ("application/json", json!({
                    "type": "object", "required": ["recorded", "replaced", "unknown"],
                    "properties": {
                        "recorded": { "type": "integer", "minimum": 0 },
                        "replaced": { "type": "integer", "minimum": 0 },
                        "unknown": { "type": "array", "items": {
                            "type": "object", "required": ["index", "request_id", "row"],
                            "properties": {
                                "index": { "type": "integer", "minimum": 0 }, "request_id": { "type": "string" },
                                "row": { "type": "integer", "minimum": 0 },
                            },
                        } },
                    },
                })),
                {
                    let mut errors = shared_errors(&mlflow_error);
                    errors[0].when = "malformed body (not a list of actuals)";
                    errors.push(failure("404", "the server keeps no prediction log", &mlflow_error));
                    errors.push(failure(
                        "422",
                        "an actual of the wrong type for its prediction (a label for a classifier, a number for a regressor); nothing of the request is recorded",
                        &mlflow_error,
                    ));
                    errors[3].when = "the request took longer than `request_timeout_ms`, or the store could not record the feedback";
                    errors
                },
            ),
            "A list of actuals, or an object with the list under `actuals`. An actual whose request id and row name no logged prediction is counted under `unknown` and not recorded; a later actual for the same prediction replaces the earlier one.",
            &[("application/json", {
                let actual = json!({
                    "type": "object", "required": ["request_id", "actual"], "additionalProperties": false,
                    "properties": {
                        "request_id": { "type": "string" },
                        "row": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 0 },
                        "actual": if task == TaskKind::Regression {
                            json!({ "type": "number" })
                        } else {
                            json!({ "type": ["string", "number", "boolean"] })
                        },
                    },
                });
                let list = json!({ "type": "array", "items": actual });
                json!({ "anyOf": [list, { "type": "object", "required": ["actuals"], "properties": { "actuals": list } }] })
            })],
        ) },
    });

    let class_probabilities: Map<String, Json> =
        scorer.classes().iter().map(|c| (c.clone(), json!({ "type": ["number", "null"] }))).collect();
    let output_tensor = json!({
        "type": "object", "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": { "type": "string" }, "datatype": { "type": "string" },
            "shape": { "type": "array", "items": { "type": "integer", "minimum": 0 } }, "data": { "type": "array" },
        },
    });
    let metadata_tensor = json!({
        "type": "object", "required": ["name", "datatype", "shape"],
        "properties": {
            "name": { "type": "string" }, "datatype": { "type": "string" },
            "shape": { "type": "array", "items": { "type": "integer" } },
        },
    });
    let mut required_tensors: Vec<Json> = Vec::new();
    for c in scorer.inputs().iter().filter(|c| !c.nullable) {
        required_tensors.push(tensor(c, policy));
    }
    let nullable: Vec<Json> = scorer.inputs().iter().filter(|c| c.nullable).map(|c| tensor(c, policy)).collect();
    // After the required inputs' tensors: those of inputs that may be missing, and tensors named
    // after no input (ignored).
    let mut optional_tensors = nullable;
    // (Ignored, but their data must still be what their datatype holds.)
    for name in Datatype::NAMES {
        let value = match Datatype::parse(name).and_then(Datatype::range) {
            Some((min, max)) => {
                let bound = |b: i128| {
                    i64::try_from(b).map_or_else(|_| json!(u64::try_from(b).unwrap_or(u64::MAX)), |b| json!(b))
                };
                json!({ "anyOf": [{ "type": "integer", "minimum": bound(min), "maximum": bound(max) }, { "type": "null" }] })
            }
            None if name == "BOOL" => json!({ "type": ["boolean", "null"] }),
            None if name.starts_with("FP") => json!({ "type": ["number", "null"] }),
            None => json!({ "type": ["string", "number", "boolean", "null", "object"] }),
        };
        optional_tensors.push(json!({
            "type": "object", "required": ["name", "shape", "datatype", "data"],
            "properties": { "name": { "type": "string", "not": { "enum": names(scorer) } }, "datatype": { "const": name } },
            "anyOf": one_row_layouts(&value),
        }));
    }
    let optional_tensor = json!({ "anyOf": optional_tensors });

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("mlops-toolkit model server: {}", scorer.origin.name),
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Serves {} ({}).", scorer.origin.uri, scorer.package.contents.info.family),
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Row": {
                    "type": "object", "properties": properties, "required": required(scorer),
                    "additionalProperties": true,
                    "description": "One row: the signature's columns (nullable ones may be left out); other keys are ignored.",
                },
                "PositionalRow": {
                    "type": "array", "prefixItems": positional, "minItems": width, "maxItems": width,
                    "description": "One row as a list of the signature's columns in order.",
                },
                "Columns": {
                    "type": "object", "properties": one_row_columns, "required": required(scorer),
                    "additionalProperties": { "anyOf": [
                        { "type": ["null", "boolean", "number", "string", "object"] },
                        { "type": "array", "minItems": 1, "maxItems": 1 },
                    ] },
                    "description": "An object of columns, each a list of one value per row (or a single value: one row). \
                                    Any equally long lists are read; the schema shows one row.",
                },
                "NoColumns": {
                    "type": "object", "additionalProperties": { "type": "array", "maxItems": 0 },
                    "description": "Columns of no rows.",
                },
                "Split": {
                    "anyOf": [
                        {
                            "type": "object", "required": ["data"],
                            "properties": { "columns": { "const": names(scorer) }, "data": positional_rows },
                        },
                        {
                            "type": "object", "required": ["columns", "data"],
                            "properties": {
                                "columns": { "type": "array", "items": { "type": "string" }, "uniqueItems": true },
                                "data": { "type": "array", "maxItems": 0 },
                            },
                        },
                    ],
                    "description": "pandas' split orient: `columns` (distinct names, in any order: the schema shows the \
                                    signature's; without them, rows are in signature order) and `data`, one list per row. \
                                    Other keys (`index`) are ignored.",
                },
                "Prediction": {
                    "type": "object", "required": ["prediction", "probability", "confidence"],
                    "properties": {
                        "prediction": label,
                        "probability": { "type": ["number", "null"], "description": "the top class's probability (null: regression)" },
                        "confidence": { "type": ["string", "null"], "enum": ["high", "medium", "low", null] },
                        "probabilities": { "type": "object", "properties": class_probabilities },
                    },
                },
                "InferenceRequest": {
                    "type": "object", "required": ["inputs"],
                    "properties": {
                        "id": { "description": "echoed (as text) in the answer" },
                        "inputs": { "anyOf": [
                            { "type": "array", "maxItems": 0 },
                            { "type": "array", "prefixItems": required_tensors, "minItems": required(scorer).len(), "items": optional_tensor },
                        ] },
                        "outputs": {
                            "type": ["array", "null"],
                            "items": { "type": "object", "properties": { "name": { "type": ["string", "null"] } } },
                            "description": "the outputs to answer (by name; absent: all)",
                        },
                        "parameters": { "description": "ignored" },
                    },
                },
                "InferenceResponse": {
                    "type": "object", "required": ["model_name", "model_version", "outputs"],
                    "properties": {
                        "id": { "type": "string" }, "model_name": { "type": "string" }, "model_version": { "type": "string" },
                        "outputs": { "type": "array", "items": output_tensor },
                    },
                },
                "ModelMetadata": {
                    "type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"],
                    "properties": {
                        "name": { "type": "string" }, "versions": { "type": "array", "items": { "type": "string" } },
                        "platform": { "type": "string" },
                        "inputs": { "type": "array", "items": metadata_tensor },
                        "outputs": { "type": "array", "items": metadata_tensor },
                    },
                },
                "ModelReady": {
                    "type": "object", "required": ["name", "ready"],
                    "properties": { "name": { "type": "string" }, "ready": { "type": "boolean" } },
                },
                "Error": {
                    "type": "object", "required": ["error_code", "message"],
                    "properties": {
                        "error_code": { "type": "string" }, "message": { "type": "string" },
                        "column": { "type": "string" }, "row": { "type": "integer", "minimum": 0 },
                    },
                    "description": "MLflow's error body (and the workflow routes').",
                },
                "OipError": {
                    "type": "object", "required": ["error"],
                    "properties": {
                        "error": { "type": "string" },
                        "column": { "type": "string" }, "row": { "type": "integer", "minimum": 0 },
                    },
                    "description": "The Open Inference Protocol's error body.",
                },
            },
        },
    })
}
