//! JSON APIs over HTTP: one request per page, records flattened as the `json` source flattens a
//! document. Pagination by a next link (a dotted path in the page, or the `Link` header), page
//! numbers or a cursor, with guards against a link or cursor seen twice; a client-side rate
//! limit; a 429 waits as long as its `Retry-After` says; a 5xx or a connection error is retried
//! with exponential backoff and jitter; any other 4xx stops at once, naming the URL and status.
//! Secret header values come from environment variables only.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use polars::prelude::DataFrame;
use reqwest::blocking::{Client, Response};
use serde_json::Value as Json;

use crate::Env;
use crate::config::{HeaderValue, HttpJsonSource, HttpMethod, Pagination};
use crate::error::{IngestError, Result};
use crate::json::{Flat, at_path, flatten, kind};
use crate::records::Columns;

/// What a read gives: the frame, the bytes of all pages, and how many pages.
#[derive(Debug)]
pub(crate) struct Read {
    pub frame: DataFrame,
    pub bytes: u64,
    pub pages: usize,
}

fn config(key: &str, message: String) -> IngestError {
    IngestError::Config { key: format!("http_json.{key}"), message }
}

fn failed(url: &str, message: String) -> IngestError {
    IngestError::Http { url: url.to_string(), message }
}

/// Header names whose values are credentials: never written in a config.
fn secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["authorization", "proxy-authorization", "cookie"].contains(&n.as_str())
        || ["key", "token", "secret", "password"].iter().any(|w| n.contains(w))
}

fn headers(opts: &HttpJsonSource, env: Env<'_>) -> Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value_of) in &opts.headers {
        let text = match value_of {
            HeaderValue::Literal(_) if secret(name) => {
                return Err(config(
                    &format!("headers.{name}"),
                    format!(
                        "`{name}` carries a credential: give it as {{env: VARIABLE}} (with `prefix: \"Bearer \"` if it needs one), never in the config"
                    ),
                ));
            }
            HeaderValue::Literal(v) => v.clone(),
            HeaderValue::Env { env: var, prefix } => {
                let v = env(var).ok_or_else(|| {
                    config(&format!("headers.{name}"), format!("the environment variable `{var}` is not set"))
                })?;
                format!("{prefix}{v}")
            }
        };
        let key = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| config(&format!("headers.{name}"), format!("not a header name: {e}")))?;
        let mut value = reqwest::header::HeaderValue::from_str(&text)
            .map_err(|e| config(&format!("headers.{name}"), format!("not a header value: {e}")))?;
        value.set_sensitive(secret(name) || matches!(value_of, HeaderValue::Env { .. }));
        map.insert(key, value);
    }
    Ok(map)
}

fn query_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A wait of `base * 2^attempt`, plus up to half again of jitter, capped at `max`.
fn backoff(attempt: u32, base: u64, max: u64, seed: &mut u64) -> Duration {
    // xorshift: jitter needs spread, not quality, and must not depend on a global RNG.
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let wait = base.saturating_mul(1u64 << attempt.min(20));
    let jitter = if wait > 1 { *seed % (wait / 2).max(1) } else { 0 };
    Duration::from_millis(wait.saturating_add(jitter).min(max))
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(response: &Response) -> Option<Duration> {
    let text = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().to_string();
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(&text).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or_default())
}

/// The `rel="next"` target of a `Link` header.
fn link_next(response: &Response) -> Option<String> {
    let header = response.headers().get(reqwest::header::LINK)?.to_str().ok()?;
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let rel_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        rel_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// Byte offset of a parse error in `body` (serde gives a line and a column).
fn offset(body: &[u8], line: usize, column: usize) -> usize {
    let mut at = 0;
    for (i, l) in body.split(|b| *b == b'\n').enumerate() {
        if i + 1 == line {
            return at + column.saturating_sub(1);
        }
        at += l.len() + 1;
    }
    body.len()
}

/// A client that waits its turn: at most `rate` requests a second.
struct Paced {
    client: Client,
    min_gap: Option<Duration>,
    last: Option<Instant>,
    seed: u64,
}

impl Paced {
    fn wait_turn(&mut self) {
        if let (Some(gap), Some(last)) = (self.min_gap, self.last) {
            let since = last.elapsed();
            if since < gap {
                std::thread::sleep(gap - since);
            }
        }
        self.last = Some(Instant::now());
    }

    /// One page: retried on a 429 (after its `Retry-After`), a 5xx or a connection error.
    /// Answers the body and the `Link` header's next page.
    fn page(
        &mut self,
        opts: &HttpJsonSource,
        url: &reqwest::Url,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<(Vec<u8>, Option<String>)> {
        let retries = opts.retries;
        let mut attempt = 0;
        loop {
            self.wait_turn();
            let request = match opts.method {
                HttpMethod::Get => self.client.get(url.clone()),
                HttpMethod::Post => self.client.post(url.clone()).json(opts.body.as_ref().unwrap_or(&Json::Null)),
            };
            let outcome = request.headers(headers.clone()).send();
            let (wait, why) = match outcome {
                Ok(response) if response.status().is_success() => {
                    let next = link_next(&response);
                    let body =
                        response.bytes().map_err(|e| failed(url.as_str(), format!("reading the answer: {e}")))?;
                    return Ok((body.to_vec(), next));
                }
                Ok(response) => {
                    let status = response.status();
                    let code = status.as_u16();
                    if code == 429 {
                        let wait = retry_after(&response).unwrap_or_else(|| {
                            backoff(attempt, retries.backoff_ms, retries.max_backoff_ms, &mut self.seed)
                        });
                        if wait > Duration::from_millis(retries.max_backoff_ms) {
                            return Err(failed(
                                url.as_str(),
                                format!(
                                    "429 Too Many Requests, Retry-After {:.0} s: longer than retries.max_backoff_ms ({} ms)",
                                    wait.as_secs_f64(),
                                    retries.max_backoff_ms
                                ),
                            ));
                        }
                        (wait, format!("{status}"))
                    } else if status.is_server_error() {
                        (
                            backoff(attempt, retries.backoff_ms, retries.max_backoff_ms, &mut self.seed),
                            format!("{status}"),
                        )
                    } else {
                        let body = response.text().unwrap_or_default();
                        let snippet: String = body.chars().take(200).collect();
                        return Err(failed(
                            url.as_str(),
                            format!(
                                "the server answered {status}{}",
                                if snippet.is_empty() { String::new() } else { format!(": {snippet}") }
                            ),
                        ));
                    }
                }
                Err(e) => {
                    let mut message = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        message.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    (backoff(attempt, retries.backoff_ms, retries.max_backoff_ms, &mut self.seed), message)
                }
            };
            if attempt >= retries.max {
                return Err(failed(url.as_str(), format!("{why} (after {} attempt(s))", attempt + 1)));
            }
            tracing::warn!(url = %url, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, %why, "retrying");
            std::thread::sleep(wait);
            attempt += 1;
        }
    }
}

/// Reads every page of the source (header values from `env`).
pub(crate) fn read(opts: &HttpJsonSource, env: Env<'_>) -> Result<Read> {
    let first =
        reqwest::Url::parse(&opts.url).map_err(|e| config("url", format!("{:?} is not a URL: {e}", opts.url)))?;
    if !matches!(first.scheme(), "http" | "https") {
        return Err(config("url", format!("{:?}: only http:// and https:// are read", opts.url)));
    }
    if opts.timeout_seconds.is_nan() || opts.timeout_seconds <= 0.0 {
        return Err(config("timeout_seconds", format!("{} is not a positive number of seconds", opts.timeout_seconds)));
    }
    let min_gap = match opts.rate_limit {
        None => None,
        Some(r) if r > 0.0 && r.is_finite() => Some(Duration::from_secs_f64(1.0 / r)),
        Some(r) => return Err(config("rate_limit", format!("{r} is not a positive number of requests per second"))),
    };
    if opts.max_pages == 0 {
        return Err(config("max_pages", "0: at least one page".into()));
    }
    let headers = headers(opts, env)?;
    let timeout = Duration::from_secs_f64(opts.timeout_seconds);
    let client = Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("mlops/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed(&opts.url, e.to_string()))?;
    let seed = u64::from(std::process::id()) ^ 0x9E37_79B9_7F4A_7C15;
    let mut paced = Paced { client, min_gap, last: None, seed };
    let flat = Flat { separator: &opts.separator, max_level: opts.max_level };
    let mut columns = Columns::default();
    let mut url = first.clone();
    for (k, v) in &opts.query {
        url.query_pairs_mut().append_pair(k, &query_text(v));
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let (mut bytes, mut pages) = (0u64, 0usize);
    let mut page_number = match &opts.pagination {
        Some(Pagination::Page { start, .. }) => *start,
        _ => 0,
    };
    loop {
        let asked = match &opts.pagination {
            Some(Pagination::Page { param, .. }) => with_param(&url, param, &page_number.to_string()),
            _ => url.clone(),
        };
        let (body, link) = paced.page(opts, &asked, &headers)?;
        bytes += body.len() as u64;
        pages += 1;
        let doc: Json = serde_json::from_slice(&body).map_err(|e| {
            let at = offset(&body, e.line(), e.column());
            let mut message = e.to_string();
            if let Some(cut) = message.find(" at line ") {
                message.truncate(cut);
            }
            failed(
                asked.as_str(),
                format!("the answer is not JSON: {message} at byte {at} (line {}, column {})", e.line(), e.column()),
            )
        })?;
        let node = at_path(&doc, opts.record_path.as_deref()).map_err(|m| failed(asked.as_str(), m))?;
        let before = columns.rows();
        let mut push = |v: &Json| -> Result<()> {
            let Json::Object(obj) = v else {
                return Err(failed(asked.as_str(), format!("expected records (objects), found {}", kind(v))));
            };
            let mut record = Vec::new();
            flatten("", obj, flat, 0, &mut record);
            columns.push(record);
            Ok(())
        };
        match node {
            Json::Array(items) => items.iter().try_for_each(&mut push)?,
            Json::Object(_) => push(node)?,
            Json::Null => {}
            other => {
                return Err(failed(asked.as_str(), format!("expected an array of records, found {}", kind(other))));
            }
        }
        let got = columns.rows() - before;
        tracing::debug!(url = %asked, records = got, "page read");
        if pages >= opts.max_pages {
            tracing::warn!(pages, "max_pages reached: later pages are not read");
            break;
        }
        let next = match &opts.pagination {
            None => break,
            Some(Pagination::Page { .. }) => {
                if got == 0 {
                    break;
                }
                page_number += 1;
                continue;
            }
            Some(Pagination::NextLink(where_)) => {
                let link = if where_ == "link_header" { link } else { string_at(&doc, where_) };
                let Some(link) = link.filter(|l| !l.trim().is_empty()) else { break };
                let next = asked.join(&link).map_err(|e| failed(asked.as_str(), format!("next link {link:?}: {e}")))?;
                if !seen.insert(next.to_string()) || next == asked {
                    return Err(failed(
                        asked.as_str(),
                        format!("the next link {next} was already read: the pages loop"),
                    ));
                }
                next
            }
            Some(Pagination::Cursor { param, path }) => {
                let Some(cursor) = string_at(&doc, path).filter(|c| !c.is_empty()) else { break };
                if !seen.insert(cursor.clone()) {
                    return Err(failed(asked.as_str(), format!("the cursor {cursor:?} came twice: the pages loop")));
                }
                with_param(&url, param, &cursor)
            }
        };
        url = next;
    }
    let frame = columns.finish(Path::new(&opts.url), None)?;
    Ok(Read { frame, bytes, pages })
}

/// `url` with `param` set to `value` (replacing it if present).
fn with_param(url: &reqwest::Url, param: &str, value: &str) -> reqwest::Url {
    let mut out = url.clone();
    let kept: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| k != param).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    out.query_pairs_mut().clear().extend_pairs(kept).append_pair(param, value);
    out
}

/// The text (or number) at a dotted path of a page; none when absent or null.
fn string_at(doc: &Json, path: &str) -> Option<String> {
    let mut node = doc;
    for part in path.split('.') {
        node = node.get(part)?;
    }
    match node {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut seed = 7;
        let waits: Vec<u128> = (0..6).map(|a| backoff(a, 100, 2_000, &mut seed).as_millis()).collect();
        for (a, w) in waits.iter().enumerate() {
            let base = (100u128 << a).min(2_000);
            assert!(*w >= base.min(2_000) && *w <= (base * 3 / 2).min(2_000), "attempt {a}: {w} ms");
        }
        assert!(secret("Authorization") && secret("X-Api-Key") && secret("x-auth-token") && !secret("Accept"));
        assert_eq!(offset(b"{\n  \"a\": ?\n}", 2, 8), 9);
    }
}
