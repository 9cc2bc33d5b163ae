//! End-to-end: the `mlops` binary on the shipped data, as a user runs it from a fresh clone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::{Project, repo};

/// The model server fuzzed by schemathesis against its own OpenAPI document.
mod schema;
/// The workspace's conventions, checked on its source tree (no `mlops` run).
mod tidy;

fn version_of(stdout: &str) -> String {
    let at = stdout.find("dataset penguins@").unwrap_or_else(|| panic!("no dataset line in:\n{stdout}"));
    stdout[at + "dataset penguins@".len()..].chars().take(16).collect()
}

#[test]
fn prepare_runs_steps_1_to_6_and_reruns_give_the_same_version() {
    let p = Project::new();
    let first = p.mlops(&["prepare", "--config", "configs/data.yaml"]);
    assert!(first.success, "{}\n{}", first.stdout, first.stderr);
    for step in ["ingest", "validate", "clean", "standardize", "transform", "curate"] {
        assert!(first.stdout.contains(step), "summary lacks {step}:\n{}", first.stdout);
    }
    let version = version_of(&first.stdout);
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
    let dir = p.join(&format!("data/processed/penguins/{version}"));
    for file in ["data.parquet", "metadata.json", "pipeline.json"] {
        assert!(dir.join(file).is_file(), "{file} missing in {}", dir.display());
    }
    assert!(first.stdout.contains(&format!("data/processed/penguins/{version}")), "{}", first.stdout);
    assert!(p.join("data/processed/catalog.json").is_file());
    let logs: Vec<_> = std::fs::read_dir(p.join("logs")).unwrap().collect();
    assert!(!logs.is_empty(), "no per-run log file");

    let again = p.mlops(&["prepare"]);
    assert!(again.success, "{}", again.stderr);
    assert_eq!(version_of(&again.stdout), version);
    assert!(again.stdout.contains("reused"), "{}", again.stdout);

    // From scratch, recomputed: identical data, identical version.
    std::fs::remove_dir_all(p.join("data/processed")).unwrap();
    let fresh = p.mlops(&["prepare"]);
    assert!(fresh.success, "{}", fresh.stderr);
    assert_eq!(version_of(&fresh.stdout), version);
    assert!(!fresh.stdout.contains("reused"));
}

/// The shipped penguins loaded into a real PostgreSQL server and prepared from there: the same
/// curated dataset version as from the CSV file (the version is the content's hash), lineage
/// naming the server and query, and the password only ever from the environment.
#[test]
fn prepare_reads_the_penguins_from_postgresql_as_it_reads_them_from_the_csv() {
    let p = Project::new();
    let pg = mlops_core::testing::PostgresCluster::start("field-s3cret").unwrap();
    pg.psql("postgres", "CREATE DATABASE field").unwrap();
    pg.psql(
        "field",
        "CREATE TABLE penguins_raw (\"studyName\" text, \"Sample Number\" bigint, \"Species\" text,
           \"Region\" text, \"Island\" text, \"Stage\" text, \"Individual ID\" text, \"Clutch Completion\" text,
           \"Date Egg\" text, \"Culmen Length (mm)\" float8, \"Culmen Depth (mm)\" float8,
           \"Flipper Length (mm)\" bigint, \"Body Mass (g)\" bigint, \"Sex\" text, \"Delta 15 N (o/oo)\" float8,
           \"Delta 13 C (o/oo)\" float8, \"Comments\" text)",
    )
    .unwrap();
    let csv = p.join("data/raw/penguins-raw.csv");
    pg.psql("field", &format!("\\copy penguins_raw FROM '{}' WITH (FORMAT csv, HEADER, NULL 'NA')", csv.display()))
        .unwrap();
    let source = "    csv:\n      path: data/raw/penguins-raw.csv\n      null_values: [\"NA\", \"\"]\n";
    let from_pg = format!(
        "    postgres:\n      url: {}\n      password_env: FIELD_DB_PASSWORD\n      table: penguins_raw\n      batch_rows: 100\n",
        pg.url("field")
    );
    // The curated table goes back to the server too (curate.postgres).
    let to_pg = format!(
        "curate:\n  postgres: {{url: \"{}\", password_env: FIELD_DB_PASSWORD, table: curated, if_exists: replace}}\n",
        pg.url("field")
    );
    let text = std::fs::read_to_string(p.join("configs/data.yaml")).unwrap();
    assert!(text.contains(source) && text.contains("\ncurate:\n"));
    p.write(
        "configs/variant.yaml",
        text.replacen(source, &from_pg, 1).replacen("\ncurate:\n", &format!("\n{to_pg}"), 1),
    );
    let config = "configs/variant.yaml";

    // No password in the environment: named, nothing written.
    let run = p.mlops(&["prepare", "--config", config]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("postgres.password_env") && run.stderr.contains("FIELD_DB_PASSWORD"), "{}", run.stderr);
    assert!(!p.join("data/processed/penguins").exists(), "a failed source writes nothing");
    let run = p.mlops_with_env(&["prepare", "--config", config], &[("FIELD_DB_PASSWORD", "not it")]);
    assert!(run.stderr.contains("password authentication failed") && !run.stderr.contains("not it"), "{}", run.stderr);

    let run = p.mlops_with_env(&["--json", "prepare", "--config", config], &[("FIELD_DB_PASSWORD", "field-s3cret")]);
    assert!(run.success, "{}", run.stderr);
    let from_server = run.json();
    assert_eq!(from_server["rows"], 342);
    let metadata: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.join(from_server["path"].as_str().unwrap()).join("metadata.json")).unwrap(),
    )
    .unwrap();
    let lineage = metadata["sources"].as_array().unwrap().iter().find(|s| s["source"] == "penguins").unwrap();
    assert_eq!(lineage["format"], "postgres");
    assert_eq!(
        lineage["uri"],
        format!("postgres://postgres@127.0.0.1:{}/field?query=SELECT * FROM \"penguins_raw\"", pg.port)
    );
    assert_eq!(lineage["rows"], 344);
    assert!(!metadata.to_string().contains("field-s3cret"));
    assert_eq!(pg.psql("field", "SELECT count(*) FROM curated").unwrap().trim(), "342");
    let steps = from_server["steps"].as_array().unwrap();
    let curate = steps.iter().find(|s| s["step"] == "curate").unwrap();
    assert!(curate["note"].as_str().unwrap().contains("\"curated\""), "{curate}");
    // The shipped example parses, every key known.
    pipelines::DataConfig::load(&e2e::repo().join("configs/examples/postgres.yaml")).unwrap();
    // `mlops ingest` reads the one source and writes it out; a server that is not there is named.
    let env = [("FIELD_DB_PASSWORD", "field-s3cret")];
    let run =
        p.mlops_with_env(&["--json", "ingest", "--config", config, "--source", "penguins", "-o", "pg.parquet"], &env);
    assert!(run.success, "{}", run.stderr);
    assert!(p.join("pg.parquet").is_file());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = p.file_with(config, &pg.url("field"), &format!("postgres://postgres@127.0.0.1:{closed}/field"));
    let run = p.mlops_with_env(&["ingest", "--config", gone.to_str().unwrap()], &env);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains(&format!("postgres://postgres@127.0.0.1:{closed}/field")), "{}", run.stderr);

    let run = p.mlops(&["--json", "prepare"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.json()["version"],
        from_server["version"],
        "the same rows and types from the server as from the file"
    );
}

/// The shipped penguins published to a real Kafka-protocol broker (tansu), one CSV line per
/// message, and prepared from the topic through a consumer group: the same dataset version as
/// from the file, the offsets in the lineage, and the group moved on only once the version is
/// written; a topic that is not there, and a broker that is not there, are named.
#[test]
fn prepare_reads_the_penguins_from_a_kafka_topic_and_the_group_moves_on() {
    let p = Project::new();
    let broker = mlops_core::testing::KafkaBroker::start().unwrap();
    broker.create_topic("penguins", 1).unwrap();
    let text = std::fs::read_to_string(p.join("data/raw/penguins-raw.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<(i64, &str)> = lines.map(|l| (1_700_000_000_000, l)).collect();
    broker.produce("penguins", 0, &rows).unwrap();
    let columns: Vec<String> = header.split(',').map(|c| serde_json::to_string(c.trim_matches('"')).unwrap()).collect();
    let source = "    csv:\n      path: data/raw/penguins-raw.csv\n      null_values: [\"NA\", \"\"]\n";
    let from_kafka = format!(
        "    kafka:\n      brokers: [\"{}\"]\n      topic: penguins\n      group: nightly\n      format: csv\n      columns: [{}]\n",
        broker.address(),
        columns.join(", ")
    );
    let data = std::fs::read_to_string(p.join("configs/data.yaml")).unwrap();
    assert!(data.contains(source));
    p.write("configs/variant.yaml", data.replacen(source, &from_kafka, 1));
    let config = "configs/variant.yaml";

    // A topic that does not exist: named, nothing written.
    let missing = p.file_with(config, "topic: penguins", "topic: penguin");
    let run = p.mlops(&["prepare", "--config", missing.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("penguin") && run.stderr.contains("does not exist"), "{}", run.stderr);
    assert!(!p.join("data/processed/penguins").exists(), "a failed source writes nothing");

    let run = p.mlops(&["--json", "prepare", "--config", config]);
    assert!(run.success, "{}", run.stderr);
    let from_topic = run.json();
    let metadata: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.join(from_topic["path"].as_str().unwrap()).join("metadata.json")).unwrap(),
    )
    .unwrap();
    let lineage = metadata["sources"].as_array().unwrap().iter().find(|s| s["source"] == "penguins").unwrap();
    assert_eq!(lineage["format"], "kafka");
    assert_eq!(lineage["uri"], format!("kafka://{}/penguins", broker.address()));
    assert_eq!(lineage["rows"], 344);
    assert_eq!(lineage["kafka"]["group"], "nightly");
    assert_eq!(
        lineage["kafka"]["partitions"],
        serde_json::json!([{"partition": 0, "from": 0, "until": 344, "messages": 344}])
    );

    // The group committed: the same source now reads nothing new (the columns, no rows).
    let run = p.mlops(&["--json", "ingest", "--config", config, "--source", "penguins", "-o", "again.csv"]);
    assert!(run.success, "{}", run.stderr);
    let again = std::fs::read_to_string(p.join("again.csv")).unwrap();
    assert_eq!(again.lines().count(), 1, "{again}");
    // The shipped example parses, every key known.
    pipelines::DataConfig::load(&e2e::repo().join("configs/examples/kafka.yaml")).unwrap();
    // A broker that is not there is named, within the timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let gone = p.file_with(config, &broker.address(), &closed);
    let started = std::time::Instant::now();
    let run = p.mlops(&["ingest", "--config", gone.to_str().unwrap(), "--source", "penguins", "-o", "gone.csv"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains(&closed), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!p.join("gone.csv").exists());

    let run = p.mlops(&["--json", "prepare"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json()["version"], from_topic["version"], "the same rows and types from the topic as from the file");
}

/// A JSON API (static pages served by Python's http.server on loopback) read by `mlops ingest
/// --config`: next links followed, records flattened, a token taken from the environment; a page
/// that is not there is named with its status.
#[test]
fn ingest_reads_a_json_api_page_by_page() {
    let p = Project::new();
    for (page, next) in [(1, "\"page2.json\""), (2, "\"page3.json\""), (3, "null")] {
        let items: Vec<String> = (0..2)
            .map(|k| {
                format!(
                    "{{\"id\": {}, \"bird\": {{\"species\": \"Adelie\", \"mass_g\": {}}}}}",
                    page * 10 + k,
                    3000 + k
                )
            })
            .collect();
        p.write(
            &format!("api/page{page}.json"),
            format!("{{\"data\": {{\"items\": [{}]}}, \"links\": {{\"next\": {next}}}}}", items.join(", ")),
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = std::process::Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
        .arg(p.join("api"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "http.server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let config = |first: &str| {
        format!(
            "sources:\n  birds:\n    http_json:\n      url: http://127.0.0.1:{port}/{first}\n      headers: {{Authorization: {{env: BIRDS_TOKEN, prefix: \"Bearer \"}}}}\n      record_path: data.items\n      pagination: {{next_link: links.next}}\n      retries: {{max: 1, backoff_ms: 10}}\n"
        )
    };
    p.write("configs/api.yaml", config("page1.json"));
    let env = [("BIRDS_TOKEN", "t0k3n")];
    let run = p.mlops_with_env(&["--json", "ingest", "--config", "configs/api.yaml", "-o", "birds.csv"], &env);
    assert!(run.success, "{}", run.stderr);
    let csv = std::fs::read_to_string(p.join("birds.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("id,bird.species,bird.mass_g"), "{csv}");
    assert_eq!(csv.lines().count(), 7, "three pages of two records: {csv}");
    // No token in the environment; a page that is not there.
    let run = p.mlops(&["ingest", "--config", "configs/api.yaml"]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("http_json.headers.Authorization") && run.stderr.contains("BIRDS_TOKEN"),
        "{}",
        run.stderr
    );
    p.write("configs/api.yaml", config("page9.json"));
    let run = p.mlops_with_env(&["ingest", "--config", "configs/api.yaml"], &env);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains(&format!("http://127.0.0.1:{port}/page9.json")) && run.stderr.contains("404"),
        "{}",
        run.stderr
    );
    server.kill().unwrap();
    let _ = server.wait();
    // The shipped example parses, every key known.
    pipelines::DataConfig::load(&e2e::repo().join("configs/examples/http_json.yaml")).unwrap();
}

/// `mlops ingest page.html -o table.csv` reads the page's first table as it reads a CSV file; a
/// page without a table is named.
#[test]
fn ingest_reads_an_html_page_s_first_table() {
    let p = Project::new();
    p.write(
        "page.html",
        "<html><body><h1>Islands</h1><table><thead><tr><th>island</th><th>latitude</th></tr></thead>\
         <tbody><tr><td>Biscoe</td><td>-65.43</td></tr><tr><td>Dream</td><td>-64.73</td></tr></tbody></table></body></html>",
    );
    let run = p.mlops(&["--json", "ingest", "page.html", "-o", "table.csv"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(p.join("table.csv")).unwrap(), "island,latitude\nBiscoe,-65.43\nDream,-64.73\n");
    p.write("empty.html", "<html><body><p>nothing here</p></body></html>");
    p.fails(&["ingest", "empty.html"], &["empty.html", "no tables in the page"]);
    pipelines::DataConfig::load(&e2e::repo().join("configs/examples/html_table.yaml")).unwrap();
}

#[test]
fn prepare_json_and_the_catalog() {
    let p = Project::new();
    let run = p.mlops(&["prepare", "--json"]);
    assert!(run.success, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["dataset"], "penguins");
    assert_eq!(out["rows"], 342);
    assert_eq!(out["steps"].as_array().unwrap().len(), 6);
    let version = out["version"].as_str().unwrap().to_string();

    let list = p.mlops(&["data", "list", "--json"]);
    assert!(list.success, "{}", list.stderr);
    assert_eq!(list.json()[0]["version"], version.as_str());
    let table = p.mlops(&["data", "list"]);
    assert!(table.stdout.contains(&version), "{}", table.stdout);

    let show = p.mlops(&["data", "show", &version[..6], "--json"]);
    assert!(show.success, "{}", show.stderr);
    let meta = show.json();
    assert_eq!(meta["rows"], 342);
    assert_eq!(meta["sources"].as_array().unwrap().len(), 2);
    assert!(meta["config_sha256"].as_str().unwrap().len() == 64);
    assert!(meta["schema"].as_array().unwrap().iter().any(|c| c["name"] == "culmen_ratio"));
    let human = p.mlops(&["data", "show", &version]);
    assert!(human.stdout.contains("body_mass_kg"), "{}", human.stdout);

    let missing = p.mlops(&["data", "show", "ffffffff"]);
    assert!(!missing.success);
    assert!(missing.stderr.contains("no dataset version matches \"ffffffff\""), "{}", missing.stderr);
}

#[test]
fn output_matches_a_pandas_reference() {
    let p = Project::new();
    let run = p.mlops(&["prepare", "--json"]);
    assert!(run.success, "{}", run.stderr);
    let path = run.json()["path"].as_str().unwrap().to_string();
    let parquet = p.join(&path).join("data.parquet");
    let script = repo().join("tests/reference/penguins_pandas.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(p.join("data/raw"))
        .arg(&parquet)
        .output()
        .expect("python3 runs the pandas reference (.ci/run installs pandas)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "reference failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["rows"]["pandas"], 342, "{result}");
    assert_eq!(result["rows"]["toolkit"], 342, "{result}");
    assert_eq!(result["missing_in_toolkit"], serde_json::json!([]), "columns pandas has and the toolkit lacks");
    assert_eq!(result["extra_in_toolkit"], serde_json::json!([]), "columns the toolkit has and pandas lacks");
    let columns = result["columns"].as_object().unwrap();
    assert_eq!(columns.len(), 23, "{result}");
    for (column, diff) in columns {
        let gap = diff["max_abs_difference"].as_f64().unwrap_or_else(|| panic!("{column}: {diff}"));
        assert!(gap < 1e-9, "{column} differs from pandas by {gap}");
        // Counts cells null on one side and filled on the other, as an imputation gone wrong leaves.
        assert_eq!(diff["differing_cells"], 0, "{column}: cells differ from pandas: {diff}");
    }
}

/// Runs `prepare` on a broken variant of the shipped config and checks the error and that
/// nothing was written.
fn fails_cleanly(p: &Project, config: &std::path::Path, expected: &[&str]) {
    let run = p.mlops(&["prepare", "--config", config.to_str().unwrap()]);
    assert!(!run.success, "expected failure, got:\n{}", run.stdout);
    assert_eq!(run.code, Some(1));
    for e in expected {
        assert!(run.stderr.contains(e), "stderr lacks {e:?}:\n{}", run.stderr);
    }
    assert!(p.processed_is_empty(), "a failed run wrote output");
}

#[test]
fn bad_config_names_file_key_and_line() {
    let p = Project::new();
    let cfg = p.config_with("  duplicates: {}", "  duplicate: {}");
    fails_cleanly(&p, &cfg, &["variant.yaml", "line 57", "key `clean.duplicate`", "unknown field `duplicate`"]);
    let cfg = p.config_with("rows: {min: 100}", "rows: {min: many}");
    fails_cleanly(&p, &cfg, &["variant.yaml", "key `validate.penguins.rows.min`", "invalid type"]);
    let cfg = p.config_with("    Clutch Completion: bool", "    Clutch Completion: boolean");
    fails_cleanly(&p, &cfg, &["key `clean.types.Clutch Completion`", "unknown variant `boolean`"]);
    let cfg = p.config_with("primary: penguins", "primary: pinguins");
    fails_cleanly(&p, &cfg, &["key `primary`", "no source named `pinguins`"]);
    let missing = p.mlops(&["prepare", "--config", "configs/nope.yaml"]);
    assert!(!missing.success && missing.stderr.contains("configs/nope.yaml"), "{}", missing.stderr);
}

#[test]
fn bad_sources_name_the_file_and_line() {
    let p = Project::new();
    let cfg = p.config_with("data/raw/penguins-raw.csv", "data/raw/missing.csv");
    fails_cleanly(&p, &cfg, &["ingest `penguins`", "data/raw/missing.csv: file not found"]);

    let mut text = std::fs::read(p.join("data/raw/penguins-raw.csv")).unwrap();
    text.extend_from_slice(b"PAL0910,999,Adelie,Anvers,Dream,x,N1A1,Yes,2009-01-01,1,2,3,4,MALE,1,2,extra,field\n");
    p.write("data/raw/ragged.csv", &text);
    let cfg = p.config_with("data/raw/penguins-raw.csv", "data/raw/ragged.csv");
    fails_cleanly(&p, &cfg, &["ragged.csv: line 346: expected 17 fields, found 18"]);

    let mut latin = std::fs::read(p.join("data/raw/penguins-raw.csv")).unwrap();
    let at = latin.iter().position(|b| *b == b'\n').unwrap() + 1;
    latin.insert(at, 0xE9);
    p.write("data/raw/latin1.csv", &latin);
    let cfg = p.config_with("data/raw/penguins-raw.csv", "data/raw/latin1.csv");
    fails_cleanly(&p, &cfg, &["latin1.csv: line 2: bytes are not valid UTF-8"]);

    p.write("data/raw/islands.json", "[{\"island\": \"Biscoe\"},\n {\"island\": }]\n");
    let cfg = p.config_with("csv:\n      path: data/raw/islands.csv", "json:\n      path: data/raw/islands.json");
    fails_cleanly(&p, &cfg, &["ingest `islands`", "islands.json: line 2 column"]);

    std::fs::copy(repo().join("crates/step01-ingest/tests/fixtures/penguins.xlsx"), p.join("data/raw/islands.xlsx"))
        .unwrap();
    let cfg = p.config_with(
        "csv:\n      path: data/raw/islands.csv",
        "excel:\n      path: data/raw/islands.xlsx\n      sheet: islands",
    );
    fails_cleanly(&p, &cfg, &["islands.xlsx: no sheet named \"islands\" (sheets: penguins, notes)"]);

    let db = p.join("data/raw/islands.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE islands (island TEXT, latitude REAL);").unwrap();
    drop(conn);
    let cfg = p.config_with(
        "csv:\n      path: data/raw/islands.csv",
        "sqlite:\n      path: data/raw/islands.db\n      query: SELECT island, lattitude FROM islands",
    );
    fails_cleanly(&p, &cfg, &["islands.db: query failed", "no such column: lattitude"]);
}

#[test]
fn bad_steps_name_the_column_and_write_nothing() {
    let p = Project::new();
    let cfg = p.config_with("on: [island]", "on: [isle]");
    fails_cleanly(&p, &cfg, &["transform", "joins.islands.left_on: column `isle` not found"]);
    let cfg = p.config_with("drop_rows: {columns: [Body Mass (g)]}", "drop_rows: {columns: [Body Mass (kg)]}");
    fails_cleanly(&p, &cfg, &["clean", "column `Body Mass (kg)` not found"]);
    let cfg = p.config_with("culmen_length_mm / culmen_depth_mm", "culmen_length_mm / culmen_width_mm");
    fails_cleanly(&p, &cfg, &["derive `culmen_ratio`", "`culmen_width_mm` not found"]);
}

#[test]
fn validation_errors_stop_the_run_with_a_report() {
    let p = Project::new();
    let cfg = p.config_with(
        "Culmen Length (mm): {type: float, min: 25, max: 70}",
        "Culmen Length (mm): {type: float, min: 40, max: 70}",
    );
    let run = p.mlops(&["prepare", "--config", cfg.to_str().unwrap()]);
    assert!(!run.success);
    assert!(run.stderr.contains("min") && run.stderr.contains("Culmen Length (mm)"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert!(p.processed_is_empty());
    let json = p.mlops(&["prepare", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(!json.success);
    let failures = &json.json()["report"]["failures"];
    assert_eq!(failures[0]["check"], "min");
    assert!(failures[0]["count"].as_u64().unwrap() > 50);

    // Clean runs beside validation; when both fail, the validation report is the answer.
    let text = std::fs::read_to_string(&cfg).unwrap().replacen("      Sex: mode", "      Nope: mode", 1);
    let both = p.write("configs/variant-both.yaml", text);
    let run = p.mlops(&["prepare", "--config", both.to_str().unwrap()]);
    assert!(!run.success);
    assert!(run.stderr.contains("Culmen Length (mm)") && run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert!(!run.stderr.contains("Nope"), "{}", run.stderr);
    assert!(p.processed_is_empty());

    // Warnings do not stop the run.
    let cfg =
        p.config_with("Body Mass (g): {min: 2000, max: 7000}", "Body Mass (g): {min: 3000, max: 7000, severity: warn}");
    let run = p.mlops(&["prepare", "--config", cfg.to_str().unwrap()]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("warning: validate `penguins`: min Body Mass (g) failed"), "{}", run.stdout);
}

#[test]
fn each_step_runs_alone_on_files() {
    let p = Project::new();
    let ingest = p.mlops(&["ingest", "data/raw/penguins-raw.csv", "-o", "data/interim/raw.parquet"]);
    assert!(ingest.success, "{}", ingest.stderr);
    assert!(ingest.stdout.contains("344") && p.join("data/interim/raw.parquet").is_file(), "{}", ingest.stdout);
    let lineage = p.mlops(&["ingest", "--config", "configs/data.yaml", "--json"]).json();
    assert_eq!(lineage.as_array().unwrap().len(), 2);

    let infer = p.mlops(&["validate", "data/interim/raw.parquet", "--infer", "-o", "configs/raw.schema.yaml"]);
    assert!(infer.success, "{}", infer.stderr);
    let ok = p.mlops(&["validate", "data/raw/penguins-raw.csv", "--schema", "configs/raw.schema.yaml"]);
    assert!(ok.success, "{}{}", ok.stdout, ok.stderr);
    p.write("configs/strict.yaml", "columns:\n  Sex: {nullable: false}\n  Species: {allowed: [Adelie]}\n");
    let bad = p.mlops(&["validate", "data/raw/penguins-raw.csv", "--schema", "configs/strict.yaml", "--json"]);
    assert_eq!(bad.code, Some(1));
    let report = bad.json();
    assert_eq!(report["passed"], false);
    assert_eq!(report["report"]["failures"].as_array().unwrap().len(), 2);

    let clean = p.mlops(&[
        "clean",
        "data/raw/penguins-raw.csv",
        "-o",
        "data/interim/clean.parquet",
        "--pipeline",
        "data/interim/clean.json",
    ]);
    assert!(clean.success, "{}", clean.stderr);
    assert!(p.join("data/interim/clean.json").is_file());
    let std = p.mlops(&["standardize", "data/interim/clean.parquet", "-o", "data/interim/std.parquet"]);
    assert!(std.success, "{}", std.stderr);
    let csv = p.mlops(&["standardize", "data/interim/clean.parquet", "-o", "data/interim/std.csv"]);
    assert!(csv.success, "{}", csv.stderr);
    let header = std::fs::read_to_string(p.join("data/interim/std.csv")).unwrap();
    assert!(header.starts_with("study_name,sample_number,species"), "{}", &header[..80]);
    let tr = p.mlops(&[
        "transform",
        "data/interim/std.parquet",
        "--source",
        "islands=data/raw/islands.csv",
        "-o",
        "data/interim/tr.parquet",
        "--json",
    ]);
    assert!(tr.success, "{}{}", tr.stdout, tr.stderr);
    assert_eq!(tr.json()["columns"], 23);
    let curate = p.mlops(&["curate", "data/interim/tr.parquet", "--name", "manual", "--dir", "data/processed"]);
    assert!(curate.success, "{}", curate.stderr);
    assert!(curate.stdout.contains("dataset manual@"), "{}", curate.stdout);

    let unknown = p.mlops(&["ingest", "configs/data.yaml"]);
    assert!(!unknown.success && unknown.stderr.contains("unknown file type"), "{}", unknown.stderr);
    let no_schema = p.mlops(&["validate", "data/raw/penguins-raw.csv", "--schema", "configs/none.yaml"]);
    assert!(!no_schema.success && no_schema.stderr.contains("configs/none.yaml"), "{}", no_schema.stderr);
    let bad_out = p.mlops(&["clean", "data/raw/penguins-raw.csv", "-o", "out.xlsx"]);
    assert!(!bad_out.success && bad_out.stderr.contains("must end in .parquet or .csv"), "{}", bad_out.stderr);
    let bad_ref = p.mlops(&["transform", "data/interim/std.parquet", "--source", "islands"]);
    assert!(!bad_ref.success && bad_ref.stderr.contains("expected NAME=FILE"), "{}", bad_ref.stderr);
}

#[test]
fn standalone_steps_reject_bad_input_by_name() {
    let p = Project::new();
    p.write("configs/std.yaml", "standardize:\n  column_names: snake_case\n  case: {Species: title}\n");
    let run = p.mlops(&["standardize", "data/raw/penguins-raw.csv", "--config", "configs/std.yaml"]);
    assert!(!run.success);
    assert!(run.stderr.contains("standardize.case: column `Species` not found"), "{}", run.stderr);

    p.write("configs/typo.yaml", "standardise: {}\n");
    let run = p.mlops(&["standardize", "data/raw/penguins-raw.csv", "--config", "configs/typo.yaml"]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("typo.yaml: line 1") && run.stderr.contains("unknown field `standardise`"),
        "{}",
        run.stderr
    );

    let run = p.mlops(&["curate", "data/raw/penguins-raw.csv"]);
    assert!(!run.success && run.stderr.contains("give --name"), "{}", run.stderr);
    let run = p.mlops(&["curate", "data/raw/penguins-raw.csv", "--name", "../outside"]);
    assert!(!run.success && run.stderr.contains("not a valid dataset name"), "{}", run.stderr);
    let run = p.mlops(&["curate", "data/raw/penguins-raw.csv", "--name", "p", "--partition-by", "Colony"]);
    assert!(!run.success && run.stderr.contains("partition_by: column `Colony` not found"), "{}", run.stderr);
    assert!(p.processed_is_empty());

    p.write("data/processed/catalog.json", "{not json");
    let run = p.mlops(&["data", "list"]);
    assert!(!run.success && run.stderr.contains("catalog.json"), "{}", run.stderr);
    let run = p.mlops(&["ingest", "--config", "configs/data.yaml", "--source", "seals"]);
    assert!(!run.success && run.stderr.contains("no source named `seals`"), "{}", run.stderr);
}

#[test]
fn partitioned_curation_from_the_command_line() {
    let p = Project::new();
    let run = p.mlops(&["curate", "data/raw/penguins-raw.csv", "--name", "raw", "--partition-by", "Island", "--json"]);
    assert!(run.success, "{}", run.stderr);
    let path = run.json()["path"].as_str().unwrap().to_string();
    for island in ["Biscoe", "Dream", "Torgersen"] {
        assert!(p.join(&path).join(format!("data/Island={island}/part-0.parquet")).is_file(), "{island}");
    }
    let again = p.mlops(&["curate", "data/raw/penguins-raw.csv", "--name", "raw", "--json"]);
    assert_eq!(again.json()["version"], run.json()["version"], "partitioning must not change the version");
}

#[test]
fn eda_report_matches_pandas_and_has_every_section_and_chart() {
    let p = Project::new();
    let run = p.mlops(&["eda", "--json"]);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    let out = run.json();
    assert_eq!(out["rows"], 342);
    let html = p.join(out["html"].as_str().unwrap());
    let json = p.join(out["json"].as_str().unwrap());
    assert!(html.starts_with(p.join("reports/penguins")), "{}", html.display());
    let bytes = std::fs::metadata(&html).unwrap().len();
    assert!(bytes < 2 * 1024 * 1024, "report is {bytes} bytes");
    let version = html.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
    let parquet = p.join(&format!("data/processed/penguins/{version}/data.parquet"));

    let script = repo().join("tests/reference/check_eda.py");
    let output = std::process::Command::new("python3")
        .args([script.as_os_str(), parquet.as_os_str(), json.as_os_str(), html.as_os_str()])
        .output()
        .expect("python3 with pandas (.ci/run installs it)");
    assert!(output.status.success(), "check_eda failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let check: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let sections: Vec<&str> =
        check["html"]["sections"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(
        sections,
        ["overview", "warnings", "variables", "correlations", "missing", "outliers", "duplicates", "charts"]
    );
    assert_eq!(check["html"]["broken_links"].as_array().unwrap().len(), 0, "{check}");
    assert_eq!(check["html"]["external"].as_array().unwrap().len(), 0, "{check}");
    assert_eq!(check["html"]["scripts"], 0);
    // One chart per column, two heatmaps, the missing-value and outlier charts, and the embedded
    // charts of configs/training.yaml (all but the scatter plot and the pair grid).
    let figures = check["html"]["figures"].as_u64().unwrap();
    assert_eq!(figures, 23 + 2 + 2 + 8, "{check}");
    assert_eq!(check["html"]["svgs"].as_u64().unwrap(), figures);
    assert!(check["html"]["tooltips"].as_u64().unwrap() > 500, "{check}");
    assert_eq!(check["numeric_columns"]["toolkit"], check["numeric_columns"]["pandas"]);
    assert_eq!(check["duplicates"]["toolkit"], check["duplicates"]["pandas"]);
    assert_eq!(check["rows"]["pandas"], 342, "{check}");
    assert_eq!(check["rows"]["toolkit"], check["rows"]["pandas"], "{check}");
    // Every column pandas reads is profiled, nothing else is, and every column pandas calls
    // numeric has the numeric statistics compared below.
    for list in ["missing_in_toolkit", "extra_in_toolkit", "numeric_in_pandas_only", "numeric_in_toolkit_only"] {
        assert_eq!(check["variables"][list], serde_json::json!([]), "{list}: {}", check["variables"]);
    }
    for (stat, diff) in check["max_relative_difference"].as_object().unwrap() {
        assert!(diff.as_f64().unwrap() < 1e-9, "{stat} differs from pandas by {diff}");
    }
    // The configured charts were written in both formats.
    let plots: Vec<_> = std::fs::read_dir(html.parent().unwrap().join("plots")).unwrap().collect();
    assert_eq!(plots.len(), 20);

    // The same data and config give the same profile and the same report, written afresh (the
    // first run's files are removed, so the second run's are read).
    let first_json = std::fs::read(&json).unwrap();
    let first_html = std::fs::read_to_string(&html).unwrap();
    std::fs::remove_file(&json).unwrap();
    std::fs::remove_file(&html).unwrap();
    let again = p.mlops(&["eda", "--json"]);
    assert!(again.success, "{}", again.stderr);
    assert_eq!(again.json()["json"], out["json"], "{}", again.stdout);
    let first: serde_json::Value = serde_json::from_slice(&first_json).unwrap();
    let second: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let changed: Vec<&String> =
        first.as_object().unwrap().iter().filter(|(k, v)| second.get(k.as_str()) != Some(*v)).map(|(k, _)| k).collect();
    assert!(first == second, "a rerun profiled the same data differently: {changed:?} changed");
    // The page differs only in its generation time.
    let second_html = std::fs::read_to_string(&html).unwrap();
    let difference = first_difference(&without_generated_time(&first_html), &without_generated_time(&second_html));
    assert!(difference.is_none(), "a rerun drew another report: {}", difference.unwrap_or_default());

    let table = p.mlops(&["eda", "--dataset", "penguins"]);
    assert!(table.success, "{}", table.stderr);
    assert!(table.stdout.contains(&format!("report: reports/penguins/{version}/eda.html")), "{}", table.stdout);
    assert!(table.stdout.contains("warning: `comments` is"), "{}", table.stdout);
}

/// Where two texts first differ: the byte offset and what each has from a little before there.
fn first_difference(a: &str, b: &str) -> Option<String> {
    let at = a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    if at == a.len() && at == b.len() {
        return None;
    }
    let around =
        |s: &str| String::from_utf8_lossy(&s.as_bytes()[at.saturating_sub(60)..(at + 60).min(s.len())]).into_owned();
    Some(format!("at byte {at}:\n  first:  {:?}\n  second: {:?}", around(a), around(b)))
}

/// An EDA page with its "generated <time>" stamp blanked out.
fn without_generated_time(html: &str) -> String {
    let at = html.find(" · generated ").unwrap_or_else(|| panic!("no generation time in the report"));
    let end = html[at..].find(" by mlops").map(|e| at + e).unwrap_or_else(|| panic!("no generator after the time"));
    format!("{}{}", &html[..at], &html[end..])
}

#[test]
fn plot_draws_each_kind_from_the_command_line() {
    let p = Project::new();
    assert!(p.mlops(&["prepare", "--quiet"]).success);
    let cases: [&[&str]; 10] = [
        &["line", "--x", "date_egg", "--y", "body_mass_kg"],
        &["bar", "--column", "species"],
        &["histogram", "--column", "flipper_length_mm", "--bins", "20"],
        &["scatter", "--x", "culmen_length_mm", "--y", "culmen_depth_mm", "--hue", "species"],
        &["box", "--column", "body_mass_kg", "--by", "island"],
        &["violin", "--column", "body_mass_kg", "--by", "species"],
        &["heatmap", "--method", "spearman", "--columns", "culmen_length_mm,culmen_depth_mm,body_mass_kg"],
        &["qq", "--column", "culmen_length_mm"],
        &["pairs", "--columns", "culmen_length_mm,body_mass_kg", "--hue", "species"],
        &["compare", "--column", "body_mass_kg", "--transform", "log"],
    ];
    for (i, args) in cases.iter().enumerate() {
        for ext in ["svg", "png"] {
            let out = format!("out/{i}.{ext}");
            let mut all = vec!["plot"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["--dataset", "penguins", "--out", &out]);
            let run = p.mlops(&all);
            assert!(run.success, "{all:?}: {}", run.stderr);
            let bytes = std::fs::read(p.join(&out)).unwrap();
            if ext == "png" {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{all:?}");
            } else {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.contains("<svg") && text.contains("<title>"), "{all:?}");
            }
        }
    }
    let json = p.mlops(&["plot", "histogram", "--column", "body_mass_kg", "--dataset", "penguins", "--json"]);
    assert!(json.success, "{}", json.stderr);
    let path = json.json()["path"].as_str().unwrap().to_string();
    assert_eq!(path, "reports/plots/histogram-body_mass_kg.svg");
    assert!(p.join(&path).is_file());
}

#[test]
fn eda_and_plot_reject_bad_input_by_name_and_write_nothing() {
    let p = Project::new();
    assert!(p.mlops(&["prepare", "--quiet"]).success);
    let fails = |args: &[&str], expected: &[&str]| p.fails(args, expected);
    fails(
        &["plot", "histogram", "--column", "species", "--dataset", "penguins"],
        &["plot histogram", "`species`", "numeric"],
    );
    fails(&["plot", "scatter", "--x", "nope", "--y", "body_mass_kg", "--dataset", "penguins"], &["`nope` not found"]);
    fails(&["plot", "histogram", "--dataset", "penguins"], &["--column is required"]);
    fails(
        &["plot", "bar", "--column", "species", "--dataset", "penguins", "--out", "x.txt"],
        &["x.txt", ".svg or .png"],
    );
    fails(&["plot", "line", "--x", "species", "--y", "body_mass_kg", "--dataset", "penguins"], &["`species`"]);
    fails(&["plot", "bar", "--column", "species", "--dataset", "nosuch"], &["nosuch"]);
    fails(&["eda", "--dataset", "nosuch"], &["nosuch"]);
    p.write("empty.csv", "a,b\n");
    fails(&["eda", "--file", "empty.csv"], &["no rows"]);
    assert!(!p.join("reports").exists(), "a failed run wrote a report");

    // Config errors name the file, key and line; a bad plot leaves no report behind.
    let bad_key = p.file_with("configs/training.yaml", "  iqr_k: 1.5", "  iqr_kk: 1.5");
    fails(&["eda", "--config", bad_key.to_str().unwrap()], &["variant-training.yaml", "eda.iqr_kk", "line"]);
    let bad_plot =
        p.file_with("configs/training.yaml", "{kind: bar, column: species}", "{kind: histogram, column: species}");
    fails(&["eda", "--config", bad_plot.to_str().unwrap()], &["visualize", "`species`"]);
    let bins = p.file_with("configs/training.yaml", "histogram_bins: 30", "histogram_bins: 0");
    fails(&["eda", "--config", bins.to_str().unwrap()], &["eda.histogram_bins", "between 1 and 1000"]);
    assert!(!p.join("reports").exists(), "a failed run wrote a report");
}

#[test]
fn select_split_and_features_from_the_command_line() {
    let p = Project::new();
    assert!(p.mlops(&["prepare", "--quiet"]).success);

    let sel = p.mlops(&[
        "select",
        "--dataset",
        "penguins",
        "--filter",
        "species == \"Gentoo\" and body_mass_kg >= q(0.5)",
        "--columns",
        "species,body_mass_kg",
        "--json",
    ]);
    assert!(sel.success, "{}", sel.stderr);
    let out = sel.json();
    assert_eq!(out["columns"], 2);
    let rows = out["rows"].as_u64().unwrap();
    assert!(rows > 0 && rows < 123, "{out}");
    let sample = p.mlops(&["select", "--dataset", "penguins", "--sample-n", "10", "--seed", "3", "-o", "sample.csv"]);
    assert!(sample.success, "{}", sample.stderr);
    assert_eq!(std::fs::read_to_string(p.join("sample.csv")).unwrap().lines().count(), 11);

    // The shipped config: stratified by species, 20% test, 10% validation.
    let split = p.mlops(&["split", "--dataset", "penguins", "--json"]);
    assert!(split.success, "{}", split.stderr);
    let report = &split.json()["report"];
    let rows: u64 = ["train", "validation", "test"].iter().map(|k| report["rows"][k].as_u64().unwrap()).sum();
    assert_eq!(rows, 342, "{report}");
    assert_eq!(report["seed"], 42);
    assert_eq!(report["method"], "stratified");
    let again = p.mlops(&["split", "--dataset", "penguins", "--json"]);
    assert_eq!(again.json()["report"], *report, "the same seed gives the same split");
    let other = p.mlops(&[
        "split",
        "--dataset",
        "penguins",
        "--seed",
        "7",
        "--method",
        "group",
        "--by",
        "egg_year",
        "--test",
        "0.3",
        "--json",
    ]);
    assert!(other.success, "{}", other.stderr);
    assert_eq!(other.json()["report"]["groups"]["test"], 1);

    let feats = p.mlops(&["features", "--dataset", "penguins", "--json"]);
    assert!(feats.success, "{}", feats.stderr);
    let summary = &feats.json()["summary"];
    let created: Vec<&str> =
        summary["features"]["created"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for f in [
        "date_egg_month",
        "comments_length",
        "bill_area",
        "flipper_length_mm body_mass_kg",
        "culmen_length_mm_bin_te_adelie",
    ] {
        assert!(created.contains(&f), "{f} not in {created:?}");
    }
    let dir = p.join(feats.json()["dir"].as_str().unwrap());
    for file in ["train.parquet", "validation.parquet", "test.parquet", "pipeline.json", "split.json", "features.json"]
    {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let table = p.mlops(&["features", "--dataset", "penguins"]);
    assert!(table.stdout.contains("class balance") && table.stdout.contains("dropped"), "{}", table.stdout);
}

#[test]
fn select_and_split_reject_bad_input_by_name() {
    let p = Project::new();
    assert!(p.mlops(&["prepare", "--quiet"]).success);
    let fails = |args: &[&str], expected: &[&str]| p.fails(args, expected);
    fails(
        &["select", "--dataset", "penguins", "--filter", "body_mass_kg > and species"],
        &["select.rows.filter", "column 16"],
    );
    fails(
        &["select", "--dataset", "penguins", "--columns", "wingspan"],
        &["select.columns.names", "`wingspan` not found"],
    );
    fails(
        &["split", "--dataset", "penguins", "--method", "time", "--by", "species"],
        &["split.method.time.column", "`species`", "date or datetime"],
    );
    // One penguin of its own class cannot be stratified.
    p.write("one.csv", "kind,x\na,1\na,2\na,3\nb,4\nb,5\nb,6\nc,7\n");
    p.write("configs/plain.yaml", "seed: 1\n");
    let plain = ["--config", "configs/plain.yaml"];
    fails(
        &["split", "--file", "one.csv", "--method", "stratified", "--by", "kind", plain[0], plain[1]],
        &["class `c` of `kind` has 1 row(s)"],
    );
    p.write("empty.csv", "kind,x\n");
    fails(&["split", "--file", "empty.csv", plain[0], plain[1]], &["no rows"]);
    let bad = p.file_with("configs/training.yaml", "k_best: {k: 15, score: anova_f}", "k_best: {k: 15, score: anova}");
    fails(
        &["features", "--config", bad.to_str().unwrap()],
        &["variant-training.yaml", "features.select.k_best.score", "line"],
    );
    let bad = p.file_with("configs/training.yaml", "dates: {date_egg:", "dates: {species:");
    fails(&["features", "--config", bad.to_str().unwrap()], &["features.dates.species", "date or datetime"]);
    assert!(!p.join("data/interim").exists(), "a failed run wrote its parts");
}

#[test]
fn runs_list_show_and_compare_read_the_store() {
    use step12_training::{RunInfo, RunStatus, Store};
    let p = Project::new();
    p.fails(&["runs", "list"], &["models/registry/registry.db", "no run store yet"]);
    // Reading a registry that is not there creates nothing.
    for args in [&["registry", "list"][..], &["registry", "history"], &["registry", "show", "models:/m@champion"]] {
        p.fails(&[args, &["--store", "no/such/dir/x.db"]].concat(), &["registry no/such/dir/x.db", "no registry yet"]);
    }
    p.fails(&["registry", "list"], &["registry models/registry/registry.db", "no registry yet"]);
    assert!(!p.join("no").exists() && !p.join("models").exists(), "a read-only command created a store");
    let store = Store::open(&p.join("models/registry/registry.db")).unwrap();
    let info = |name: &str| RunInfo { experiment: "penguins".into(), name: name.into(), ..RunInfo::default() };
    let a = store.start_run(&info("logistic_regression")).unwrap();
    store.log_param(&a, "c", "1.0").unwrap();
    store.log_metric(&a, "accuracy", 0.97, None).unwrap();
    store.finish(&a, RunStatus::Finished, None).unwrap();
    let b = store.start_run(&info("knn_classifier")).unwrap();
    store.log_param(&b, "k", "5").unwrap();
    store
        .finish(&b, RunStatus::Failed, Some("knn_classifier.k: 500 must be between 1 and the 238 training rows"))
        .unwrap();
    drop(store);

    let list = p.mlops(&["runs", "list"]);
    assert!(list.success, "{}", list.stderr);
    assert!(
        list.stdout.contains(&a) && list.stdout.contains("failed") && list.stdout.contains("accuracy=0.9700"),
        "{}",
        list.stdout
    );
    let json = p.mlops(&["runs", "list", "--json"]).json();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let show = p.mlops(&["runs", "show", &b[..6]]);
    assert!(show.stdout.contains("error: knn_classifier.k: 500"), "{}", show.stdout);
    let compare = p.mlops(&["runs", "compare", &a, &b]);
    assert!(compare.success, "{}", compare.stderr);
    assert!(
        compare.stdout.contains("param c")
            && compare.stdout.contains("param k")
            && compare.stdout.contains("metric accuracy"),
        "{}",
        compare.stdout
    );
    p.fails(&["runs", "show", "zzzz"], &["no run \"zzzz\""]);
    // A usage error (one run to compare) is clap's: exit 2 and the usage line.
    let one = p.mlops(&["runs", "compare", &a]);
    assert_eq!(one.code, Some(2));
    assert!(one.stderr.contains("Usage: mlops runs compare"), "{}", one.stderr);
}

#[test]
fn train_tunes_every_candidate_and_reports_the_best() {
    let p = Project::new();
    let run = p.mlops(&["--quiet", "train", "--json"]);
    assert!(run.success, "{}", run.stderr);
    let t: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(t["task"], "multiclass_classification");
    // The run profiles the dataset first (step 7, with the charts of step 9).
    let eda = t["eda_report"].as_str().unwrap();
    assert!(eda.ends_with("eda.html") && p.join(eda).is_file(), "{eda}");
    assert_eq!(t["classes"], serde_json::json!(["Adelie", "Chinstrap", "Gentoo"]));
    let trials = t["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 16, "one trial per grid point of the shipped config");
    assert!(trials.iter().all(|x| x["error"].is_null() && x["scores"].as_array().unwrap().len() == 5));
    let board = t["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), 7, "one final fit per family");
    let cv: Vec<f64> = board.iter().map(|r| r["cv_mean"].as_f64().unwrap()).collect();
    assert!(cv.windows(2).all(|w| w[0] >= w[1]), "ranked by the CV score: {cv:?}");
    let best = &board[0];
    assert!(best["test"]["f1_macro"].as_f64().unwrap() > 0.9, "{best}");
    let report = std::fs::read_to_string(p.join(best["report"].as_str().unwrap())).unwrap();
    assert!(report.contains("Confusion matrix") && report.contains("<svg") && !report.contains("<script"));
    // Step 15: every final model ranked by the weights of select_best on the validation part,
    // each with its measured single-row latency, and the choice set against the runner-up.
    let selection = &t["selection"];
    assert_eq!(t["selected_on"], "validation");
    assert_eq!(selection["weights"]["f1_macro"], 1.0);
    assert_eq!(selection["ranked"].as_array().unwrap().len(), 7);
    let winner = selection["winner"].as_str().unwrap();
    assert_eq!(selection["ranked"][0]["name"], winner);
    // Six families tie at 1.0 on the validation rows: the better cross-validation score breaks
    // the tie before size does (not the smallest model, the depth-3 tree, sixth on the
    // leaderboard); two tie out of fold too (1.0), and of those the smaller wins.
    let top: Vec<&str> =
        board.iter().filter(|r| r["cv_mean"] == best["cv_mean"]).map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(top, ["knn_classifier", "svc"], "{board:?}");
    assert_eq!(winner, "svc", "{selection}");
    assert_eq!(
        (&selection["tie_broken"], &selection["tie_won_on"]),
        (&serde_json::json!(true), &serde_json::json!("size"))
    );
    assert!(
        board.iter().all(|r| r["latency_p99_ms"].as_f64().unwrap() > 0.0 && r["model_bytes"].as_u64().unwrap() > 0)
    );
    let comparison = &t["comparison"];
    assert_eq!(comparison["a"], winner);
    assert_eq!(comparison["b"], selection["ranked"][1]["name"]);
    let interval = &comparison["bootstrap"];
    assert!(interval["low"].as_f64().unwrap() <= interval["high"].as_f64().unwrap());
    let p_value = comparison["mcnemar"]["p_value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p_value));
    let chosen_run = board.iter().find(|r| r["model"] == winner).unwrap()["run_id"].as_str().unwrap();
    let shown = p.mlops(&["runs", "show", "--json", chosen_run]).json();
    assert_eq!(shown["tags"]["selected"], "true");
    // Step 16: the chosen model's package loads, verified, and says what it is.
    let package = t["package"].as_str().unwrap();
    assert_eq!(shown["artifacts"]["package"], package);
    let inspected = p.mlops(&["--json", "package", "inspect", package]).json();
    assert_eq!(inspected["model"]["family"], winner);
    assert_eq!(inspected["model"]["classes"], serde_json::json!(["Adelie", "Chinstrap", "Gentoo"]));
    assert_eq!(inspected["lineage"]["run_id"], chosen_run);
    assert_eq!(inspected["lineage"]["dataset_version"], t["dataset"]);
    // Ten files, and monitoring's reference: training rows as sent, the test part's predictions.
    let files: Vec<&str> =
        inspected["manifest"]["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(files.len(), 12, "{files:?}");
    assert!(files.contains(&"reference.parquet") && files.contains(&"reference_predictions.parquet"));
    assert!(inspected["lineage"]["split"]["seed"].is_u64(), "the cut of the dataset version is recorded");
    let inputs: Vec<&str> =
        inspected["signature"]["inputs"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    // The source's columns as they arrive: the ones the model's road reads, not the target's.
    assert!(inputs.contains(&"Culmen Length (mm)") && inputs.contains(&"Island"), "{inputs:?}");
    assert!(!inputs.contains(&"Species") && !inputs.contains(&"culmen_length_mm"), "{inputs:?}");
    assert_eq!(inspected["manifest"]["format_version"], 2);
    let text = p.mlops(&["package", "inspect", package]);
    assert!(text.success && text.stdout.contains("verified and loaded") && text.stdout.contains("model.bin"));
    assert!(p.join(best["model_file"].as_str().unwrap()).is_file());
    // Every trial and final fit is a run under the training run.
    let runs = p.mlops(&["runs", "list", "--json", "--experiment", "penguins-species"]);
    let runs: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1 + 16 + 7);
    // An unchanged rerun gives back the same results without training or registering again.
    let rerun = p.mlops(&["--quiet", "train", "--json"]).json();
    assert_eq!(rerun["reused"], t["run_id"]);
    assert_eq!(rerun["leaderboard"], t["leaderboard"]);
    let runs = p.mlops(&["runs", "list", "--json", "--experiment", "penguins-species"]).json();
    assert_eq!(runs.as_array().unwrap().len(), 1 + 16 + 7, "no new runs");
    let versions = p.mlops(&["--json", "registry", "list", "penguins-species"]).json();
    assert_eq!(versions.as_array().unwrap().len(), 1, "no new version");
    // Changing the candidates reuses the EDA report, the split, the features and the folds (the
    // steps upstream), and tunes again on them with the same results for the same candidates.
    let more = p.file_with("configs/training.yaml", "k: [3, 7, 15]", "k: [3, 7, 15, 25]");
    let text = p.mlops(&["train", "--config", more.to_str().unwrap()]);
    assert!(text.success, "{}", text.stderr);
    for reused in
        ["(unchanged, reused)", "(split and features reused)", "features refitted in each (reused)", "17 trial(s)"]
    {
        assert!(text.stdout.contains(reused), "{reused}: {}", text.stdout);
    }
    let retuned = p.mlops(&["--quiet", "train", "--json", "--config", more.to_str().unwrap()]).json();
    let first: std::collections::BTreeMap<String, f64> =
        trials.iter().map(|x| (x["spec"].to_string(), x["mean"].as_f64().unwrap())).collect();
    for x in retuned["trials"].as_array().unwrap() {
        if let Some(mean) = first.get(&x["spec"].to_string()) {
            assert_eq!(x["mean"].as_f64().unwrap(), *mean, "{}", x["spec"]);
        }
    }
    // Changing only how the choice is made reuses the tuning and the fits: one new training run,
    // no new trials or final fits, and a new choice, package and version.
    let tie = p.file_with("configs/training.yaml", "tie_tolerance: 0.001", "tie_tolerance: 0.002");
    let reshipped = p.mlops(&["--quiet", "train", "--json", "--config", tie.to_str().unwrap()]).json();
    assert!(reshipped["reused"].is_null());
    assert_eq!(reshipped["leaderboard"], t["leaderboard"]);
    let runs = p.mlops(&["runs", "list", "--json", "--experiment", "penguins-species"]).json();
    assert_eq!(runs.as_array().unwrap().len(), 1 + 16 + 7 + (1 + 17 + 7) + 1, "one new run, the training run");
    let parent = p.mlops(&["runs", "show", "--json", reshipped["run_id"].as_str().unwrap()]).json();
    assert_eq!(parent["tags"]["reused_fits"], t["run_id"]);
    assert_eq!(reshipped["registered"]["version"], 3);
    assert_ne!(reshipped["package"], t["package"], "the earlier package is left as it was");
    // A changed file is caught on load, by name.
    let metrics = p.join(&format!("{package}/metrics.json"));
    let changed = std::fs::read_to_string(&metrics).unwrap().replacen('0', "1", 1);
    std::fs::write(&metrics, changed).unwrap();
    p.fails(&["package", "inspect", package], &["metrics.json", "checksum mismatch"]);
    // A damaged package is not reused: the rerun trains again.
    let after = p.mlops(&["--quiet", "train", "--json"]).json();
    assert!(after["reused"].is_null(), "{}", after["reused"]);
    // Without a validation part the choice is made on the out-of-fold scores; the test part only
    // reports. `rank_on: test` (and `tie_break: [size]`) give the earlier behaviour back.
    let config = p.file_with("configs/training.yaml", "  validation: 0.1\n", "  validation: 0.0\n");
    let out_of_fold = p.mlops(&["--quiet", "train", "--json", "--config", config.to_str().unwrap()]).json();
    assert_eq!(out_of_fold["selected_on"], "cv");
    let cv_of = |t: &serde_json::Value, name: &str| -> f64 {
        t["leaderboard"].as_array().unwrap().iter().find(|r| r["model"] == name).unwrap()["cv_mean"].as_f64().unwrap()
    };
    let chosen = out_of_fold["selection"]["winner"].as_str().unwrap();
    let top = out_of_fold["leaderboard"][0]["cv_mean"].as_f64().unwrap();
    assert_eq!(cv_of(&out_of_fold, chosen), top, "{}", out_of_fold["selection"]);
    let earlier = p.file_with(
        "configs/training.yaml",
        "  tie_tolerance: 0.001\n",
        "  tie_tolerance: 0.001\n  rank_on: test\n  tie_break: [size]\n",
    );
    let earlier = std::fs::read_to_string(&earlier).unwrap().replace("  validation: 0.1\n", "  validation: 0.0\n");
    p.write("configs/earlier.yaml", earlier);
    let on_test = p.mlops(&["--quiet", "train", "--json", "--config", "configs/earlier.yaml"]).json();
    assert_eq!(on_test["selected_on"], "test");
}

#[test]
fn train_learns_a_binary_and_a_regression_target_from_the_other_shipped_configs() {
    let p = Project::new();
    let train = |config: &str| -> serde_json::Value {
        let run = p.mlops(&["--quiet", "train", "--json", "--config", config]);
        assert!(run.success, "{config}: {}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    };
    let sex = train("configs/training-sex.yaml");
    assert_eq!(sex["task"], "binary_classification");
    assert_eq!(sex["metric"], "roc_auc");
    let features: Vec<&str> = sex["features"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(!features.iter().any(|f| f.starts_with("sex")), "the target is never a feature: {features:?}");
    let board = sex["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), 6, "one final fit per family");
    assert!(board[0]["test"]["roc_auc"].as_f64().unwrap() > 0.85, "{}", board[0]);
    let report = std::fs::read_to_string(p.join(board[0]["report"].as_str().unwrap())).unwrap();
    assert!(report.contains("ROC curve"), "a binary report shows the ROC curve");

    let mass = train("configs/training-body-mass.yaml");
    assert_eq!(mass["task"], "regression");
    assert_eq!(mass["metric"], "r2");
    let features: Vec<&str> = mass["features"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(features.iter().all(|f| !f.contains("body_mass") && !f.contains("mass_class")), "{features:?}");
    let board = mass["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), 9, "one final fit per family");
    assert!(board[0]["test"]["r2"].as_f64().unwrap() > 0.7, "{}", board[0]);
    let report = std::fs::read_to_string(p.join(board[0]["report"].as_str().unwrap())).unwrap();
    assert!(report.contains("Residuals"), "a regression report shows the residuals");
    // The final boosting run keeps its loss after every round.
    let boosting = board.iter().find(|r| r["model"] == "gradient_boosting_regressor").unwrap();
    let run = p.mlops(&["runs", "show", "--json", boosting["run_id"].as_str().unwrap()]).json();
    let losses = run["history"]["train_loss"].as_array().unwrap();
    assert!(losses.len() > 10 && losses[0]["step"] == 0, "{run}");
}

#[test]
fn fit_scores_one_model_on_the_feature_parts_and_names_bad_arguments() {
    let p = Project::new();
    let parts = p.join("parts");
    let features = p.mlops(&["--quiet", "features", "--out", parts.to_str().unwrap()]);
    assert!(features.success, "{}", features.stderr);
    let dir = parts.to_str().unwrap();
    let fit = p.mlops(&[
        "--json",
        "fit",
        dir,
        "--target",
        "species",
        "--model",
        "{logistic_regression: {c: 2}}",
        "--repeats",
        "2",
    ]);
    assert!(fit.success, "{}", fit.stderr);
    let fit = fit.json();
    assert_eq!(fit["model"], "logistic_regression");
    assert_eq!(fit["spec"]["logistic_regression"]["c"], 2.0);
    assert_eq!(fit["fit_seconds"].as_array().unwrap().len(), 2);
    assert!(fit["metrics"]["f1_macro"].as_f64().unwrap() > 0.9, "{fit}");
    let table = p.mlops(&["fit", dir, "--target", "body_mass_kg", "--task", "regression", "--model", "ridge"]);
    assert!(table.success && table.stdout.contains("test r2"), "{}{}", table.stdout, table.stderr);

    p.fails(&["fit", dir, "--target", "nosuch", "--model", "gaussian_nb"], &["--target", "`nosuch`"]);
    p.fails(&["fit", dir, "--target", "species", "--model", "ridge"], &["--model", "`ridge` is a regressor"]);
    p.fails(&["fit", dir, "--target", "species", "--model", "{svc: {c: -1}}"], &["--model", "svc.c", "-1"]);
    p.fails(&["fit", dir, "--target", "species", "--model", "{svc: {cc: 1}}"], &["--model", "unknown field `cc`"]);
    p.fails(&["fit", dir, "--target", "species", "--model", "gaussian_nb", "--repeats", "0"], &["--repeats"]);
    p.fails(
        &["fit", "nowhere", "--target", "species", "--model", "gaussian_nb"],
        &["nowhere/train.parquet", "no train part"],
    );
}

#[test]
fn train_rejects_bad_input_by_name_before_any_fit() {
    let p = Project::new();
    let fails = |from: &str, to: &str, expected: &[&str]| {
        let config = p.file_with("configs/training.yaml", from, to);
        p.fails(&["--quiet", "train", "--config", config.to_str().unwrap()], expected);
    };
    fails("model:\n  target: species", "model:\n  target: nosuch", &["model.target", "`nosuch`"]);
    fails("  metric: f1_macro", "  metric: r2", &["model.metric", "r2", "multiclass"]);
    fails("  metric: f1_macro", "  task: regression", &["model.target", "must be numeric", "`species`"]);
    fails("c: [0.1, 1.0, 10.0]", "c: [-1.0]", &["logistic_regression.c", "-1"]);
    fails("k: [3, 7, 15]", "k: [500]", &["knn_classifier.k", "500"]);
    fails("n_estimators: [100]", "n_estimators: [0]", &["candidates[5].params", "n_estimators", "at least 1 tree"]);
    // Only males left: nothing to learn.
    let only_males = p.file_with("configs/training-sex.yaml", "filter: \"not_null(sex)\"", "filter: \"sex == 'male'\"");
    p.fails(
        &["--quiet", "train", "--config", only_males.to_str().unwrap()],
        &["model.target", "`sex` is constant", "always `male`"],
    );
    fails("{model: gaussian_nb}", "{model: ridge}", &["candidates[1].model", "regressor"]);
    fails("weights: {f1_macro: 1.0}", "weights: {f1: 1.0}", &["select_best.weights.f1", "multiclass"]);
    fails("weights: {f1_macro: 1.0}", "weights: {latency: 1.0}", &["select_best.weights.latency", "unknown criterion"]);
    fails("min: {accuracy: 0.8}", "min: {accuracy: 0.8}, mx: {}", &["select_best.constraints", "mx"]);
    fails("confidence: 0.95", "confidence: 95", &["select_best.compare.confidence", "between 0 and 1"]);
    fails("register:\n  alias: champion", "register:\n  name: ../x\n  alias: champion", &["register.name", "`..`"]);
    fails("margin: 0.0", "margin: -1", &["register.margin", "-1"]);
    // Without the imputer, a value that was never measured (an isotope ratio) reaches the models
    // as a null.
    fails("  impute: {strategy: median}\n", "", &["`delta_15n`", "impute"]);
    assert!(!p.join("models/registry").exists(), "a rejected config recorded runs");
}

#[test]
fn the_registry_numbers_concurrent_registrations_and_audits_every_change() {
    let p = Project::new();
    let trained = p.mlops(&["--quiet", "train", "--json", "--config", "configs/training-sex.yaml"]);
    assert!(trained.success, "{}", trained.stderr);
    let package = trained.json()["package"].as_str().unwrap().to_string();
    // The training run registered its choice as the first champion; an identical rerun does not
    // beat it on the same test rows, so it becomes the challenger and says why.
    let first = &trained.json()["registered"];
    assert_eq!(
        (first["name"].as_str(), first["version"].as_u64(), first["alias"].as_str()),
        (Some("penguins-sex"), Some(1), Some("champion"))
    );
    // (A changed key, so the run is not simply reused.)
    let changed = p.file_with("configs/training-sex.yaml", "max_depth: [6]}", "max_depth: [6], min_samples_leaf: [1]}");
    let again = p.mlops(&["--quiet", "train", "--json", "--config", changed.to_str().unwrap()]);
    assert!(again.success, "{}", again.stderr);
    let second = &again.json()["registered"];
    assert_eq!(
        (second["version"].as_u64(), second["alias"].as_str(), second["promoted"].as_bool()),
        (Some(2), Some("challenger"), Some(false))
    );
    assert!(second["reason"].as_str().unwrap().contains("against the champion's (version 1)"), "{second}");
    assert_eq!(second["against_champion"]["bootstrap"]["difference"], 0.0);
    let champion = p.mlops(&["--json", "registry", "show", "models:/penguins-sex@champion"]).json();
    assert_eq!(champion["version"], 1);
    // Six processes register the same package at once: six distinct, gap-free versions, one
    // stored copy.
    let registered = register_at_once(&p, &["sexing", "--package", &package], &[]);
    let mut versions: Vec<u64> = registered.iter().map(|v| v["version"].as_u64().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    // The first training run's package was already stored: no new copy (the second run's is the
    // only other one).
    assert!(registered.iter().all(|v| v["package_sha256"] == champion["package_sha256"]));
    let stored: Vec<_> = std::fs::read_dir(p.join("models/artifacts"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .collect();
    assert_eq!(stored.len(), 2, "the same content is stored once");

    let ok = |args: &[&str]| {
        let run = p.mlops(args);
        assert!(run.success, "{args:?}: {}", run.stderr);
        run
    };
    ok(&["registry", "alias", "sexing", "champion", "2"]);
    ok(&["registry", "alias", "sexing", "champion", "3"]);
    ok(&["registry", "tag", "sexing", "approved_by", "ana", "--version", "3"]);
    let sexing = ok(&["--json", "registry", "show", "models:/sexing@champion"]).json();
    assert_eq!(sexing["version"], 3);
    assert_eq!(sexing["tags"]["approved_by"], "ana");
    assert_eq!(sexing["dataset_version"], trained.json()["dataset"]);
    let list = ok(&["registry", "list"]);
    assert!(list.stdout.contains("sexing") && list.stdout.contains("champion=3"), "{}", list.stdout);

    ok(&["registry", "retire", "sexing", "3"]);
    p.fails(&["registry", "show", "models:/sexing@champion"], &["sexing version 3 is retired"]);
    p.fails(&["registry", "alias", "sexing", "challenger", "3"], &["retired"]);
    p.fails(&["registry", "register", "../x", "--package", &package], &["model name \"../x\"", "`..`"]);
    p.fails(&["registry", "alias", "sexing", "Champion", "1"], &["alias \"Champion\"", "lowercase"]);
    p.fails(&["registry", "show", "models:/sexing/99"], &["sexing has no version 99"]);
    p.fails(&["registry", "tag", "nosuch", "k", "v"], &["no registered model `nosuch`"]);
    p.fails(
        &["registry", "register", "sexing", "--package", &package, "--tag", "owner"],
        &["--tag \"owner\"", "KEY=VALUE"],
    );
    p.fails(&["registry", "retire", "sexing", "42"], &["sexing has no version 42"]);
    // A store that cannot be opened, or a folder that is not a package, is named.
    p.fails(&["registry", "list", "--store", "models"], &["registry store models", "unable to open database file"]);
    p.fails(&["registry", "register", "sexing", "--package", "models"], &["models/manifest.json"]);
    // A changed package is refused and nothing is recorded.
    std::fs::write(p.join(&format!("{package}/signature.json")), "{}").unwrap();
    p.fails(&["registry", "register", "sexing", "--package", &package], &["signature.json", "checksum mismatch"]);
    let history = ok(&["--json", "registry", "history", "sexing"]).json();
    let actions: Vec<&str> = history.as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "register").count(), 6);
    assert_eq!(&actions[6..], ["alias", "alias", "tag", "retire"]);
    assert_eq!(history[7]["old_value"], "champion=2");
    assert_eq!(history[7]["new_value"], "champion=3");
}

/// Six `mlops registry register ARGS` processes started at once; their `--json` answers.
fn register_at_once(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..6)
        .map(|_| {
            std::process::Command::new(e2e::mlops_bin())
                .args(["--quiet", "--json", "registry", "register"])
                .args(args)
                .envs(env.iter().copied())
                .current_dir(p.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

#[test]
fn a_registration_killed_at_any_moment_leaves_the_registry_consistent() {
    use std::os::unix::process::ExitStatusExt;
    use std::time::Instant;

    let p = Project::new();
    let trained = p.mlops(&["--quiet", "train", "--json", "--config", "configs/training-body-mass.yaml"]);
    assert!(trained.success, "{}", trained.stderr);
    let package = trained.json()["package"].as_str().unwrap().to_string();
    // How long one registration takes on this machine, timed on a store of its own so that the
    // registry below still has to copy the package: the kills are spread over that time.
    let started = Instant::now();
    let timed = p.mlops(&[
        "--quiet",
        "registry",
        "--store",
        "timing/registry.db",
        "--artifacts",
        "timing/artifacts",
        "register",
        "crashy",
        "--package",
        &package,
        "--alias",
        "champion",
    ]);
    let whole = started.elapsed();
    assert!(timed.success, "{}", timed.stderr);

    // Kill -9 registering processes at moments spread over their life: start-up, package
    // verification, copying into the store, the transaction, setting the alias, after. Each
    // child logs into a folder of its own: a log file shows that `mlops` was running its command
    // (arguments parsed, logging set up) when the kill came. Rounds go on, with longer delays
    // while no child has finished, until a kill has landed in a running registration and a
    // registration has finished by itself (so something got in to check).
    let fractions = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.3, 2.0];
    let (mut killed_running, mut killed_before_logging, mut finished) = (Vec::new(), 0, 0);
    for round in 0..4 {
        let stretch = if finished == 0 { f64::from(1 << round) } else { 1.0 };
        for (i, f) in fractions.iter().enumerate() {
            let logs = format!("kill-logs/{round}-{i}");
            let mut child = std::process::Command::new(e2e::mlops_bin())
                .args(["--quiet", "--log-dir", &logs, "registry", "register", "crashy", "--package", &package])
                .args(["--alias", "champion"])
                .current_dir(p.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let delay = whole.mul_f64(f * stretch);
            std::thread::sleep(delay);
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            if out.status.signal() == Some(9) {
                let ran = std::fs::read_dir(p.join(&logs)).is_ok_and(|mut d| d.next().is_some());
                if ran {
                    killed_running.push(delay);
                } else {
                    killed_before_logging += 1;
                }
            } else {
                // A registration that was not killed must have succeeded.
                assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
                finished += 1;
            }
        }
        if !killed_running.is_empty() && finished > 0 {
            break;
        }
    }
    let tally = format!(
        "a registration takes {whole:?}; killed while running at {killed_running:?}, \
         {killed_before_logging} killed before logging was set up, {finished} finished"
    );
    assert!(!killed_running.is_empty(), "no kill landed while a registration was under way: {tally}");
    assert!(finished > 0, "no registration finished, so nothing got in to check: {tally}");

    // Whatever got in is whole: each version's package verifies, every version has its audit
    // entry, the numbers have no gaps, and the alias points at one of them.
    let listed = p.mlops(&["--json", "registry", "list", "crashy"]);
    assert!(listed.success, "registry list failed after the kills ({tally}):\n{}", listed.stderr);
    let versions = listed.json().as_array().unwrap().clone();
    let mut numbers: Vec<u64> = versions.iter().map(|v| v["version"].as_u64().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>(), "{tally}");
    assert!(numbers.len() >= finished, "{} versions for {finished} finished registrations", numbers.len());
    for v in &versions {
        let inspected = p.mlops(&["package", "inspect", v["artifact_path"].as_str().unwrap()]);
        assert!(inspected.success, "version {}: {}", v["version"], inspected.stderr);
    }
    let history = p.mlops(&["--json", "registry", "history", "crashy"]);
    assert!(history.success, "{}", history.stderr);
    let registers = history.json().as_array().unwrap().iter().filter(|h| h["action"] == "register").count();
    assert_eq!(registers, versions.len(), "{}", history.stdout);
    let champion = p.mlops(&["--json", "registry", "show", "models:/crashy@champion"]);
    assert!(champion.success, "{}", champion.stderr);
    assert!(numbers.contains(&champion.json()["version"].as_u64().unwrap()), "{}", champion.stdout);
    // And the registry still works: the next version is the next number.
    let next = p.mlops(&["--json", "registry", "register", "crashy", "--package", &package]);
    assert!(next.success, "{}", next.stderr);
    assert_eq!(next.json()["version"].as_u64().unwrap(), versions.len() as u64 + 1);
}

/// `kill -9` of `mlops train` leaves its runs `running` in the store; the next command that
/// opens the store finds their process gone and marks them `killed`, with the pid in the error.
#[test]
fn a_training_run_killed_mid_way_is_listed_as_killed() {
    use std::time::{Duration, Instant};
    let p = Project::new();
    let prepared = p.mlops(&["--quiet", "prepare", "--config", "configs/data.yaml"]);
    assert!(prepared.success, "{}", prepared.stderr);
    let mut child = std::process::Command::new(e2e::mlops_bin())
        .args(["--quiet", "train", "--config", "configs/training.yaml"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the run store holds a running run of this process, then kill it.
    let store = p.join("models/registry/registry.db");
    let started = Instant::now();
    let running = loop {
        assert!(started.elapsed() < Duration::from_secs(120), "no running run appeared");
        let conn = rusqlite::Connection::open_with_flags(&store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY);
        let ids: Vec<String> = conn
            .and_then(|c| {
                let mut stmt = c.prepare("SELECT id FROM runs WHERE status = 'running' AND owner_pid = ?1")?;
                let ids = stmt.query_map([pid], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(ids)
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let listed = p.mlops(&["--json", "runs", "list"]);
    assert!(listed.success, "{}", listed.stderr);
    let runs = listed.json().as_array().unwrap().clone();
    for id in &running {
        let run = runs.iter().find(|r| r["id"] == id.as_str()).unwrap();
        assert_eq!(run["status"], "killed", "{run}");
        assert!(run["error"].as_str().unwrap().contains(&format!("pid {pid}")), "{run}");
    }
    assert!(runs.iter().all(|r| r["status"] != "running"), "{}", listed.stdout);
}

/// A package in the registry's content-addressed store whose file was changed and whose
/// manifest was rewritten to match is refused by `package inspect`, `predict` and `serve`.
#[test]
fn a_tampered_registered_package_is_refused_by_every_command() {
    let p = Project::new();
    let trained = p.mlops(&["--quiet", "train", "--json", "--config", "configs/training-body-mass.yaml"]);
    assert!(trained.success, "{}", trained.stderr);
    let shown = p.mlops(&["--json", "registry", "show", "models:/penguins-body-mass@champion"]);
    assert!(shown.success, "{}", shown.stderr);
    let dir = p.join(shown.json()["artifact_path"].as_str().unwrap());
    let model = dir.join("model.bin");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&model, &bytes).unwrap();
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["path"] == "model.bin" {
            f["sha256"] = serde_json::json!(mlops_core::hash::to_hex(&mlops_core::hash::sha256_bytes(&bytes)));
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let expected = ["manifest.json", "the registry recorded", "changed after it was registered"];
    p.fails(&["package", "inspect", dir.to_str().unwrap()], &expected);
    std::fs::write(p.join("rows.csv"), "x\n1\n").unwrap();
    p.fails(
        &["predict", "--model", "models:/penguins-body-mass@champion", "--input", "rows.csv", "--output", "o.csv"],
        &expected,
    );
    assert!(!p.join("o.csv").exists());
    p.fails(&["serve", "--model", "models:/penguins-body-mass@champion", "--port", "0"], &expected);
}

#[test]
fn registry_delete_names_what_is_missing_and_takes_the_aliases_of_the_version() {
    let p = Project::new();
    let trained = p.mlops(&["--quiet", "train", "--json", "--config", "configs/training-body-mass.yaml"]);
    assert!(trained.success, "{}", trained.stderr);
    let package = trained.json()["package"].as_str().unwrap().to_string();
    let ok = |args: &[&str]| {
        let run = p.mlops(args);
        assert!(run.success, "{args:?}: {}", run.stderr);
        run
    };
    ok(&["registry", "register", "mass", "--package", &package]);
    ok(&["registry", "register", "mass", "--package", &package, "--alias", "champion"]);

    p.fails(&["registry", "delete", "nosuch", "1"], &["no registered model `nosuch`", "models/registry/registry.db"]);
    p.fails(&["registry", "delete", "mass", "9"], &["mass has no version 9"]);
    // Deleting the version an alias points at is not refused: the alias goes with it, and the
    // answer says so.
    let deleted = ok(&["registry", "delete", "mass", "2"]);
    assert!(deleted.stdout.contains("mass version 2 deleted, and with it alias champion"), "{}", deleted.stdout);
    p.fails(&["registry", "show", "models:/mass@champion"], &["mass has no alias `champion`"]);
    p.fails(&["registry", "delete", "mass", "2"], &["mass has no version 2"]);
    let listed = ok(&["--json", "registry", "list", "mass"]).json();
    let numbers: Vec<u64> = listed.as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1], "{listed}");
    let history = ok(&["--json", "registry", "history", "mass"]).json();
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].as_str(), last["version"].as_u64()), (Some("delete"), Some(2)), "{history}");
    // A deleted number is never given again.
    let next = ok(&["--json", "registry", "register", "mass", "--package", &package]);
    assert_eq!(next.json()["version"], 3, "{}", next.stdout);
}

#[test]
fn a_store_that_is_not_sqlite_is_named_and_left_as_it_was() {
    let p = Project::new();
    let garbage = "these are notes, not a database\n";
    p.write("models/registry/registry.db", garbage);
    p.fails(&["registry", "list"], &["registry store models/registry/registry.db", "file is not a database"]);
    p.fails(&["registry", "list", "sexing"], &["registry store models/registry/registry.db", "file is not a database"]);
    p.fails(&["runs", "list"], &["run store models/registry/registry.db", "file is not a database"]);
    p.fails(&["runs", "show", "abc"], &["run store models/registry/registry.db", "file is not a database"]);
    p.write("notes.db", garbage);
    p.fails(&["registry", "list", "--store", "notes.db"], &["registry store notes.db", "file is not a database"]);
    p.fails(&["runs", "list", "--store", "notes.db"], &["run store notes.db", "file is not a database"]);
    for file in ["models/registry/registry.db", "notes.db"] {
        assert_eq!(std::fs::read_to_string(p.join(file)).unwrap(), garbage, "{file} was changed");
    }
}

#[test]
fn config_files_with_a_yaml_syntax_error_or_nothing_in_them_are_named() {
    let p = Project::new();
    let line_of = |file: &str, text: &str| {
        let config = std::fs::read_to_string(p.join(file)).unwrap();
        let at = config.lines().position(|l| l == text).unwrap_or_else(|| panic!("{file} has no line {text:?}"));
        format!("line {}", at + 1)
    };
    // `key: {}: x` is not YAML: a mapping value where none may start.
    let broken = p.config_with("  duplicates: {}", "  duplicates: {}: x");
    let line = line_of("configs/data.yaml", "  duplicates: {}");
    p.fails(
        &["prepare", "--config", broken.to_str().unwrap()],
        &["configs/variant.yaml", &line, "mapping values are not allowed"],
    );
    p.write("configs/empty.yaml", "");
    p.fails(&["prepare", "--config", "configs/empty.yaml"], &["configs/empty.yaml", "key `sources`", "no sources"]);
    assert!(p.processed_is_empty(), "a rejected data config wrote a dataset");

    let broken = p.file_with("configs/training.yaml", "  metric: f1_macro", "  metric: f1_macro: x");
    let line = line_of("configs/training.yaml", "  metric: f1_macro");
    p.fails(
        &["--quiet", "train", "--config", broken.to_str().unwrap()],
        &["configs/variant-training.yaml", &line, "mapping values are not allowed"],
    );
    p.fails(
        &["--quiet", "train", "--config", "configs/empty.yaml"],
        &["configs/empty.yaml", "key `model`", "say what to learn"],
    );
    assert!(!p.join("models").exists(), "a rejected training config recorded runs or models");
    assert!(p.processed_is_empty(), "a training config without `model` prepared the dataset first");
    assert!(!p.join("reports").exists(), "a training config without `model` explored the dataset first");
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let p = Project::new();
    let mut child = std::process::Command::new(e2e::mlops_bin())
        .args(["ingest", "data/raw/penguins-raw.csv"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before reading anything, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("panicked"), "{:?}: {stderr}", out.status);
}

/// `mlops train` on the binary; then the registered package, loaded back, scores the test rows
/// of the same split, as the source's records, to exactly the metrics it records, through the
/// frame path and row by row.
#[test]
fn the_package_reproduces_the_test_metrics_exactly() {
    use mlops_core::Transform;

    let p = Project::new();
    let Holdout { package, raw, curated, proba: evaluated, registered, .. } =
        holdout(&p, "configs/training-sex.yaml", "models:/penguins-sex@champion");
    // The source's records, without the target (`Sex`), through the package's road.
    let raw = raw.drop("Sex").unwrap();
    let features = package.pipeline.apply_frame(raw.clone(), mlops_core::frame::Stage::Inference).unwrap();
    let x = mlops_core::frame::to_matrix(&features, &package.info.features).unwrap();
    let proba = package.model.predict_proba(&x).unwrap().unwrap();
    assert_eq!(bits(&proba), bits(&evaluated), "the raw records score as the evaluation did");
    let predicted: Vec<usize> = package.model.predict(&x).unwrap().iter().map(|&c| c as usize).collect();
    let truth: Vec<usize> = mlops_core::frame::keys(&curated, &package.info.target)
        .unwrap()
        .iter()
        .map(|k| package.info.classes.iter().position(|c| Some(c) == k.as_ref()).unwrap())
        .collect();
    let eval = step14_evaluate::evaluate(step14_evaluate::Outputs::Classes {
        truth: &truth,
        proba: &proba,
        labels: &package.info.classes,
        predicted: Some(&predicted),
    })
    .unwrap();
    for (k, v) in eval.metrics() {
        assert_eq!(package.metrics[&format!("test_{k}")], v, "test_{k}");
        assert_eq!(registered["metrics"][format!("test_{k}")].as_f64().unwrap(), v, "registry: test_{k}");
    }
    // One row at a time, as a server sees them: the same probabilities.
    for (i, mut row) in mlops_core::frame::rows_from_frame(&raw).unwrap().into_iter().enumerate() {
        package.pipeline.transform_row(&mut row).unwrap();
        let one = ndarray::Array2::from_shape_fn((1, package.info.features.len()), |(_, j)| {
            row[&package.info.features[j]].as_f64().unwrap()
        });
        assert_eq!(package.model.predict_proba(&one).unwrap().unwrap()[0], proba[i], "row {i}");
    }
}

/// The default training run's test rows as the source's records (as a server is sent them, with
/// every column of the raw file but the target) and the champion's outputs on them, which are
/// the training evaluation's to the bit.
struct TestRows {
    raw: polars::prelude::DataFrame,
    /// Their rows in `data/raw/penguins-raw.csv`, from 0.
    rows: Vec<usize>,
    records: Vec<serde_json::Value>,
    labels: Vec<String>,
    proba: Vec<Vec<f64>>,
}

/// A training run's test part, both ways: as the training evaluation scored it (the model on the
/// test part's features) and as the source's records.
struct Holdout {
    package: step16_package::PackageContents,
    /// The test rows of the raw file (every column, the target's too), in the test part's order.
    raw: polars::prelude::DataFrame,
    /// Their rows in the raw file, from 0.
    rows: Vec<usize>,
    /// The curated test rows (before the features), with the target.
    curated: polars::prelude::DataFrame,
    /// The evaluation's probabilities.
    proba: Vec<Vec<f64>>,
    registered: serde_json::Value,
}

/// Trains with `config` in `p`; then the same dataset version, config and seed give the same split
/// again, and its test rows are found in the raw file by their key (study, sample number,
/// species), which the curated rows keep.
fn holdout(p: &Project, config: &str, model: &str) -> Holdout {
    use polars::prelude::{IntoColumn, NamedFrom, SerReader};
    use step01_ingest::Reader;
    let run = p.mlops(&["--quiet", "train", "--json", "--config", config]);
    assert!(run.success, "{}", run.stderr);
    let trained = run.json();
    let registered = p.mlops(&["--json", "registry", "show", model]).json();
    // (Stored paths are relative to the folder mlops ran in, like every path of the config.)
    let package = step16_package::load(&p.join(registered["artifact_path"].as_str().unwrap())).unwrap().contents;
    let (name, version) = trained["dataset"].as_str().unwrap().split_once('@').unwrap();
    let file = std::fs::File::open(p.join(&format!("data/processed/{name}/{version}/data.parquet"))).unwrap();
    let frame = polars::prelude::ParquetReader::new(file).finish().unwrap();
    let config = pipelines::TrainingConfig::load(&p.join(config)).unwrap().resolved(p.path());
    let engineered = pipelines::engineer(&frame, &config, None).unwrap();
    let x = mlops_core::frame::to_matrix(&engineered.test, &package.info.features).unwrap();
    let proba = package.model.predict_proba(&x).unwrap().unwrap();
    // The split again with each curated row's number beside it.
    let mut numbered = frame.clone();
    let ids: Vec<i64> = (0..frame.height() as i64).collect();
    numbered.with_column(polars::prelude::Series::new("__row".into(), ids).into_column()).unwrap();
    let test = pipelines::engineer(&numbered, &config, None).unwrap().test_raw;
    let rows: Vec<usize> =
        test.column("__row").unwrap().i64().unwrap().into_no_null_iter().map(|i| i as usize).collect();
    let curated_keys = key_of(&frame, ["study_name", "sample_number", "species"]);
    let data = pipelines::DataConfig::load(&p.join("configs/data.yaml")).unwrap().resolved(p.path());
    let raw = data.sources["penguins"].read("penguins").unwrap().frame;
    let raw_keys = key_of(&raw, ["studyName", "Sample Number", "Species"]);
    let at: std::collections::HashMap<&String, usize> = raw_keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let picked: Vec<u32> = rows.iter().map(|&i| at[&curated_keys[i]] as u32).collect();
    let raw = raw.take(&polars::prelude::IdxCa::new("idx".into(), picked.clone())).unwrap();
    let curated = test.drop("__row").unwrap();
    let rows = picked.into_iter().map(|i| i as usize).collect();
    Holdout { package, raw, rows, curated, proba, registered }
}

/// Each row's key: the columns' values as text, the species by its first word (the curated one
/// is the raw one mapped: `Adelie Penguin (Pygoscelis adeliae)` became `Adelie`).
fn key_of<const N: usize>(df: &polars::prelude::DataFrame, columns: [&str; N]) -> Vec<String> {
    let keys: Vec<Vec<Option<String>>> = columns.iter().map(|c| mlops_core::frame::keys(df, c).unwrap()).collect();
    (0..df.height())
        .map(|i| {
            keys.iter()
                .map(|k| k[i].clone().unwrap_or_default().split(' ').next().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// The champion of configs/training.yaml on its test rows as the source's records: the package's
/// road from those records gives the training evaluation's probabilities, bit for bit.
fn trained_champion(p: &Project) -> TestRows {
    let h = holdout(p, "configs/training.yaml", "models:/penguins-species@champion");
    let raw = h.raw.drop("Species").unwrap();
    let features = h.package.pipeline.apply_frame(raw.clone(), mlops_core::frame::Stage::Inference).unwrap();
    let x = mlops_core::frame::to_matrix(&features, &h.package.info.features).unwrap();
    let proba = h.package.model.predict_proba(&x).unwrap().unwrap();
    assert_eq!(bits(&proba), bits(&h.proba), "the raw records score as the evaluation did");
    let labels =
        h.package.model.predict(&x).unwrap().iter().map(|&c| h.package.info.classes[c as usize].clone()).collect();
    let records = mlops_core::frame::rows_from_frame(&raw)
        .unwrap()
        .iter()
        .map(|r| serde_json::Value::Object(r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()))
        .collect();
    TestRows { raw, rows: h.rows, records, labels, proba }
}

/// `row,prediction,probability_...` of `mlops predict` as (labels, probabilities).
fn read_predictions(path: &std::path::Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("row,prediction,probability_Adelie"), "{text}");
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[1].to_string(), cells[2..].iter().map(|c| c.parse::<f64>().unwrap()).collect())
        })
        .unzip()
}

fn bits(rows: &[Vec<f64>]) -> Vec<Vec<u64>> {
    rows.iter().map(|r| r.iter().map(|v| v.to_bits()).collect()).collect()
}

#[test]
fn serving_the_champion_matches_batch_inference_and_training_evaluation() {
    use serde_json::json;
    let p = Project::new();
    let t = trained_champion(&p);
    let n = t.labels.len();
    // Batch inference on a Parquet file of the test rows.
    let mut raw = t.raw.clone();
    polars::prelude::ParquetWriter::new(std::fs::File::create(p.join("new.parquet")).unwrap())
        .finish(&mut raw)
        .unwrap();
    let run = p.mlops(&[
        "--json",
        "predict",
        "--model",
        "models:/penguins-species@champion",
        "--input",
        "new.parquet",
        "--output",
        "batch.csv",
    ]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json()["report"]["predicted"], n);
    let (labels, proba) = read_predictions(&p.join("batch.csv"));
    assert_eq!(labels, t.labels);
    assert_eq!(bits(&proba), bits(&t.proba), "batch inference differs from training evaluation");

    // The raw file itself, every row of it (the target's column is ignored): the test rows get
    // the same answers.
    let run = p.mlops(&[
        "predict",
        "--model",
        "models:/penguins-species@champion",
        "--input",
        "data/raw/penguins-raw.csv",
        "--output",
        "field.csv",
    ]);
    assert!(run.success, "{}", run.stderr);
    let (all_labels, all_proba) = read_predictions(&p.join("field.csv"));
    assert_eq!(all_labels.len(), 344, "every row of the file is answered");
    let picked = |i: &usize| (all_labels[*i].clone(), all_proba[*i].clone());
    let (labels, proba): (Vec<String>, Vec<Vec<f64>>) = t.rows.iter().map(picked).unzip();
    assert_eq!(labels, t.labels);
    assert_eq!(bits(&proba), bits(&t.proba), "the raw file's test rows differ from training evaluation");

    // The server, over each protocol, on the same rows.
    let s = p.serve(&[]);
    assert_eq!(s.info["version"], 1);
    let (status, answer) = s.post_json("/invocations", &json!({ "dataframe_records": t.records }));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["predictions"], json!(t.labels));
    let columns: Vec<String> = t.raw.get_column_names().iter().map(|c| c.to_string()).collect();
    let tensors: Vec<serde_json::Value> = columns
        .iter()
        .map(|c| {
            let data: Vec<serde_json::Value> = t.records.iter().map(|r| r[c].clone()).collect();
            json!({ "name": c, "shape": [n], "datatype": "BYTES", "data": data })
        })
        .collect();
    let (status, answer) = s.post_json("/v2/models/penguins-species/infer", &json!({ "inputs": tensors }));
    assert_eq!(status, 200, "{answer}");
    let served: Vec<f64> =
        answer["outputs"][1]["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let served: Vec<Vec<f64>> = served.chunks(3).map(<[f64]>::to_vec).collect();
    assert_eq!(bits(&served), bits(&t.proba), "the server differs from training evaluation");
    // A request of ten copies of the rows goes over the feature pipeline's frame path (from 512
    // rows): the same bits again.
    let tensors: Vec<serde_json::Value> = columns
        .iter()
        .map(|c| {
            let data: Vec<serde_json::Value> = t.records.iter().cycle().take(10 * n).map(|r| r[c].clone()).collect();
            json!({ "name": c, "shape": [10 * n], "datatype": "BYTES", "data": data })
        })
        .collect();
    let (status, answer) = s.post_json("/v2/models/penguins-species/infer", &json!({ "inputs": tensors }));
    assert_eq!(status, 200, "{answer}");
    let served: Vec<f64> =
        answer["outputs"][1]["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let expected: Vec<Vec<f64>> = t.proba.iter().cycle().take(10 * n).cloned().collect();
    assert_eq!(bits(&served.chunks(3).map(<[f64]>::to_vec).collect::<Vec<_>>()), bits(&expected));
    for i in [0, n / 2, n - 1] {
        let (status, one) = s.post_json("/predict", &t.records[i]);
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["prediction"], t.labels[i]);
        assert_eq!(one["probabilities"]["Gentoo"].as_f64().unwrap().to_bits(), t.proba[i][2].to_bits());
    }
    // The client path of `mlops predict` writes the same file as the batch path.
    let url = s.info["url"].as_str().unwrap().to_string();
    let run = p.mlops(&["predict", "--url", &url, "--input", "new.parquet", "--output", "remote.csv"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(std::fs::read(p.join("remote.csv")).unwrap(), std::fs::read(p.join("batch.csv")).unwrap());
    // A bad row answers 400 naming the column, and the server keeps serving.
    let mut bad = t.records[0].clone();
    bad.as_object_mut().unwrap().remove("Island");
    let (status, answer) = s.post_json("/invocations", &json!({ "instances": [bad] }));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["column"], "Island");
    let (status, text) = s.request("POST", "/invocations", "text/plain", "hello");
    assert_eq!(status, 415, "{text}");
    let (status, metrics) = s.request("GET", "/metrics", "text/plain", "");
    assert_eq!(status, 200);
    assert!(metrics.contains("mlops_rejected_inputs_total{reason=\"malformed\"} 1"), "{metrics}");
    // MLflow's own scoring client, unchanged (pandas frame, NaN for missing values).
    p.write("rows.json", serde_json::to_string(&t.records).unwrap());
    let script = e2e::repo().join("tests/reference/mlflow_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([&url, "rows.json", "--drop", "Island"])
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "the MLflow client failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["predictions"], json!(t.labels));
    assert_eq!(answer["bad_request"]["status"], 400, "{answer}");
    assert_eq!(answer["bad_request"]["response"]["column"], "Island", "{answer}");
    // An Open Inference Protocol v2 client (NVIDIA's tritonclient, as KServe and Triton users
    // call models), unchanged: typed tensors from the model's metadata, the same bits.
    let script = e2e::repo().join("tests/reference/oip_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([&url, "penguins-species", "rows.json"])
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "the OIP client failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["labels"], json!(t.labels));
    let served: Vec<Vec<f64>> = serde_json::from_value(answer["probabilities"].clone()).unwrap();
    assert_eq!(bits(&served), bits(&t.proba), "the OIP client's answers differ from training evaluation");
    // The README's and docs/api.md's curl examples, as written.
    let examples = e2e::repo().join("docs/examples");
    let example = |f: &str| std::fs::read_to_string(examples.join(f)).unwrap();
    for (path, file, content_type, needle) in [
        (
            "/invocations",
            "invocations.json",
            "application/json",
            "{\"predictions\":[\"Adelie\",\"Adelie\",\"Adelie\"]}",
        ),
        ("/invocations", "rows.csv", "text/csv", "{\"predictions\":[\"Adelie\",\"Adelie\",\"Adelie\"]}"),
        ("/v2/models/penguins-species/infer", "infer.json", "application/json", "\"id\":\"example-1\""),
        (
            "/predict",
            "predict.json",
            "application/json",
            "\"prediction\":\"Adelie\",\"probability\":0.9986076618498697,\"confidence\":\"high\"",
        ),
        ("/predict/batch", "predict_batch.json", "application/json", "\"predictions\":[{\"prediction\":\"Adelie\""),
    ] {
        let (status, answer) = s.request("POST", path, content_type, &example(file));
        assert_eq!(status, 200, "{file}: {answer}");
        assert!(answer.contains(needle), "{file}: {answer}");
    }
    // The README's record as it arrives from the field, written inline in its curl command.
    let readme = std::fs::read_to_string(e2e::repo().join("README.md")).unwrap();
    let start = readme.find("-d '{\"dataframe_records\"").unwrap() + 4;
    let body = &readme[start..start + readme[start..].find("}]}'").unwrap() + 3];
    let (status, answer) = s.request("POST", "/invocations", "application/json", body);
    assert_eq!((status, answer.as_str()), (200, "{\"predictions\":[\"Gentoo\"]}"), "{body}");
    let extra = 3 + 3 + 3 + 1 + 3 + 1;
    // SIGTERM drains and flushes: every served row is in the prediction log.
    let (ok, stderr) = s.terminate();
    assert!(ok, "{stderr}");
    let served_rows = 2 * n + 10 * n + 3 + n + extra + n + n;
    let db = rusqlite::Connection::open(p.join("models/registry/registry.db")).unwrap();
    let logged: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM prediction_log WHERE model_name = 'penguins-species' AND model_version = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logged as usize, served_rows);
}

#[test]
fn serve_and_predict_reject_bad_input_by_name() {
    let p = Project::new();
    // Nothing trained yet: the alias resolves to nothing.
    p.fails(&["serve", "--port", "0"], &["models:/penguins-species@champion", "make train"]);
    p.fails(
        &["predict", "--model", "models:/penguins-species@champion", "--input", "x.csv", "--output", "y.csv"],
        &["make train"],
    );
    let t = trained_champion(&p);
    p.fails(&["serve", "--port", "0", "--model", "models:/penguins-species@nope"], &["no alias `nope`"]);
    p.fails(&["serve", "--port", "0", "--model", "models:/bad name"], &["model name"]);
    p.fails(&["serve", "--port", "0", "--model", "no/such/package"], &["no/such/package"]);
    let config = p.file_with("configs/deployment.yaml", "poll_seconds: 10", "poll_secs: 10");
    p.fails(&["serve", "--config", config.to_str().unwrap()], &["variant-deployment.yaml", "poll_secs"]);
    let config = p.file_with("configs/deployment.yaml", "high: 0.8", "high: 0.1");
    p.fails(&["serve", "--config", config.to_str().unwrap()], &["variant-deployment.yaml", "confidence"]);
    let config =
        p.file_with("configs/deployment.yaml", "poll_seconds: 10", "poll_seconds: 10\n  shadow_alias: Not An Alias");
    p.fails(
        &["serve", "--config", config.to_str().unwrap()],
        &["variant-deployment.yaml", "shadow_alias", "Not An Alias"],
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    p.fails(&["serve", "--port", &port], &[&format!("cannot listen on 127.0.0.1:{port}")]);
    // Batch inference: bad rows reject the file (nothing written) or are skipped by row number.
    // (The columns without commas in their values, so that a cell can be changed by position.)
    let mut rows = t
        .raw
        .select([
            "Island",
            "Clutch Completion",
            "Date Egg",
            "Culmen Length (mm)",
            "Culmen Depth (mm)",
            "Flipper Length (mm)",
            "Body Mass (g)",
            "Delta 15 N (o/oo)",
            "Delta 13 C (o/oo)",
        ])
        .unwrap();
    let mut csv = Vec::new();
    {
        use polars::prelude::SerWriter;
        polars::prelude::CsvWriter::new(&mut csv).finish(&mut rows).unwrap();
    }
    let text = String::from_utf8(csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let k = header.iter().position(|c| *c == "Culmen Depth (mm)").unwrap();
    let mut cells: Vec<String> = lines[3].split(',').map(str::to_string).collect();
    cells[k] = "deep".into();
    lines[3] = cells.join(",");
    p.write("bad.csv", lines.join("\n") + "\n");
    let model = "models:/penguins-species@champion";
    p.fails(
        &["predict", "--model", model, "--input", "bad.csv", "--output", "out.csv"],
        &["row 2: column `Culmen Depth (mm)`", "\"deep\" is not a number", "nothing was written"],
    );
    assert!(!p.join("out.csv").exists());
    let run =
        p.mlops(&["predict", "--model", model, "--input", "bad.csv", "--output", "out.csv", "--on-error", "skip"]);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout.contains("1 row(s) skipped") && run.stdout.contains("row 2: column `Culmen Depth (mm)`"),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read_to_string(p.join("out.csv")).unwrap().lines().count(), t.labels.len());
    // The output is never the input, and an existing file is replaced only with --force.
    let input_before = std::fs::read(p.join("bad.csv")).unwrap();
    for flags in [&[][..], &["--force"][..]] {
        let args = [
            &["predict", "--model", model, "--input", "bad.csv", "--output", "bad.csv", "--on-error", "skip"][..],
            flags,
        ]
        .concat();
        p.fails(&args, &["`output`", "bad.csv is the input file"]);
        let args = [
            &["predict", "--model", model, "--input", "./bad.csv", "--output", "bad.csv", "--on-error", "skip"][..],
            flags,
        ]
        .concat();
        p.fails(&args, &["bad.csv is the input file"]);
    }
    assert_eq!(std::fs::read(p.join("bad.csv")).unwrap(), input_before, "the input was changed");
    let output_before = std::fs::read(p.join("out.csv")).unwrap();
    p.fails(
        &["predict", "--model", model, "--input", "bad.csv", "--output", "out.csv", "--on-error", "skip"],
        &["`output`", "out.csv already exists", "--force"],
    );
    assert_eq!(std::fs::read(p.join("out.csv")).unwrap(), output_before, "an existing output was replaced");
    let run = p.mlops(&["predict", "--model", model, "--input", "bad.csv", "--output", "no/such/dir/o.csv"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("no/such/dir/o.csv: the folder no/such/dir does not exist"), "{}", run.stderr);
    assert!(!run.stderr.contains(".tmp-"), "the error names a temporary file: {}", run.stderr);
    let forced = p.mlops(&[
        "predict",
        "--model",
        model,
        "--input",
        "bad.csv",
        "--output",
        "out.csv",
        "--on-error",
        "skip",
        "--force",
    ]);
    assert!(forced.success, "{}", forced.stderr);
    p.fails(&["predict", "--model", model, "--input", "bad.txt", "--output", "o.csv"], &["bad.txt: unknown file type"]);
    p.fails(&["predict", "--model", model, "--input", "bad.csv", "--output", "o.xlsx"], &["o.xlsx: unknown file type"]);
    p.fails(
        &["predict", "--model", model, "--input", "bad.csv", "--output", "o.csv", "--id", "key"],
        &["column `key` is not in"],
    );
    p.fails(&["predict", "--url", "http://127.0.0.1:9", "--input", "bad.csv", "--output", "o.csv"], &["127.0.0.1:9"]);
    let run = p.mlops(&["predict", "--input", "bad.csv", "--output", "o.csv"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--model"), "{}", run.stderr);
}

#[test]
fn containerize_writes_a_linted_context_for_the_champion_and_refuses_bad_input() {
    let p = Project::new();
    // Nothing registered yet.
    p.fails(&["containerize", "--out", "ctx"], &["models:/penguins-species@champion", "make train"]);
    let run = p.mlops(&["--quiet", "train"]);
    assert!(run.success, "{}", run.stderr);
    // The image builds the toolkit from its sources: containerize runs from a checkout.
    p.fails(&["containerize", "--out", "ctx"], &["not the toolkit's checkout", "repository root"]);
    assert!(!p.join("ctx").exists());
    // From the repository, with the project's store (absolute paths in a config copy).
    let repo = e2e::repo();
    let out = p.join("ctx");
    let config = p.file_with(
        "configs/deployment.yaml",
        "store: models/registry/registry.db\nartifacts: models/artifacts",
        &format!(
            "store: {}\nartifacts: {}",
            p.join("models/registry/registry.db").display(),
            p.join("models/artifacts").display()
        ),
    );
    let run = std::process::Command::new(e2e::mlops_bin())
        .args(["--json", "--log-dir", p.join("logs").to_str().unwrap()])
        .args(["containerize", "--out", out.to_str().unwrap(), "--config", config.to_str().unwrap()])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stdout));
    let answer: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(answer["image"]["version"], 1);
    for f in [
        "Dockerfile",
        ".dockerignore",
        "docker-compose.yml",
        "nginx.conf",
        "README.md",
        "model/manifest.json",
        "src/Cargo.lock",
        "src/crates/step20-serve/src/server.rs",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let dockerfile = std::fs::read_to_string(out.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains(answer["image"]["package_sha256"].as_str().unwrap()));
    let lint =
        std::process::Command::new("hadolint").arg(out.join("Dockerfile")).output().expect("hadolint (make test-deps)");
    assert!(lint.status.success() && lint.stdout.is_empty(), "{}", String::from_utf8_lossy(&lint.stdout));
    // The copied package is the registered one, verified.
    let inspect = p.mlops(&["package", "inspect", out.join("model").to_str().unwrap()]);
    assert!(inspect.success, "{}", inspect.stderr);
    // A non-empty directory is refused unless --force; an alias to nothing is named.
    let from_repo = |args: &[&str]| {
        let run = std::process::Command::new(e2e::mlops_bin())
            .args(["--log-dir", p.join("logs").to_str().unwrap(), "containerize", "--config", config.to_str().unwrap()])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        (run.status.code(), String::from_utf8_lossy(&run.stderr).to_string())
    };
    let (code, err) = from_repo(&["--out", out.to_str().unwrap()]);
    assert!(code == Some(1) && err.contains("exists and is not empty") && err.contains("--force"), "{err}");
    let other = p.join("other");
    let (code, err) = from_repo(&["--out", other.to_str().unwrap(), "--model", "models:/penguins-species@nope"]);
    assert!(code == Some(1) && err.contains("no alias `nope`"), "{err}");
    assert!(!other.exists());
    let (code, err) = from_repo(&["--out", out.to_str().unwrap(), "--force"]);
    assert_eq!(code, Some(0), "{err}");
    // The image's healthcheck is the binary itself.
    let s = p.serve(&[]);
    let url = format!("{}/v2/health/ready", s.info["url"].as_str().unwrap());
    assert!(p.mlops(&["healthcheck", &url]).success);
    p.fails(&["healthcheck", &url.replace("ready", "nope")], &["answered 404"]);
    drop(s);
    p.fails(&["healthcheck", &url], &["cannot connect"]);
    p.fails(&["healthcheck", "localhost:8080/ping"], &["localhost:8080/ping", "only http://"]);
    p.fails(
        &[
            "predict",
            "--model",
            "models:/penguins-species@champion",
            "--input",
            "x.csv",
            "--output",
            "y.csv",
            "--chunk-rows",
            "0",
        ],
        &["`chunk_rows`"],
    );
}

/// Stops every local deployment of a project when the test ends, passed or not.
struct Undeploy<'a>(&'a Project);

impl Drop for Undeploy<'_> {
    fn drop(&mut self) {
        let _ = self.0.mlops(&["--quiet", "deploy", "stop"]);
    }
}

/// Clients that POST docs/examples/invocations.json to `endpoint` on keep-alive connections
/// until `stop`, each answering the deployments that answered it (`x-mlops-deployment`, in
/// order) and its failures.
type Answered = std::thread::JoinHandle<(Vec<String>, Vec<String>)>;

fn busy_clients(endpoint: &str, n: usize, stop: &std::sync::Arc<std::sync::atomic::AtomicBool>) -> Vec<Answered> {
    let body = std::fs::read_to_string(repo().join("docs/examples/invocations.json")).unwrap();
    (0..n)
        .map(|_| {
            let (stop, endpoint, body) = (stop.clone(), endpoint.to_string(), body.clone());
            std::thread::spawn(move || {
                let mut client = e2e::KeepAlive::new(&endpoint);
                let (mut seen, mut failures) = (Vec::new(), Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match client.post("/invocations", &body) {
                        Ok(a) if a.status == 200 && a.body.contains("predictions") => {
                            seen.push(a.header("x-mlops-deployment").unwrap_or("?").to_string());
                        }
                        Ok(a) => failures.push(format!("{}: {}", a.status, a.body)),
                        Err(e) => failures.push(e.to_string()),
                    }
                }
                (seen, failures)
            })
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn process_runs(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !matches!(s.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()), Some('Z' | 'X')))
}

/// `mlops deploy local`: the champion goes live behind the endpoint; a new version replaces it
/// while clients keep their connections busy, and none of their requests fails; a version that
/// cannot start is stopped and the one serving keeps serving; `deploy stop` leaves nothing
/// running. Bad input is refused by name.
#[test]
fn deploy_local_replaces_under_load_without_failures_and_rolls_back_a_version_that_cannot_start() {
    let p = Project::new();
    let _stop = Undeploy(&p);
    let port = free_port().to_string();
    let endpoint = format!("127.0.0.1:{port}");
    // Nothing registered yet: the alias resolves to nothing.
    p.fails(&["deploy", "local", "--port", &port], &["models:/penguins-species@champion", "make train"]);
    let run = p.mlops(&["--quiet", "train"]);
    assert!(run.success, "{}", run.stderr);

    let first = p.mlops(&["--json", "deploy", "local", "--port", &port]);
    assert!(first.success, "{}", first.stdout);
    let first = first.json()["outcome"]["deployment"].clone();
    assert_eq!((first["version"].as_u64(), first["status"].as_str()), (Some(1), Some("serving")));
    assert_eq!(first["uri"], "models:/penguins-species/1", "an alias is pinned to its version");

    // Version 2: the same package registered again. Version 3: a package whose model file is
    // damaged after registration, so its server exits while loading.
    let shown = p.mlops(&["--json", "registry", "show", "penguins-species"]).json();
    let artifact = p.join(shown["versions"][0]["artifact_path"].as_str().unwrap());
    let reg = |package: &std::path::Path| {
        let run =
            p.mlops(&["--json", "registry", "register", "penguins-species", "--package", package.to_str().unwrap()]);
        assert!(run.success, "{}", run.stdout);
        run.json()
    };
    assert_eq!(reg(&artifact)["version"], 2);
    let copy = p.join("broken-package");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&artifact).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    // A different manifest (same content, one more newline): a package of its own in the store.
    let manifest = std::fs::read_to_string(copy.join("manifest.json")).unwrap();
    std::fs::write(copy.join("manifest.json"), format!("{manifest}\n")).unwrap();
    let third = reg(&copy);
    assert_eq!(third["version"], 3);
    std::fs::write(p.join(third["artifact_path"].as_str().unwrap()).join("model.bin"), b"damaged").unwrap();

    // Load: four clients on keep-alive connections, each recording the deployment that answered.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = busy_clients(&endpoint, 4, &stop);
    std::thread::sleep(std::time::Duration::from_millis(500));

    let second = p.mlops(&["--json", "deploy", "local", "--port", &port, "--model", "models:/penguins-species/2"]);
    assert!(second.success, "{}", second.stdout);
    let outcome = second.json()["outcome"].clone();
    assert_eq!(outcome["deployment"]["version"], 2);
    assert_eq!(outcome["replaced"]["id"], first["id"]);
    assert_eq!(outcome["replaced"]["status"], "replaced");
    assert!(!process_runs(first["pid"].as_u64().unwrap()), "the replaced server still runs");
    std::thread::sleep(std::time::Duration::from_millis(300));

    let broken = p.mlops(&["deploy", "local", "--port", &port, "--model", "models:/penguins-species/3"]);
    assert!(!broken.success);
    for needed in
        ["models:/penguins-species/3 never got ready", "exited before answering ready", "version 2", "keeps serving"]
    {
        assert!(broken.stderr.contains(needed), "lacks {needed:?}:\n{}", broken.stderr);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let (mut answered, first_id, second_id) = (0, first["id"].to_string(), outcome["deployment"]["id"].to_string());
    for client in clients {
        let (seen, failures) = client.join().unwrap();
        assert!(failures.is_empty(), "{} failed requests, first: {:?}", failures.len(), failures.first());
        // Each client was answered by version 1, then by version 2, and never by 1 again.
        let switch = seen.iter().position(|d| *d == second_id).expect("never answered by the new version");
        assert!(seen[switch..].iter().all(|d| *d == second_id), "answered by the old version after the switch");
        assert!(seen[..switch].iter().all(|d| *d == first_id));
        answered += seen.len();
    }
    assert!(answered > 20, "only {answered} requests answered");

    // The store tells the story; the failed attempt left no process behind.
    let status = p.mlops(&["--json", "deploy", "status"]).json();
    assert_eq!(status["serving"][0]["deployment"]["version"], 2);
    assert_eq!(status["serving"][0]["ready"], true);
    let history = status["history"].as_array().unwrap();
    let statuses: Vec<(u64, &str)> =
        history.iter().map(|d| (d["version"].as_u64().unwrap(), d["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, [(3, "failed"), (2, "serving"), (1, "replaced")]);
    assert!(!process_runs(history[0]["pid"].as_u64().unwrap()), "the failed server still runs");

    // Bad input: a retired version, an alias to nothing, a port taken by another program.
    assert!(p.mlops(&["registry", "retire", "penguins-species", "1"]).success);
    p.fails(&["deploy", "local", "--port", &port, "--model", "models:/penguins-species/1"], &["version 1 is retired"]);
    p.fails(
        &["deploy", "local", "--port", &port, "--model", "models:/penguins-species@nosuch"],
        &["no alias `nosuch`"],
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let v2 = ["--model", "models:/penguins-species/2"];
    p.fails(
        &["deploy", "local", "--port", &busy_port, v2[0], v2[1]],
        &[&format!("127.0.0.1:{busy_port}: the port is in use")],
    );
    p.fails(&["deploy", "local", "--port", &port, "--ready-timeout", "0"], &["--ready-timeout"]);

    p.fails(
        &["deploy", "stop", "--port", &port, "--host", "localhost-ish"],
        &["--host \"localhost-ish\"", "IP address"],
    );
    p.fails(&["deploy", "status", "--config", "configs/nosuch.yaml"], &["configs/nosuch.yaml"]);
    let bad = p.file_with("configs/deployment.yaml", "ready_timeout_seconds: 60", "ready_timeout_seconds: 0");
    p.fails(&["deploy", "local", "--config", bad.to_str().unwrap()], &["local.ready_timeout_seconds", "at least 1"]);

    // Stop: the endpoint refuses connections and both processes are gone.
    let router = status["serving"][0]["deployment"]["router_pid"].as_u64().unwrap();
    let server = status["serving"][0]["deployment"]["pid"].as_u64().unwrap();
    let stopped = p.mlops(&["--json", "deploy", "stop", "--port", &port]);
    assert!(stopped.success, "{}", stopped.stdout);
    assert_eq!(stopped.json()["stopped"][0]["status"], "stopped");
    assert!(std::net::TcpStream::connect(&endpoint).is_err(), "the endpoint still answers");
    assert!(!process_runs(router) && !process_runs(server));
    assert_eq!(p.mlops(&["--json", "deploy", "status"]).json()["serving"], serde_json::json!([]));
}

/// `mlops deploy kubernetes`: manifests for the champion (and a canary) that kubernetes-validate
/// accepts strictly, a ConfigMap the server itself accepts, and bad input refused by name.
#[test]
fn deploy_kubernetes_writes_valid_manifests_and_refuses_bad_input() {
    let p = Project::new();
    p.fails(&["deploy", "kubernetes", "--out", "k8s"], &["models:/penguins-species@champion", "make train"]);
    assert!(!p.join("k8s").exists());
    let run = p.mlops(&["--quiet", "train"]);
    assert!(run.success, "{}", run.stderr);

    let written = p.mlops(&["--json", "deploy", "kubernetes", "--out", "k8s"]);
    assert!(written.success, "{}", written.stdout);
    let files: Vec<String> = written.json()["manifests"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(files, ["configmap.yaml", "deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "README.md"]);
    let validate = |dir: &str| {
        let yamls: Vec<_> = std::fs::read_dir(p.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
            .collect();
        let out = std::process::Command::new("kubernetes-validate")
            .args(["--strict", "--kubernetes-version", "1.37.0"])
            .args(&yamls)
            .output()
            .expect("kubernetes-validate (make test-deps)");
        let report = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success() && !report.contains("ERROR"), "{report}");
        report
    };
    validate("k8s");
    let deployment = std::fs::read_to_string(p.join("k8s/deployment.yaml")).unwrap();
    assert!(deployment.contains("image: penguins-species:1") && deployment.contains("path: /v2/health/ready"));

    // The ConfigMap's settings are a deployment config the server starts with.
    let text = std::fs::read_to_string(p.join("k8s/configmap.yaml")).unwrap();
    let configmap: serde_json::Value =
        mlops_core::config::parse_yaml(&text, std::path::Path::new("configmap.yaml")).unwrap();
    let settings = p.write("container.yaml", configmap["data"]["deployment.yaml"].as_str().unwrap());
    let shown = p.mlops(&["--json", "registry", "show", "penguins-species"]).json();
    let artifact = p.join(shown["versions"][0]["artifact_path"].as_str().unwrap());
    let served = p.serve(&[
        "--config",
        settings.to_str().unwrap(),
        "--model",
        artifact.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--store",
        p.join("container.db").to_str().unwrap(),
    ]);
    assert_eq!(served.request("GET", "/v2/health/ready", "text/plain", "").0, 200);
    drop(served);

    // A canary: another version of the same model, next to the stable one.
    p.fails(&["deploy", "kubernetes", "--out", "k8s"], &["k8s: exists and is not empty", "--force"]);
    let canary_config =
        p.file_with("configs/deployment.yaml", "enabled: false\n    model: models", "enabled: true\n    model: models");
    let canary_args = ["deploy", "kubernetes", "--out", "canary", "--config", canary_config.to_str().unwrap()];
    p.fails(&canary_args, &["models:/penguins-species@challenger", "no alias `challenger`"]);
    assert!(p.mlops(&["registry", "register", "penguins-species", "--package", artifact.to_str().unwrap()]).success);
    assert!(p.mlops(&["registry", "alias", "penguins-species", "challenger", "2"]).success);
    let run = p.mlops(&canary_args);
    assert!(run.success, "{}", run.stderr);
    let canary = std::fs::read_to_string(p.join("canary/canary.yaml")).unwrap();
    assert!(canary.contains("image: penguins-species:2") && canary.contains("mlops.io/track: canary"), "{canary}");
    let report = validate("canary");
    assert!(report.contains("deployment/penguins-species-canary"), "{report}");

    // Bad settings name the file and the key; a retired version is refused; nothing is written.
    let bad = p.file_with("configs/deployment.yaml", "  replicas: 2", "  replicas: 0");
    p.fails(
        &["deploy", "kubernetes", "--out", "bad", "--config", bad.to_str().unwrap()],
        &["variant-deployment.yaml", "kubernetes.replicas", "at least 1"],
    );
    let bad = p.file_with("configs/deployment.yaml", "memory: 512Mi", "memory: lots");
    p.fails(
        &["deploy", "kubernetes", "--out", "bad", "--config", bad.to_str().unwrap()],
        &["kubernetes.resources.limits.memory", "\"lots\""],
    );
    assert!(p.mlops(&["registry", "retire", "penguins-species", "2"]).success);
    p.fails(
        &["deploy", "kubernetes", "--out", "bad", "--model", "models:/penguins-species/2"],
        &["version 2 is retired"],
    );
    assert!(!p.join("bad").exists());
}

/// `kill -9` of a deployed server: the router answers 503 (never 502) while nothing serves,
/// `deploy status` exits non-zero, and the router restarts the server with backoff; the history
/// records the crash and the restart, and the endpoint answers again.
#[test]
fn a_deployed_server_that_dies_is_restarted_and_the_crash_recorded() {
    use std::time::{Duration, Instant};
    let p = Project::new();
    let _stop = Undeploy(&p);
    let port = free_port().to_string();
    let endpoint = format!("127.0.0.1:{port}");
    let run = p.mlops(&["--quiet", "train", "--config", "configs/training-body-mass.yaml"]);
    assert!(run.success, "{}", run.stderr);
    let model = "models:/penguins-body-mass@champion";
    let deployed = p.mlops(&["--json", "deploy", "local", "--port", &port, "--model", model]);
    assert!(deployed.success, "{}", deployed.stdout);
    let first = deployed.json()["outcome"]["deployment"].clone();
    let pid = first["pid"].as_u64().unwrap();
    let status = p.mlops(&["--json", "deploy", "status"]);
    assert!(status.success, "{}", status.stdout);

    let killed = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    while process_runs(pid) {
        assert!(started.elapsed() < Duration::from_secs(10), "pid {pid} still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Until the router restarts it: 503 with Retry-After, never 502; then 200 again.
    let mut client = e2e::KeepAlive::new(&endpoint);
    let body = r#"{"dataframe_records": []}"#;
    let (mut unavailable, mut answered) = (0, false);
    let mut status_failed = false;
    while started.elapsed() < Duration::from_secs(60) {
        match client.post("/invocations", body) {
            Ok(a) if a.status == 503 => {
                assert!(a.header("retry-after").is_some(), "{:?}", a.headers);
                unavailable += 1;
                if !status_failed {
                    let status = p.mlops(&["deploy", "status"]);
                    status_failed |= !status.success;
                }
            }
            Ok(a) if a.status == 502 => panic!("502 while the server was down: {}", a.body),
            Ok(a) if a.header("x-mlops-deployment").is_some() && a.status != 503 => {
                let answer = p.mlops(&["--json", "deploy", "status"]).json();
                if answer["serving"][0]["deployment"]["pid"].as_u64() != Some(pid) {
                    answered = true;
                    break;
                }
            }
            Ok(_) | Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(answered, "the server was not restarted within a minute ({unavailable} answers were 503)");
    assert!(unavailable > 0, "no request met the crashed server");
    assert!(status_failed, "deploy status exited 0 while the server was down");
    let status = p.mlops(&["--json", "deploy", "status"]);
    assert!(status.success, "{}", status.stdout);
    let answer = status.json();
    let serving = &answer["serving"][0];
    assert_eq!((serving["ready"].as_bool(), serving["deployment"]["restarts"].as_u64()), (Some(true), Some(1)));
    let events: Vec<String> = answer["history"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["crashed", "restarted"], "{answer}");
    let text = p.mlops(&["deploy", "status"]);
    assert!(text.stdout.contains("crashed") && text.stdout.contains("1 restart(s)"), "{}", text.stdout);
}

/// Load with faults: 32 keep-alive connections for about a minute while the alias moves twice,
/// the prediction log's disk fills (a tmpfs when run as root, else a store made read-only), and
/// the server is sent SIGTERM: no request fails before the stop, every predicted row is written
/// to the log or counted as dropped, and the server exits cleanly.
#[test]
fn load_with_alias_moves_a_full_disk_and_sigterm_loses_nothing_unaccounted() {
    use std::io::BufRead;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    let p = Project::new();
    let run = p.mlops(&["--quiet", "train"]);
    assert!(run.success, "{}", run.stderr);
    let shown = p.mlops(&["--json", "registry", "show", "penguins-species"]).json();
    let artifact = shown["versions"][0]["artifact_path"].as_str().unwrap().to_string();
    for version in [2, 3] {
        let reg = p.mlops(&["--json", "registry", "register", "penguins-species", "--package", &artifact]);
        assert_eq!(reg.json()["version"], version, "{}", reg.stdout);
    }
    // The store (registry and prediction log) on a disk of its own.
    let disk = p.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let root = std::process::Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mounted = root
        && std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256m", "tmpfs", disk.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
    struct Unmount(Option<std::path::PathBuf>);
    impl Drop for Unmount {
        fn drop(&mut self) {
            if let Some(d) = &self.0 {
                let _ = std::process::Command::new("umount").arg("-l").arg(d).status();
            }
        }
    }
    let _unmount = Unmount(mounted.then(|| disk.clone()));
    let store = disk.join("registry.db");
    let conn = rusqlite::Connection::open(p.join("models/registry/registry.db")).unwrap();
    conn.execute("VACUUM INTO ?1", [store.to_str().unwrap()]).unwrap();
    drop(conn);
    std::fs::write(
        p.join("faults.yaml"),
        "model: models:/penguins-species@champion\nstore: disk/registry.db\nartifacts: models/artifacts\nserve:\n  poll_seconds: 1\n  shutdown_grace_seconds: 20\n",
    )
    .unwrap();
    let mut server = std::process::Command::new(e2e::mlops_bin())
        .args(["--json", "serve", "--port", "0", "--config", "faults.yaml"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(p.join("serve.err")).unwrap())
        .spawn()
        .unwrap();
    // A failing assertion must not leave the server running.
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let _kill = Kill(server.id().to_string());
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut text = String::new();
    while !text.ends_with("}\n") {
        assert!(out.read_line(&mut text).unwrap() > 0, "the server exited: {}", read(&p.join("serve.err")));
    }
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    let addr = info["url"].as_str().unwrap().trim_start_matches("http://").to_string();

    let body = std::fs::read_to_string(repo().join("docs/examples/invocations.json")).unwrap();
    let rows = serde_json::from_str::<serde_json::Value>(&body).unwrap()["dataframe_split"]["data"]
        .as_array()
        .map_or(0, Vec::len) as u64;
    assert!(rows > 0, "{body}");
    let stop = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicBool::new(false));
    let ok_rows = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (stop, terminated, ok_rows) = (stop.clone(), terminated.clone(), ok_rows.clone());
            let (addr, body) = (addr.clone(), body.clone());
            std::thread::spawn(move || {
                let mut client = e2e::KeepAlive::new(&addr);
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // Read before sending: a request that fails after the SIGTERM was sent is
                    // the stop's, not a failure.
                    let before_stop = !terminated.load(Ordering::SeqCst);
                    match client.post("/invocations", &body) {
                        Ok(a) if a.status == 200 => {
                            ok_rows.fetch_add(rows, Ordering::Relaxed);
                        }
                        Ok(a) if before_stop => failures.push(format!("{}: {}", a.status, a.body)),
                        Err(e) if before_stop => failures.push(e.to_string()),
                        _ => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                failures
            })
        })
        .collect();
    let started = Instant::now();
    let at = |secs: u64| {
        let wait = Duration::from_secs(secs).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
    };
    let store_arg = store.to_str().unwrap();
    for (secs, version) in [(10, "2"), (25, "3")] {
        at(secs);
        let moved = p.mlops(&["registry", "--store", store_arg, "alias", "penguins-species", "champion", version]);
        assert!(moved.success, "{}", moved.stderr);
    }
    // The disk fills: the rest of the tmpfs taken by a file (or, not as root, the store made
    // read-only to the server).
    at(35);
    if mounted {
        let mut filler = std::fs::File::create(disk.join("filler")).unwrap();
        let block = vec![0u8; 1 << 20];
        while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    } else {
        for suffix in ["", "-wal"] {
            let path = format!("{store_arg}{suffix}");
            let mut perms = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
            std::fs::set_permissions(&path, perms).unwrap();
        }
    }
    at(55);
    terminated.store(true, Ordering::SeqCst);
    let pid = server.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let err = read(&p.join("serve.err"));
    assert!(status.success(), "the server did not exit cleanly: {status:?}\n{err}");
    assert!(failures.is_empty(), "{} request(s) failed before the stop, e.g. {:?}", failures.len(), &failures[..1]);
    let stopped: serde_json::Value = serde_json::from_str(&rest).unwrap_or_else(|e| panic!("{e}: {rest:?}"));
    let s = &stopped["stopped"];
    let (predicted, written, dropped) =
        (s["predicted"].as_u64().unwrap(), s["log_written"].as_u64().unwrap(), s["log_dropped"].as_u64().unwrap());
    let answered = ok_rows.load(Ordering::Relaxed);
    eprintln!("load with faults (tmpfs: {mounted}): {answered} rows answered, {s}");
    assert_eq!(predicted, written + dropped, "every predicted row is logged or counted as dropped: {s}");
    // Requests already sent when the stop came were answered too: every predicted row reached
    // its client.
    assert!(answered == predicted && answered > 10_000, "{answered} rows answered, {predicted} predicted");
    assert!(dropped > 0 && written > 0, "the full disk dropped nothing? {s}");
    // What the log holds is what it says it wrote, from each of the three versions.
    let conn = rusqlite::Connection::open_with_flags(&store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let logged: i64 = conn.query_row("SELECT SUM(rows) FROM prediction_requests", [], |r| r.get(0)).unwrap();
    assert_eq!(logged as u64, written, "{s}");
    let versions: Vec<i64> = conn
        .prepare("SELECT DISTINCT model_version FROM prediction_requests ORDER BY 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [1, 2, 3], "the alias moved twice under load");
}

/// Random raw records (nulls, unseen categories, dates that do not parse, numbers far outside
/// the training range) take the same road one by one as in a frame: the champion's package gives
/// the same probabilities, bit for bit, on the row path the server uses and on the frame path of
/// batch inference and training evaluation.
#[test]
fn random_raw_records_score_the_same_one_by_one_and_in_a_frame() {
    use mlops_core::{DType, Row, Value};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let p = Project::new();
    let run = p.mlops(&["--quiet", "train"]);
    assert!(run.success, "{}", run.stderr);
    let registered = p.mlops(&["--json", "registry", "show", "models:/penguins-species@champion"]).json();
    let package = step16_package::load(&p.join(registered["artifact_path"].as_str().unwrap())).unwrap().contents;
    let inputs = package.signature.inputs.clone();
    let value = |c: &mlops_core::ColumnSchema| -> BoxedStrategy<Value> {
        let some = match c.dtype {
            DType::Float | DType::Int => {
                let (lo, hi) = c.range.unwrap_or((0.0, 1.0));
                let span = (hi - lo).max(1.0);
                let float = c.dtype == DType::Float;
                (lo - 2.0 * span..hi + 2.0 * span)
                    .prop_map(move |x| if float { Value::Float(x) } else { Value::Int(x.round() as i64) })
                    .boxed()
            }
            _ => {
                let mut texts: Vec<String> = c.categories.clone().unwrap_or_default();
                texts.extend(
                    ["2007-11-11", "2009-12-01", "not a date", "2031-02-29", "Unseen", " Biscoe", ""].map(String::from),
                );
                prop::sample::select(texts).prop_map(Value::Str).boxed()
            }
        };
        prop_oneof![1 => Just(Value::Null), 5 => some].boxed()
    };
    let row = inputs
        .iter()
        .map(|c| {
            value(c).prop_map({
                let name = c.name.clone();
                move |v| (name.clone(), v)
            })
        })
        .collect::<Vec<_>>()
        .prop_map(|cells| cells.into_iter().collect::<Row>());
    let columns: Vec<(String, DType)> = inputs.iter().map(|c| (c.name.clone(), c.dtype)).collect();
    let features = &package.info.features;
    let mut runner = TestRunner::new(Config { cases: 200, ..Config::default() });
    runner
        .run(&prop::collection::vec(row, 1..16), |rows| {
            let frame = mlops_core::frame::frame_from_rows(&rows, &columns).unwrap();
            let framed = package.pipeline.apply_frame(frame, mlops_core::frame::Stage::Inference);
            let mut one_by_one = rows.clone();
            let by_row = package.pipeline.transform_rows(&mut one_by_one);
            let framed = match (framed, by_row) {
                (Ok(f), Ok(())) => f,
                // Refused both ways (a value an operation raises on) is agreement too.
                (Err(_), Err(_)) => return Ok(()),
                (a, b) => return Err(TestCaseError::fail(format!("frame {:?} but rows {:?}", a.err(), b.err()))),
            };
            let x = mlops_core::frame::to_matrix(&framed, features).unwrap();
            let frame_proba = package.model.predict_proba(&x).unwrap().unwrap();
            for (i, r) in one_by_one.iter().enumerate() {
                let one = ndarray::Array2::from_shape_fn((1, features.len()), |(_, j)| {
                    r.get(&features[j]).and_then(Value::as_f64).unwrap_or(f64::NAN)
                });
                let proba = package.model.predict_proba(&one).unwrap().unwrap();
                prop_assert_eq!(bits(&proba), bits(&frame_proba[i..=i]), "row {}: {:?}", i, rows[i]);
            }
            Ok(())
        })
        .unwrap();
}

/// A data config that scales in `transform` (learned from every prepared row, the test part's
/// too) and fills per species (the target's column, which a served record does not carry) still
/// trains, and the training run's summary warns about both.
#[test]
fn prepare_ops_that_see_the_test_rows_or_read_the_target_are_warned_about() {
    let p = Project::new();
    let text = std::fs::read_to_string(p.join("configs/data.yaml")).unwrap();
    let text = text
        .replacen(
            "    drop_rows: {columns: [Body Mass (g)]}\n",
            "    drop_rows: {columns: [Body Mass (g)]}\n    fill:\n      Delta 15 N (o/oo): {group_median: {by: Species}}\n",
            1,
        )
        .replacen("      output: mass_class\n", "      output: mass_class\n  scale:\n    flipper_length_mm: standard\n", 1);
    p.write("configs/data.yaml", text);
    let run = p.mlops(&["--quiet", "train", "--json"]);
    assert!(run.success, "{}", run.stderr);
    let warnings: Vec<String> =
        run.json()["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
    assert!(
        warnings.iter().any(|w| w.contains("scale flipper_length_mm") && w.contains("learned from every prepared row")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("per Species") && w.contains("`Species`, which the target comes from")),
        "{warnings:?}"
    );
    let text = p.mlops(&["train"]);
    assert!(text.success && text.stdout.contains("warning: prepare:"), "{}", text.stdout);
}

/// A joined source of at most 100,000 rows is embedded in the prepare pipeline as a lookup (a
/// served record is joined too); over that its columns become columns the caller sends, recorded
/// with the source's own.
#[test]
fn a_joined_source_is_embedded_up_to_the_limit_and_sent_by_the_caller_over_it() {
    let pipeline_of = |p: &Project| -> serde_json::Value {
        let run = p.mlops(&["prepare"]);
        assert!(run.success, "{}", run.stderr);
        let version = version_of(&run.stdout);
        let text =
            std::fs::read_to_string(p.join(&format!("data/processed/penguins/{version}/pipeline.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let names = |pipeline: &serde_json::Value| -> Vec<String> {
        pipeline["source"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let small = Project::new();
    let pipeline = pipeline_of(&small);
    let lookups: Vec<&serde_json::Value> =
        pipeline["ops"].as_array().unwrap().iter().filter(|o| o["op"] == "lookup").collect();
    assert_eq!(lookups.len(), 1, "{pipeline}");
    assert_eq!(lookups[0]["outputs"], serde_json::json!(["latitude", "longitude", "archipelago"]));
    assert_eq!(lookups[0]["table"]["Dream"][0]["float"], -64.733);
    assert_eq!(pipeline["source"]["name"], "penguins");
    assert!(
        names(&pipeline).contains(&"Culmen Length (mm)".to_string())
            && !names(&pipeline).contains(&"latitude".to_string())
    );
    // The same islands and 100,000 more: too large to embed.
    let large = Project::new();
    let mut islands = std::fs::read_to_string(large.join("data/raw/islands.csv")).unwrap();
    for i in 0..100_000 {
        islands.push_str(&format!("Isle {i},-60.5,-61.5,Far Archipelago\n"));
    }
    large.write("data/raw/islands.csv", islands);
    let pipeline = pipeline_of(&large);
    assert!(pipeline["ops"].as_array().unwrap().iter().all(|o| o["op"] != "lookup"), "{}", pipeline["ops"]);
    let columns = names(&pipeline);
    assert!(["latitude", "longitude", "archipelago"].iter().all(|c| columns.contains(&c.to_string())), "{columns:?}");
}

#[test]
fn monitor_feedback_records_actuals_from_a_file_by_request_id_or_by_a_key_column() {
    let p = Project::new();
    let t = trained_champion(&p);
    let s = p.serve(&[]);
    let (status, answer) = s.post_json("/predict/batch", &serde_json::json!(t.records[..3]));
    assert_eq!(status, 200, "{answer}");
    let id = answer["request_id"].as_str().unwrap().to_string();
    // The log is written behind the answer.
    let store = p.join("models/registry/registry.db");
    let logged = || -> i64 {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.query_row("SELECT COALESCE(SUM(rows), 0) FROM prediction_requests", [], |r| r.get(0)).unwrap()
    };
    for _ in 0..300 {
        if logged() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(logged(), 3);
    p.write(
        "actuals.csv",
        format!("request_id,row,actual\n{id},0,{}\n{id},2,Gentoo\nnever-sent,0,Adelie\n", t.labels[0]),
    );
    let run = p.mlops(&["--json", "monitor", "feedback", "--input", "actuals.csv"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json(), serde_json::json!({ "recorded": 2, "replaced": 0, "unknown": 1, "unknown_lines": [4] }));
    let run = p.mlops(&["monitor", "feedback", "--input", "actuals.csv"]);
    assert!(
        run.stdout.contains("0 actual(s) recorded, 2 replaced an earlier one, 1 name no logged prediction"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("not recorded (lines 4)"), "{}", run.stdout);
    // By a key column of the inputs: each island's actual goes to its latest logged prediction.
    let island = t.records[0]["Island"].as_str().unwrap().to_string();
    p.write("by_key.csv", format!("Island,species\n{island},Adelie\nAtlantis,Adelie\n"));
    let by_key = ["monitor", "feedback", "--input", "by_key.csv", "--key", "Island", "--actual", "species"];
    p.fails(&by_key, &["--key needs --model"]);
    let run = p.mlops(&[&["--json"][..], &by_key[..], &["--model", "models:/penguins-species@champion"]].concat());
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json()["unknown_lines"], serde_json::json!([3]), "Atlantis was never sent");
    assert_eq!(run.json()["recorded"].as_u64().unwrap() + run.json()["replaced"].as_u64().unwrap(), 1);
    // Bad input is named and records nothing.
    p.fails(
        &["monitor", "feedback", "--input", "actuals.csv", "--actual", "label"],
        &["actuals.csv", "no column `label`", "request_id, row, actual"],
    );
    p.write("rows.csv", format!("request_id,row,actual\n{id},first,Adelie\n"));
    p.fails(&["monitor", "feedback", "--input", "rows.csv"], &["rows.csv, line 2", "`row` is `first`"]);
    p.fails(&["monitor", "feedback", "--input", "missing.csv"], &["missing.csv"]);
    p.fails(
        &["monitor", "--store", "no/such.db", "feedback", "--input", "actuals.csv"],
        &["no/such.db: no store there"],
    );
    let (ok, _) = s.terminate();
    assert!(ok);
}

/// A project with the shipped production batches, its champion trained, and a server.
fn monitored(p: &Project) -> e2e::Served {
    for f in ["clean.csv", "shifted.csv"] {
        p.write(&format!("data/production/{f}"), std::fs::read(repo().join("data/production").join(f)).unwrap());
    }
    let run = p.mlops(&["--quiet", "train"]);
    assert!(run.success, "{}", run.stderr);
    p.serve(&[])
}

fn instant() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Replays a batch with its labels; answers the window it took.
fn replay(p: &Project, s: &e2e::Served, batch: &str) -> (String, String) {
    let from = instant();
    let url = format!("http://{}", s.addr);
    let run = p.mlops(&["--json", "monitor", "replay", "--url", &url, "--input", batch, "--actual", "species"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json()["rows"], 200);
    assert_eq!(run.json()["feedback"], serde_json::json!({"recorded": 200, "replaced": 0, "unknown": 0}));
    (from, instant())
}

fn drifted(report: &serde_json::Value, part: &str) -> Vec<String> {
    report["monitor"][part]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["drifted"] == true)
        .map(|c| c["column"].as_str().unwrap().to_string())
        .collect()
}

fn transitions(report: &serde_json::Value) -> Vec<(String, String)> {
    report["monitor"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["transition"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn monitoring_finds_the_shifted_batch_and_not_the_clean_one_alerts_once_and_draws_every_panel() {
    let p = Project::new();
    let s = monitored(&p);
    let (t0, t1) = replay(&p, &s, "data/production/clean.csv");
    let (_, t2) = replay(&p, &s, "data/production/shifted.csv");

    let clean = p.mlops(&["--json", "monitor", "--check", "--from", &t0, "--to", &t1]);
    assert_eq!(clean.code, Some(0), "{}\n{}", clean.stdout, clean.stderr);
    let clean = clean.json();
    assert_eq!(clean["monitor"]["requests"], 13);
    assert_eq!(clean["monitor"]["rows"], 200);
    assert_eq!(clean["monitor"]["inputs"]["dataset_drift"], false);
    assert!(drifted(&clean, "inputs").len() <= 1, "{:?}", drifted(&clean, "inputs"));
    assert_eq!(clean["monitor"]["accuracy"]["labelled"], 200);
    assert!(transitions(&clean).is_empty());

    // The four shifted columns drift, the others do not; the two rules that hold fire, once.
    let run = p.mlops(&["--json", "monitor", "--check", "--from", &t1, "--to", &t2]);
    assert_eq!(run.code, Some(2), "a critical alert is open:\n{}\n{}", run.stdout, run.stderr);
    let shifted = run.json();
    assert_eq!(
        drifted(&shifted, "inputs"),
        ["Culmen Length (mm)", "Flipper Length (mm)", "Body Mass (g)", "Delta 15 N (o/oo)"]
    );
    assert_eq!(shifted["monitor"]["inputs"]["dataset_drift"], true);
    // The caller's columns against the package's reference rows (238 training rows traced back to
    // the source), the features against the whole training part taken again from the catalog.
    let reference = &shifted["monitor"]["reference"];
    assert_eq!(reference["inputs"], "package");
    assert!(reference["features"].as_str().unwrap().starts_with("catalog penguins@"), "{reference}");
    assert_eq!(reference["rows"], serde_json::json!([238, 238]));
    assert!(drifted(&shifted, "features").contains(&"flipper_length_mm".to_string()));
    let columns = shifted["monitor"]["inputs"]["columns"].as_array().unwrap();
    assert!(
        columns.iter().all(|c| c["method"] == "ks" || c["method"] == "chisquare"),
        "small reference: KS and chi-squared"
    );
    // Text the pipeline parses (the Yes/No of `Clutch Completion` into a flag) is compared among
    // the features, as `clutch_completion`.
    assert_eq!(shifted["monitor"]["inputs"]["skipped"][0][0], "Clutch Completion", "text parsed by the pipeline");
    let (accuracy, baseline) = (
        shifted["monitor"]["accuracy"]["overall"]["accuracy"].as_f64().unwrap(),
        shifted["monitor"]["baseline"]["accuracy"].as_f64().unwrap(),
    );
    assert!(accuracy < baseline, "{accuracy} vs {baseline}");
    let fired = |name: &str| (name.to_string(), "fired".to_string());
    assert_eq!(transitions(&shifted), [fired("dataset-drift"), fired("flipper-length-drift"), fired("accuracy-drop")]);
    let sink = p.join("logs/alerts.jsonl");
    assert_eq!(std::fs::read_to_string(&sink).unwrap().lines().count(), 3);
    // Again: still open, nothing sent again.
    let again = p.mlops(&["--json", "monitor", "--check", "--from", &t1, "--to", &t2]);
    assert_eq!(again.code, Some(2));
    assert!(transitions(&again.json()).iter().all(|(_, t)| t == "still_open"), "{:?}", transitions(&again.json()));
    assert_eq!(std::fs::read_to_string(&sink).unwrap().lines().count(), 3);
    // The clean window again: both resolved.
    let back = p.mlops(&["--json", "monitor", "--check", "--from", &t0, "--to", &t1]);
    assert_eq!(back.code, Some(0));
    assert!(transitions(&back.json()).iter().all(|(_, t)| t == "resolved"));
    assert_eq!(std::fs::read_to_string(&sink).unwrap().lines().count(), 6);

    // The dashboard: every panel, the drift tables with a histogram per column, the alerts.
    let html = std::fs::read_to_string(shifted["report"].as_str().map(|r| p.join(r)).unwrap()).unwrap();
    for id in ["summary", "volume", "accuracy", "distribution", "latency", "drift", "features", "quality", "alerts"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "no {id} panel");
    }
    for panel in [
        "Prediction volume: rows per",
        "Accuracy over time: labelled predictions per",
        "Prediction distribution",
        "Response time per",
    ] {
        assert!(html.contains(panel), "no chart {panel:?}");
    }
    assert!(html.matches("<svg").count() >= 4 + 7, "four charts and a histogram per compared column");
    assert!(html.contains("<title>Flipper Length (mm) "), "histogram bars have tooltips");
    assert!(html.contains("dataset-drift") && html.contains("the dataset drifted: 4 of 7 columns"));
    // A real browser renders it.
    let page = p.join(shifted["report"].as_str().unwrap());
    let shot = p.join("dashboard.png");
    let rendered = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,3000"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output();
    match rendered {
        Ok(_) => {
            let png = std::fs::read(&shot).unwrap_or_default();
            assert!(png.starts_with(b"\x89PNG") && png.len() > 50_000, "chromium drew {} bytes", png.len());
        }
        Err(_) => assert!(std::env::var_os("CI").is_none(), "chromium is installed in CI (.ci/run)"),
    }
    let twin: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shifted["json"].as_str().map(|r| p.join(r)).unwrap()).unwrap())
            .unwrap();
    assert_eq!(twin["inputs"], shifted["monitor"]["inputs"]);

    // A refused request counts in the error rate and against its column.
    let t3 = instant();
    let mut bad = serde_json::json!(t0_record(&p));
    bad["Culmen Length (mm)"] = serde_json::json!("long");
    let (status, _) = s.post_json("/predict/batch", &serde_json::json!([bad]));
    assert_eq!(status, 400);
    let (status, _) = s.post_json("/predict/batch", &serde_json::json!([t0_record(&p)]));
    assert_eq!(status, 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let errors = p.mlops(&["--json", "monitor", "--from", &t3, "--to", &instant()]).json();
    assert_eq!(errors["monitor"]["health"]["error_rate"], 0.5);
    let quality = errors["monitor"]["quality"].as_array().unwrap();
    let culmen = quality.iter().find(|q| q["column"] == "Culmen Length (mm)").unwrap();
    assert_eq!(culmen["rejected"], 1);
    let (ok, _) = s.terminate();
    assert!(ok);
}

/// The first row of the clean batch as a record, without its label.
fn t0_record(p: &Project) -> serde_json::Value {
    let text = std::fs::read_to_string(p.join("data/production/clean.csv")).unwrap();
    let mut reader = csv_reader(&text);
    let header: Vec<String> = reader.0.clone();
    let row = &reader.1.remove(0);
    let mut record = serde_json::Map::new();
    for (h, v) in header.iter().zip(row) {
        if h == "species" {
            continue;
        }
        let value = match (v.parse::<i64>(), v.parse::<f64>()) {
            (Ok(i), _) => serde_json::json!(i),
            (_, Ok(f)) => serde_json::json!(f),
            _ => serde_json::json!(v),
        };
        record.insert(h.clone(), if v == "NA" { serde_json::Value::Null } else { value });
    }
    serde_json::Value::Object(record)
}

/// A CSV text's header and rows (quoted cells with commas allowed).
fn csv_reader(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let split = |line: &str| -> Vec<String> {
        let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => cells.push(std::mem::take(&mut cell)),
                c => cell.push(c),
            }
        }
        cells.push(cell);
        cells
    };
    let mut lines = text.lines();
    let header = split(lines.next().unwrap());
    (header, lines.map(split).collect())
}

#[test]
fn the_lifecycle_retrains_on_drift_gates_the_challenger_rolls_back_and_refuses_what_it_must() {
    let p = Project::new();
    p.edit("configs/lifecycle.yaml", "  data: {window: {rows: 150}}", "  data: sources");
    let s = monitored(&p);
    // Nothing logged yet: no trigger holds, nothing changes.
    let quiet = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(quiet.code, Some(0), "{}\n{}", quiet.stdout, quiet.stderr);
    assert_eq!(quiet.json()["outcome"], "nothing_due");
    replay(&p, &s, "data/production/shifted.csv");

    // Drift: retrained through the training config, registered as the challenger, gated on the
    // window's labelled rows the retraining did not see. The same sources make the same model:
    // the gate keeps the champion (exit 2) and says why (no win, or, when the held-out rows the
    // random request ids pick cost it that much, select_best's accuracy floor).
    let run = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["outcome"], "kept");
    assert!(r["triggers"].as_array().unwrap().iter().any(|t| t["kind"] == "dataset_drift"), "{}", r["triggers"]);
    assert_eq!(r["facts"]["dataset_drift"], true);
    assert_eq!(r["facts"]["new_labelled_rows"], 200);
    let challenger = r["retrained"]["version"].as_u64().unwrap();
    assert_eq!(challenger, 2, "{r}");
    assert_eq!(r["gate"]["passed"], false);
    assert_eq!(r["gate"]["champion"], r["gate"]["challenger"], "the same model scores the same");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("version 2 does not beat version 1") || reason.contains("is under the floor 0.8"),
        "{reason}"
    );
    // The training run is a child of the lifecycle's run.
    let runs = p.mlops(&["--json", "runs", "list"]).json();
    let all = runs.as_array().or_else(|| runs["runs"].as_array()).unwrap();
    let training_run = r["retrained"]["run_id"].as_str().unwrap();
    let child = all.iter().find(|run| run["id"] == training_run).unwrap();
    let parent = all.iter().find(|run| run["id"] == child["info"]["parent"]).expect("the training run has a parent");
    assert_eq!(parent["info"]["name"], "lifecycle");
    assert_eq!(parent["info"]["experiment"], "lifecycle-penguins-species");

    let status = p.mlops(&["--json", "lifecycle", "status"]).json();
    assert_eq!((status["champion"].as_u64(), status["challenger"].as_u64()), (Some(1), Some(2)));
    assert_eq!(status["versions_total"], 2);
    assert_eq!(status["last_run"]["outcome"], "kept");
    assert!(status["next_retraining"].as_str().is_some(), "the policy retrains every 30 days");
    // The same facts again: no second retraining of the same data.
    let again = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(again.code, Some(2));
    assert!(again.json()["reason"].as_str().unwrap().contains("not retraining again"));
    assert_eq!(p.mlops(&["--json", "lifecycle", "status"]).json()["versions_total"], 2);

    // A second run while one holds the lock: refused with its own exit code, nothing changed.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p.join("models/registry/registry.db.lifecycle.lock"))
        .unwrap();
    lock.lock().unwrap();
    let locked = p.mlops(&["lifecycle", "run"]);
    assert_eq!(locked.code, Some(4), "{}", locked.stderr);
    assert!(locked.stderr.contains("another lifecycle run holds the lock"), "{}", locked.stderr);
    drop(lock);

    // The schedule: when each trigger falls due, and a crontab line.
    let schedule = p.mlops(&["--json", "lifecycle", "schedule", "--cron", "15 3 * * *"]);
    assert!(schedule.success, "{}", schedule.stderr);
    let schedule = schedule.json();
    let crontab = schedule["crontab"].as_str().unwrap();
    assert!(crontab.starts_with("15 3 * * * cd "), "{crontab}");
    assert!(crontab.contains("lifecycle --config configs/lifecycle.yaml run penguins-species"), "{crontab}");
    assert!(schedule["triggers"]["max_age_days"].as_str().unwrap().starts_with("due "), "{}", schedule["triggers"]);
    p.fails(&["lifecycle", "schedule", "--cron", "hourly"], &["--cron `hourly`", "5 fields"]);

    // Retraining data that is gone: the retraining fails naming the file, the champion stays.
    let raw = p.join("data/raw/penguins-raw.csv");
    let kept_aside = std::fs::read(&raw).unwrap();
    std::fs::remove_file(&raw).unwrap();
    replay(&p, &s, "data/production/clean.csv");
    let missing = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(missing.code, Some(3), "{}\n{}", missing.stdout, missing.stderr);
    let missing = missing.json();
    assert_eq!(missing["outcome"], "retrain_failed");
    assert!(missing["reason"].as_str().unwrap().contains("penguins-raw.csv"), "{}", missing["reason"]);
    assert_eq!(missing["champion"], serde_json::json!([1, 1]));
    std::fs::write(&raw, kept_aside).unwrap();

    // Refusals, each named.
    p.fails(
        &["lifecycle", "retire", "penguins-species", "1", "--reason", "x"],
        &["holds the alias(es) champion", "never retired"],
    );
    p.fails(&["lifecycle", "rollback", "--reason", "x"], &["`champion` never pointed at another version"]);
    p.fails(&["lifecycle", "status", "nobody"], &["no registered model `nobody`"]);
    p.fails(&["lifecycle", "--store", "models/nowhere.db", "status"], &["models/nowhere.db: no store there"]);
    p.fails(&["train", "--register-as", "Bad Alias"], &["--register-as Bad Alias"]);
    p.write("configs/bad-lifecycle.yaml", "model: penguins-species\ngate:\n  margin: -1\n");
    p.fails(
        &["lifecycle", "--config", "configs/bad-lifecycle.yaml", "status"],
        &["bad-lifecycle.yaml: line 3", "gate.margin"],
    );
    p.write("configs/bad-lifecycle.yaml", "triggers: {max_age: 3}\n");
    p.fails(&["lifecycle", "--config", "configs/bad-lifecycle.yaml", "status"], &["line 1", "max_age"]);

    // Promoted by hand, then rolled back: the alias returns to version 1 with the reason audited.
    assert!(p.mlops(&["registry", "alias", "penguins-species", "champion", "2"]).success);
    let back = p.mlops(&["--json", "lifecycle", "rollback", "--reason", "answers got worse"]);
    assert!(back.success, "{}", back.stderr);
    assert_eq!((back.json()["from"].as_u64(), back.json()["to"].as_u64()), (Some(2), Some(1)));
    let history = p.mlops(&["--json", "registry", "history", "penguins-species"]).json();
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["reason"].as_str()),
        (Some("alias"), Some("rollback: answers got worse"))
    );
    // Retiring the challenger by hand once its alias is gone.
    assert!(p.mlops(&["registry", "alias", "penguins-species", "challenger", "--delete"]).success);
    let retired = p.mlops(&["--json", "lifecycle", "retire", "penguins-species", "2", "--reason", "superseded"]);
    assert!(retired.success, "{}", retired.stderr);
    let status = p.mlops(&["--json", "lifecycle", "status"]).json();
    assert_eq!((status["versions_active"].as_u64(), status["versions_retired"].as_u64()), (Some(1), Some(1)));
    drop(s);
}

/// The version `mlops serve` answers with, once it is `want` (it checks its alias every second
/// here); panics after 20 s.
fn wait_for_version(s: &e2e::Served, want: u64) {
    let started = std::time::Instant::now();
    loop {
        let (_, body) = s.request("GET", "/health", "application/json", "");
        let version = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|h| h["version"].as_u64());
        if version == Some(want) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the server still serves {version:?}, not {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_challenger_retrained_on_the_new_season_wins_the_gate_and_the_server_follows_the_alias() {
    let p = Project::new();
    // The new season's edits, and a server that checks its alias every second.
    p.edit("configs/deployment.yaml", "poll_seconds: 10", "poll_seconds: 1");
    let s = monitored(&p);
    replay(&p, &s, "data/production/shifted.csv");

    let run = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["outcome"], "promoted", "{}", r["reason"]);
    assert_eq!(r["champion"], serde_json::json!([1, 2]));
    let kinds: Vec<&str> = r["triggers"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["dataset_drift", "performance_drop"], "the shift costs the champion accuracy too");
    let (champion, challenger) = (r["gate"]["champion"].as_f64().unwrap(), r["gate"]["challenger"].as_f64().unwrap());
    assert!(challenger > champion, "{challenger} vs {champion}");
    let data = r["retrained"]["data"].as_str().unwrap();
    assert!(data.starts_with("150 rows") && data.contains("labels in `Species`"), "{data}");
    // The retraining's data: the newest 150 rows, the labelled ones with their species put back
    // in the source's terms, none of the gate's rows among them.
    let dir = p.join("data/interim/lifecycle");
    let run_dir = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let primary = {
        use polars::prelude::SerReader;
        let file = std::fs::File::open(run_dir.join("primary.parquet")).unwrap();
        polars::prelude::ParquetReader::new(file).finish().unwrap()
    };
    assert_eq!(primary.height(), 150);
    let species = primary.column("Species").unwrap().str().unwrap();
    assert!(species.iter().flatten().all(|v| v.contains("Pygoscelis")), "labels in the source's own form");
    let registry = p.mlops(&["--json", "registry", "history", "penguins-species"]).json();
    let moved = registry.as_array().unwrap().iter().rfind(|h| h["action"] == "alias" && h["new_value"] == "champion=2");
    assert!(moved.unwrap()["reason"].as_str().unwrap().contains("version 2 beats version 1"), "{moved:?}");

    // The running server follows the alias, and back after a rollback.
    wait_for_version(&s, 2);
    let (status, answer) = s.post_json("/predict", &serde_json::json!(t0_record(&p)));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model_version"], 2);
    let back = p.mlops(&["--json", "lifecycle", "rollback", "--reason", "checking the new season by hand"]);
    assert!(back.success, "{}", back.stderr);
    // The rollback is not gated, but it names the inputs version 1 requires that version 2's
    // callers may leave out.
    let (one, two) = (signature_of(&p, 1), signature_of(&p, 2));
    let newly: Vec<&String> =
        one.iter().filter(|(c, nullable)| !**nullable && two.get(*c).is_none_or(|n| *n)).map(|(c, _)| c).collect();
    let warnings = back.json()["warnings"].clone();
    assert_eq!(warnings.as_array().unwrap().len(), usize::from(!newly.is_empty()), "{warnings}");
    for c in newly {
        assert!(warnings[0].as_str().unwrap().contains(&format!("`{c}`")), "{c} not in {warnings}");
    }
    wait_for_version(&s, 1);

    drop(s);
}

/// The closed loop of issue 27: train, deploy on this machine, send a shifted batch with its
/// labels while clients keep the endpoint busy, monitor (alerts open), and `lifecycle run`
/// retrains on the new rows, the gate passes, the alias moves and the endpoint serves the new
/// version without a failed request; a rollback goes back the same way; a rerun on the same
/// facts does nothing; retention retires the oldest version; `lifecycle status` shows each state.
#[test]
fn the_closed_loop_from_monitoring_back_to_the_deployed_endpoint() {
    let p = Project::new();
    let _stop = Undeploy(&p);
    for f in ["clean.csv", "shifted.csv"] {
        p.write(&format!("data/production/{f}"), std::fs::read(repo().join("data/production").join(f)).unwrap());
    }
    let port = free_port().to_string();
    let endpoint = format!("127.0.0.1:{port}");
    assert!(p.mlops(&["--quiet", "train"]).success);
    let deployed = p.mlops(&["--json", "deploy", "local", "--port", &port]);
    assert!(deployed.success, "{}", deployed.stdout);
    let first = deployed.json()["outcome"]["deployment"]["id"].to_string();
    let status = |field: &str| p.mlops(&["--json", "lifecycle", "status"]).json()[field].clone();
    assert_eq!((status("champion"), status("challenger")), (serde_json::json!(1), serde_json::Value::Null));

    // Clients keep the endpoint busy from here to the end of the switch.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = busy_clients(&endpoint, 2, &stop);

    // The shifted batch and its labels; monitoring opens its alerts.
    let from = instant();
    let url = format!("http://{endpoint}");
    let replayed = p.mlops(&[
        "--json",
        "monitor",
        "replay",
        "--url",
        &url,
        "--input",
        "data/production/shifted.csv",
        "--actual",
        "species",
    ]);
    assert!(replayed.success, "{}", replayed.stderr);
    let monitored = p.mlops(&["--json", "monitor", "--check", "--from", &from]);
    assert_eq!(monitored.code, Some(2), "critical alerts open: {}", monitored.stderr);

    // The lifecycle closes the loop.
    let run = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(
        (r["outcome"].as_str(), r["champion"].clone()),
        (Some("promoted"), serde_json::json!([1, 2])),
        "{}",
        r["reason"]
    );
    assert_eq!(r["deployments"][0]["endpoint"], endpoint.as_str());
    assert_eq!(r["deployments"][0]["error"], serde_json::Value::Null);
    let serving = p.mlops(&["--json", "deploy", "status"]).json();
    assert_eq!(serving["serving"][0]["deployment"]["version"], 2);
    let second = serving["serving"][0]["deployment"]["id"].to_string();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        let (seen, failures) = client.join().unwrap();
        assert!(failures.is_empty(), "{} failed requests, first: {:?}", failures.len(), failures.first());
        let switch = seen.iter().position(|d| *d == second).expect("never answered by the new version");
        assert!(seen[..switch].iter().all(|d| *d == first) && seen[switch..].iter().all(|d| *d == second));
    }
    assert_eq!(
        (status("champion"), status("last_run")["outcome"].clone()),
        (serde_json::json!(2), serde_json::json!("promoted"))
    );

    // A rollback: the alias and the endpoint go back to version 1; the same facts again do not
    // undo it.
    let back = p.mlops(&["--json", "lifecycle", "rollback", "--reason", "a bad week"]);
    assert!(back.success, "{}", back.stdout);
    assert_eq!(back.json()["deployments"][0]["to"], 1);
    assert_eq!(p.mlops(&["--json", "deploy", "status"]).json()["serving"][0]["deployment"]["version"], 1);
    assert_eq!(status("champion"), 1);
    let again = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(again.code, Some(2), "{}", again.stdout);
    assert!(again.json()["reason"].as_str().unwrap().contains("rolled back since"), "{}", again.json()["reason"]);
    assert_eq!(status("versions_total"), 2, "nothing retrained");

    // Forward again (a rollback of the rollback), then retention keeps one version: the oldest,
    // no longer served or aliased, is retired.
    assert!(p.mlops(&["lifecycle", "rollback", "--reason", "the new season it is"]).success);
    assert_eq!(p.mlops(&["--json", "deploy", "status"]).json()["serving"][0]["deployment"]["version"], 2);
    let keep_one = std::fs::read_to_string(p.join("configs/lifecycle.yaml"))
        .unwrap()
        .replace("  dataset_drift: true", "  dataset_drift: false")
        .replace(
            "  performance_drop: {metric: accuracy, more_than: 0.05}   # the workflow seed's threshold",
            "  performance_drop: null",
        )
        .replace("  keep_last: 5", "  keep_last: 1");
    p.write("configs/lifecycle-keep-one.yaml", keep_one);
    let kept = p.mlops(&["--json", "lifecycle", "--config", "configs/lifecycle-keep-one.yaml", "run"]);
    assert_eq!(kept.code, Some(0), "{}\n{}", kept.stdout, kept.stderr);
    let kept = kept.json();
    assert_eq!(kept["outcome"], "nothing_due", "{}", kept["reason"]);
    assert_eq!(
        (kept["retention"][0]["action"].as_str(), kept["retention"][0]["version"].as_u64()),
        (Some("retire"), Some(1))
    );
    assert_eq!((status("versions_active"), status("versions_retired")), (serde_json::json!(1), serde_json::json!(1)));
}

/// `mlops train` processes a lifecycle run started in this project that still run (a killed
/// lifecycle run leaves its retraining running, as a shell's `kill -9` would).
fn trainings_running(p: &Project) -> usize {
    let dir = p.path().canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == dir))
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("--register-as"))
        })
        .count()
}

/// Every alias of the model points at an active version whose stored package verifies.
fn registry_is_whole(p: &Project) {
    let shown = p.mlops(&["--json", "registry", "show", "penguins-species"]);
    assert!(shown.success, "{}", shown.stderr);
    for v in shown.json()["versions"].as_array().unwrap() {
        if v["aliases"].as_array().is_some_and(|a| !a.is_empty()) {
            assert_eq!(v["status"], "active", "an alias on a version that is not active: {v}");
            let inspected = p.mlops(&["package", "inspect", v["artifact_path"].as_str().unwrap()]);
            assert!(
                inspected.success,
                "version {} behind an alias does not verify: {}",
                v["version"], inspected.stderr
            );
        }
    }
}

/// Two `lifecycle run` at once: one works, the other reports the lock (exit 4) and registers
/// nothing. `kill -9` at any moment leaves the registry whole, frees the lock, and the next run
/// completes.
#[test]
fn two_lifecycle_runs_at_once_and_a_kill_at_any_moment_leave_the_registry_whole() {
    let p = Project::new();
    let s = monitored(&p);
    replay(&p, &s, "data/production/shifted.csv");

    let start = || {
        std::process::Command::new(e2e::mlops_bin())
            .args(["--json", "lifecycle", "run"])
            .current_dir(p.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(codes[1], Some(4), "one of them reports the lock: {codes:?}");
    assert!(matches!(codes[0], Some(0 | 2)), "the other decides: {codes:?}\n{}", String::from_utf8_lossy(&a.stdout));
    let locked = if a.status.code() == Some(4) { &a } else { &b };
    assert!(String::from_utf8_lossy(&locked.stdout).contains("another lifecycle run holds the lock"));
    assert_eq!(p.mlops(&["--json", "lifecycle", "status"]).json()["versions_total"], 2, "one retraining");

    // Killed at any moment: before the facts, while monitoring, while retraining, while gating.
    for (i, after_ms) in [30u64, 250, 700, 1500, 2500].into_iter().enumerate() {
        // New labelled rows make each run retrain.
        replay(&p, &s, if i % 2 == 0 { "data/production/clean.csv" } else { "data/production/shifted.csv" });
        let mut run = start();
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        run.kill().unwrap();
        run.wait().unwrap();
        registry_is_whole(&p);
        // The kernel freed the lock with the process.
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(p.join("models/registry/registry.db.lifecycle.lock"))
            .unwrap();
        assert!(lock.try_lock().is_ok(), "the lock outlived the killed run (after {after_ms} ms)");
        drop(lock);
        // A retraining the kill orphaned finishes on its own; then the registry is still whole.
        let waited = std::time::Instant::now();
        while trainings_running(&p) > 0 {
            assert!(waited.elapsed() < std::time::Duration::from_secs(60), "an orphaned retraining never ended");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        registry_is_whole(&p);
    }
    let last = p.mlops(&["--json", "lifecycle", "run"]);
    assert!(matches!(last.code, Some(0 | 2)), "{}\n{}", last.stdout, last.stderr);
    registry_is_whole(&p);
    drop(s);
}

/// A shadow period: the retrained challenger is not gated at once; the server scores it beside
/// the champion on live traffic (both logged, only the champion answers), and the next run gates
/// it on those logged predictions with their feedback.
#[test]
fn a_challenger_that_needs_a_column_the_callers_do_not_send_is_kept_out() {
    let p = Project::new();
    p.edit("configs/lifecycle.yaml", "  holdout: 0.3", "  holdout: 0.3\n  shadow_minutes: 0");
    let s = monitored(&p);
    replay(&p, &s, "data/production/shifted.csv");
    let champion = signature_of(&p, 1);
    assert!(!champion.contains_key("Date Egg"), "the champion takes no `Date Egg`: {champion:?}");

    // A challenger registered by hand, from a config that keeps every feature (the egg dates'
    // too): it requires `Date Egg`, which the champion's callers were never asked for.
    let every =
        p.file_with("configs/training.yaml", "k_best: {k: 15, score: anova_f}", "k_best: {k: 200, score: anova_f}");
    let train = p.mlops(&["--quiet", "train", "--config", every.to_str().unwrap(), "--register-as", "challenger"]);
    assert!(train.success, "{}", train.stderr);
    assert_eq!(signature_of(&p, 2).get("Date Egg"), Some(&false), "the challenger requires `Date Egg`");

    let run = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(run.code, Some(2), "kept: {}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["outcome"], "kept", "{}", report["reason"]);
    let reason = report["reason"].as_str().unwrap();
    for part in ["version 2 would refuse", "`Date Egg` in", "gate.allow_new_refusals"] {
        assert!(reason.contains(part), "{part:?} not in {reason}");
    }
    assert_eq!(report["champion"], serde_json::json!([1, 1]));
    // The server still answers with the champion, the challenger's alias is gone with its period.
    let (status, answer) = s.post_json("/predict", &serde_json::json!(t0_record(&p)));
    assert_eq!((status, answer["model_version"].as_u64()), (200, Some(1)), "{answer}");
    let history = p.mlops(&["registry", "history", "penguins-species"]);
    assert!(!history.stdout.contains("champion=2"), "{}", history.stdout);

    // Allowed by the policy (a coordinated change of what callers send), the same challenger,
    // registered again, is gated on its score.
    p.edit("configs/lifecycle.yaml", "  shadow_minutes: 0", "  shadow_minutes: 0\n  allow_new_refusals: true");
    let again = p.mlops(&["--quiet", "registry", "alias", "penguins-species", "challenger", "2"]);
    assert!(again.success, "{}", again.stderr);
    let run = p.mlops(&["--json", "lifecycle", "run"]);
    let reason = run.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(!reason.contains("would refuse"), "{reason}");
    drop(s);
}

/// Version `v`'s inputs and whether each may be left out, from its package's signature.
fn signature_of(p: &Project, v: u32) -> std::collections::BTreeMap<String, bool> {
    let shown = p.mlops(&["--json", "registry", "show", &format!("models:/penguins-species/{v}")]);
    assert!(shown.success, "{}", shown.stderr);
    let path = p.join(shown.json()["artifact_path"].as_str().unwrap()).join("signature.json");
    let signature: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    signature["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["nullable"].as_bool().unwrap_or(false)))
        .collect()
}

#[test]
fn a_challenger_in_its_shadow_period_is_scored_on_live_traffic_and_gated_on_it() {
    let p = Project::new();
    p.edit("configs/lifecycle.yaml", "  holdout: 0.3", "  holdout: 0.3\n  shadow_minutes: 0");
    p.edit("configs/deployment.yaml", "poll_seconds: 10", "poll_seconds: 1\n  shadow_alias: challenger");
    let s = monitored(&p);
    replay(&p, &s, "data/production/shifted.csv");

    let first = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(first.code, Some(0), "{}\n{}", first.stdout, first.stderr);
    let first = first.json();
    assert_eq!(first["outcome"], "shadowing", "{}", first["reason"]);
    assert_eq!(first["champion"], serde_json::json!([1, 1]));
    assert_eq!(first["retrained"]["version"], 2);

    // The server picks the challenger up as its shadow; the champion keeps answering.
    let store = rusqlite::Connection::open(p.join("models/registry/registry.db")).unwrap();
    let shadow_rows = || -> i64 {
        store
            .query_row(
                "SELECT COALESCE(SUM(rows), 0) FROM prediction_requests WHERE route = 'shadow' AND model_version = 2",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let waited = std::time::Instant::now();
    loop {
        let (status, answer) = s.post_json("/predict", &serde_json::json!(t0_record(&p)));
        assert_eq!((status, answer["model_version"].as_u64()), (200, Some(1)), "only the champion answers: {answer}");
        std::thread::sleep(std::time::Duration::from_millis(300));
        if shadow_rows() > 0 {
            break;
        }
        assert!(waited.elapsed() < std::time::Duration::from_secs(20), "the server never scored the shadow");
    }
    replay(&p, &s, "data/production/shifted.csv");
    let waited = std::time::Instant::now();
    while shadow_rows() < 201 {
        assert!(waited.elapsed() < std::time::Duration::from_secs(20), "{} shadow rows logged", shadow_rows());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The period (0 minutes here) is over: gated on what the server logged for each.
    let second = p.mlops(&["--json", "lifecycle", "run"]);
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    let second = second.json();
    assert_eq!(second["outcome"], "promoted", "{}", second["reason"]);
    assert!(
        second["reason"].as_str().unwrap().starts_with("after its shadow period: version 2 beats version 1"),
        "{}",
        second["reason"]
    );
    assert!(second["gate"]["challenger"].as_f64().unwrap() > second["gate"]["champion"].as_f64().unwrap());
    wait_for_version(&s, 2);
    drop(s);
}

#[test]
fn monitoring_names_bad_input_and_keeps_its_exit_codes() {
    let p = Project::new();
    let s = monitored(&p);
    let (t0, t1) = replay(&p, &s, "data/production/shifted.csv");
    // An unknown model or alias; with --check the run's own failure is 3, not an alert's code.
    p.fails(&["monitor", "--model", "models:/penguins-species@nobody"], &["nobody"]);
    p.fails(&["monitor", "--model", "models:/no-such-model/1"], &["no-such-model"]);
    let run = p.mlops(&["monitor", "--check", "--model", "models:/no-such-model/1"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    // A window: reversed, not an instant, a bad span.
    p.fails(&["monitor", "--from", &t1, "--to", &t0], &["--to", "is not after `from`"]);
    p.fails(&["monitor", "--from", "yesterday"], &["--from", "`yesterday`", "RFC 3339"]);
    p.fails(&["monitor", "--last", "3 fortnights"], &["--last", "3 fortnights"]);
    // A malformed config: the file, the key and the line.
    let bad = p.file_with("configs/monitoring.yaml", "share: 0.5", "share: 1.5");
    p.fails(&["monitor", "--config", bad.to_str().unwrap()], &["variant-monitoring.yaml", "drift.share"]);
    let bad = p.file_with("configs/monitoring.yaml", "severity: critical}", "severity: urgent}");
    p.fails(&["monitor", "--config", bad.to_str().unwrap()], &["variant-monitoring.yaml", "line", "urgent"]);
    p.fails(&["monitor", "--config", "configs/none.yaml"], &["configs/none.yaml"]);
    // replay: a missing file, a missing label column, no rows per request, a server not there.
    let url = format!("http://{}", s.addr);
    let replay = ["monitor", "replay", "--url", url.as_str(), "--input"];
    p.fails(&[&replay[..], &["data/production/none.csv"]].concat(), &["data/production/none.csv"]);
    p.fails(
        &[&replay[..], &["data/production/clean.csv", "--actual", "label"]].concat(),
        &["clean.csv", "--actual", "label"],
    );
    p.fails(
        &[&replay[..], &["data/production/clean.csv", "--rows-per-request", "0"]].concat(),
        &["--rows-per-request"],
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    p.fails(
        &["monitor", "replay", "--url", &format!("http://127.0.0.1:{closed}"), "--input", "data/production/clean.csv"],
        &[&format!("http://127.0.0.1:{closed}/predict/batch")],
    );
    // drift between two files: the shifted columns drift; bad input is named.
    let run = p.mlops(&[
        "--json",
        "monitor",
        "drift",
        "--reference",
        "data/production/clean.csv",
        "--current",
        "data/production/shifted.csv",
    ]);
    assert!(run.success, "{}", run.stderr);
    let drifted: Vec<String> = run.json()["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["drifted"] == true)
        .map(|c| c["column"].as_str().unwrap().to_string())
        .collect();
    for c in ["Culmen Length (mm)", "Flipper Length (mm)", "Body Mass (g)", "Delta 15 N (o/oo)"] {
        assert!(drifted.contains(&c.to_string()), "{c} in {drifted:?}");
    }
    assert!(!drifted.contains(&"Culmen Depth (mm)".to_string()), "{drifted:?}");
    let drift = ["monitor", "drift", "--reference", "data/production/clean.csv", "--current"];
    p.fails(&[&drift[..], &["data/production/none.csv"]].concat(), &["data/production/none.csv"]);
    p.fails(&[&drift[..], &["data/production/shifted.csv", "--method", "magic"]].concat(), &["--method", "`magic`"]);
    // export-rules for a model that is not there.
    p.fails(&["monitor", "--model", "models:/no-such-model@champion", "export-rules"], &["no-such-model"]);
    // A window without predictions: the report says so, nothing drifts, exit 0.
    let empty =
        p.mlops(&["--json", "monitor", "--check", "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-02T00:00:00Z"]);
    assert_eq!(empty.code, Some(0), "{}", empty.stderr);
    assert_eq!(empty.json()["monitor"]["requests"], 0);
    assert!(empty.json()["monitor"]["notes"][0].as_str().unwrap().contains("no logged predictions"));
    // A webhook nobody answers: the run finishes, writes its report and alert state, says so, exits 4.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hooked = p.file_with(
        "configs/monitoring.yaml",
        "  jsonl: logs/alerts.jsonl",
        &format!("  jsonl: logs/alerts.jsonl\n  webhook: {{url: \"http://127.0.0.1:{port}/hook\", timeout_ms: 500, retries: 1, backoff_ms: 10}}"),
    );
    let run = p.mlops(&["monitor", "--config", hooked.to_str().unwrap(), "--from", &t0, "--to", &t1]);
    assert_eq!(run.code, Some(4), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("webhook http://127.0.0.1:{port}/hook")) && run.stderr.contains("2 attempt"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("report: reports/monitoring/"), "{}", run.stdout);
    // A package without reference rows (written before monitoring): a note, no data drift.
    let package = p.join("models/runs");
    let dir =
        std::fs::read_dir(&package).unwrap().flatten().map(|e| e.path().join("package")).find(|d| d.is_dir()).unwrap();
    let old = p.join("old-package");
    copy_dir(&dir, &old);
    for f in ["reference.parquet", "reference_predictions.parquet"] {
        std::fs::remove_file(old.join(f)).unwrap();
    }
    let manifest = old.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["files"].as_array_mut().unwrap().retain(|f| !f["path"].as_str().unwrap().starts_with("reference"));
    std::fs::write(&manifest, serde_json::to_string(&m).unwrap()).unwrap();
    let run = p.mlops(&["--json", "monitor", "--model", old.to_str().unwrap(), "--from", &t0, "--to", &t1]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.json()["monitor"]["inputs"].is_null());
    let notes = run.json()["monitor"]["notes"].to_string();
    assert!(notes.contains("keeps no reference rows") || notes.contains("no logged predictions"), "{notes}");
    // Without the catalog, the features are compared with the package's reference rows.
    std::fs::rename(p.join("data/processed"), p.join("data/moved")).unwrap();
    let run = p.mlops(&["--json", "monitor", "--from", &t0, "--to", &t1]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json()["monitor"]["reference"]["features"], "package");
    assert!(run.json()["monitor"]["notes"].to_string().contains("is not in the catalog at data/processed"));
    assert!(run.json()["monitor"]["features"]["columns"].as_array().is_some_and(|c| !c.is_empty()));
    // export-rules: the Prometheus rules and the Grafana dashboard of the champion.
    let run = p.mlops(&["--json", "monitor", "export-rules", "--out", "build/monitoring"]);
    assert!(run.success, "{}", run.stderr);
    let rules = p.join(run.json()["rules"].as_str().unwrap());
    assert!(std::fs::read_to_string(&rules).unwrap().contains("MlopsSlowPredictions"));
    if let Ok(out) = std::process::Command::new("promtool").args(["check", "rules"]).arg(&rules).output() {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    } else {
        assert!(std::env::var_os("CI").is_none(), "promtool is installed in CI (.ci/run)");
    }
    let (ok, _) = s.terminate();
    assert!(ok);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// `store: postgres://...`: the training run tracks its runs and registers its champion in a
/// PostgreSQL database (the password from PGPASSWORD); six processes registering at once get
/// six distinct, gap-free versions there; the runs and the registry read back through the same
/// URL. A URL with a password in it, a wrong password and an unreachable server are each named,
/// and nothing is written locally.
#[test]
fn training_tracks_and_registers_on_a_postgres_store() {
    let pg = mlops_core::testing::TestStore::postgres();
    let url = pg.setting();
    let password = pg.password().unwrap();
    let env = [("PGPASSWORD", password)];
    let p = Project::new();
    let config =
        p.file_with("configs/training-sex.yaml", "store: models/registry/registry.db", &format!("store: {url}"));
    let trained = p.mlops_with_env(&["--quiet", "train", "--json", "--config", config.to_str().unwrap()], &env);
    assert!(trained.success, "{}", trained.stderr);
    let first = &trained.json()["registered"];
    assert_eq!((first["version"].as_u64(), first["alias"].as_str()), (Some(1), Some("champion")));
    assert!(!p.join("models/registry/registry.db").exists(), "a SQLite store was made beside PostgreSQL");
    let package = trained.json()["package"].as_str().unwrap().to_string();

    let registered = register_at_once(&p, &["sexing", "--package", &package, "--store", &url], &env);
    let mut versions: Vec<u64> = registered.iter().map(|v| v["version"].as_u64().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);

    let champion =
        p.mlops_with_env(&["--json", "registry", "show", "models:/penguins-sex@champion", "--store", &url], &env);
    assert!(champion.success, "{}", champion.stderr);
    assert_eq!(champion.json()["version"], 1);
    let runs = p.mlops_with_env(&["--json", "runs", "list", "--store", &url], &env);
    assert!(runs.success, "{}", runs.stderr);
    assert!(!runs.json().as_array().unwrap().is_empty(), "{}", runs.stdout);
    let history = p.mlops_with_env(&["--json", "registry", "history", "sexing", "--store", &url], &env).json();
    assert_eq!(history.as_array().unwrap().len(), 6);

    // Bad settings, each named; nothing is created locally.
    let with_password = url.replacen("postgres@", "postgres:hunter2@", 1);
    let run = p.mlops_with_env(&["registry", "list", "--store", &with_password], &env);
    assert!(!run.success && run.stderr.contains("the URL carries a password; put it in PGPASSWORD"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "the password was printed: {}", run.stderr);
    let run = p.mlops_with_env(&["registry", "list", "--store", &url], &[("PGPASSWORD", "wrong")]);
    assert!(!run.success, "a wrong password was let in");
    assert!(
        run.stderr.contains(&format!("registry store {url}: cannot connect"))
            && run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
    let port = free_port();
    let unreachable = format!("postgres://postgres@127.0.0.1:{port}/mlops");
    let started = std::time::Instant::now();
    let run = p.mlops_with_env(&["runs", "list", "--store", &unreachable], &env);
    assert!(!run.success && run.stderr.contains(&format!("run store {unreachable}: cannot connect")), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    for local in ["postgres:", "models/registry"] {
        assert!(!p.join(local).exists(), "{local} was created locally");
    }
}

/// The team setup as configs/examples/ documents it: the store on PostgreSQL and the packages in
/// an S3-compatible bucket. The training run registers into both; batch inference and a server
/// in a fresh cache resolve the champion there, download its package once into the cache, and
/// answer; the server logs into the shared store; nothing lands in a local store or artifact
/// folder.
#[test]
fn the_team_example_configs_train_predict_and_serve_on_postgres_and_a_bucket() {
    let pg = mlops_core::testing::TestStore::postgres();
    let s3 = mlops_core::testing::S3Server::start().unwrap();
    s3.create_bucket("mlops-artifacts").unwrap();
    let url = pg.setting();
    let p = Project::new();
    let cache = p.join("cache");
    let mut env: Vec<(String, String)> = s3.vars();
    env.push(("PGPASSWORD".into(), pg.password().unwrap().into()));
    env.push(("MLOPS_CACHE".into(), cache.to_string_lossy().into_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let example = |name: &str| {
        let text = std::fs::read_to_string(repo().join("configs/examples").join(name)).unwrap();
        assert!(text.contains("postgres://mlops@db.internal:5432/mlops"), "{name}");
        p.write(&format!("configs/{name}"), text.replace("postgres://mlops@db.internal:5432/mlops", &url))
    };
    let (training, deployment) = (example("team-training.yaml"), example("team-deployment.yaml"));
    let trained = p.mlops_with_env(&["--quiet", "train", "--json", "--config", training.to_str().unwrap()], &env);
    assert!(trained.success, "{}", trained.stderr);
    assert_eq!(trained.json()["registered"]["version"], 1);

    let predict = |out: &str| {
        p.mlops_with_env(
            &[
                "--json",
                "predict",
                "--config",
                deployment.to_str().unwrap(),
                "--model",
                "models:/penguins-species@champion",
                "--input",
                "data/raw/penguins-raw.csv",
                "--output",
                out,
            ],
            &env,
        )
    };
    let run = predict("first.csv");
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json()["report"]["predicted"], 344);
    let show =
        p.mlops_with_env(&["--json", "registry", "show", "models:/penguins-species@champion", "--store", &url], &env);
    let sha = show.json()["package_sha256"].as_str().unwrap().to_string();
    assert!(
        show.json()["artifact_path"].as_str().unwrap().starts_with("s3://mlops-artifacts/packages/"),
        "{}",
        show.stdout
    );
    let cached = cache.join("packages").join(&sha[..2]).join(&sha);
    assert!(cached.join("manifest.json").is_file(), "the package is cached by its hash");
    let again = predict("second.csv");
    assert!(again.success, "{}", again.stderr);
    assert_eq!(std::fs::read(p.join("first.csv")).unwrap(), std::fs::read(p.join("second.csv")).unwrap());

    let served = p.serve_with_env(&["--config", deployment.to_str().unwrap()], &env);
    let body = std::fs::read_to_string(repo().join("docs/examples/invocations.json")).unwrap();
    let (status, answer) = served.request("POST", "/invocations", "application/json", &body);
    assert_eq!(status, 200, "{answer}");
    let (ok, err) = served.terminate();
    assert!(ok, "{err}");
    let logged = pg.open().query("SELECT COUNT(*) FROM prediction_requests", &[]).unwrap()[0].get::<i64>(0).unwrap();
    assert_eq!(logged, 1, "the server logs into the shared store");
    for local in ["models/registry", "models/artifacts"] {
        assert!(!p.join(local).exists(), "{local} was written locally");
    }
}

/// Many servers, one registry: two `mlops serve` processes on one PostgreSQL store both follow an
/// alias move, and both log to the one prediction log (in batches, with COPY), which feedback
/// joins; the `prediction_log` view lists the rows with their inputs by column.
#[test]
fn two_servers_on_one_postgres_store_follow_the_alias_and_share_the_prediction_log() {
    let pg = mlops_core::testing::TestStore::postgres();
    let url = pg.setting();
    let env = [("PGPASSWORD", pg.password().unwrap())];
    let p = Project::new();
    let training = p.file_with("configs/training.yaml", "store: models/registry/registry.db", &format!("store: {url}"));
    let trained = p.mlops_with_env(&["--quiet", "train", "--json", "--config", training.to_str().unwrap()], &env);
    assert!(trained.success, "{}", trained.stderr);
    let package = trained.json()["package"].as_str().unwrap().to_string();
    let again = p.mlops_with_env(
        &["--json", "registry", "register", "penguins-species", "--package", &package, "--store", &url],
        &env,
    );
    assert!(again.success, "{}", again.stderr);
    assert_eq!(again.json()["version"], 2);

    let deployment =
        p.file_with("configs/deployment.yaml", "store: models/registry/registry.db", &format!("store: {url}"));
    let text = std::fs::read_to_string(&deployment).unwrap().replacen("poll_seconds: 10", "poll_seconds: 1", 1);
    std::fs::write(&deployment, text).unwrap();
    let config = deployment.to_str().unwrap();
    let servers = [p.serve_with_env(&["--config", config], &env), p.serve_with_env(&["--config", config], &env)];
    let body = std::fs::read_to_string(repo().join("docs/examples/invocations.json")).unwrap();
    let split = serde_json::from_str::<serde_json::Value>(&body).unwrap()["dataframe_split"].clone();
    let rows_per_request = split["data"].as_array().unwrap().len();
    let record: serde_json::Map<String, serde_json::Value> = split["columns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(split["data"][0].as_array().unwrap())
        .map(|(c, v)| (c.as_str().unwrap().to_string(), v.clone()))
        .collect();
    let record = serde_json::Value::Object(record).to_string();
    let mut ids = Vec::new();
    for s in &servers {
        wait_for_version(s, 1);
        for _ in 0..5 {
            let (status, answer) = s.request("POST", "/invocations", "application/json", &body);
            assert_eq!(status, 200, "{answer}");
        }
        let (status, answer) = s.request("POST", "/predict", "application/json", &record);
        assert_eq!(status, 200, "{answer}");
        ids.push(
            serde_json::from_str::<serde_json::Value>(&answer).unwrap()["request_id"].as_str().unwrap().to_string(),
        );
    }
    // The alias moves once, in the shared store: both servers follow.
    let moved = p.mlops_with_env(&["registry", "alias", "penguins-species", "champion", "2", "--store", &url], &env);
    assert!(moved.success, "{}", moved.stderr);
    for s in &servers {
        wait_for_version(s, 2);
    }
    // Feedback through either server joins the predictions of both.
    let feedback = serde_json::json!({"actuals": [
        {"request_id": ids[0], "row": 0, "actual": "Adelie Penguin (Pygoscelis adeliae)"},
        {"request_id": ids[1], "row": 0, "actual": "Adelie Penguin (Pygoscelis adeliae)"},
        {"request_id": "nobody", "row": 0, "actual": "x"},
    ]});
    let (status, answer) = servers[0].request("POST", "/feedback", "application/json", &feedback.to_string());
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (answer["recorded"].as_u64(), answer["unknown"].as_array().map(Vec::len)),
        (Some(2), Some(1)),
        "{answer}"
    );
    for s in servers {
        let (ok, err) = s.terminate();
        assert!(ok, "{err}");
    }
    let db = pg.open();
    let count = |sql: &str| db.query(sql, &[]).unwrap()[0].get::<i64>(0).unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM prediction_requests"), 12, "every request of both servers is logged once");
    assert_eq!(count("SELECT COUNT(*) FROM prediction_log") as usize, 2 * (5 * rows_per_request + 1));
    assert_eq!(count("SELECT COUNT(*) FROM prediction_feedback"), 2);
    let first = db.query("SELECT inputs, outputs FROM prediction_log ORDER BY seq, row LIMIT 1", &[]).unwrap();
    let inputs: serde_json::Value = serde_json::from_str(&first[0].get::<String>(0).unwrap()).unwrap();
    assert_eq!(inputs["Island"], "Torgersen", "{inputs}");
    let outputs: serde_json::Value = serde_json::from_str(&first[0].get::<String>(1).unwrap()).unwrap();
    assert!(outputs["prediction"].is_string(), "{outputs}");

    // Monitoring reads the shared log and the feedback, and keeps its alerts' state there.
    let monitoring =
        p.file_with("configs/monitoring.yaml", "store: models/registry/registry.db", &format!("store: {url}"));
    let run = p.mlops_with_env(
        &["--json", "monitor", "--config", monitoring.to_str().unwrap(), "--model", "models:/penguins-species/1"],
        &env,
    );
    assert!(run.code == Some(0) || run.code == Some(1) || run.code == Some(2), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["monitor"]["requests"], 12, "{}", run.stdout);
    assert_eq!(report["monitor"]["accuracy"]["labelled"], 2, "{}", run.stdout);
    assert_eq!(
        count("SELECT COUNT(*) FROM mlops_schema WHERE component = 'monitor'"),
        1,
        "the alerts' state is kept there"
    );
}
