//! The registry's tables and operations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mlops_core::CoreError;
use mlops_core::objects::{Bucket, is_bucket};
use mlops_core::store::{Backend, Location, Migration, Store, Tx, now};
use serde::{Deserialize, Serialize};

use crate::{RegistryError, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registered_models (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    next_version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL REFERENCES registered_models(name),
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    run_id TEXT,
    dataset_version TEXT,
    package_sha256 TEXT NOT NULL,
    artifact_path TEXT NOT NULL,
    source_path TEXT NOT NULL,
    metrics TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS model_aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);
CREATE TABLE IF NOT EXISTS model_tags (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, version, key)
);
CREATE TABLE IF NOT EXISTS registry_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER,
    action TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reason TEXT
);
";

/// The audit log refuses updates and deletes, on either backend.
const APPEND_ONLY_SQLITE: &str = "
CREATE TRIGGER IF NOT EXISTS registry_audit_no_update BEFORE UPDATE ON registry_audit
BEGIN SELECT RAISE(ABORT, 'the registry audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS registry_audit_no_delete BEFORE DELETE ON registry_audit
BEGIN SELECT RAISE(ABORT, 'the registry audit log is append-only'); END;
";
const APPEND_ONLY_POSTGRES: &str = "
CREATE OR REPLACE FUNCTION registry_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the registry audit log is append-only'; END $$;
CREATE TRIGGER registry_audit_no_change BEFORE UPDATE OR DELETE ON registry_audit
FOR EACH ROW EXECUTE FUNCTION registry_audit_append_only();
";

/// The registry's schema versions. 1 is the schema as it stood when versioning began (a store
/// made before gets what it lacks of it).
const MIGRATIONS: &[Migration] = &[Migration { version: 1, apply: schema_v1 }];

fn schema_v1(t: &mut Tx<'_>) -> mlops_core::store::Result<()> {
    let existed = t.has_table("registry_audit")?;
    t.ddl(SCHEMA)?;
    if existed && !t.has_column("registry_audit", "reason")? {
        t.batch("ALTER TABLE registry_audit ADD COLUMN reason TEXT")?;
    }
    match t.backend() {
        mlops_core::store::Backend::Sqlite => t.batch(APPEND_ONLY_SQLITE),
        mlops_core::store::Backend::Postgres => t.batch(APPEND_ONLY_POSTGRES),
    }
}

/// A version's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Can be resolved and served.
    Active,
    /// Kept for the record; aliases to it no longer resolve.
    Retired,
}

impl VersionStatus {
    fn parse(s: &str) -> VersionStatus {
        if s == "retired" { VersionStatus::Retired } else { VersionStatus::Active }
    }
}

/// One registered version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Version {
    /// Model name.
    pub name: String,
    /// Its number, from 1.
    pub version: u32,
    /// Active or retired.
    pub status: VersionStatus,
    /// Free text.
    pub description: String,
    /// The run that made it.
    pub run_id: Option<String>,
    /// The dataset version it was trained on.
    pub dataset_version: Option<String>,
    /// SHA-256 of the package manifest (the content address).
    pub package_sha256: String,
    /// Where the package lives in the artifact store.
    pub artifact_path: PathBuf,
    /// Where it was registered from.
    pub source_path: PathBuf,
    /// Metrics recorded with it.
    pub metrics: BTreeMap<String, f64>,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// When it was registered.
    pub created_at: String,
}

/// A registered model with its versions' headline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Versions registered (not deleted).
    pub versions: usize,
    /// The newest version number.
    pub latest: Option<u32>,
    /// Alias → version.
    pub aliases: BTreeMap<String, u32>,
    /// Model-level tags.
    pub tags: BTreeMap<String, String>,
    /// Last change.
    pub updated_at: String,
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Order of the entry.
    pub seq: i64,
    /// When.
    pub at: String,
    /// Who (the OS user, or what the caller says).
    pub actor: String,
    /// Model.
    pub name: String,
    /// Version, when the change concerns one.
    pub version: Option<u32>,
    /// What: `register`, `alias`, `unalias`, `tag`, `describe`, `retire`, `delete`.
    pub action: String,
    /// The value before.
    pub old_value: Option<String>,
    /// The value after.
    pub new_value: Option<String>,
    /// Why, when the caller said (lifecycle promotions, rollbacks and retirements do).
    pub reason: Option<String>,
}

/// What a registration records besides the package.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegisterInfo {
    /// Free text.
    pub description: String,
    /// Version tags.
    pub tags: BTreeMap<String, String>,
}

/// A parsed `models:/` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelUri {
    /// `models:/NAME@ALIAS`.
    Alias(String, String),
    /// `models:/NAME/VERSION`.
    Version(String, u32),
    /// `models:/NAME`: the newest active version.
    Latest(String),
}

impl ModelUri {
    /// Parses `models:/NAME@ALIAS`, `models:/NAME/VERSION` or `models:/NAME`.
    pub fn parse(uri: &str) -> Result<ModelUri> {
        let bad = |message: &str| RegistryError::BadName {
            what: "model URI",
            name: uri.to_string(),
            message: message.into(),
        };
        let rest = uri.strip_prefix("models:/").ok_or_else(|| bad("must start with `models:/`"))?;
        if let Some((name, alias)) = rest.split_once('@') {
            validate_name(name)?;
            validate_alias(alias)?;
            return Ok(ModelUri::Alias(name.into(), alias.into()));
        }
        if let Some((name, version)) = rest.split_once('/') {
            validate_name(name)?;
            let v = version
                .parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| bad("the version must be a number from 1"))?;
            return Ok(ModelUri::Version(name.into(), v));
        }
        validate_name(rest)?;
        Ok(ModelUri::Latest(rest.into()))
    }
}

/// Checks a model name: 1-128 characters of letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit, no `..`, so it can never reach outside the artifact folder.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |message: &str| {
        Err(RegistryError::BadName { what: "model name", name: name.to_string(), message: message.into() })
    };
    if name.is_empty() || name.len() > 128 {
        return bad("must be 1 to 128 characters");
    }
    if name.contains("..") {
        return bad("must not contain `..`");
    }
    if !name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or a digit");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return bad(&format!("`{c}` is not allowed (letters, digits, `.`, `_` and `-` only)"));
    }
    Ok(())
}

fn validate_alias(alias: &str) -> Result<()> {
    let bad =
        |message: &str| Err(RegistryError::BadName { what: "alias", name: alias.to_string(), message: message.into() });
    if alias.is_empty() || alias.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    if !alias.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("must start with a lowercase letter (a number would read as a version)");
    }
    if !alias.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return bad("lowercase letters, digits, `_` and `-` only");
    }
    Ok(())
}

/// The registry: a connection to the store and the artifact store (a folder, or a bucket).
pub struct Registry {
    store: Store,
    artifacts: PathBuf,
    bucket: Option<Bucket>,
    cache: PathBuf,
    actor: String,
}

/// The text of a version's columns, as `load_versions` reads them.
const VERSION_COLUMNS: &str = "version, status, description, run_id, dataset_version, package_sha256, artifact_path, source_path, metrics, created_at";

impl Registry {
    /// Opens (creating if needed) the registry in the store `path` (a SQLite file, or a
    /// `postgres://` URL with the password in `PGPASSWORD`), with packages under `artifacts` (a
    /// folder, or `s3://BUCKET/PREFIX` configured from the `AWS_*` environment). Changes are
    /// recorded as made by `actor`.
    pub fn open(path: &Path, artifacts: &Path, actor: &str) -> Result<Registry> {
        Registry::with_store(Store::open(&Location::from_path(path))?, artifacts, actor)
    }

    /// The registry on an open store (its schema brought up to date).
    pub fn with_store(store: Store, artifacts: &Path, actor: &str) -> Result<Registry> {
        let bucket = match artifacts.to_str() {
            Some(url) if is_bucket(artifacts) => Some(Bucket::open(url)?),
            _ => None,
        };
        Registry::with_artifacts(store, (artifacts, bucket), actor)
    }

    /// The registry on an open store with its packages in `bucket` when given, else in the folder.
    pub fn with_artifacts(store: Store, (artifacts, bucket): (&Path, Option<Bucket>), actor: &str) -> Result<Registry> {
        store.migrate("registry", MIGRATIONS)?;
        let cache = mlops_core::objects::cache_dir().join("packages");
        Ok(Registry { store, artifacts: artifacts.to_path_buf(), bucket, cache, actor: actor.to_string() })
    }

    /// Where packages downloaded from a bucket are kept (default:
    /// [`mlops_core::objects::cache_dir`]`/packages`).
    pub fn set_cache(&mut self, dir: &Path) {
        self.cache = dir.to_path_buf();
    }

    /// The store it is on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How long a change waits for another writer before it fails (30 s from `open`).
    pub fn set_busy_timeout(&self, wait: Duration) -> Result<()> {
        Ok(self.store.set_busy_timeout(wait)?)
    }

    fn audit(
        tx: &mut Tx<'_>,
        actor: &str,
        (name, version): (&str, Option<u32>),
        action: &str,
        (old, new): (Option<&str>, Option<&str>),
        reason: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO registry_audit (at, actor, name, version, action, old_value, new_value, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[&now(), &actor, &name, &version, &action, &old, &new, &reason],
        )?;
        Ok(())
    }

    /// Copies a verified package into the content-addressed store (once per content): under
    /// the artifact folder, or uploaded to the bucket with its manifest last (a package whose
    /// manifest is there is whole).
    fn store_package(&self, package: &Path) -> Result<(String, PathBuf)> {
        let loaded = step16_package::load(package)?;
        let manifest = std::fs::read(package.join("manifest.json"))
            .map_err(|e| CoreError::io("cannot read", package.join("manifest.json"), e))?;
        let sha = mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&manifest));
        if let Some(bucket) = &self.bucket {
            let key = content_key(&sha);
            if !bucket.exists(&format!("{key}/manifest.json"))? {
                let files: Vec<&str> =
                    loaded.manifest.files.iter().map(|f| f.path.as_str()).chain(["manifest.json"]).collect();
                bucket.put_files(&key, package, &files)?;
                tracing::info!(package = %bucket.url_of(&key), "package uploaded");
            }
            return Ok((sha, PathBuf::from(bucket.url_of(&key))));
        }
        let dest = self.artifacts.join(&sha[..2]).join(&sha);
        if dest.join("manifest.json").is_file() {
            return Ok((sha, dest));
        }
        let parent = dest.parent().unwrap_or(&self.artifacts);
        std::fs::create_dir_all(parent).map_err(|e| CoreError::io("cannot create directory", parent, e))?;
        // Unique per process and per call: concurrent registrations never share a temporary.
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = parent.join(format!(".{sha}.tmp-{}-{call}", std::process::id()));
        let copy = || -> Result<()> {
            std::fs::create_dir_all(&tmp).map_err(|e| CoreError::io("cannot create directory", &tmp, e))?;
            for f in loaded.manifest.files.iter().map(|f| f.path.as_str()).chain(["manifest.json"]) {
                std::fs::copy(package.join(f), tmp.join(f))
                    .map_err(|e| CoreError::io("cannot copy", package.join(f), e))?;
            }
            match std::fs::rename(&tmp, &dest) {
                Ok(()) => Ok(()),
                // Another process stored the same content first.
                Err(_) if dest.join("manifest.json").is_file() => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Ok(())
                }
                Err(e) => Err(CoreError::io("cannot move the package into the store", &dest, e).into()),
            }
        };
        if let Err(e) = copy() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok((sha, dest))
    }

    /// Registers the package in `package` as the next version of `name` (created if new), with
    /// the run, dataset version and metrics the package records.
    ///
    /// The number comes from the model's counter, read and advanced in the registering
    /// transaction under a lock on the model's name: registrations from any number of
    /// processes and machines get distinct numbers without gaps.
    pub fn register(&mut self, name: &str, package: &Path, info: &RegisterInfo) -> Result<Version> {
        validate_name(name)?;
        let (sha, artifact) = self.store_package(package)?;
        // The stored copy is the registered one (the source's when the copy is in a bucket: the
        // same bytes, by the manifest's hash).
        let contents = step16_package::load(if self.bucket.is_some() { package } else { &artifact })?.contents;
        let metrics = serde_json::to_string(&contents.metrics).unwrap_or_else(|_| "{}".into());
        let actor = self.actor.clone();
        let version = self.store.transaction(|tx| -> Result<u32> {
            tx.lock(&format!("registry/{name}"))?;
            let at = now();
            let version: u32 = tx.query_one(
                "INSERT INTO registered_models (name, created_at, updated_at) VALUES (?1, ?2, ?2)
                 ON CONFLICT (name) DO UPDATE SET updated_at = ?2 RETURNING next_version",
                &[&name, &at],
            )?;
            tx.execute("UPDATE registered_models SET next_version = ?2 WHERE name = ?1", &[&name, &(version + 1)])?;
            tx.execute(
                "INSERT INTO model_versions (name, version, status, description, run_id, dataset_version, package_sha256, artifact_path, source_path, metrics, created_at)
                 VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                &[
                    &name,
                    &version,
                    &info.description,
                    &contents.lineage.run_id,
                    &contents.lineage.dataset_version,
                    &sha,
                    &artifact.to_string_lossy().as_ref(),
                    &package.to_string_lossy().as_ref(),
                    &metrics,
                    &at,
                ],
            )?;
            for (k, v) in &info.tags {
                tx.execute(
                    "INSERT INTO model_tags (name, version, key, value) VALUES (?1, ?2, ?3, ?4)",
                    &[&name, &version, k, v],
                )?;
            }
            Self::audit(tx, &actor, (name, Some(version)), "register", (None, Some(&sha)), None)?;
            Ok(version)
        })?;
        tracing::info!(name, version, "model version registered");
        self.version(name, version)
    }

    /// Points `alias` of `name` at `version` (moving it if it pointed elsewhere). A retired
    /// version cannot take an alias.
    pub fn set_alias(&mut self, name: &str, alias: &str, version: u32) -> Result<Option<u32>> {
        self.set_alias_because(name, alias, version, None)
    }

    /// [`Registry::set_alias`] with the reason recorded in the audit log. Answers the version
    /// the alias pointed at before.
    pub fn set_alias_because(
        &mut self,
        name: &str,
        alias: &str,
        version: u32,
        reason: Option<&str>,
    ) -> Result<Option<u32>> {
        validate_alias(alias)?;
        let target = self.version(name, version)?;
        if target.status == VersionStatus::Retired {
            return Err(RegistryError::Refused(format!(
                "{name} version {version} is retired; an alias must point at an active version"
            )));
        }
        let actor = self.actor.clone();
        self.store.transaction(|tx| {
            tx.lock(&format!("registry/{name}"))?;
            let old = alias_of(tx, name, alias)?;
            tx.execute(
                "INSERT INTO model_aliases (name, alias, version) VALUES (?1, ?2, ?3) ON CONFLICT (name, alias) DO UPDATE SET version = ?3",
                &[&name, &alias, &version],
            )?;
            let (from, to) = (old.map(|v| format!("{alias}={v}")), format!("{alias}={version}"));
            Self::audit(tx, &actor, (name, Some(version)), "alias", (from.as_deref(), Some(&to)), reason)?;
            tx.execute("UPDATE registered_models SET updated_at = ?2 WHERE name = ?1", &[&name, &now()])?;
            Ok(old)
        })
    }

    /// Removes an alias.
    pub fn delete_alias(&mut self, name: &str, alias: &str) -> Result<u32> {
        let actor = self.actor.clone();
        self.store.transaction(|tx| {
            tx.lock(&format!("registry/{name}"))?;
            let Some(old) = alias_of(tx, name, alias)? else {
                return Err(RegistryError::NotFound(format!("{name} has no alias `{alias}`")));
            };
            tx.execute("DELETE FROM model_aliases WHERE name = ?1 AND alias = ?2", &[&name, &alias])?;
            Self::audit(tx, &actor, (name, Some(old)), "unalias", (Some(&format!("{alias}={old}")), None), None)?;
            Ok(old)
        })
    }

    /// Sets a tag on a model (`version: None`) or on one version.
    pub fn set_tag(&mut self, name: &str, version: Option<u32>, key: &str, value: &str) -> Result<()> {
        match version {
            Some(v) => drop(self.version(name, v)?),
            None => drop(self.model(name)?),
        }
        let actor = self.actor.clone();
        let at = version.unwrap_or(0);
        self.store.transaction(|tx| {
            tx.lock(&format!("registry/{name}"))?;
            let old: Option<String> = tx
                .query_opt(
                    "SELECT value FROM model_tags WHERE name = ?1 AND version = ?2 AND key = ?3",
                    &[&name, &at, &key],
                )?
                .map(|r| r.get(0))
                .transpose()?;
            tx.execute(
                "INSERT INTO model_tags (name, version, key, value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name, version, key) DO UPDATE SET value = ?4",
                &[&name, &at, &key, &value],
            )?;
            let (from, to) = (old.map(|o| format!("{key}={o}")), format!("{key}={value}"));
            Self::audit(tx, &actor, (name, version), "tag", (from.as_deref(), Some(&to)), None)
        })
    }

    /// Retires a version: it stays on record, aliases to it stop resolving.
    pub fn retire(&mut self, name: &str, version: u32) -> Result<()> {
        self.retire_because(name, version, None)
    }

    /// [`Registry::retire`] with the reason recorded in the audit log.
    pub fn retire_because(&mut self, name: &str, version: u32, reason: Option<&str>) -> Result<()> {
        let v = self.version(name, version)?;
        if v.status == VersionStatus::Retired {
            return Err(RegistryError::Refused(format!("{name} version {version} is already retired")));
        }
        let actor = self.actor.clone();
        self.store.transaction(|tx| {
            tx.execute(
                "UPDATE model_versions SET status = 'retired' WHERE name = ?1 AND version = ?2",
                &[&name, &version],
            )?;
            Self::audit(tx, &actor, (name, Some(version)), "retire", (Some("active"), Some("retired")), reason)
        })
    }

    /// Deletes a version and the aliases pointing at it (its number is never reused; the stored
    /// package stays, as other versions may share its content).
    pub fn delete(&mut self, name: &str, version: u32) -> Result<()> {
        self.version(name, version)?;
        let actor = self.actor.clone();
        self.store.transaction(|tx| {
            tx.lock(&format!("registry/{name}"))?;
            tx.execute("DELETE FROM model_aliases WHERE name = ?1 AND version = ?2", &[&name, &version])?;
            tx.execute("DELETE FROM model_tags WHERE name = ?1 AND version = ?2", &[&name, &version])?;
            tx.execute("DELETE FROM model_versions WHERE name = ?1 AND version = ?2", &[&name, &version])?;
            Self::audit(tx, &actor, (name, Some(version)), "delete", (Some("active"), None), None)
        })
    }

    /// One model.
    pub fn model(&self, name: &str) -> Result<ModelSummary> {
        self.models()?.into_iter().find(|m| m.name == name).ok_or_else(|| {
            RegistryError::NotFound(format!("no registered model `{name}` in {}", self.store.location()))
        })
    }

    /// Every registered model, by name.
    pub fn models(&self) -> Result<Vec<ModelSummary>> {
        self.store.read(|tx| {
            let rows = tx.query(
                "SELECT m.name, m.description, m.updated_at, COUNT(v.version), MAX(v.version)
                 FROM registered_models m LEFT JOIN model_versions v ON v.name = m.name
                 GROUP BY m.name, m.description, m.updated_at ORDER BY m.name",
                &[],
            )?;
            let aliases = tx.query("SELECT name, alias, version FROM model_aliases", &[])?;
            let tags = tx.query("SELECT name, key, value FROM model_tags WHERE version = 0", &[])?;
            let aliases: Vec<(String, String, u32)> =
                aliases.iter().map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).collect::<Result<_>>()?;
            let tags: Vec<(String, String, String)> =
                tags.iter().map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).collect::<Result<_>>()?;
            rows.iter()
                .map(|r| {
                    let name: String = r.get(0)?;
                    Ok(ModelSummary {
                        aliases: aliases.iter().filter(|a| a.0 == name).map(|a| (a.1.clone(), a.2)).collect(),
                        tags: tags.iter().filter(|t| t.0 == name).map(|t| (t.1.clone(), t.2.clone())).collect(),
                        name,
                        description: r.get(1)?,
                        updated_at: r.get(2)?,
                        versions: r.get(3)?,
                        latest: r.get(4)?,
                    })
                })
                .collect()
        })
    }

    /// Every version of a model, newest first (three queries, whatever the count).
    pub fn versions(&self, name: &str) -> Result<Vec<Version>> {
        self.model(name)?;
        self.load_versions(name, None)
    }

    /// One version.
    pub fn version(&self, name: &str, version: u32) -> Result<Version> {
        let found = match self.store.backend() {
            // Three indexed lookups in process beat one joined query (10 against 25 µs).
            Backend::Sqlite => self.load_versions(name, Some(version))?.pop(),
            Backend::Postgres => {
                self.load_one(("model_versions AS v", "v.name = ?1 AND v.version = ?2"), &[&name, &version])?
            }
        };
        found.ok_or_else(|| RegistryError::NotFound(format!("{name} has no version {version}")))
    }

    /// The version that `from` (naming the version `v`) and `filter` select, with its aliases and
    /// tags, in one query: one round trip to a PostgreSQL store, as resolving an alias needs.
    fn load_one(
        &self,
        (from, filter): (&str, &str),
        params: &[&dyn mlops_core::store::Bind],
    ) -> Result<Option<Version>> {
        let found = self.store.query(
            &format!(
                "SELECT v.version, v.status, v.description, v.run_id, v.dataset_version, v.package_sha256, v.artifact_path,
                        v.source_path, v.metrics, v.created_at, v.name, a.alias, t.key, t.value
                 FROM {from}
                 LEFT JOIN model_aliases AS a ON a.name = v.name AND a.version = v.version
                 LEFT JOIN model_tags AS t ON t.name = v.name AND t.version = v.version AND t.version > 0
                 WHERE {filter}"
            ),
            params,
        )?;
        let Some(first) = found.first() else { return Ok(None) };
        let mut version = version_of(first.get(10)?, first)?;
        for r in &found {
            if let Some(alias) = r.get::<Option<String>>(11)?
                && !version.aliases.contains(&alias)
            {
                version.aliases.push(alias);
            }
            if let (Some(k), Some(value)) = (r.get::<Option<String>>(12)?, r.get::<Option<String>>(13)?) {
                version.tags.insert(k, value);
            }
        }
        version.aliases.sort();
        Ok(Some(version))
    }

    /// The versions of a model (or one of them), with their aliases and tags.
    fn load_versions(&self, name: &str, only: Option<u32>) -> Result<Vec<Version>> {
        // One version by its key (indexed), or all of the model's.
        let which = if only.is_some() { "version = ?2" } else { "CAST(?2 AS INTEGER) IS NULL" };
        self.store.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {VERSION_COLUMNS} FROM model_versions WHERE name = ?1 AND {which} ORDER BY version DESC"
                ),
                &[&name, &only],
            )?;
            let mut out: Vec<Version> = rows.iter().map(|r| version_of(name.to_string(), r)).collect::<Result<_>>()?;
            let index: BTreeMap<u32, usize> = out.iter().enumerate().map(|(i, v)| (v.version, i)).collect();
            let aliases = tx.query(
                &format!("SELECT version, alias FROM model_aliases WHERE name = ?1 AND {which} ORDER BY alias"),
                &[&name, &only],
            )?;
            for r in aliases {
                if let Some(&i) = index.get(&r.get::<u32>(0)?) {
                    out[i].aliases.push(r.get(1)?);
                }
            }
            let tags = tx.query(
                &format!("SELECT version, key, value FROM model_tags WHERE name = ?1 AND version > 0 AND {which}"),
                &[&name, &only],
            )?;
            for r in tags {
                if let Some(&i) = index.get(&r.get::<u32>(0)?) {
                    out[i].tags.insert(r.get(1)?, r.get(2)?);
                }
            }
            Ok(out)
        })
    }

    /// The local folder of a version's package, checked against the manifest registered: the
    /// content-addressed copy under the artifact folder (or where it was registered from, for a
    /// store moved from another folder); for a bucket, the local cache of downloads
    /// ([`Registry::set_cache`]`/<sha[0..2]>/<sha>`), downloaded on first use.
    pub fn package_dir(&self, version: &Version) -> Result<PathBuf> {
        let sha = &version.package_sha256;
        let Some(bucket) = &self.bucket else {
            let addressed = self.artifacts.join(sha.get(..2).unwrap_or_default()).join(sha);
            let path =
                if addressed.join("manifest.json").is_file() { addressed } else { version.artifact_path.clone() };
            crate::verify_manifest(&path, sha)?;
            return Ok(path);
        };
        let cached = self.cache.join(sha.get(..2).unwrap_or_default()).join(sha);
        if cached.join("manifest.json").is_file() && crate::verify_manifest(&cached, sha).is_ok() {
            return Ok(cached);
        }
        let parent = cached.parent().unwrap_or(&cached);
        std::fs::create_dir_all(parent).map_err(|e| CoreError::io("cannot create directory", parent, e))?;
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = parent.join(format!(".{sha}.tmp-{}-{call}", std::process::id()));
        let download = || -> Result<()> {
            let key = content_key(sha);
            std::fs::create_dir_all(&tmp).map_err(|e| CoreError::io("cannot create directory", &tmp, e))?;
            bucket.get_files(&key, &tmp, &["manifest.json"])?;
            crate::verify_manifest(&tmp, sha)?;
            let manifest = step16_package::read_manifest(&tmp)?;
            let files: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
            bucket.get_files(&key, &tmp, &files)?;
            // Every file against its checksum before the copy counts as cached.
            step16_package::load(&tmp)?;
            // Another process may have cached the same content meanwhile, and be loading it: a
            // copy that verifies is never removed.
            let whole = |dir: &Path| crate::verify_manifest(dir, sha).is_ok() && step16_package::load(dir).is_ok();
            if cached.exists() {
                if whole(&cached) {
                    return Ok(());
                }
                // A changed copy: moved aside in one step, then removed.
                let aside = parent.join(format!(".{sha}.stale-{}-{call}", std::process::id()));
                std::fs::rename(&cached, &aside).map_err(|e| CoreError::io("cannot move aside", &cached, e))?;
                let _ = std::fs::remove_dir_all(&aside);
            }
            match std::fs::rename(&tmp, &cached) {
                Ok(()) => Ok(()),
                Err(_) if whole(&cached) => Ok(()),
                Err(e) => Err(CoreError::io("cannot move the package into the cache", &cached, e).into()),
            }
        };
        let done = download();
        let _ = std::fs::remove_dir_all(&tmp);
        done?;
        tracing::info!(package = %bucket.url_of(&content_key(sha)), cache = %cached.display(), "package downloaded");
        Ok(cached)
    }

    /// Deletes a version's stored package (retention: the version stays on record). In a
    /// folder it is renamed first, so a half-deleted folder never looks like a package; in a
    /// bucket the manifest goes first, for the same reason.
    pub fn delete_package(&self, version: &Version) -> Result<()> {
        let sha = &version.package_sha256;
        if let Some(bucket) = &self.bucket {
            let key = content_key(sha);
            if !bucket.exists(&format!("{key}/manifest.json"))? {
                return Ok(());
            }
            let manifest: step16_package::Manifest =
                serde_json::from_slice(&bucket.get(&format!("{key}/manifest.json"))?).map_err(|e| {
                    RegistryError::Refused(format!("{}: not a package manifest: {e}", bucket.url_of(&key)))
                })?;
            bucket.delete(&format!("{key}/manifest.json"))?;
            for f in &manifest.files {
                bucket.delete(&format!("{key}/{}", f.path))?;
            }
            return Ok(());
        }
        let dir = &version.artifact_path;
        if !dir.exists() {
            return Ok(());
        }
        let mut doomed = dir.as_os_str().to_os_string();
        doomed.push(".deleting");
        let doomed = PathBuf::from(doomed);
        std::fs::rename(dir, &doomed).map_err(|e| CoreError::io("cannot move aside", dir, e))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| CoreError::io("cannot delete", &doomed, e))?;
        Ok(())
    }

    /// Resolves a `models:/` URI to an active version.
    pub fn resolve(&self, uri: &str) -> Result<Version> {
        let version = match ModelUri::parse(uri)? {
            ModelUri::Version(name, v) => self.version(&name, v)?,
            ModelUri::Alias(name, alias) => match self.store.backend() {
                Backend::Sqlite => match self.store.read(|tx| alias_of(tx, &name, &alias))? {
                    Some(v) => Some(self.version(&name, v)?),
                    None => None,
                },
                // One round trip to the server.
                Backend::Postgres => self.load_one(
                    (
                        "model_aliases AS x JOIN model_versions AS v ON v.name = x.name AND v.version = x.version",
                        "x.name = ?1 AND x.alias = ?2",
                    ),
                    &[&name, &alias],
                )?,
            }
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "{uri}: {name} has no alias `{alias}` (see `mlops registry show {name}`)"
                ))
            })?,
            ModelUri::Latest(name) => self
                .versions(&name)?
                .into_iter()
                .find(|v| v.status == VersionStatus::Active)
                .ok_or_else(|| RegistryError::NotFound(format!("{uri}: {name} has no active version")))?,
        };
        if version.status == VersionStatus::Retired {
            return Err(RegistryError::Refused(format!(
                "{uri}: {} version {} is retired; point the alias at an active version",
                version.name, version.version
            )));
        }
        Ok(version)
    }

    /// The version `alias` pointed at before the move that put it on its current version, read
    /// from the audit log: `None` when the alias is unset, or was set from nothing.
    pub fn previous_alias_target(&self, name: &str, alias: &str) -> Result<Option<u32>> {
        let old: Option<String> = self.store.read(|tx| -> Result<Option<String>> {
            let Some(current) = alias_of(tx, name, alias)? else {
                return Ok(None);
            };
            let row = tx.query_opt(
                "SELECT old_value FROM registry_audit WHERE name = ?1 AND action = 'alias' AND new_value = ?2
                 ORDER BY seq DESC LIMIT 1",
                &[&name, &format!("{alias}={current}")],
            )?;
            Ok(row.map(|r| r.get::<Option<String>>(0)).transpose()?.flatten())
        })?;
        let prefix = format!("{alias}=");
        Ok(old.and_then(|o| o.strip_prefix(&prefix).and_then(|v| v.parse().ok())))
    }

    /// The audit log of a model (every model without a name), oldest first.
    pub fn history(&self, name: Option<&str>) -> Result<Vec<AuditEntry>> {
        let rows = self.store.query(
            "SELECT seq, at, actor, name, version, action, old_value, new_value, reason FROM registry_audit
             WHERE CAST(?1 AS TEXT) IS NULL OR name = ?1 ORDER BY seq",
            &[&name],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    name: r.get(3)?,
                    version: r.get(4)?,
                    action: r.get(5)?,
                    old_value: r.get(6)?,
                    new_value: r.get(7)?,
                    reason: r.get(8)?,
                })
            })
            .collect()
    }
}

/// A version of model `name` from a row whose first columns are [`VERSION_COLUMNS`] (without
/// its aliases and tags).
fn version_of(name: String, r: &mlops_core::store::Row) -> Result<Version> {
    Ok(Version {
        name,
        version: r.get(0)?,
        status: VersionStatus::parse(&r.get::<String>(1)?),
        description: r.get(2)?,
        run_id: r.get(3)?,
        dataset_version: r.get(4)?,
        package_sha256: r.get(5)?,
        artifact_path: PathBuf::from(r.get::<String>(6)?),
        source_path: PathBuf::from(r.get::<String>(7)?),
        metrics: serde_json::from_str(&r.get::<String>(8)?).unwrap_or_default(),
        aliases: Vec::new(),
        tags: BTreeMap::new(),
        created_at: r.get(9)?,
    })
}

/// A package's key in a bucket: `<sha[0..2]>/<sha>`, as in a folder.
fn content_key(sha: &str) -> String {
    format!("{}/{sha}", sha.get(..2).unwrap_or_default())
}

/// The version an alias points at, if any.
fn alias_of(tx: &mut Tx<'_>, name: &str, alias: &str) -> Result<Option<u32>> {
    let row = tx.query_opt("SELECT version FROM model_aliases WHERE name = ?1 AND alias = ?2", &[&name, &alias])?;
    Ok(row.map(|r| r.get(0)).transpose()?)
}
