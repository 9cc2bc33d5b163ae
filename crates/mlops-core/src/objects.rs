//! Artifacts on S3-compatible object storage (the `objects` feature): an `artifacts:` (or catalog
//! `dir:`) setting of the form `s3://BUCKET/PREFIX` names a [`Bucket`], reached through the
//! `object_store` crate that polars already builds.
//!
//! The endpoint, region and credentials come from the environment, as the AWS tools read them:
//! `AWS_ENDPOINT_URL` (an S3-compatible server such as MinIO, Ceph or moto), `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, and `AWS_ALLOW_HTTP=true`
//! for a plain-HTTP endpoint. Requests time out (connect 5 s, request 60 s) and are retried
//! twice within 10 s, so an unreachable bucket is named within seconds instead of hanging.
//!
//! The calls block (on a runtime of the bucket's own), and are safe from a server's async
//! handler. Objects are written whole (one PUT each): a reader sees an object entirely or not at
//! all, and a set of files is complete once its last one (a package's manifest) is there.

use std::path::Path;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};

use crate::CoreError;
use crate::rt::off_runtime;

/// What goes wrong with a bucket. Every message names the object's URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// A setting that cannot work (a malformed URL, an unknown `AWS_` option).
    #[error("{url}: {message}")]
    Config {
        /// The setting.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The server refused or could not be reached (after the retries).
    #[error("{url}: {message}")]
    Request {
        /// The object.
        url: String,
        /// The client's reason.
        message: String,
    },
    /// A local file could not be read or written.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Result with [`ObjectError`].
pub type Result<T, E = ObjectError> = std::result::Result<T, E>;

/// A bucket and a prefix in it: where artifacts live.
pub struct Bucket {
    url: String,
    prefix: String,
    client: AmazonS3,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        // A runtime must not be dropped on a thread that drives another one.
        if let Some(runtime) = self.runtime.take() {
            off_runtime(move || drop(runtime));
        }
    }
}

/// Whether a setting names object storage (`s3://...`).
pub fn is_bucket(setting: &Path) -> bool {
    setting.to_str().is_some_and(|s| s.starts_with("s3://"))
}

impl Bucket {
    /// The bucket of an `s3://BUCKET/PREFIX` setting, configured from the process environment.
    pub fn open(setting: &str) -> Result<Bucket> {
        let vars: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).collect();
        Bucket::open_with(setting, &vars)
    }

    /// [`Bucket::open`] with the `AWS_*` variables given (tests, and callers that hold them).
    pub fn open_with(setting: &str, vars: &[(String, String)]) -> Result<Bucket> {
        let bad = |message: String| ObjectError::Config { url: setting.to_string(), message };
        let rest = setting.strip_prefix("s3://").ok_or_else(|| bad("not an s3:// URL".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket name after s3://".into()));
        }
        // The timeouts first: the environment's client options (AWS_ALLOW_HTTP) go on top.
        let mut builder = AmazonS3Builder::new()
            .with_client_options(
                ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(60)),
            )
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..RetryConfig::default()
            });
        for (key, value) in vars {
            let Ok(option) = key.to_ascii_lowercase().parse() else {
                // Variables for other AWS tools (AWS_PROFILE, AWS_PAGER, ...) are not ours.
                continue;
            };
            builder = builder.with_config(option, value);
        }
        let client = builder.with_bucket_name(bucket).build().map_err(|e| bad(e.to_string()))?;
        let runtime = off_runtime(|| tokio::runtime::Builder::new_current_thread().enable_all().build())
            .map_err(|e| bad(format!("cannot start the client: {e}")))?;
        let prefix = prefix.trim_matches('/').to_string();
        let url = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
        Ok(Bucket { url, prefix, client, runtime: Some(runtime) })
    }

    /// The bucket's URL with its prefix (`s3://bucket/prefix`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of `key` under the prefix.
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{}", self.url, key.trim_start_matches('/'))
    }

    fn key(&self, key: &str) -> Key {
        let key = key.trim_start_matches('/');
        if self.prefix.is_empty() { Key::from(key) } else { Key::from(format!("{}/{key}", self.prefix)) }
    }

    fn block<T: Send>(&self, f: impl std::future::Future<Output = T> + Send) -> T {
        let runtime = self.runtime.as_ref().expect("a bucket has its runtime until dropped");
        off_runtime(|| runtime.block_on(f))
    }

    fn failed(&self, key: &str, e: object_store::Error) -> ObjectError {
        let message = match &e {
            object_store::Error::Generic { source, .. } => {
                // The client's chain of reasons, each said once.
                let mut text = source.to_string();
                let mut next = std::error::Error::source(source.as_ref());
                while let Some(cause) = next {
                    let cause_text = cause.to_string();
                    if !text.contains(&cause_text) {
                        text = format!("{text}: {cause_text}");
                    }
                    next = cause.source();
                }
                text
            }
            other => other.to_string(),
        };
        ObjectError::Request { url: self.url_of(key), message: s3_reason(&message) }
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> Result<bool> {
        match self.block(self.client.head(&self.key(key))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    /// Writes `bytes` as `key` (whole, in one request).
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.block(self.client.put(&self.key(key), PutPayload::from(bytes))).map_err(|e| self.failed(key, e))?;
        tracing::debug!(object = %self.url_of(key), "object written");
        Ok(())
    }

    /// Reads `key` whole.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let bytes = self
            .block(async {
                let got = self.client.get(&self.key(key)).await?;
                got.bytes().await
            })
            .map_err(|e| self.failed(key, e))?;
        Ok(bytes.to_vec())
    }

    /// Deletes `key` (a missing one is no error).
    pub fn delete(&self, key: &str) -> Result<()> {
        match self.block(self.client.delete(&self.key(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    /// Uploads the files `names` of folder `dir` under `key/`, in the order given: the last one
    /// (a manifest) marks the set complete.
    pub fn put_files(&self, key: &str, dir: &Path, names: &[&str]) -> Result<()> {
        for name in names {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| CoreError::io("cannot read", &path, e))?;
            self.put(&format!("{key}/{name}"), bytes)?;
        }
        Ok(())
    }

    /// Downloads `key/NAME` for each of `names` into folder `dir` (which must exist).
    pub fn get_files(&self, key: &str, dir: &Path, names: &[&str]) -> Result<()> {
        for name in names {
            let bytes = self.get(&format!("{key}/{name}"))?;
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| CoreError::io("cannot create directory", parent, e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| CoreError::io("cannot write", &path, e))?;
        }
        Ok(())
    }
}

/// A client message with the server's XML error body cut to its code and message
/// (`NoSuchBucket: The specified bucket does not exist`).
fn s3_reason(text: &str) -> String {
    let Some(at) = text.find("<?xml").or_else(|| text.find("<Error>")) else { return text.to_string() };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text[at..].find(&open)? + at + open.len();
        let end = text[start..].find('<')? + start;
        Some(text[start..end].to_string())
    };
    let head = text[..at].trim_end().trim_end_matches(':');
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{head}: {code}: {message}"),
        (Some(code), None) => format!("{head}: {code}"),
        _ => head.to_string(),
    }
}

/// The folder downloaded artifacts are kept in: `MLOPS_CACHE`, else `$XDG_CACHE_HOME/mlops`, else
/// `~/.cache/mlops`, else `.mlops-cache` in the working folder.
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("MLOPS_CACHE") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Path::new(&dir).join("mlops");
    }
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".cache/mlops"),
        None => ".mlops-cache".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_name_no_bucket_are_refused_naming_them() {
        for (setting, why) in [("s3://", "no bucket name after s3://"), ("s3:/models", "not an s3:// URL")] {
            let err = Bucket::open_with(setting, &[]).unwrap_err();
            assert!(
                matches!(&err, ObjectError::Config { url, message } if url == setting && message == why),
                "{setting}: {err}"
            );
        }
    }

    #[test]
    fn server_errors_are_cut_to_their_code_and_message() {
        let text = "Error performing PUT http://h/b/k - 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><RequestId>x</RequestId></Error>";
        assert_eq!(
            s3_reason(text),
            "Error performing PUT http://h/b/k - 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(s3_reason("connection refused"), "connection refused");
    }
}
