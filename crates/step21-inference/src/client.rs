//! An async client for the model server: connection pooling, timeouts, retries with backoff on
//! 5xx and connection errors, and an optional LRU cache of recent predictions.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use mlops_core::{DType, Row, Signature};
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::{InferenceError, Result};

/// Which protocol the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Open Inference Protocol v2: labels and probabilities.
    Oip,
    /// MLflow's `/invocations`: labels (or values) only.
    Mlflow,
}

/// Client settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// The protocol.
    pub protocol: Protocol,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retries after the first attempt, on 5xx answers and connection errors.
    pub retries: u32,
    /// First backoff; doubled each retry, up to `max_backoff`.
    pub backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Idle connections kept per host.
    pub pool_idle: usize,
    /// Recent predictions cached by input row (0: no cache).
    pub cache: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Oip,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            retries: 3,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            pool_idle: 32,
            cache: 0,
        }
    }
}

/// One row's prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The class name, or the value.
    pub label: Json,
    /// Class probabilities in the model's class order (OIP, classifiers).
    pub probabilities: Option<Vec<f64>>,
}

/// A bounded least-recently-used map.
struct Lru {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (Prediction, u64)>,
    order: BTreeMap<u64, String>,
}

impl Lru {
    fn get(&mut self, key: &str) -> Option<Prediction> {
        self.tick += 1;
        let tick = self.tick;
        let (value, used) = self.entries.get_mut(key)?;
        self.order.remove(used);
        *used = tick;
        self.order.insert(tick, key.to_string());
        Some(value.clone())
    }

    fn put(&mut self, key: String, value: Prediction) {
        self.tick += 1;
        if let Some((_, old)) = self.entries.insert(key.clone(), (value, self.tick)) {
            self.order.remove(&old);
        }
        self.order.insert(self.tick, key);
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }
}

/// The model the server serves, as the client learns it from `/model_info`.
#[derive(Clone, Debug)]
struct Served {
    name: String,
    version: Option<u64>,
    signature: Signature,
}

/// A client of one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    config: ClientConfig,
    cache: Option<Mutex<Lru>>,
    served: tokio::sync::Mutex<Option<Served>>,
    hits: std::sync::atomic::AtomicU64,
}

fn lock(m: &Mutex<Lru>) -> std::sync::MutexGuard<'_, Lru> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8080`).
    pub fn new(base: &str, config: ClientConfig) -> Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(InferenceError::Argument { name: "url", message: format!("{base:?} must start with http://") });
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.pool_idle)
            .build()
            .map_err(|e| InferenceError::Http { url: base.clone(), message: e.to_string() })?;
        let cache = (config.cache > 0).then(|| {
            Mutex::new(Lru { capacity: config.cache, tick: 0, entries: HashMap::new(), order: BTreeMap::new() })
        });
        Ok(Client {
            http,
            base,
            config,
            cache,
            served: tokio::sync::Mutex::new(None),
            hits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Predictions answered from the cache so far.
    pub fn cache_hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends with retries: 5xx answers and connection errors are retried with exponential
    /// backoff; 4xx answers fail at once with the server's message.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Result<Json> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0u32;
        loop {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(b) = &body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.clone());
            }
            let retry = match request.send().await {
                Ok(r) if r.status().is_success() => {
                    let text = r
                        .text()
                        .await
                        .map_err(|e| InferenceError::Http { url: url.clone(), message: e.to_string() })?;
                    return serde_json::from_str(&text)
                        .or_else(|_| Ok(Json::String(text)))
                        .map_err(|e: serde_json::Error| InferenceError::Http { url, message: e.to_string() });
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    let body = serde_json::from_str::<Json>(&text).unwrap_or(Json::Null);
                    let message = body
                        .get("message")
                        .or_else(|| body.get("error"))
                        .and_then(Json::as_str)
                        .map_or(text, str::to_string);
                    if status < 500 || attempt >= self.config.retries {
                        let row = body.get("row").and_then(Json::as_u64).and_then(|r| usize::try_from(r).ok());
                        let column = body.get("column").and_then(Json::as_str).map(str::to_string);
                        return Err(InferenceError::Server { url, status, message, row, column });
                    }
                    format!("{status}: {message}")
                }
                Err(e) if attempt < self.config.retries && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    e.to_string()
                }
                Err(e) => {
                    let tries = attempt + 1;
                    return Err(InferenceError::Http { url, message: format!("{e} (after {tries} attempt(s))") });
                }
            };
            let wait = self.config.backoff.saturating_mul(1 << attempt.min(16)).min(self.config.max_backoff);
            tracing::debug!(%url, attempt, error = %retry, ?wait, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Whether the server is up and its model loaded (`/v2/health/ready`).
    pub async fn ready(&self) -> Result<()> {
        self.send(reqwest::Method::GET, "/v2/health/ready", None).await.map(|_| ())
    }

    /// The server's `/model_info`.
    pub async fn model_info(&self) -> Result<Json> {
        self.send(reqwest::Method::GET, "/model_info", None).await
    }

    async fn served(&self) -> Result<Served> {
        let mut served = self.served.lock().await;
        if let Some(s) = served.as_ref() {
            return Ok(s.clone());
        }
        let info = self.model_info().await?;
        let bad = |message: String| InferenceError::Http { url: format!("{}/model_info", self.base), message };
        let signature: Signature = serde_json::from_value(info["signature"].clone())
            .map_err(|e| bad(format!("no signature in the answer: {e}")))?;
        let s = Served {
            name: info["name"].as_str().ok_or_else(|| bad("no model name in the answer".into()))?.to_string(),
            version: info["version"].as_u64(),
            signature,
        };
        *served = Some(s.clone());
        Ok(s)
    }

    /// The served model's input signature.
    pub async fn signature(&self) -> Result<Signature> {
        Ok(self.served().await?.signature)
    }

    /// Predicts rows (typed values of the signature's columns), one
    /// request for the rows the cache does not hold. A 4xx naming a row names it by its place in
    /// `rows` (its `row`; the server's message counts the rows of the request).
    pub async fn predict<R: std::borrow::Borrow<Row>>(&self, rows: &[R]) -> Result<Vec<Prediction>> {
        let rows: Vec<&Row> = rows.iter().map(Borrow::borrow).collect();
        let keys: Vec<String> = rows
            .iter()
            .map(|r| {
                serde_json::to_string(&r.iter().map(|(k, v)| (k, v.to_json())).collect::<Vec<_>>()).unwrap_or_default()
            })
            .collect();
        let mut out: Vec<Option<Prediction>> = vec![None; rows.len()];
        if let Some(cache) = &self.cache {
            let mut c = lock(cache);
            for (slot, key) in out.iter_mut().zip(&keys) {
                *slot = c.get(key);
            }
        }
        let missing: Vec<usize> = (0..rows.len()).filter(|&i| out[i].is_none()).collect();
        self.hits.fetch_add((rows.len() - missing.len()) as u64, std::sync::atomic::Ordering::Relaxed);
        if !missing.is_empty() {
            let asked: Vec<&Row> = missing.iter().map(|&i| rows[i]).collect();
            let fresh = match self.config.protocol {
                Protocol::Mlflow => self.mlflow(&asked).await,
                Protocol::Oip => self.oip(&asked).await,
            };
            // A row the server names is one of those asked: name it by its place in `rows`.
            let fresh = fresh.map_err(|e| match e {
                InferenceError::Server { url, status, message, row, column } => {
                    let row = row.and_then(|r| missing.get(r).copied());
                    InferenceError::Server { url, status, message, row, column }
                }
                other => other,
            })?;
            if fresh.len() != asked.len() {
                return Err(InferenceError::Http {
                    url: self.base.clone(),
                    message: format!("asked {} rows, got {} predictions", asked.len(), fresh.len()),
                });
            }
            let mut cache = self.cache.as_ref().map(lock);
            for (&i, p) in missing.iter().zip(fresh) {
                if let Some(c) = cache.as_mut() {
                    c.put(keys[i].clone(), p.clone());
                }
                out[i] = Some(p);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    async fn mlflow(&self, rows: &[&Row]) -> Result<Vec<Prediction>> {
        let records: Vec<serde_json::Map<String, Json>> =
            rows.iter().map(|r| r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()).collect();
        let body = serde_json::to_vec(&json!({ "dataframe_records": records })).unwrap_or_default();
        let answer = self.send(reqwest::Method::POST, "/invocations", Some(body)).await?;
        let predictions = answer["predictions"].as_array().cloned().unwrap_or_default();
        Ok(predictions.into_iter().map(|label| Prediction { label, probabilities: None }).collect())
    }

    async fn oip(&self, rows: &[&Row]) -> Result<Vec<Prediction>> {
        let served = self.served().await?;
        let n = rows.len();
        let inputs: Vec<Json> = served
            .signature
            .inputs
            .iter()
            .map(|c| {
                let datatype = match c.dtype {
                    DType::Float => "FP64",
                    DType::Int => "INT64",
                    DType::Bool => "BOOL",
                    _ => "BYTES",
                };
                let data: Vec<Json> = rows.iter().map(|r| r.get(&c.name).map_or(Json::Null, |v| v.to_json())).collect();
                json!({ "name": c.name, "shape": [n], "datatype": datatype, "data": data })
            })
            .collect();
        let path = match served.version {
            Some(v) => format!("/v2/models/{}/versions/{v}/infer", served.name),
            None => format!("/v2/models/{}/infer", served.name),
        };
        let body = serde_json::to_vec(&json!({ "inputs": inputs })).unwrap_or_default();
        let answer = match self.send(reqwest::Method::POST, &path, Some(body.clone())).await {
            // The alias moved to another version: learn the new one and ask again once.
            Err(InferenceError::Server { status: 404, .. }) => {
                *self.served.lock().await = None;
                let served = self.served().await?;
                let path = match served.version {
                    Some(v) => format!("/v2/models/{}/versions/{v}/infer", served.name),
                    None => format!("/v2/models/{}/infer", served.name),
                };
                self.send(reqwest::Method::POST, &path, Some(body)).await?
            }
            other => other?,
        };
        let outputs = answer["outputs"].as_array().cloned().unwrap_or_default();
        let find = |name: &str| outputs.iter().find(|o| o["name"] == name);
        let labels = find("label")
            .or_else(|| find("prediction"))
            .and_then(|o| o["data"].as_array().cloned())
            .unwrap_or_default();
        let proba: Option<Vec<f64>> = find("probabilities")
            .and_then(|o| o["data"].as_array().map(|d| d.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()));
        let classes = if labels.is_empty() { 0 } else { proba.as_ref().map_or(0, |p| p.len() / labels.len()) };
        Ok(labels
            .into_iter()
            .enumerate()
            .map(|(i, label)| Prediction {
                label,
                probabilities: proba
                    .as_ref()
                    .filter(|_| classes > 0)
                    .map(|p| p[i * classes..(i + 1) * classes].to_vec()),
            })
            .collect())
    }
}
