//! The OpenAPI 3.1 description of every route, with the served model's input columns.

use mlops_core::DType;
use serde_json::{Map, Value as Json, json};

use crate::scorer::Scorer;

fn column_schema(dtype: DType) -> Json {
    match dtype {
        DType::Float => json!({ "type": "number" }),
        DType::Int => json!({ "type": "integer" }),
        DType::Bool => json!({ "type": "boolean" }),
        DType::Str => json!({ "type": "string" }),
        DType::Date => json!({ "type": "string", "format": "date" }),
        DType::Datetime => json!({ "type": "string", "format": "date-time" }),
    }
}

fn op(summary: &str, request: Option<Json>, response: Json) -> Json {
    let mut o = json!({
        "summary": summary,
        "responses": {
            "200": { "description": "OK", "content": { "application/json": { "schema": response } } },
        },
    });
    if let Some(r) = request {
        o["requestBody"] = json!({ "required": true, "content": r });
        for (code, what) in [
            ("400", "malformed body, missing column or wrong type (names the column)"),
            ("413", "body or row count over the limit"),
            ("415", "unsupported content type"),
            ("422", "null or NaN where not allowed, or an unseen category under the strict policy"),
        ] {
            o["responses"][code] = json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
        }
    }
    o
}

/// The document.
pub(crate) fn document(scorer: &Scorer) -> Json {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for c in scorer.inputs() {
        let mut schema = column_schema(c.dtype);
        if let Some(cats) = &c.categories {
            schema["examples"] = json!(cats.iter().take(5).collect::<Vec<_>>());
        }
        if c.nullable {
            schema = json!({ "anyOf": [schema, { "type": "null" }] });
        } else {
            required.push(c.name.clone());
        }
        properties.insert(c.name.clone(), schema);
    }
    let row = json!({ "$ref": "#/components/schemas/Row" });
    let records = json!({ "type": "array", "items": row });
    let object = json!({ "type": "object" });
    let json_body = |schema: Json| json!({ "application/json": { "schema": schema } });
    let paths = json!({
        "/invocations": { "post": op(
            "MLflow scoring: one of dataframe_split, dataframe_records, instances, inputs (JSON), or text/csv with a header",
            Some(json!({
                "application/json": { "schema": { "type": "object", "properties": {
                    "dataframe_split": { "type": "object", "properties": { "columns": { "type": "array", "items": { "type": "string" } }, "data": { "type": "array" } } },
                    "dataframe_records": records,
                    "instances": {},
                    "inputs": {},
                    "params": { "type": "object" },
                } } },
                "text/csv": { "schema": { "type": "string" } },
            })),
            json!({ "type": "object", "properties": { "predictions": { "type": "array" } } }),
        ) },
        "/ping": { "get": op("MLflow liveness", None, json!({ "type": "string" })) },
        "/health": { "get": op("Health and the served model", None, object.clone()) },
        "/version": { "get": op("Toolkit version (text)", None, json!({ "type": "string" })) },
        "/v2": { "get": op("OIP server metadata", None, object.clone()) },
        "/v2/health/live": { "get": op("OIP liveness", None, object.clone()) },
        "/v2/health/ready": { "get": op("OIP readiness", None, object.clone()) },
        "/v2/models/{name}": { "get": op("OIP model metadata", None, object.clone()) },
        "/v2/models/{name}/versions/{version}": { "get": op("OIP model metadata", None, object.clone()) },
        "/v2/models/{name}/ready": { "get": op("OIP model readiness", None, object.clone()) },
        "/v2/models/{name}/versions/{version}/ready": { "get": op("OIP model readiness", None, object.clone()) },
        "/v2/models/{name}/infer": { "post": op(
            "OIP inference: one tensor per input column (shape [N]) or one [N, F] tensor in signature order",
            Some(json_body(json!({ "$ref": "#/components/schemas/InferenceRequest" }))),
            object.clone(),
        ) },
        "/v2/models/{name}/versions/{version}/infer": { "post": op(
            "OIP inference on a version",
            Some(json_body(json!({ "$ref": "#/components/schemas/InferenceRequest" }))),
            object.clone(),
        ) },
        "/predict": { "post": op(
            "One row of named features (bare, or under `features`): prediction, probability, confidence",
            Some(json_body(row.clone())),
            json!({ "$ref": "#/components/schemas/Prediction" }),
        ) },
        "/predict/batch": { "post": op(
            "Several rows (a list, or under `instances`)",
            Some(json_body(json!({ "oneOf": [records, { "type": "object", "properties": { "instances": records } }] }))),
            json!({ "type": "object", "properties": { "predictions": { "type": "array", "items": { "$ref": "#/components/schemas/Prediction" } } } }),
        ) },
        "/model_info": { "get": op("Model type, version, alias, signature, metrics, lineage, load time", None, object.clone()) },
        "/metrics": { "get": op("Prometheus metrics (text)", None, json!({ "type": "string" })) },
        "/openapi.json": { "get": op("This document", None, object.clone()) },
        "/admin/reload": { "post": op(
            "Reload the model the source points at now (Authorization: Bearer <token>)",
            None,
            json!({ "type": "object", "properties": { "reloaded": { "type": "boolean" }, "previous_version": {}, "version": {} } }),
        ) },
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("mlops-toolkit model server: {}", scorer.origin.name),
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Serves {} ({}).", scorer.origin.uri, scorer.package.contents.info.family),
        },
        "paths": paths,
        "components": { "schemas": {
            "Row": { "type": "object", "properties": properties, "required": required, "additionalProperties": true },
            "Prediction": { "type": "object", "properties": {
                "prediction": {}, "probability": { "type": ["number", "null"] },
                "confidence": { "enum": ["high", "medium", "low", null] }, "probabilities": { "type": "object" },
            } },
            "InferenceRequest": { "type": "object", "required": ["inputs"], "properties": {
                "id": { "type": "string" },
                "inputs": { "type": "array", "items": { "type": "object", "required": ["name", "shape", "datatype", "data"] } },
                "outputs": { "type": "array" },
            } },
            "Error": { "type": "object", "properties": {
                "error_code": { "type": "string" }, "message": { "type": "string" },
                "column": { "type": "string" }, "row": { "type": "integer" }, "error": { "type": "string" },
            } },
        } },
    })
}
