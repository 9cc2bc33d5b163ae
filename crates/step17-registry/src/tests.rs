//! Unit tests: versions, content-addressed storage, aliases, retirement, the append-only audit
//! log, bad names and packages, concurrent registrations and a locked store. The store tests run
//! on both backends (SQLite and PostgreSQL: `store_tests!`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use mlops_core::testing::TestStore;

use crate::fixture::package;
use crate::*;

fn open(store: &TestStore, dir: &Path) -> Registry {
    Registry::with_store(store.open(), &dir.join("artifacts"), "tester").unwrap()
}

mlops_core::store_tests!(
    versions_count_up_and_the_same_package_is_stored_once,
    aliases_resolve_move_and_refuse_retired_versions_with_every_change_audited,
    reasons_are_audited_and_the_previous_target_of_an_alias_is_read_back,
    bad_names_and_bad_packages_change_nothing,
    concurrent_registrations_get_distinct_gap_free_versions,
    a_schema_newer_than_the_binary_is_refused_naming_both_versions,
);

fn versions_count_up_and_the_same_package_is_stored_once(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(store, dir.path());
    let a = package(dir.path(), "a", 1.0);
    let v1 = r.register("churn", &a, &RegisterInfo::default()).unwrap();
    let v2 = r.register("churn", &a, &RegisterInfo { description: "again".into(), ..RegisterInfo::default() }).unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.package_sha256, v2.package_sha256);
    assert_eq!(v1.artifact_path, v2.artifact_path);
    assert_eq!(v1.run_id.as_deref(), Some("run-a"));
    assert_eq!(v1.dataset_version.as_deref(), Some("data@1"));
    assert_eq!(v1.metrics["test_roc_auc"], 0.9);
    let stored: Vec<_> = walk(&dir.path().join("artifacts"));
    assert_eq!(stored.len(), 1, "one copy of one content: {stored:?}");
    let b = package(dir.path(), "b", 0.01);
    let v3 = r.register("churn", &b, &RegisterInfo::default()).unwrap();
    assert_ne!(v3.package_sha256, v1.package_sha256);
    assert_eq!(walk(&dir.path().join("artifacts")).len(), 2);
    // The stored copy verifies as a package.
    step16_package::load(&v3.artifact_path).unwrap();
    // A deleted number is never reused.
    r.delete("churn", 3).unwrap();
    assert_eq!(r.register("churn", &b, &RegisterInfo::default()).unwrap().version, 4);
    let m = r.model("churn").unwrap();
    assert_eq!((m.versions, m.latest), (3, Some(4)));
}

fn walk(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().map(|e| e.unwrap().path()))
        .collect()
}

fn aliases_resolve_move_and_refuse_retired_versions_with_every_change_audited(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(store, dir.path());
    let a = package(dir.path(), "a", 1.0);
    for _ in 0..3 {
        r.register("churn", &a, &RegisterInfo::default()).unwrap();
    }
    assert_eq!(r.set_alias("churn", "champion", 1).unwrap(), None);
    assert_eq!(r.resolve("models:/churn@champion").unwrap().version, 1);
    assert_eq!(r.set_alias("churn", "champion", 2).unwrap(), Some(1));
    assert_eq!(r.resolve("models:/churn@champion").unwrap().version, 2);
    assert_eq!(r.resolve("models:/churn/3").unwrap().version, 3);
    assert_eq!(r.resolve("models:/churn").unwrap().version, 3);
    assert_eq!(r.version("churn", 2).unwrap().aliases, ["champion"]);
    r.set_tag("churn", Some(2), "approved_by", "ana").unwrap();
    r.set_tag("churn", None, "team", "growth").unwrap();
    assert_eq!(r.version("churn", 2).unwrap().tags["approved_by"], "ana");
    assert_eq!(r.model("churn").unwrap().tags["team"], "growth");

    r.retire("churn", 2).unwrap();
    // Each refusal is of its kind and names what it refers to.
    let refused = |err: RegistryError, needle: &str| {
        assert!(matches!(&err, RegistryError::Refused(m) if m.contains(needle)), "{needle}: {err}");
    };
    let not_found = |err: RegistryError, needle: &str| {
        assert!(matches!(&err, RegistryError::NotFound(m) if m.contains(needle)), "{needle}: {err}");
    };
    refused(r.resolve("models:/churn@champion").unwrap_err(), "models:/churn@champion: churn version 2 is retired");
    refused(r.set_alias("churn", "challenger", 2).unwrap_err(), "churn version 2 is retired");
    refused(r.retire("churn", 2).unwrap_err(), "churn version 2 is already retired");
    not_found(r.resolve("models:/churn@nobody").unwrap_err(), "churn has no alias `nobody`");
    not_found(r.resolve("models:/churn/9").unwrap_err(), "churn has no version 9");
    assert_eq!(r.delete_alias("churn", "champion").unwrap(), 2);

    let history = r.history(Some("churn")).unwrap();
    let actions: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions, ["register", "register", "register", "alias", "alias", "tag", "tag", "retire", "unalias"]);
    let moved = &history[4];
    assert_eq!((moved.old_value.as_deref(), moved.new_value.as_deref()), (Some("champion=1"), Some("champion=2")));
    assert!(history.iter().all(|h| h.actor == "tester"));
    // The audit log is append-only, even for someone with access to the database.
    let conn = store.open();
    let err = conn.execute("UPDATE registry_audit SET actor = 'mallory'", &[]).unwrap_err().to_string();
    assert!(err.contains("append-only"), "{err}");
    let err = conn.execute("DELETE FROM registry_audit", &[]).unwrap_err().to_string();
    assert!(err.contains("append-only"), "{err}");
    assert_eq!(r.history(Some("churn")).unwrap().len(), 9, "the audit log lost rows");
    assert!(r.history(Some("churn")).unwrap().iter().all(|h| h.actor == "tester"), "the audit log was changed");
}

fn reasons_are_audited_and_the_previous_target_of_an_alias_is_read_back(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(store, dir.path());
    let a = package(dir.path(), "a", 1.0);
    for _ in 0..3 {
        r.register("churn", &a, &RegisterInfo::default()).unwrap();
    }
    assert_eq!(r.previous_alias_target("churn", "champion").unwrap(), None, "an unset alias has no previous");
    r.set_alias("churn", "champion", 1).unwrap();
    assert_eq!(r.previous_alias_target("churn", "champion").unwrap(), None, "set from nothing");
    r.set_alias_because("churn", "champion", 3, Some("challenger won by 0.04")).unwrap();
    assert_eq!(r.previous_alias_target("churn", "champion").unwrap(), Some(1));
    // A rollback is a move like any other: its own previous is the version it left.
    r.set_alias_because("churn", "champion", 1, Some("rollback")).unwrap();
    assert_eq!(r.previous_alias_target("churn", "champion").unwrap(), Some(3));
    r.retire_because("churn", 2, Some("older than 90 days")).unwrap();
    let history = r.history(Some("churn")).unwrap();
    let reasons: Vec<(&str, Option<&str>)> =
        history.iter().skip(3).map(|h| (h.action.as_str(), h.reason.as_deref())).collect();
    assert_eq!(
        reasons,
        [
            ("alias", None),
            ("alias", Some("challenger won by 0.04")),
            ("alias", Some("rollback")),
            ("retire", Some("older than 90 days"))
        ]
    );
}

#[test]
fn a_store_written_before_audit_reasons_gains_the_column_and_keeps_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE registry_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
                name TEXT NOT NULL, version INTEGER, action TEXT NOT NULL, old_value TEXT, new_value TEXT);
             INSERT INTO registry_audit (at, actor, name, version, action) VALUES ('2026-01-01T00:00:00Z', 'old', 'churn', 1, 'register');",
        )
        .unwrap();
    }
    let r = Registry::open(&db, &dir.path().join("artifacts"), "tester").unwrap();
    let history = r.history(None).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].actor.as_str(), history[0].reason.as_deref()), ("old", None));
}

fn bad_names_and_bad_packages_change_nothing(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(store, dir.path());
    let a = package(dir.path(), "a", 1.0);
    for name in ["../x", "a/b", "", ".hidden", "x..y", &"n".repeat(129)] {
        let err = r.register(name, &a, &RegisterInfo::default()).unwrap_err();
        assert!(
            matches!(&err, RegistryError::BadName { what: "model name", name: n, .. } if n == name),
            "{name}: {err}"
        );
    }
    let err = ModelUri::parse("models:/churn@3").unwrap_err();
    assert!(
        matches!(&err, RegistryError::BadName { what: "alias", name, message } if name == "3" && message.contains("a number would read as a version")),
        "{err}"
    );
    let err = ModelUri::parse("models:/chu rn/2").unwrap_err();
    assert!(matches!(&err, RegistryError::BadName { what: "model name", name, .. } if name == "chu rn"), "{err}");
    let err = ModelUri::parse("models:/churn/0").unwrap_err();
    assert!(
        matches!(&err, RegistryError::BadName { what: "model URI", name, .. } if name == "models:/churn/0"),
        "{err}"
    );
    let err = ModelUri::parse("runs:/x").unwrap_err();
    assert!(
        matches!(&err, RegistryError::BadName { what: "model URI", name, message } if name == "runs:/x" && message.contains("must start with `models:/`")),
        "{err}"
    );
    assert_eq!(ModelUri::parse("models:/churn/2").unwrap(), ModelUri::Version("churn".into(), 2));
    // A tampered package is refused before anything is recorded or stored.
    std::fs::write(a.join("metrics.json"), "{}").unwrap();
    let err = r.register("churn", &a, &RegisterInfo::default()).unwrap_err();
    assert!(
        matches!(&err, RegistryError::Package(step16_package::PackageError::Integrity { path, message })
            if *path == a.join("metrics.json") && message.contains("checksum mismatch")),
        "{err}"
    );
    assert!(r.models().unwrap().is_empty());
    assert!(r.history(None).unwrap().is_empty());
    assert!(!dir.path().join("artifacts").exists());
}

fn concurrent_registrations_get_distinct_gap_free_versions(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let a = package(dir.path(), "a", 1.0);
    drop(open(store, dir.path()));
    let versions: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (dir, a) = (dir.path(), &a);
                s.spawn(move || open(store, dir).register("churn", a, &RegisterInfo::default()).unwrap().version)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=8).collect::<Vec<u32>>(), "{versions:?}");
    assert_eq!(open(store, dir.path()).history(Some("churn")).unwrap().len(), 8);
}

#[test]
fn a_locked_registry_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = package(dir.path(), "a", 1.0);
    let store = dir.path().join("registry.db");
    let mut r = Registry::open(&store, &dir.path().join("artifacts"), "tester").unwrap();
    r.register("churn", &a, &RegisterInfo::default()).unwrap();
    r.set_busy_timeout(std::time::Duration::from_millis(200)).unwrap();
    // Another process holds the write lock.
    let other = rusqlite::Connection::open(dir.path().join("registry.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for err in [
        r.register("churn", &a, &RegisterInfo::default()).unwrap_err(),
        r.set_alias("churn", "champion", 1).unwrap_err(),
    ] {
        assert!(
            matches!(&err, RegistryError::Store(_))
                && err.to_string().contains(&format!("registry store {}: database is locked", store.display())),
            "{err}"
        );
    }
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(r.versions("churn").unwrap().len(), 1, "the failed registration left nothing");
    assert_eq!(r.register("churn", &a, &RegisterInfo::default()).unwrap().version, 2);
}

fn a_schema_newer_than_the_binary_is_refused_naming_both_versions(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    drop(open(store, dir.path()));
    store.open().execute("UPDATE mlops_schema SET version = 99 WHERE component = 'registry'", &[]).unwrap();
    let err = Registry::with_store(store.open(), &dir.path().join("artifacts"), "tester").err().unwrap();
    assert!(
        err.to_string().contains(&format!(
            "registry store {}: the registry schema is at version 99, newer than this binary's 1: upgrade mlops",
            store.location
        )),
        "{err}"
    );
}

/// Artifacts in a bucket (a real S3-compatible server): a package is uploaded once per content
/// with its manifest last, downloaded once into the cache and verified there, re-downloaded when
/// the cached copy's manifest was changed, and deleted manifest first. A missing bucket and an
/// unreachable endpoint are named, and nothing is registered.
#[test]
fn packages_in_a_bucket_are_stored_once_downloaded_once_and_verified() {
    use mlops_core::objects::Bucket;
    let s3 = mlops_core::testing::S3Server::start().unwrap();
    s3.create_bucket("models").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::sqlite();
    let url = "s3://models/team/packages";
    let open = |url: &str, vars: &[(String, String)]| {
        let bucket = Bucket::open_with(url, vars).unwrap();
        let mut r = Registry::with_artifacts(store.open(), (Path::new(url), Some(bucket)), "tester").unwrap();
        r.set_cache(&dir.path().join("cache"));
        r
    };
    let mut r = open(url, &s3.vars());
    let a = package(dir.path(), "a", 1.0);
    let v1 = r.register("churn", &a, &RegisterInfo::default()).unwrap();
    let v2 = r.register("churn", &a, &RegisterInfo::default()).unwrap();
    let sha = v1.package_sha256.clone();
    let key = format!("{}/{sha}", &sha[..2]);
    assert_eq!(v1.artifact_path, PathBuf::from(format!("{url}/{key}")));
    assert_eq!((v1.run_id.as_deref(), v1.metrics["test_roc_auc"]), (Some("run-a"), 0.9));
    assert_eq!(v2.artifact_path, v1.artifact_path, "one copy of one content");
    let bucket = Bucket::open_with(url, &s3.vars()).unwrap();
    assert!(bucket.exists(&format!("{key}/manifest.json")).unwrap());
    assert!(!dir.path().join("artifacts").exists(), "nothing was stored locally");

    // Downloaded once, loaded as a package, and taken from the cache afterwards.
    let local = r.package_dir(&v1).unwrap();
    assert_eq!(local, dir.path().join("cache").join(&sha[..2]).join(&sha));
    step16_package::load(&local).unwrap();
    bucket.delete(&format!("{key}/model.bin")).unwrap();
    assert_eq!(r.package_dir(&v2).unwrap(), local, "the cached copy serves");
    // A cached copy whose manifest was changed is not trusted: it is fetched again, and a
    // package the bucket no longer holds whole is an error naming the object.
    std::fs::write(local.join("manifest.json"), "{}").unwrap();
    let err = r.package_dir(&v1).unwrap_err().to_string();
    assert!(err.contains(&format!("{url}/{key}/model.bin")), "{err}");
    bucket.put_files(&key, &a, &["model.bin"]).unwrap();
    assert_eq!(r.package_dir(&v1).unwrap(), local);
    step16_package::load(&local).unwrap();

    // Retention deletes the stored package, manifest first.
    r.delete_package(&v1).unwrap();
    assert!(!bucket.exists(&format!("{key}/manifest.json")).unwrap());
    assert!(!bucket.exists(&format!("{key}/model.bin")).unwrap());

    // A bucket that is not there, and an endpoint nobody answers, are named; nothing is
    // registered.
    let mut missing = open("s3://no-such-bucket/x", &s3.vars());
    let b = package(dir.path(), "b", 0.5);
    let err = missing.register("churn", &b, &RegisterInfo::default()).unwrap_err().to_string();
    assert!(
        err.starts_with("artifacts s3://no-such-bucket/x/")
            && err.contains("NoSuchBucket: The specified bucket does not exist")
            && !err.contains("<?xml"),
        "{err}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut vars = s3.vars();
    vars[0].1 = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let err = open(url, &vars).register("churn", &b, &RegisterInfo::default()).unwrap_err().to_string();
    assert!(err.starts_with(&format!("artifacts {url}/")), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    assert_eq!(r.versions("churn").unwrap().len(), 2, "a failed upload registered nothing");
}
