//! Curate tests: versions are content hashes, writes are atomic, the catalog lists them.

use mlops_core::FeaturePipeline;
use polars::prelude::{DataFrame, DataType, IntoLazy, LazyFrame, NamedFrom, PlRefPath, ScanArgsParquet, col, df};

use super::*;

fn params(dir: &std::path::Path) -> CurateParams {
    CurateParams {
        name: "penguins".into(),
        dir: dir.to_path_buf(),
        partition_by: None,
        compression: Compression::Zstd,
        row_group_size: None,
        postgres: None,
    }
}

fn data() -> DataFrame {
    df!("species" => ["Adelie", "Gentoo", "Adelie", "Chinstrap"], "mass" => [Some(3750.0), None, Some(3800.0), Some(3500.0)]).unwrap()
}

fn provenance() -> Provenance {
    Provenance {
        parents: vec!["sha256:abc".into()],
        config_sha256: "cfg".into(),
        run_key: "run".into(),
        ..Provenance::default()
    }
}

fn write(p: &CurateParams, frame: &DataFrame) -> Curated {
    curate(frame, p, &provenance(), &FeaturePipeline::new()).unwrap()
}

#[test]
fn same_data_same_version_whatever_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(&params(dir.path()), &data());
    assert!(!first.reused);
    assert_eq!(first.metadata.version.len(), 16);
    assert!(first.path.join("data.parquet").is_file() && first.path.join("pipeline.json").is_file());
    let again = write(&params(dir.path()), &data());
    assert!(again.reused);
    assert_eq!(again.metadata.version, first.metadata.version);

    let other_dir = tempfile::tempdir().unwrap();
    let layout = CurateParams {
        row_group_size: Some(1),
        compression: Compression::Snappy,
        partition_by: Some("species".into()),
        ..params(other_dir.path())
    };
    let partitioned = write(&layout, &data());
    assert_eq!(partitioned.metadata.version, first.metadata.version);
    assert!(partitioned.path.join("data/species=Adelie/part-0.parquet").is_file());

    // Reading the written file back gives the same content hash.
    let path = first.path.join("data.parquet");
    let back = LazyFrame::scan_parquet(PlRefPath::new(path.to_str().unwrap()), ScanArgsParquet::default())
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(mlops_core::frame::frame_hash(&back).unwrap(), first.metadata.sha256);
    let _ = back.lazy();
}

#[test]
fn metadata_profiles_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = write(&params(dir.path()), &data());
    let m = &out.metadata;
    assert_eq!((m.rows, m.columns), (4, 2));
    let mass = m.schema.iter().find(|c| c.name == "mass").unwrap();
    assert_eq!((mass.nulls, mass.unique), (1, 4));
    assert_eq!(m.schema[0].unique, 3);
    // The same counts as polars gives.
    let frame = data();
    for (c, p) in frame.columns().iter().zip(&m.schema) {
        assert_eq!((p.nulls, p.unique), (c.null_count(), c.n_unique().unwrap()), "{}", p.name);
    }
    assert_eq!(m.parents, vec!["sha256:abc"]);
    let file = m.files.iter().find(|f| f.path == "data.parquet").unwrap();
    assert_eq!(file.sha256, mlops_core::hash::sha256_file(&out.path.join("data.parquet")).unwrap());
}

#[test]
fn catalog_lists_and_shows_versions() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&params(dir.path()), &data());
    let b = curate(
        &data().head(Some(2)),
        &params(dir.path()),
        &Provenance { run_key: "run-b".into(), ..provenance() },
        &FeaturePipeline::new(),
    )
    .unwrap();
    let catalog = Catalog::open(dir.path());
    let list = catalog.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].version, a.metadata.version);
    let shown = catalog.show(&b.metadata.version[..8]).unwrap();
    assert_eq!(shown.rows, 2);
    assert_eq!(catalog.show(&format!("penguins@{}", a.metadata.version)).unwrap().rows, 4);
    assert!(matches!(catalog.show("zzzz"), Err(CurateError::NotFound { .. })));
    assert!(matches!(catalog.show(""), Err(CurateError::NotFound { .. })));
    assert_eq!(catalog.find_run("penguins", "run-b").unwrap().unwrap().0.version, b.metadata.version);
    assert_eq!(catalog.find_run("penguins", "run").unwrap().unwrap().0.version, a.metadata.version);
    assert!(catalog.find_run("penguins", "other").unwrap().is_none());
}

#[test]
fn failed_writes_leave_nothing_and_bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = curate(
        &data(),
        &CurateParams { partition_by: Some("island".into()), ..params(dir.path()) },
        &provenance(),
        &FeaturePipeline::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("curate.partition_by: column `island` not found"), "{err}");
    let err = curate(
        &data(),
        &CurateParams { name: "../escape".into(), ..params(dir.path()) },
        &provenance(),
        &FeaturePipeline::new(),
    )
    .unwrap_err();
    assert!(matches!(err, CurateError::BadName { .. }), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 0);

    // A frame whose columns cannot be stored (a list) fails to hash before anything is written.
    let listy = DataFrame::new(
        1,
        vec![polars::prelude::Column::new("l".into(), [polars::prelude::Series::new("x".into(), [1i64])])],
    )
    .unwrap();
    let err = curate(&listy, &params(dir.path()), &provenance(), &FeaturePipeline::new()).unwrap_err();
    assert!(err.to_string().contains("`l`"), "{err}");
    assert!(!dir.path().join("penguins").exists());
}

#[test]
fn load_reads_the_newest_version_and_refuses_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(&params(dir.path()), &data());
    let (meta, back) = Catalog::open(dir.path()).load("penguins").unwrap();
    assert_eq!(meta.version, first.metadata.version);
    assert!(back.equals_missing(&data()));
    let partitioned = CurateParams { partition_by: Some("species".into()), name: "parts".into(), ..params(dir.path()) };
    write(&partitioned, &data());
    let (_, parts) = Catalog::open(dir.path()).load("parts").unwrap();
    assert_eq!(parts.height(), 4);
    assert!(matches!(Catalog::open(dir.path()).load("nosuch"), Err(CurateError::NotFound { .. })));

    let file = first.path.join("data.parquet");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let err = Catalog::open(dir.path()).load(&format!("penguins@{}", first.metadata.version)).unwrap_err();
    assert!(matches!(&err, CurateError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

/// `curate.postgres` against a real server: the table created with the curated types, refused
/// when it exists (`fail`), replaced, appended to; a failure (a Parquet write that cannot happen,
/// an append that does not fit) leaves the server's table as it was.
#[test]
fn the_curated_table_goes_to_postgresql_in_one_transaction() {
    use mlops_core::testing::PostgresCluster;
    let pg = PostgresCluster::start("cur8").unwrap();
    pg.psql("postgres", "CREATE DATABASE lake").unwrap();
    let env = |var: &str| (var == "LAKE_PASSWORD").then(|| "cur8".to_string());
    let dir = tempfile::tempdir().unwrap();
    let sink = |if_exists: IfExists| PostgresSink {
        url: pg.url("lake"),
        table: "public.penguins".into(),
        if_exists,
        password_env: Some("LAKE_PASSWORD".into()),
        connect_timeout_seconds: 5,
    };
    let frame = df!(
        "species" => ["Adelie", "Gentoo", "Adelie"],
        "mass" => [Some(3750.0), None, Some(3800.0)],
        "eggs" => [2i64, 1, 2],
        "ok" => [true, false, true],
        "day" => [19_700i32, 19_701, 19_702],
    )
    .unwrap()
    .lazy()
    .with_column(col("day").cast(DataType::Date))
    .collect()
    .unwrap();
    let with = |if_exists| CurateParams { postgres: Some(sink(if_exists)), ..params(dir.path()) };
    let write = |p: &CurateParams| curate_with_env(&frame, p, (&Provenance::default(), &FeaturePipeline::new()), &env);
    let table = || pg.psql("lake", "SELECT species, mass, eggs, ok, day FROM penguins ORDER BY day").unwrap();
    let types = || {
        pg.psql("lake", "SELECT string_agg(data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'penguins'")
            .unwrap()
    };

    let curated = write(&with(IfExists::Fail)).unwrap();
    assert_eq!(
        curated.table.as_deref(),
        Some(format!("postgres://postgres@127.0.0.1:{}/lake \"public\".\"penguins\"", pg.port).as_str())
    );
    assert_eq!(table(), "Adelie|3750|2|t|2023-12-09\nGentoo||1|f|2023-12-10\nAdelie|3800|2|t|2023-12-11\n");
    assert_eq!(types().trim(), "text,double precision,bigint,boolean,date");
    // It exists: `fail` refuses, naming the table; `append` adds; `replace` starts again.
    let e = write(&with(IfExists::Fail)).unwrap_err().to_string();
    assert!(e.contains("\"public\".\"penguins\" exists") && e.contains("if_exists"), "{e}");
    write(&with(IfExists::Append)).unwrap();
    assert_eq!(pg.psql("lake", "SELECT count(*) FROM penguins").unwrap().trim(), "6");
    write(&with(IfExists::Replace)).unwrap();
    assert_eq!(pg.psql("lake", "SELECT count(*) FROM penguins").unwrap().trim(), "3");

    // Failures roll back. A Parquet version that cannot be written (the catalog is a file):
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file, not a folder").unwrap();
    let mut p = with(IfExists::Replace);
    p.dir = blocked;
    assert!(write(&p).is_err());
    assert_eq!(pg.psql("lake", "SELECT count(*) FROM penguins").unwrap().trim(), "3", "the replace was rolled back");
    // An append whose columns do not fit the table:
    pg.psql("lake", "CREATE TABLE other (species int4)").unwrap();
    let e = write(&CurateParams {
        postgres: Some(PostgresSink { table: "other".into(), ..sink(IfExists::Append) }),
        ..params(dir.path())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("curate.postgres") && e.contains("mass"), "{e}");
    assert_eq!(pg.psql("lake", "SELECT count(*) FROM other").unwrap().trim(), "0");
    // No password in the environment, a wrong one: named, nothing written.
    let nobody = |_: &str| None;
    let e =
        curate_with_env(&frame, &with(IfExists::Replace), (&Provenance::default(), &FeaturePipeline::new()), &nobody)
            .unwrap_err()
            .to_string();
    assert!(e.contains("curate.postgres.password_env") && e.contains("LAKE_PASSWORD"), "{e}");
}
