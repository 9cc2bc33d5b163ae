//! Batch inference on real files and the client against a real server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../step20-serve/tests/fixture/mod.rs"]
mod fixture;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlops_core::{Row, TaskKind, Value};
use step20_serve::{CategoryPolicy, ModelSource, ServeConfig, Server};
use step21_inference::{
    BatchOptions, Client, ClientConfig, InferenceError, OnBadRow, Protocol, predict_file, predict_file_remote,
};

const COLUMNS: [&str; 6] = ["x", "n", "color", "day", "flag", "note"];

fn write_csv(path: &Path, rows: usize, bad: &[(usize, &str, &str)]) {
    let mut text = String::from("id,x,n,color,day,flag,note\n");
    for i in 0..rows {
        let r = fixture::raw(i);
        let mut cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| match &r[*c] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        for (row, col, value) in bad {
            if *row == i {
                let k = COLUMNS.iter().position(|c| c == col).unwrap();
                cells[k] = value.to_string();
            }
        }
        text.push_str(&format!("id{i},{}\n", cells.join(",")));
    }
    std::fs::write(path, text).unwrap();
}

fn scorer(dir: &Path) -> step20_serve::Scorer {
    let pkg = fixture::package(dir, "pkg", TaskKind::BinaryClassification, 1.0);
    ModelSource::Package(pkg).load(CategoryPolicy::Warn).unwrap()
}

fn read_output(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect()
}

#[test]
fn every_format_gives_the_scorers_bits_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = scorer(dir.path());
    let n = 1000;
    let input = dir.path().join("in.csv");
    write_csv(&input, n, &[]);
    // NDJSON of the same rows.
    let ndjson: String = (0..n)
        .map(|i| {
            let mut r = fixture::raw(i);
            r["id"] = format!("id{i}").into();
            format!("{r}\n")
        })
        .collect();
    std::fs::write(dir.path().join("in.ndjson"), ndjson).unwrap();
    let options = BatchOptions { chunk_rows: 128, id_column: Some("id".into()), ..BatchOptions::default() };
    let mut seen = Vec::new();
    let report = predict_file(&scorer, &input, &dir.path().join("out.csv"), &options, &mut |r| seen.push(r)).unwrap();
    assert_eq!((report.rows, report.predicted, report.skipped, report.chunks), (n, n, 0, 8));
    assert_eq!(seen.last(), Some(&n));
    let out = read_output(&dir.path().join("out.csv"));
    let mut rows: Vec<Row> = (0..n).map(fixture::row).collect();
    let scored = scorer.score(&mut rows).unwrap();
    for (i, rec) in out.iter().enumerate() {
        assert_eq!(rec[0], format!("id{i}"));
        assert_eq!(serde_json::Value::String(rec[1].clone()), scorer.label(scored.predicted[i]));
        let p: f64 = rec[3].parse().unwrap();
        assert_eq!(p.to_bits(), scored.proba.as_ref().unwrap()[i][1].to_bits(), "row {i}");
    }
    let nd = predict_file(&scorer, &dir.path().join("in.ndjson"), &dir.path().join("out2.csv"), &options, &mut |_| {})
        .unwrap();
    assert_eq!(nd.predicted, n);
    assert_eq!(std::fs::read(dir.path().join("out.csv")).unwrap(), std::fs::read(dir.path().join("out2.csv")).unwrap());
    // NDJSON and Parquet outputs hold the same rows.
    predict_file(&scorer, &input, &dir.path().join("out.ndjson"), &options, &mut |_| {}).unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("out.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n);
    assert_eq!(lines[7]["id"], "id7");
    assert_eq!(lines[7]["probability_yes"].as_f64().unwrap().to_bits(), scored.proba.as_ref().unwrap()[7][1].to_bits());
    let report =
        predict_file(&scorer, &input, &dir.path().join("out.parquet"), &BatchOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(report.predicted, n);
    assert!(std::fs::metadata(dir.path().join("out.parquet")).unwrap().len() > 100);
}

#[test]
fn bad_rows_reject_the_file_or_are_skipped_with_their_row_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = scorer(dir.path());
    let input = dir.path().join("in.csv");
    write_csv(&input, 300, &[(5, "x", "heavy"), (150, "color", ""), (299, "day", "someday")]);
    let out = dir.path().join("out.csv");
    let err =
        predict_file(&scorer, &input, &out, &BatchOptions { chunk_rows: 100, ..BatchOptions::default() }, &mut |_| {})
            .unwrap_err();
    let text = err.to_string();
    match &err {
        InferenceError::BadRows { path, rows } => {
            assert_eq!(path, &input, "{text}");
            let named: Vec<(usize, Option<&str>)> = rows.iter().map(|b| (b.row, b.column.as_deref())).collect();
            // The first chunk holding a bad row stops the run: its bad rows are listed.
            assert_eq!(named, [(5, Some("x"))], "{text}");
        }
        other => panic!("not BadRows: {other}"),
    }
    assert!(text.contains("row 5: column `x`: \"heavy\" is not a number"), "{text}");
    assert!(!out.exists(), "nothing is written when the file is rejected");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp-"))
    );
    let options = BatchOptions { chunk_rows: 100, on_error: OnBadRow::Skip, ..BatchOptions::default() };
    let report = predict_file(&scorer, &input, &out, &options, &mut |_| {}).unwrap();
    assert_eq!((report.rows, report.predicted, report.skipped), (300, 297, 3));
    let bad: Vec<(usize, Option<&str>)> = report.bad_rows.iter().map(|b| (b.row, b.column.as_deref())).collect();
    assert_eq!(bad, vec![(5, Some("x")), (150, Some("color")), (299, Some("day"))]);
    let rows = read_output(&out);
    assert_eq!(rows.len(), 297);
    assert!(rows.iter().all(|r| r[0] != "5" && r[0] != "150"), "the skipped rows are left out");
    // Wrong arguments, each of its kind and named.
    std::fs::write(dir.path().join("in.txt"), "x\n1\n").unwrap();
    let txt = dir.path().join("in.txt");
    let xlsx = dir.path().join("out.xlsx");
    let missing = dir.path().join("missing.csv");
    type Check<'a> = Box<dyn Fn(&InferenceError) -> bool + 'a>;
    let cases: Vec<(&Path, &Path, BatchOptions, Check<'_>, &str)> = vec![
        (
            &txt,
            &out,
            BatchOptions::default(),
            Box::new(|e| matches!(e, InferenceError::Format { path } if *path == txt)),
            "in.txt: unknown file type",
        ),
        (
            &input,
            &xlsx,
            BatchOptions::default(),
            Box::new(|e| matches!(e, InferenceError::Format { path } if *path == xlsx)),
            "out.xlsx: unknown file type",
        ),
        (
            &missing,
            &out,
            BatchOptions::default(),
            Box::new(|e| matches!(e, InferenceError::Io { path, what: "cannot open", .. } if *path == missing)),
            "missing.csv: cannot open",
        ),
        (
            &input,
            &out,
            BatchOptions { id_column: Some("key".into()), ..BatchOptions::default() },
            Box::new(|e| matches!(e, InferenceError::Argument { name: "id", message } if message.contains("`key`"))),
            "column `key` is not in",
        ),
        (
            &input,
            &out,
            BatchOptions { chunk_rows: 0, ..BatchOptions::default() },
            Box::new(|e| matches!(e, InferenceError::Argument { name: "chunk_rows", .. })),
            "`chunk_rows`",
        ),
    ];
    for (input, output, options, kind, needle) in cases {
        let err = predict_file(&scorer, input, output, &options, &mut |_| {}).unwrap_err();
        assert!(kind(&err), "{input:?} -> {output:?}: wrong kind: {err:?}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
    }
}

async fn serve(dir: &Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let pkg = dir.join("pkg");
    let server =
        Server::bind(ServeConfig { port: 0, ..ServeConfig::default() }, ModelSource::Package(pkg), None).await.unwrap();
    // As `mlops serve` runs it: requests of 10 rows or more on the frame path.
    server.set_batch_scorer(10, Arc::new(step21_inference::score_columns_frame));
    let url = format!("http://{}", server.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    (url, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_speaks_both_protocols_and_caches() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = scorer(dir.path());
    let (url, _stop) = serve(dir.path()).await;
    let url_base = url.clone();
    let mut rows: Vec<Row> = (0..20).map(fixture::row).collect();
    let scored = scorer.score(&mut rows.clone()).unwrap();
    // The frame path the server takes for these 20 rows gives the row path's bits.
    let many: Vec<Row> = (0..500).map(fixture::row).collect();
    let by_rows = scorer.score(&mut many.clone()).unwrap();
    let columns: Vec<Vec<Value>> =
        scorer.inputs().iter().map(|c| many.iter().map(|r| r[&c.name].clone()).collect()).collect();
    let by_frame = step21_inference::score_columns_frame(&scorer, &columns).unwrap();
    // Columns that do not match the signature are refused (the server then takes the row path).
    assert!(step21_inference::score_columns_frame(&scorer, &columns[..1]).is_none());
    assert_eq!(by_frame.predicted, by_rows.predicted);
    let bits = |s: &step20_serve::Scored| -> Vec<Vec<u64>> {
        s.proba.as_ref().unwrap().iter().map(|r| r.iter().map(|v| v.to_bits()).collect()).collect()
    };
    assert_eq!(bits(&by_frame), bits(&by_rows));
    let oip = Client::new(&url, ClientConfig { cache: 8, ..ClientConfig::default() }).unwrap();
    oip.ready().await.unwrap();
    let got = oip.predict(&rows).await.unwrap();
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.label, scorer.label(scored.predicted[i]));
        let bits: Vec<u64> = p.probabilities.as_ref().unwrap().iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, scored.proba.as_ref().unwrap()[i].iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
    assert_eq!(oip.cache_hits(), 0);
    let again = oip.predict(&rows[15..]).await.unwrap();
    assert_eq!(again, got[15..].to_vec());
    assert_eq!(oip.cache_hits(), 5, "the last 8 rows are cached");
    oip.predict(&rows[..1]).await.unwrap();
    assert_eq!(oip.cache_hits(), 5, "the first rows were evicted");
    let mlflow = Client::new(&url, ClientConfig { protocol: Protocol::Mlflow, ..ClientConfig::default() }).unwrap();
    let labels = mlflow.predict(&rows).await.unwrap();
    assert_eq!(
        labels.iter().map(|p| p.label.clone()).collect::<Vec<_>>(),
        got.iter().map(|p| p.label.clone()).collect::<Vec<_>>()
    );
    // A bad row is a 4xx at once, with the server's message naming the column.
    rows[3].insert("color".into(), mlops_core::Value::Float(1.0));
    let err = mlflow.predict(&rows).await.unwrap_err();
    assert!(
        matches!(&err, InferenceError::Server { status: 400, url, message, row: Some(3), column: Some(c) }
            if *url == format!("{url_base}/invocations") && message.contains("row 3: column `color`") && c == "color"),
        "{err}"
    );
    let err = oip.predict(&rows).await.unwrap_err();
    assert!(
        matches!(&err, InferenceError::Server { status: 400, message, row: Some(3), .. } if message.contains("column `color`")),
        "{err}"
    );
}

/// `mlops predict --url`: rows the server refuses (here a null where the model takes none, which
/// only the server knows) are the file's bad rows at their place in the file, named with the
/// file; `Skip` leaves them out and scores the rest as a local batch does.
#[test]
fn a_file_sent_to_a_server_names_refused_rows_by_file_row_and_skips_them_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = scorer(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, stop) = runtime.block_on(serve(dir.path()));
    let client = Client::new(&url, ClientConfig::default()).unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, 300, &[(5, "x", ""), (150, "color", ""), (299, "day", "someday")]);
    let out = dir.path().join("remote.csv");
    let options = BatchOptions { chunk_rows: 100, ..BatchOptions::default() };
    let err = predict_file_remote(&client, runtime.handle(), &input, &out, &options, &mut |_| {}).unwrap_err();
    match &err {
        InferenceError::BadRows { path, rows } => {
            assert_eq!(path, &input, "{err}");
            assert_eq!(rows.iter().map(|b| (b.row, b.column.as_deref())).collect::<Vec<_>>(), [(5, Some("x"))]);
        }
        other => panic!("not BadRows: {other}"),
    }
    assert!(err.to_string().contains("in.csv") && err.to_string().contains("row 5: column `x`: null"), "{err}");
    assert!(!out.exists());
    let options = BatchOptions { on_error: OnBadRow::Skip, ..options };
    let report = predict_file_remote(&client, runtime.handle(), &input, &out, &options, &mut |_| {}).unwrap();
    assert_eq!((report.rows, report.predicted, report.skipped), (300, 297, 3));
    let bad: Vec<(usize, Option<&str>)> = report.bad_rows.iter().map(|b| (b.row, b.column.as_deref())).collect();
    assert_eq!(bad, vec![(5, Some("x")), (150, Some("color")), (299, Some("day"))]);
    let local = dir.path().join("local.csv");
    predict_file(&scorer, &input, &local, &options, &mut |_| {}).unwrap();
    let (remote, local) = (read_output(&out), read_output(&local));
    assert_eq!(remote.len(), 297);
    // Same rows, same labels (the remote client's probabilities come through JSON).
    let labels = |rows: &[Vec<String>]| rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect::<Vec<_>>();
    assert_eq!(labels(&remote), labels(&local));
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_retries_5xx_and_connection_errors_with_backoff() {
    use axum::routing::post;
    // A real server that fails the first two requests with 503, then answers.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/invocations",
        post(move || {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy".to_string())
                } else {
                    (axum::http::StatusCode::OK, r#"{"predictions": ["yes"]}"#.to_string())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = ClientConfig {
        protocol: Protocol::Mlflow,
        backoff: std::time::Duration::from_millis(10),
        ..ClientConfig::default()
    };
    let client = Client::new(&url, config.clone()).unwrap();
    let started = std::time::Instant::now();
    let got = client.predict(&[fixture::row(0)]).await.unwrap();
    assert_eq!(got[0].label, "yes");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() >= std::time::Duration::from_millis(30), "backoff 10 ms then 20 ms");
    // Out of retries: the last answer is the error.
    calls.store(0, Ordering::SeqCst);
    let once = Client::new(&url, ClientConfig { retries: 1, ..config.clone() }).unwrap();
    let err = once.predict(&[fixture::row(0)]).await.unwrap_err();
    assert!(matches!(&err, InferenceError::Server { status: 503, message, .. } if message == "busy"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one try and one retry");
    // Nobody listening: connection errors are retried, then reported.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = Client::new(&dead, ClientConfig { retries: 2, ..config })
        .unwrap()
        .predict(&[fixture::row(0)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, InferenceError::Http { url, message } if *url == format!("{dead}/invocations") && message.contains("after 3 attempt(s)")),
        "{err}"
    );
    let err = Client::new("localhost:8080", ClientConfig::default()).err().unwrap();
    assert!(
        matches!(&err, InferenceError::Argument { name: "url", message } if message.contains("\"localhost:8080\" must start with http://")),
        "{err}"
    );
}

#[test]
fn the_output_is_never_the_input_and_replaces_a_file_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = scorer(dir.path());
    let input = dir.path().join("in.csv");
    write_csv(&input, 10, &[]);
    let before = std::fs::read(&input).unwrap();
    for overwrite in [false, true] {
        let options = BatchOptions { overwrite, ..BatchOptions::default() };
        let err = predict_file(&scorer, &input, &input, &options, &mut |_| {}).unwrap_err();
        assert!(
            matches!(&err, InferenceError::Argument { name: "output", message } if message.contains("is the input file")),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&input).unwrap(), before, "the input was changed");
    let out = dir.path().join("out.csv");
    std::fs::write(&out, "kept\n").unwrap();
    let err = predict_file(&scorer, &input, &out, &BatchOptions::default(), &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, InferenceError::Argument { name: "output", message } if message.contains("already exists")),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "kept\n");
    let options = BatchOptions { overwrite: true, ..BatchOptions::default() };
    let report = predict_file(&scorer, &input, &out, &options, &mut |_| {}).unwrap();
    assert_eq!(report.predicted, 10);
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 11);
}

#[test]
fn a_file_without_a_column_the_model_needs_fails_whatever_on_error_says() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = scorer(dir.path());
    let full = dir.path().join("full.csv");
    write_csv(&full, 20, &[]);
    // Drop the required `x` and the nullable `note`: only `x` is missing for the model.
    let text = std::fs::read_to_string(&full).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len()).filter(|&k| !["x", "note"].contains(&header[k])).collect();
    let cut: String = text
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&k| cells[k]).collect::<Vec<_>>().join(",") + "\n"
        })
        .collect();
    let input = dir.path().join("cut.csv");
    std::fs::write(&input, cut).unwrap();
    let out = dir.path().join("out.csv");
    for on_error in [OnBadRow::Reject, OnBadRow::Skip] {
        let options = BatchOptions { on_error, ..BatchOptions::default() };
        let err = predict_file(&scorer, &input, &out, &options, &mut |_| {}).unwrap_err();
        match &err {
            InferenceError::MissingColumns { path, missing } => {
                assert_eq!(path, &input);
                assert_eq!(missing, &["x".to_string()], "only the required column is missing: {err}");
            }
            other => panic!("not MissingColumns: {other}"),
        }
        assert!(err.to_string().contains("cut.csv: no column `x`"), "{err}");
        assert!(!out.exists(), "a file was written");
    }
}

/// `kill -9` of `mlops predict` leaves its temporary output behind; the next run into the same
/// folder removes the temporaries of processes that ended, and leaves those of running ones.
#[test]
fn temporaries_left_by_a_killed_run_are_removed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = scorer(dir.path());
    let input = dir.path().join("in.csv");
    write_csv(&input, 20, &[]);
    let out = dir.path().join("out.csv");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.path().join(format!(".out.csv.tmp-{dead}-0"));
    let running = dir.path().join(format!(".out.csv.tmp-{}-99", std::process::id()));
    let other = dir.path().join(format!(".other.csv.tmp-{dead}-0"));
    for f in [&stale, &running, &other] {
        std::fs::write(f, "row,prediction\n0,half").unwrap();
    }
    predict_file(&scorer, &input, &out, &BatchOptions::default(), &mut |_| {}).unwrap();
    assert!(!stale.exists(), "the dead run's temporary is removed");
    assert!(running.exists(), "a running process's temporary stays");
    assert!(other.exists(), "another file's temporaries are not this run's business");
    assert_eq!(read_output(&out).len(), 20);
}
