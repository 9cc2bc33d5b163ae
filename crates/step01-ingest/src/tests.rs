//! Ingest tests: every reader on real files in a temp dir, and every kind of bad input.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mlops_core::frame::column_names;
use polars::prelude::{DataFrame, DataType, ParquetWriter, df};

use super::*;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn csv(path: &Path) -> CsvSource {
    CsvSource::new(path)
}

fn read_csv(opts: CsvSource) -> Result<Ingested> {
    SourceConfig::Csv(opts).read("t")
}

#[test]
fn shipped_penguins_read_with_lineage() {
    let path = repo_file("data/raw/penguins-raw.csv");
    let got = read_csv(csv(&path)).unwrap();
    assert_eq!(got.frame.shape(), (344, 17));
    assert_eq!(got.lineage.rows, 344);
    assert_eq!(got.lineage.columns, 17);
    assert_eq!(got.lineage.sha256, mlops_core::hash::sha256_file(&path).unwrap());
    assert!(got.lineage.uri.starts_with("file:///"), "{}", got.lineage.uri);
    assert_eq!(got.frame.column("Culmen Length (mm)").unwrap().dtype(), &DataType::Float64);
    // `NA` is a null marker by default, in numbers and in text.
    assert_eq!(got.frame.column("Culmen Length (mm)").unwrap().null_count(), 2);
    assert!(got.frame.column("Comments").unwrap().null_count() > 200);
}

#[test]
fn delimiter_quotes_and_embedded_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"id;text;n\n1;\"a;b\";2\n2;\"line one\nline \"\"two\"\"\";3\n");
    let got = read_csv(CsvSource { delimiter: ';', ..csv(&path) }).unwrap();
    assert_eq!(got.frame.height(), 2);
    let text = got.frame.column("text").unwrap().str().unwrap().clone();
    assert_eq!(text.get(0), Some("a;b"));
    assert_eq!(text.get(1), Some("line one\nline \"two\""));
}

#[test]
fn latin1_is_transcoded_and_utf8_check_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "l.csv", b"name,city\nAna,Lisboa\nJos\xe9,S\xe3o Paulo\n");
    let got = read_csv(CsvSource { encoding: Encoding::Latin1, ..csv(&path) }).unwrap();
    let names = got.frame.column("name").unwrap().str().unwrap().clone();
    assert_eq!(names.get(1), Some("José"));
    assert_eq!(got.frame.column("city").unwrap().str().unwrap().get(1), Some("São Paulo"));

    let err = read_csv(csv(&path)).unwrap_err();
    assert!(matches!(err, IngestError::Encoding { line: 3, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("l.csv") && text.contains("line 3") && text.contains("latin1"), "{text}");
}

#[test]
fn utf8_is_checked_across_read_blocks() {
    // The pre-pass reads 1 MiB blocks: a two-byte character split by a block boundary is valid,
    // and a bad byte past the first block is reported on its own line.
    let dir = tempfile::tempdir().unwrap();
    let block = 1 << 20;
    let mut bytes = b"id,text\n".to_vec();
    let mut lines = 1;
    while bytes.len() < block - 40 {
        bytes.extend_from_slice(b"1,plain ascii text\n");
        lines += 1;
    }
    bytes.extend_from_slice(b"2,");
    bytes.resize(block - 1, b'a');
    bytes.extend_from_slice("\u{e9}t\u{e9}\n".as_bytes());
    lines += 1;
    assert_eq!(bytes[block - 1], 0xC3, "the character straddles the block boundary");
    let good = write(dir.path(), "good.csv", &bytes);
    let got = read_csv(csv(&good)).unwrap();
    assert_eq!(got.frame.height(), lines - 1);
    let text = got.frame.column("text").unwrap().str().unwrap().clone();
    assert!(text.get(lines - 2).unwrap().ends_with("a\u{e9}t\u{e9}"));

    bytes.extend_from_slice(b"3,ok\n4,bad \xff byte\n");
    let bad = write(dir.path(), "bad.csv", &bytes);
    let err = read_csv(csv(&bad)).unwrap_err();
    assert!(matches!(err, IngestError::Encoding { line, .. } if line == lines + 2), "{err}");
}

#[test]
fn ragged_rows_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    // The quoted newline makes record 2 span lines 3-4, so the bad record starts on line 5.
    let path = write(dir.path(), "r.csv", b"a,b,c\n1,2,3\n4,\"x\ny\",6\n7,8,9,10\n");
    let err = read_csv(csv(&path)).unwrap_err();
    assert!(matches!(err, IngestError::Ragged { line: 5, expected: 3, found: 4, .. }), "{err}");
    assert!(err.to_string().contains("r.csv: line 5: expected 3 fields, found 4"), "{err}");

    let path = write(dir.path(), "s.csv", b"a,b,c\n1,2,3\n4,5\n");
    let err = read_csv(csv(&path)).unwrap_err();
    assert!(matches!(err, IngestError::Ragged { line: 3, found: 2, .. }), "{err}");
}

#[test]
fn unclosed_quote_empty_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "q.csv", b"a,b\n1,\"open\n2,3\n");
    let err = read_csv(csv(&path)).unwrap_err();
    assert!(matches!(err, IngestError::UnclosedQuote { line: 2, .. }), "{err}");

    let path = write(dir.path(), "e.csv", b"");
    assert!(matches!(read_csv(csv(&path)), Err(IngestError::Empty { .. })));

    let err = read_csv(csv(&dir.path().join("nope.csv"))).unwrap_err();
    assert!(matches!(err, IngestError::NotFound { .. }));
    assert!(err.to_string().contains("nope.csv: file not found"), "{err}");
}

#[test]
fn blank_lines_comments_and_skip_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "c.csv", b"exported by tool\na,b\n# a comment, with, commas\n1,2\n\n3,4\n");
    let got = read_csv(CsvSource { skip_rows: 1, comment_prefix: Some("#".into()), ..csv(&path) }).unwrap();
    assert_eq!(column_names(&got.frame), vec!["a", "b"]);
    assert_eq!(got.frame.height(), 2);
}

#[test]
fn null_markers_columns_limit_and_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "n.csv", b"id,score,flag\n001,?,yes\n002,7.5,no\n003,8,yes\n");
    let opts = CsvSource {
        null_values: vec!["?".into()],
        dtypes: [("id".to_string(), mlops_core::DType::Str)].into(),
        ..csv(&path)
    };
    let got = read_csv(opts.clone()).unwrap();
    assert_eq!(got.frame.column("id").unwrap().str().unwrap().get(0), Some("001"));
    assert_eq!(got.frame.column("score").unwrap().null_count(), 1);

    let got = read_csv(CsvSource { columns: Some(vec!["score".into(), "id".into()]), limit: Some(2), ..opts.clone() })
        .unwrap();
    assert_eq!(column_names(&got.frame), vec!["score", "id"]);
    assert_eq!(got.frame.height(), 2);

    let err = read_csv(CsvSource { columns: Some(vec!["scroe".into()]), ..opts }).unwrap_err();
    assert!(
        matches!(&err, IngestError::MissingColumns { missing, .. } if missing == &vec!["scroe".to_string()]),
        "{err}"
    );
    // A value that does not fit a forced type: the advice names the config's keys, not polars'.
    let err = read_csv(CsvSource { dtypes: [("flag".to_string(), mlops_core::DType::Int)].into(), ..csv(&path) })
        .unwrap_err()
        .to_string();
    assert!(err.contains("n.csv") && err.contains("column `flag`: could not read `yes` as int"), "{err}");
    assert!(err.contains("`null_values`") && err.contains("`dtypes`") && err.contains("`infer_schema_rows`"), "{err}");
    for polars_word in ["infer_schema_length", "schema_overrides", "ignore_errors"] {
        assert!(!err.contains(polars_word), "{err}");
    }
}

#[test]
fn late_type_change_falls_back_to_full_inference() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("x\n");
    for i in 0..50 {
        text.push_str(&format!("{i}\n"));
    }
    text.push_str("2.5\n");
    let path = write(dir.path(), "t.csv", text.as_bytes());
    let got = read_csv(CsvSource { infer_schema_rows: 5, ..csv(&path) }).unwrap();
    assert_eq!(got.frame.column("x").unwrap().dtype(), &DataType::Float64);
    assert_eq!(got.frame.height(), 51);
}

#[test]
fn low_memory_streaming_reads_the_same_frame() {
    let path = repo_file("data/raw/penguins-raw.csv");
    let eager = read_csv(csv(&path)).unwrap().frame;
    let streamed = read_csv(CsvSource { low_memory: true, ..csv(&path) }).unwrap().frame;
    assert!(eager.equals_missing(&streamed));
}

#[test]
fn workbooks_by_name_and_index() {
    for ext in ["xlsx", "xls", "ods"] {
        let path = fixture(&format!("penguins.{ext}"));
        let by_name =
            SourceConfig::Excel(ExcelSource { sheet: SheetRef::Name("penguins".into()), ..ExcelSource::new(&path) })
                .read("w")
                .unwrap_or_else(|e| panic!("{ext}: {e}"));
        assert_eq!(by_name.frame.shape(), (4, 6), "{ext}");
        let frame = &by_name.frame;
        assert_eq!(frame.column("Flipper Length (mm)").unwrap().dtype(), &DataType::Int64, "{ext}");
        assert_eq!(frame.column("Culmen Length (mm)").unwrap().null_count(), 1, "{ext}");
        assert_eq!(frame.column("Island").unwrap().null_count(), 1, "{ext}");
        assert!(matches!(frame.column("Date Egg").unwrap().dtype(), DataType::Datetime(..)), "{ext}");

        let by_index = SourceConfig::Excel(ExcelSource { sheet: SheetRef::Index(1), ..ExcelSource::new(&path) })
            .read("w")
            .unwrap();
        assert_eq!(column_names(&by_index.frame), vec!["note", "n"], "{ext}");

        let err =
            SourceConfig::Excel(ExcelSource { sheet: SheetRef::Name("Penguins2".into()), ..ExcelSource::new(&path) })
                .read("w")
                .unwrap_err();
        assert!(matches!(&err, IngestError::SheetNotFound { available, .. } if available.len() == 2), "{err}");
        assert!(err.to_string().contains("no sheet named \"Penguins2\" (sheets: penguins, notes)"), "{err}");
        let err = SourceConfig::Excel(ExcelSource { sheet: SheetRef::Index(7), ..ExcelSource::new(&path) })
            .read("w")
            .unwrap_err();
        assert!(matches!(err, IngestError::SheetNotFound { .. }), "{err}");
    }
}

#[test]
fn corrupt_workbook_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.xlsx", b"not a zip");
    let err = SourceConfig::Excel(ExcelSource::new(&path)).read("w").unwrap_err();
    assert!(matches!(err, IngestError::Read { .. }), "{err}");
    assert!(err.to_string().contains("bad.xlsx"), "{err}");
}

#[test]
fn parquet_round_trip_and_projection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.parquet");
    let mut frame: DataFrame = df!("a" => [1i64, 2, 3], "b" => ["x", "y", "z"]).unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut frame).unwrap();
    let got =
        SourceConfig::Parquet(ParquetSource { path: path.clone(), columns: None, limit: None }).read("p").unwrap();
    assert!(got.frame.equals(&frame));
    let got =
        SourceConfig::Parquet(ParquetSource { path: path.clone(), columns: Some(vec!["b".into()]), limit: Some(1) })
            .read("p")
            .unwrap();
    assert_eq!(got.frame.shape(), (1, 1));
    let bad = write(dir.path(), "bad.parquet", b"PAR1 nonsense");
    let err = SourceConfig::Parquet(ParquetSource { path: bad, columns: None, limit: None }).read("p").unwrap_err();
    assert!(matches!(err, IngestError::Read { .. }) && err.to_string().contains("bad.parquet"), "{err}");
}

#[test]
fn json_records_are_flattened_with_dotted_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "r.json",
        br#"{"data": {"items": [
            {"id": 1, "name": "a", "address": {"city": "Oslo", "geo": {"lat": 59.9}}, "tags": ["x", "y"]},
            {"id": 2, "name": "b", "address": {"city": "Lima"}, "score": 2.5}
        ]}}"#,
    );
    let got = SourceConfig::Json(JsonSource { record_path: Some("data.items".into()), ..JsonSource::new(&path) })
        .read("j")
        .unwrap();
    assert_eq!(column_names(&got.frame), vec!["id", "name", "address.city", "address.geo.lat", "tags", "score"]);
    assert_eq!(got.frame.column("id").unwrap().dtype(), &DataType::Int64);
    assert_eq!(got.frame.column("address.geo.lat").unwrap().null_count(), 1);
    assert_eq!(got.frame.column("tags").unwrap().str().unwrap().get(0), Some(r#"["x","y"]"#));

    let got = SourceConfig::Json(JsonSource {
        record_path: Some("data.items".into()),
        max_level: Some(1),
        ..JsonSource::new(&path)
    })
    .read("j")
    .unwrap();
    assert!(column_names(&got.frame).contains(&"address.geo".to_string()));

    let err = SourceConfig::Json(JsonSource { record_path: Some("data.rows".into()), ..JsonSource::new(&path) })
        .read("j")
        .unwrap_err();
    assert!(err.to_string().contains("no key `rows`"), "{err}");
}

#[test]
fn invalid_json_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.json", b"[\n {\"a\": 1},\n {\"a\": 2,,}\n]\n");
    let err = SourceConfig::Json(JsonSource::new(&path)).read("j").unwrap_err();
    assert!(matches!(err, IngestError::Json { line: 3, .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{}: line 3 column", path.display())), "{err}");

    let path = write(dir.path(), "scalar.json", b"[1, 2]");
    let err = SourceConfig::Json(JsonSource::new(&path)).read("j").unwrap_err();
    assert!(err.to_string().contains("expected an array of objects"), "{err}");
}

#[test]
fn ndjson_reads_lines_and_names_the_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "r.ndjson", b"{\"a\": 1, \"b\": {\"c\": true}}\n\n{\"a\": 2.5}\n");
    let got = SourceConfig::Ndjson(JsonSource::new(&path)).read("n").unwrap();
    assert_eq!(column_names(&got.frame), vec!["a", "b.c"]);
    assert_eq!(got.frame.column("a").unwrap().dtype(), &DataType::Float64);
    assert_eq!(got.frame.column("b.c").unwrap().dtype(), &DataType::Boolean);

    let path = write(dir.path(), "bad.ndjson", b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": }\n");
    let err = SourceConfig::Ndjson(JsonSource::new(&path)).read("n").unwrap_err();
    assert!(matches!(err, IngestError::Json { line: 3, .. }), "{err}");
}

fn sqlite_db(dir: &Path) -> PathBuf {
    let path = dir.join("shop.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE orders (id INTEGER, item TEXT, price REAL, qty INTEGER);
         INSERT INTO orders VALUES (1, 'pen', 1.5, 10), (2, 'ink', NULL, 2), (3, 'pad', 4.0, 1);",
    )
    .unwrap();
    path
}

#[test]
fn sqlite_query_reads_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path());
    let source = SourceConfig::Sqlite(SqliteSource {
        path: db,
        query: "SELECT id, item, price * qty AS total FROM orders ORDER BY id".into(),
    });
    let got = source.read("orders").unwrap();
    assert_eq!(column_names(&got.frame), vec!["id", "item", "total"]);
    assert_eq!(got.frame.column("id").unwrap().dtype(), &DataType::Int64);
    assert_eq!(got.frame.column("total").unwrap().dtype(), &DataType::Float64);
    assert_eq!(got.frame.column("total").unwrap().null_count(), 1);
    assert!(got.lineage.uri.starts_with("sqlite:///") && got.lineage.uri.contains("query=SELECT"));
    // Same query, same content hash.
    assert_eq!(source.read("orders").unwrap().lineage.sha256, got.lineage.sha256);
}

#[test]
fn sql_errors_name_the_query_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path());
    let err = SourceConfig::Sqlite(SqliteSource { path: db, query: "SELECT * FROM order_lines".into() })
        .read("o")
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, IngestError::Sql { .. }), "{text}");
    assert!(text.contains("no such table: order_lines") && text.contains("query: SELECT * FROM order_lines"), "{text}");

    let err = SourceConfig::Sqlite(SqliteSource { path: dir.path().join("none.db"), query: "SELECT 1".into() })
        .read("o")
        .unwrap_err();
    assert!(matches!(err, IngestError::NotFound { .. }), "{err}");
}

#[test]
fn several_named_sources() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path());
    let csv_path = write(dir.path(), "a.csv", b"x\n1\n");
    let sources = std::collections::BTreeMap::from([
        ("orders".to_string(), SourceConfig::Sqlite(SqliteSource { path: db, query: "SELECT * FROM orders".into() })),
        ("numbers".to_string(), SourceConfig::Csv(csv(&csv_path))),
    ]);
    let got = ingest_all(&sources).unwrap();
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["numbers", "orders"]);
    assert_eq!(got[1].1.lineage.format, "sqlite");
}

#[test]
fn source_config_yaml_rejects_unknown_keys_with_line() {
    let text = "csv:\n  path: a.csv\n  delimeter: ';'\n";
    let err = mlops_core::config::parse_yaml::<SourceConfig>(text, Path::new("data.yaml")).unwrap_err().to_string();
    assert!(err.contains("data.yaml: line 3") && err.contains("unknown field `delimeter`"), "{err}");
    let text = "excel:\n  path: a.xlsx\n  sheet: notes\n";
    let parsed: SourceConfig = mlops_core::config::parse_yaml(text, Path::new("d.yaml")).unwrap();
    assert!(matches!(parsed, SourceConfig::Excel(ExcelSource { sheet: SheetRef::Name(_), .. })));
}

mod scanner {
    use proptest::prelude::*;

    use super::*;

    /// A field as CSV text: quoted (with doubled quotes) when it holds a delimiter, quote or newline.
    fn encode(field: &str) -> String {
        if field.contains([',', '"', '\n']) { format!("\"{}\"", field.replace('"', "\"\"")) } else { field.to_string() }
    }

    fn record() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[ab,\"\\n ]{0,4}", 1..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// The pre-pass finds the first record whose field count differs from the header's, on the
        /// line where it starts; when there is none, polars reads every record.
        #[test]
        fn pre_pass_finds_ragged_records_and_agrees_with_polars(records in prop::collection::vec(record(), 1..12)) {
            // Fields must not all be empty, or a one-field record would be a blank line.
            let records: Vec<Vec<String>> = records
                .into_iter()
                .map(|r| if r.len() == 1 && r[0].is_empty() { vec!["x".to_string()] } else { r })
                .collect();
            let mut text = String::new();
            let mut starts = Vec::new();
            for r in &records {
                starts.push(1 + text.matches('\n').count());
                text.push_str(&r.iter().map(|f| encode(f)).collect::<Vec<_>>().join(","));
                text.push('\n');
            }
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "p.csv", text.as_bytes());
            let expected = records[0].len();
            let bad = records.iter().position(|r| r.len() != expected);
            let opts = CsvSource { null_values: vec![], ..csv(&path) };
            match (bad, read_csv(opts)) {
                (Some(i), Err(IngestError::Ragged { line, found, .. })) => {
                    prop_assert_eq!(line, starts[i]);
                    prop_assert_eq!(found, records[i].len());
                }
                (None, Ok(got)) => {
                    prop_assert_eq!(got.frame.height(), records.len() - 1);
                    prop_assert_eq!(got.frame.width(), expected);
                }
                (None, Err(e)) if e.to_string().contains("duplicate") || e.to_string().contains("empty") => {}
                (b, other) => prop_assert!(false, "bad record {:?}, got {:?}\n{:?}", b, other.map(|i| i.frame), text),
            }
        }
    }
}

mod plain_reader {
    use proptest::prelude::*;

    use super::*;

    fn int() -> impl Strategy<Value = String> {
        prop_oneof![
            (-1_000_000i64..1_000_000).prop_map(|v| v.to_string()),
            Just("007".to_string()),
            Just("-0".to_string()),
            Just(i64::MIN.to_string()),
        ]
    }

    fn float() -> impl Strategy<Value = String> {
        prop_oneof![
            (-1e6f64..1e6).prop_map(|v| v.to_string()),
            (-1e6f64..1e6).prop_map(|v| format!("{v:.3}")),
            (-1e6f64..1e6).prop_map(|v| format!("{v:e}")),
            (0u32..1000).prop_map(|v| format!(".{v}")),
            Just("inf".to_string()),
            Just("-1.5E-3".to_string()),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 .!?é日_-]{1,12}"
    }

    /// A cell of a column of the given kind: mostly its own kind, sometimes missing, and rarely
    /// something else (a decimal in an integer column, a word in a number column).
    fn cell(kind: u8) -> BoxedStrategy<String> {
        let own = match kind {
            0 => int().boxed(),
            1 => float().boxed(),
            _ => text().boxed(),
        };
        let quoted = match kind {
            0 => int().prop_map(|v| format!("\"{v}\"")).boxed(),
            1 => float().prop_map(|v| format!("\"{v}\"")).boxed(),
            _ => prop_oneof![
                text().prop_map(|v| format!("\"{v}, {v}\"")),
                text().prop_map(|v| format!("\"say \"\"{v}\"\"\"")),
                Just("\"\"".to_string()),
            ]
            .boxed(),
        };
        prop_oneof![
            20 => own,
            3 => quoted,
            2 => Just(String::new()),
            2 => Just("NA".to_string()),
            1 => Just("\"NA\"".to_string()),
            1 => prop_oneof![Just("1.5".to_string()), Just("word".to_string()), Just(" 5".to_string())],
        ]
        .boxed()
    }

    fn table() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<String>>)> {
        prop::collection::vec(0u8..3, 1..6).prop_flat_map(|kinds| {
            let row: Vec<BoxedStrategy<String>> = kinds.iter().map(|&k| cell(k)).collect();
            (Just(kinds), prop::collection::vec(row, 1..40))
        })
    }

    fn render(width: usize, rows: &[Vec<String>], newline_at_end: bool) -> String {
        let mut text = (0..width).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
        for r in rows {
            text.push('\n');
            text.push_str(&r.join(","));
        }
        if newline_at_end {
            text.push('\n');
        }
        text
    }

    fn same(a: &DataFrame, b: &DataFrame) -> bool {
        a.schema() == b.schema() && a.equals_missing(b)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// On any table the plain reader gives the frame and hash the general reader gives, or
        /// leaves the file to it; a table of clean cells is always its own to read.
        #[test]
        fn plain_reader_equals_general_reader(
            (kinds, rows) in table(),
            newline_at_end in any::<bool>(),
            infer in 1usize..50,
        ) {
            let text = render(kinds.len(), &rows, newline_at_end);
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "p.csv", text.as_bytes());
            let opts = CsvSource { null_values: vec!["NA".into()], infer_schema_rows: infer, ..csv(&path) };
            prop_assert!(plain::applies(&opts));
            let general = read_csv_general(&opts);
            match plain::read(&opts).unwrap() {
                Some((scan, frame)) => {
                    let (gscan, gframe) = general.unwrap();
                    prop_assert!(same(&frame, &gframe), "{}\nplain {:?}\ngeneral {:?}", text, frame, gframe);
                    prop_assert_eq!(&scan.sha256, &mlops_core::hash::sha256_file(&path).unwrap());
                    prop_assert_eq!(scan.size, gscan.size);
                }
                None => {
                    let odd = rows.iter().flatten().any(|c| c == "1.5" || c == "word" || c == " 5");
                    let empty_row = kinds.len() == 1 && rows.iter().any(|r| r[0].is_empty());
                    // A text column whose first rows read as numbers is inferred numeric from
                    // them, and its later text does not fit (`0` then `a` with one row inferred).
                    let numeric_text = kinds.iter().enumerate().any(|(j, &k)| {
                        k == 2 && rows.iter().any(|r| r[j].trim_matches('"').trim().parse::<f64>().is_ok())
                    });
                    prop_assert!(
                        odd || empty_row || numeric_text,
                        "a clean table was left to the general reader:\n{}",
                        text
                    );
                }
            }
        }
    }

    #[test]
    fn files_that_are_not_plain_go_to_the_general_reader() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("quoted_line_break", "a,b\n1,\"x\ny\"\n"),
            ("quote_inside", "a,b\n1,x\"y\n"),
            ("text_after_quote", "a,b\n1,\"x\"y\n"),
            ("crlf", "a,b\r\n1,2\r\n"),
            ("blank", "a,b\n1,2\n\n3,4\n"),
            ("blank_one_column", "a\n1\n\n2\n"),
            ("short", "a,b\n1,2\n3\n"),
            ("long", "a,b\n1,2\n3,4,5\n"),
            ("long_text", "a,b\n1,x\n3,y,z\n"),
            ("long_quoted", "a,b\n1,\"x\"\n3,\"y\",z\n"),
            ("bom", "\u{feff}a,b\n1,2\n"),
            ("blank_led_number", "a,b\n1,2\n 3,4\n"),
            ("decimal_after_sample", "a,b\n1,2\n3.5,4\n"),
            ("header_only", "a,b\n"),
            ("bool", "a,b\ntrue,2\n"),
        ] {
            let path = write(dir.path(), &format!("{name}.csv"), text.as_bytes());
            let opts = CsvSource { infer_schema_rows: 1, ..csv(&path) };
            assert!(plain::read(&opts).unwrap().is_none(), "{name} was read as plain");
        }
        let path = write(dir.path(), "latin1.csv", b"a,b\n1,caf\xe9\n");
        assert!(plain::read(&csv(&path)).unwrap().is_none(), "invalid UTF-8 was read as plain");
        // Found by fuzzing (fuzz/ csv target): invalid UTF-8 in the header, which polars' sample
        // read takes and the pieces never see, was read as plain while polars refuses the file.
        let path = write(dir.path(), "header.csv", b",a,b,n\x9ame\n1,2.5,x,y\n3,NA,q,z\n");
        assert!(plain::read(&csv(&path)).unwrap().is_none(), "invalid UTF-8 in the header was read as plain");
        let err = read_csv(csv(&path)).unwrap_err().to_string();
        assert!(err.contains("header.csv") && err.contains("not valid UTF-8"), "{err}");
        // Found by fuzzing: a file whose last field is a lone opening quote made polars' parser
        // slice out of bounds (a panic with debug assertions, undefined behaviour without). Now
        // the file is refused naming the quote, and a quote closing the last field still reads.
        for (name, text) in [("lone", "a,b\n1,\""), ("lone_cr", "a\n\"\r"), ("alone", "\""), ("after_rows", "a\n1\n\"")]
        {
            let path = write(dir.path(), &format!("{name}.csv"), text.as_bytes());
            let opts = CsvSource { null_values: vec!["NA".into()], ..csv(&path) };
            assert!(plain::read(&opts).unwrap().is_none(), "{name} was read as plain");
            let err = read_csv(opts).unwrap_err().to_string();
            assert!(err.contains(&format!("{name}.csv")), "{name}: {err}");
        }
        // Found by fuzzing: a blank first line, which polars skips (its header is the next line)
        // and the plain reader took for the header. Both now read one row.
        let path = write(dir.path(), "blank_first.csv", b"\nq\n8\x01Lo8\n");
        assert!(plain::read(&csv(&path)).unwrap().is_none(), "a blank first line was read as plain");
        assert_eq!(read_csv(csv(&path)).unwrap().frame.shape(), (1, 1));
        let path = write(dir.path(), "closed.csv", b"a;b\n1;\"x;\"");
        let got = read_csv(CsvSource { delimiter: ';', null_values: vec!["NA".into()], ..csv(&path) }).unwrap();
        assert_eq!(got.frame.column("b").unwrap().str().unwrap().get(0), Some("x;"));
        // The general reader then reads them or names the problem, as before.
        let path = dir.path().join("short.csv");
        let err = read_csv(CsvSource { infer_schema_rows: 1, ..csv(&path) }).unwrap_err();
        assert!(matches!(err, IngestError::Ragged { line: 3, .. }), "{err}");
        let got =
            read_csv(CsvSource { infer_schema_rows: 1, ..csv(&dir.path().join("decimal_after_sample.csv")) }).unwrap();
        assert_eq!(got.frame.column("a").unwrap().dtype(), &DataType::Float64);
    }

    #[test]
    fn a_large_plain_file_is_parsed_in_pieces_in_row_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("id,x,name\n");
        for i in 0..50_000 {
            // Now and then a line longer than the reader's block under test (4 KiB).
            let name = if i % 9_000 == 7 { "x".repeat(9_000) } else { format!("n{}", i % 13) };
            text.push_str(&format!("{i},{}.25,{name}\n", i % 97));
        }
        let path = write(dir.path(), "big.csv", text.as_bytes());
        let (_, frame) = plain::read(&csv(&path)).unwrap().expect("plain");
        let ids: Vec<i64> = frame.column("id").unwrap().i64().unwrap().into_no_null_iter().collect();
        assert_eq!(ids, (0..50_000).collect::<Vec<i64>>());
        let (_, general) = read_csv_general(&csv(&path)).unwrap();
        assert!(same(&frame, &general));
    }
}

/// A real PostgreSQL server (a throwaway cluster): every mapped type, batches through the
/// cursor, parameters, a table by name, an empty result, and each way a read can fail.
#[test]
fn postgres_sources_read_typed_batches_and_name_what_goes_wrong() {
    use mlops_core::testing::PostgresCluster;
    let pg = PostgresCluster::start("s3cret").unwrap();
    pg.psql("postgres", "CREATE DATABASE shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE TABLE items (
           id int4 PRIMARY KEY, small int2, big int8, price numeric(10,2), ratio real, score float8,
           ok bool, day date, at timestamp, at_tz timestamptz, name text, code varchar(5), ch char(3),
           key uuid, doc json, docb jsonb, tags text[], nums int4[], grid int4[][], feeling mood);
         INSERT INTO items VALUES
           (1, 7, 9000000000, 12345.67, 0.5, 1.25, true, '2024-02-29', '2024-02-29 13:14:15.123456',
            '2024-02-29 13:14:15+02', 'Zoë', 'ab', 'x', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
            '{\"a\": 1}', '{\"b\": [1, 2]}', '{\"p, q\",r}', '{1,NULL,3}', '{{1,2},{3,4}}', 'happy'),
           (2, NULL, NULL, -0.05, NULL, NULL, false, 'infinity', NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, '{}', NULL, NULL, NULL);
         CREATE TABLE many AS SELECT g AS n, g * 0.5 AS half FROM generate_series(1, 2500) AS g;",
    )
    .unwrap();
    let env = |var: &str| (var == "SHOP_PASSWORD").then(|| "s3cret".to_string());
    let source = |query: &str| PostgresSource {
        password_env: Some("SHOP_PASSWORD".into()),
        ..PostgresSource::new(pg.url("shop"), query)
    };
    let read = |opts: &PostgresSource| postgres::read(opts, &env);

    let got = read(&source("SELECT * FROM items ORDER BY id")).unwrap();
    let f = &got.frame;
    assert_eq!(f.shape(), (2, 20));
    let types: Vec<String> = f.dtypes().iter().map(|t| t.to_string()).collect();
    assert_eq!(
        types,
        [
            "i64",
            "i64",
            "i64",
            "f64",
            "f64",
            "f64",
            "bool",
            "date",
            "datetime[μs]",
            "datetime[μs]",
            "str",
            "str",
            "str",
            "str",
            "str",
            "str",
            "str",
            "str",
            "str",
            "str"
        ],
        "{f}"
    );
    let row: Vec<String> = (0..20).map(|j| f.columns()[j].get(0).unwrap().to_string()).collect();
    assert_eq!(row[2], "9000000000");
    assert_eq!(row[3], "12345.67");
    assert_eq!(row[7], "2024-02-29");
    assert_eq!(row[8], "2024-02-29 13:14:15.123456");
    assert_eq!(row[9], "2024-02-29 11:14:15", "timestamptz in UTC");
    assert_eq!(row[10], "\"Zoë\"");
    assert_eq!(row[12], "\"x  \"", "char(n) keeps its padding, as the server sends it");
    assert_eq!(row[13], "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
    assert_eq!(row[14], "\"{\"a\": 1}\"");
    assert_eq!(row[15], "\"{\"b\": [1, 2]}\"");
    assert_eq!(row[16], "\"[\"p, q\",\"r\"]\"");
    assert_eq!(row[17], "\"[1,null,3]\"");
    assert_eq!(row[18], "\"[[1,2],[3,4]]\"");
    assert_eq!(row[19], "\"happy\"");
    let second: Vec<String> = (0..20).map(|j| f.columns()[j].get(1).unwrap().to_string()).collect();
    assert_eq!(second[3], "-0.05");
    assert_eq!(second[7], "null", "infinity is no date");
    assert_eq!(second[16], "\"[]\"");
    assert_eq!(got.server, format!("postgres://postgres@127.0.0.1:{}/shop", pg.port));

    // Batches through the cursor: the same rows whatever the batch size; parameters typed as
    // the placeholders want them; a table by name.
    let whole = read(&source("SELECT * FROM many ORDER BY n")).unwrap().frame;
    let batched = read(&PostgresSource { batch_rows: 1000, ..source("SELECT * FROM many ORDER BY n") }).unwrap();
    assert_eq!(batched.frame.height(), 2500);
    assert!(batched.frame.equals_missing(&whole));
    let some = PostgresSource {
        params: vec![serde_json::json!(10), serde_json::json!("2.5")],
        ..source("SELECT n FROM many WHERE n <= $1 AND half >= $2::float8 ORDER BY n")
    };
    assert_eq!(read(&some).unwrap().frame.height(), 6);
    let table = PostgresSource { query: None, table: Some("public.many".into()), ..source("") };
    assert_eq!(read(&table).unwrap().frame.height(), 2500);
    // An empty result keeps its columns and types.
    let empty = read(&source("SELECT n, half FROM many WHERE n < 0")).unwrap().frame;
    assert_eq!((empty.height(), empty.get_column_names().len()), (0, 2));
    // Through the Reader, with lineage: the server, database and query, never the password.
    let ingested = SourceConfig::Postgres(PostgresSource { password_env: None, ..source("SELECT 1 AS one") })
        .read("one")
        .unwrap_err()
        .to_string();
    assert!(ingested.contains("password") && !ingested.contains("s3cret"), "{ingested}");

    // What goes wrong, named.
    let err = |opts: &PostgresSource| read(opts).unwrap_err().to_string();
    let e = err(&source("SELECT n, nope FROM many"));
    assert!(
        e.contains("column \"nope\" does not exist") && e.contains("at character 11") && e.contains("query: SELECT"),
        "{e}"
    );
    let e = err(&source("SELECT '1 day'::interval AS span"));
    assert!(e.contains("column `span` has type interval") && e.contains("span::text"), "{e}");
    let e = err(&PostgresSource { password_env: Some("OTHER".into()), ..source("SELECT 1") });
    assert!(e.contains("postgres.password_env") && e.contains("OTHER"), "{e}");
    let wrong = |var: &str| (var == "SHOP_PASSWORD").then(|| "wrong".to_string());
    let e = postgres::read(&source("SELECT 1"), &wrong).unwrap_err().to_string();
    assert!(e.contains("password authentication failed for user \"postgres\"") && !e.contains("wrong"), "{e}");
    let e = err(&PostgresSource { url: pg.url("nowhere"), ..source("SELECT 1") });
    assert!(e.contains("database \"nowhere\" does not exist"), "{e}");
    let e =
        err(&PostgresSource { params: vec![serde_json::json!("ten")], ..source("SELECT n FROM many WHERE n = $1") });
    assert!(e.contains("postgres.params[0]") && e.contains("\"ten\" is not an integer"), "{e}");
    let e = err(&source("SELECT n FROM many WHERE n = $1"));
    assert!(e.contains("1 placeholder(s)") && e.contains("0 value(s)"), "{e}");
    let e = err(&PostgresSource { table: Some("many".into()), ..source("SELECT 1") });
    assert!(e.contains("not both"), "{e}");
    let e = err(&source("DELETE FROM many"));
    assert!(e.contains("read-only transaction"), "{e}");
    // A server that is not there: named, within the timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let e = err(&PostgresSource {
        url: format!("postgres://postgres@127.0.0.1:{closed}/shop"),
        connect_timeout_seconds: 2,
        ..source("SELECT 1")
    });
    assert!(e.contains(&format!("127.0.0.1:{closed}/shop")) && e.contains("onnect"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(pg.psql("shop", "SELECT count(*) FROM many").unwrap().trim(), "2500", "nothing was changed");

    // Sources on one server share a pooled connection: the second read runs in the same backend
    // as the first; a connection the server ended is not handed out again.
    let pid = |opts: &PostgresSource| -> i64 {
        read(opts).unwrap().frame.column("pid").unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().get(0).unwrap()
    };
    let backend = source("SELECT pg_backend_pid() AS pid");
    let first = pid(&backend);
    assert_eq!(pid(&backend), first, "the second read reused the first one's connection");
    pg.psql("shop", &format!("SELECT pg_terminate_backend({first})")).unwrap();
    let next = pid(&backend);
    assert_ne!(next, first, "a terminated connection is replaced, not reused");
    // A wrong password never rides on a pooled connection.
    let wrong = |var: &str| (var == "SHOP_PASSWORD").then(|| "wrong".to_string());
    let e = postgres::read(&backend, &wrong).unwrap_err().to_string();
    assert!(e.contains("password authentication failed"), "{e}");
}

/// A JSON API on loopback that paginates every way, rate-limits, fails on purpose and checks a
/// bearer token; answers its address and the number of requests it has seen per route.
fn api() -> (String, std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>) {
    use axum::extract::{Path as UrlPath, Query, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use serde_json::json;
    type Hits = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>;
    type Q = Query<std::collections::BTreeMap<String, String>>;
    let hits: Hits = Default::default();
    let count = |hits: &Hits, route: &str| -> usize {
        let mut h = hits.lock().unwrap();
        let n = h.entry(route.to_string()).or_insert(0);
        *n += 1;
        *n
    };
    let record = |i: u64| json!({"id": i, "name": format!("bird {i}"), "size": {"mass": i * 100, "wing": {"cm": i}}});
    let app = axum::Router::new()
        .route(
            "/items",
            get(move |State(h): State<Hits>, headers: HeaderMap, Query(q): Q| async move {
                count(&h, "items");
                if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some("Bearer t0k3n") {
                    return (StatusCode::UNAUTHORIZED, "who are you?").into_response();
                }
                let page: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let items: Vec<_> = if page <= 3 { (0..2).map(|k| record(page * 10 + k)).collect() } else { vec![] };
                axum::Json(json!({"data": {"items": items}})).into_response()
            }),
        )
        .route(
            "/linked/{n}",
            get(move |State(h): State<Hits>, UrlPath(n): UrlPath<u64>| async move {
                count(&h, "linked");
                let next = if n < 3 { json!(format!("/linked/{}", n + 1)) } else { json!(null) };
                axum::Json(json!({"data": {"items": [record(n)]}, "links": {"next": next}}))
            }),
        )
        .route(
            "/header/{n}",
            get(move |State(h): State<Hits>, UrlPath(n): UrlPath<u64>| async move {
                count(&h, "header");
                let mut headers = HeaderMap::new();
                if n < 2 {
                    let link = format!("</header/{}>; rel=\"next\", </header/0>; rel=\"first\"", n + 1);
                    headers.insert(header::LINK, link.parse().unwrap());
                }
                (headers, axum::Json(json!([record(n)])))
            }),
        )
        .route(
            "/cursor",
            get(move |State(h): State<Hits>, Query(q): Q| async move {
                count(&h, "cursor");
                let at = q.get("after").cloned().unwrap_or_default();
                let (items, next) = match at.as_str() {
                    "" => (vec![record(1)], json!("c2")),
                    "c2" => (vec![record(2)], json!("c3")),
                    _ => (vec![record(3)], json!(null)),
                };
                axum::Json(json!({"results": items, "meta": {"next": next}}))
            }),
        )
        .route("/loop", get(|| async { axum::Json(json!({"results": [{"id": 1}], "meta": {"next": "again"}})) }))
        .route(
            "/flaky",
            get(move |State(h): State<Hits>| async move {
                if count(&h, "flaky") <= 2 {
                    return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
                }
                axum::Json(json!([record(7)])).into_response()
            }),
        )
        .route(
            "/limited",
            get(move |State(h): State<Hits>| async move {
                if count(&h, "limited") == 1 {
                    return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "slow down").into_response();
                }
                axum::Json(json!([record(8)])).into_response()
            }),
        )
        .route(
            "/missing",
            get(move |State(h): State<Hits>| async move {
                count(&h, "missing");
                (StatusCode::NOT_FOUND, "no such birds")
            }),
        )
        .route("/garbage", get(|| async { "{\"items\": [1, 2,\n oops]}" }))
        .route(
            "/page.html",
            get(|| async {
                axum::response::Html("<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>x</td></tr></table>")
            }),
        )
        .route(
            "/search",
            post(|axum::Json(body): axum::Json<serde_json::Value>| async move {
                axum::Json(json!([{"asked": body["species"], "n": 1}]))
            }),
        )
        .with_state(hits.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://{}", rx.recv().unwrap()), hits)
}

#[test]
fn json_apis_page_through_every_kind_of_pagination_retry_and_name_what_goes_wrong() {
    let (base, hits) = api();
    let env = |var: &str| (var == "API_TOKEN").then(|| "t0k3n".to_string());
    let read = |opts: &HttpJsonSource| http_json::read(opts, &env);
    let src = |path: &str| HttpJsonSource {
        retries: Retries { max: 3, backoff_ms: 10, max_backoff_ms: 2_000 },
        ..HttpJsonSource::new(format!("{base}{path}"))
    };
    let names = |f: &DataFrame| column_names(f).join(",");

    // Page numbers, a bearer token from the environment, records under data.items, flattened.
    let mut pages = src("/items");
    pages.pagination = Some(Pagination::Page { param: "page".into(), start: 1 });
    pages.record_path = Some("data.items".into());
    pages
        .headers
        .insert("Authorization".into(), HeaderValue::Env { env: "API_TOKEN".into(), prefix: "Bearer ".into() });
    pages.headers.insert("Accept".into(), HeaderValue::Literal("application/json".into()));
    let got = read(&pages).unwrap();
    assert_eq!((got.frame.height(), got.pages), (6, 4), "three pages of two, then an empty one");
    assert_eq!(names(&got.frame), "id,name,size.mass,size.wing.cm");
    // A next link in the page; the Link header; a cursor.
    let mut linked = src("/linked/1");
    linked.pagination = Some(Pagination::NextLink("links.next".into()));
    linked.record_path = Some("data.items".into());
    linked.separator = "_".into();
    linked.max_level = Some(1);
    let got = read(&linked).unwrap();
    assert_eq!((got.frame.height(), got.pages), (3, 3));
    assert_eq!(names(&got.frame), "id,name,size_mass,size_wing", "deeper objects stay JSON text");
    let mut by_header = src("/header/0");
    by_header.pagination = Some(Pagination::NextLink("link_header".into()));
    assert_eq!(read(&by_header).unwrap().frame.height(), 3);
    let mut cursor = src("/cursor");
    cursor.pagination = Some(Pagination::Cursor { param: "after".into(), path: "meta.next".into() });
    cursor.record_path = Some("results".into());
    assert_eq!(read(&cursor).unwrap().frame.height(), 3);
    // A POST with a body.
    let mut post = src("/search");
    post.method = HttpMethod::Post;
    post.body = Some(serde_json::json!({"species": "Adelie"}));
    assert_eq!(read(&post).unwrap().frame.column("asked").unwrap().str().unwrap().get(0), Some("Adelie"));

    // Failures retried: two 503s, then the page; a 429 waits its Retry-After.
    assert_eq!(read(&src("/flaky")).unwrap().frame.height(), 1);
    assert_eq!(hits.lock().unwrap()["flaky"], 3);
    let started = Instant::now();
    assert_eq!(read(&src("/limited")).unwrap().frame.height(), 1);
    assert!(started.elapsed() >= std::time::Duration::from_millis(950), "Retry-After: 1 was honoured");
    // The rate limit: 4 requests at 8 a second take at least 3/8 s.
    let mut paced = pages.clone();
    paced.rate_limit = Some(8.0);
    let started = Instant::now();
    read(&paced).unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(370), "{:?}", started.elapsed());

    // What goes wrong, named.
    let err = |opts: &HttpJsonSource| read(opts).unwrap_err().to_string();
    let e = err(&src("/missing"));
    assert!(e.contains(&format!("{base}/missing")) && e.contains("404") && e.contains("no such birds"), "{e}");
    assert_eq!(hits.lock().unwrap()["missing"], 1, "a 4xx is not retried");
    let mut no_token = pages.clone();
    no_token.headers.remove("Authorization");
    let e = err(&no_token);
    assert!(e.contains("401") && e.contains("who are you?"), "{e}");
    let e = err(&src("/garbage"));
    assert!(
        e.contains(&format!("{base}/garbage")) && e.contains("not JSON") && e.contains("at byte 18 (line 2, column 2)"),
        "{e}"
    );
    let mut looping = src("/loop");
    looping.pagination = Some(Pagination::Cursor { param: "after".into(), path: "meta.next".into() });
    looping.record_path = Some("results".into());
    let e = err(&looping);
    assert!(e.contains("\"again\" came twice"), "{e}");
    let mut literal = src("/items");
    literal.headers.insert("Authorization".into(), HeaderValue::Literal("Bearer t0k3n".into()));
    let e = err(&literal);
    assert!(e.contains("http_json.headers.Authorization") && e.contains("env"), "{e}");
    let mut unset = src("/items");
    unset
        .headers
        .insert("X-Api-Key".into(), HeaderValue::Env { env: "NOT_SET_ANYWHERE".into(), prefix: String::new() });
    let e = err(&unset);
    assert!(e.contains("NOT_SET_ANYWHERE"), "{e}");
    let e = err(&HttpJsonSource { record_path: Some("data.nope".into()), ..src("/linked/3") });
    assert!(e.contains("no key `nope`"), "{e}");
    // Nobody listening: retried, then named within the timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let e =
        err(&HttpJsonSource { timeout_seconds: 2.0, ..HttpJsonSource::new(format!("http://127.0.0.1:{closed}/x")) }
            .with_retries(Retries { max: 2, backoff_ms: 10, max_backoff_ms: 100 }));
    assert!(e.contains(&format!("127.0.0.1:{closed}/x")) && e.contains("after 3 attempt(s)"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let e = err(&HttpJsonSource::new("ftp://example.com/x"));
    assert!(e.contains("http_json.url"), "{e}");
}

/// HTML tables against `pandas.read_html` (lxml) on pages written here: spans across a two-row
/// head and the body, numbers with thousands separators, missing cells, line breaks, a nested
/// table (the outer one, the inner one, one chosen by `match`), a table without a header.
#[test]
fn html_tables_read_as_pandas_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write(
        dir.path(),
        "spans.html",
        br#"<html><body><p>Birds</p>
<table id="birds">
  <thead>
    <tr><th rowspan="2">Island</th><th colspan="2">Size</th><th rowspan="2">Seen</th></tr>
    <tr><th>Mass (g)</th><th>Wing</th></tr>
  </thead>
  <tbody>
    <tr><td rowspan="2">Biscoe</td><td>3,750</td><td>18.5</td><td>True</td></tr>
    <tr><td>4,100</td><td>NA</td><td>False</td></tr>
    <tr><td>Dream<br>north</td><td colspan="2">1,234,567</td><td>true</td></tr>
    <tr><td>  Torgersen   east </td><td></td><td>19</td><td>False</td></tr>
  </tbody>
</table></body></html>"#,
    );
    let nested = write(
        dir.path(),
        "nested.html",
        br#"<html><body>
<table>
  <tr><th>Site</th><th>Details</th></tr>
  <tr><td>A</td><td>x<table><tr><th>k</th><th>v</th></tr><tr><td>depth</td><td>12</td></tr><tr><td>temp</td><td>3.5</td></tr></table></td></tr>
  <tr><td>B</td><td>plain</td></tr>
</table>
<table style="display: none"><tr><th>hidden</th></tr><tr><td>1</td></tr></table>
<table><tr><td>1</td><td>x</td><td>2.5</td></tr><tr><td>2</td><td>y</td></tr></table>
</body></html>"#,
    );
    let cases: [(&Path, usize, Option<&str>); 6] = [
        (&spans, 0, None),
        (&nested, 0, None),
        (&nested, 1, None),
        (&nested, 2, None),
        (&nested, 0, Some("temp")),
        (&nested, 1, Some("depth")),
    ];
    for (page, index, matching) in cases {
        let source = SourceConfig::HtmlTable(HtmlTableSource {
            index,
            matching: matching.map(str::to_string),
            ..HtmlTableSource::file(page)
        });
        let frame = source.read("t").unwrap().frame;
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(repo_file("tests/reference/read_html.py")).arg(page).arg(index.to_string());
        if let Some(m) = matching {
            cmd.arg(m);
        }
        let out = cmd.output().expect("python3 with pandas and lxml (make test-deps)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pandas: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let case = format!("{} table {index} match {matching:?}", page.display());
        assert_eq!(serde_json::json!(column_names(&frame)), pandas["columns"], "{case}");
        let kinds: Vec<&str> = frame
            .dtypes()
            .iter()
            .map(|t| match t {
                DataType::Int64 => "int",
                DataType::Float64 => "float",
                DataType::Boolean => "bool",
                _ => "str",
            })
            .collect();
        // An integer column with a missing cell is float64 in pandas (NumPy has no missing
        // integer); the CSV reader keeps it integer, with a null.
        for (j, (ours, theirs)) in kinds.iter().zip(pandas["kinds"].as_array().unwrap()).enumerate() {
            let widened = *ours == "int" && theirs == "float" && frame.columns()[j].null_count() > 0;
            assert!(theirs == ours || widened, "{case}: column {j} is {ours} here, {theirs} in pandas");
        }
        let number = |v: &serde_json::Value| v.as_f64().map_or_else(|| v.clone(), |x| serde_json::json!(x));
        let rows: Vec<Vec<serde_json::Value>> = mlops_core::frame::rows_from_frame(&frame)
            .unwrap()
            .iter()
            .map(|r| {
                column_names(&frame)
                    .iter()
                    .map(|c| number(&r.get(c).map_or(serde_json::Value::Null, |v| v.to_json())))
                    .collect()
            })
            .collect();
        let theirs: Vec<Vec<serde_json::Value>> = pandas["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(number).collect())
            .collect();
        assert_eq!(rows, theirs, "{case}");
    }

    // `mlops ingest page.html` reads the first table; bad input is named.
    let first = SourceConfig::from_extension(&spans).unwrap().read("page").unwrap();
    assert_eq!(first.frame.shape(), (4, 4));
    assert_eq!(first.lineage.format, "html_table");
    let err = |s: HtmlTableSource| SourceConfig::HtmlTable(s).read("t").unwrap_err().to_string();
    let e = err(HtmlTableSource { index: 3, ..HtmlTableSource::file(&nested) });
    assert!(e.contains("nested.html") && e.contains("index 3") && e.contains("3 tables"), "{e}");
    let e = err(HtmlTableSource { matching: Some("penguins".into()), ..HtmlTableSource::file(&spans) });
    assert!(e.contains("no tables matching `penguins`"), "{e}");
    let e = err(HtmlTableSource { selector: Some("table[".into()), ..HtmlTableSource::file(&spans) });
    assert!(e.contains("html_table.selector"), "{e}");
    let e = err(HtmlTableSource { header_row: Some(9), ..HtmlTableSource::file(&spans) });
    assert!(e.contains("html_table.header_row") && e.contains("6 row(s)"), "{e}");
    let e = err(HtmlTableSource { selector: Some("#nothing".into()), ..HtmlTableSource::file(&spans) });
    assert!(e.contains("no tables selected by `#nothing`"), "{e}");
    let e = err(HtmlTableSource::file(dir.path().join("none.html")));
    assert!(e.contains("none.html"), "{e}");
    // Malformed HTML is read as a browser reads it: unclosed cells and rows close themselves.
    let broken = write(dir.path(), "broken.html", b"<table><tr><th>a<th>b<tr><td>1<td>x<tr><td>2");
    let frame = SourceConfig::from_extension(&broken).unwrap().read("t").unwrap().frame;
    assert_eq!(column_names(&frame), ["a", "b"]);
    assert_eq!(frame.height(), 2);
    // A page by URL; a URL that answers an error; neither a path nor a URL.
    let (base, _) = api();
    let by_url = HtmlTableSource { path: None, url: Some(format!("{base}/page.html")), ..HtmlTableSource::file("") };
    let read = SourceConfig::HtmlTable(by_url.clone()).read("t").unwrap();
    assert_eq!((column_names(&read.frame), read.frame.height()), (vec!["a".to_string(), "b".to_string()], 1));
    assert_eq!(read.lineage.uri, format!("{base}/page.html"));
    let e = err(HtmlTableSource { url: Some(format!("{base}/missing")), ..by_url.clone() });
    assert!(e.contains(&format!("{base}/missing")) && e.contains("404"), "{e}");
    let e = err(HtmlTableSource { url: None, ..by_url.clone() });
    assert!(e.contains("html_table.path") && e.contains("`path` or as `url`"), "{e}");
    let e = err(HtmlTableSource { path: Some(spans.clone()), ..by_url });
    assert!(e.contains("html_table.path"), "{e}");
    // A selector and an explicit header row.
    let picked =
        HtmlTableSource { selector: Some("table#birds".into()), header_row: Some(1), ..HtmlTableSource::file(&spans) };
    let frame = SourceConfig::HtmlTable(picked).read("t").unwrap().frame;
    assert_eq!(column_names(&frame), ["Island", "Mass (g)", "Wing", "Seen"]);
    assert_eq!(frame.height(), 4);
}

fn kafka(broker: &str, topic: &str) -> KafkaSource {
    KafkaSource {
        brokers: vec![broker.to_string()],
        topic: topic.into(),
        group: None,
        from: KafkaFrom::default(),
        until: KafkaUntil::default(),
        format: MessageFormat::Json,
        columns: None,
        separator: ".".into(),
        max_level: None,
        timeout_seconds: 5.0,
    }
}

/// A real Kafka-protocol broker (tansu): a topic of two partitions read whole, in part, again by
/// the offsets lineage recorded, from a time, through a consumer group, as CSV; and each way a
/// read fails.
#[test]
fn kafka_topics_read_into_frames_with_their_offsets() {
    use mlops_core::testing::KafkaBroker;
    let broker = KafkaBroker::start().unwrap();
    let at = broker.address();
    broker.create_topic("events", 2).unwrap();
    let t0 = 1_700_000_000_000;
    let events: Vec<(i32, i64, String)> = (0..8)
        .map(|i| {
            (i % 2, t0 + i64::from(i) * 1000, format!(r#"{{"id": {i}, "who": {{"name": "n{i}", "age": {}}}}}"#, 20 + i))
        })
        .collect();
    for (p, t, v) in &events {
        broker.produce("events", *p, &[(*t, v)]).unwrap();
    }

    let whole = SourceConfig::Kafka(kafka(&at, "events")).read("events").unwrap();
    assert_eq!(column_names(&whole.frame), ["id", "who.name", "who.age"]);
    let ids: Vec<i64> = whole.frame.column("id").unwrap().i64().unwrap().into_no_null_iter().collect();
    assert_eq!(ids, [0, 2, 4, 6, 1, 3, 5, 7], "partition 0's messages, then partition 1's");
    assert_eq!(whole.lineage.uri, format!("kafka://{at}/events"));
    assert_eq!(whole.lineage.format, "kafka");
    let read = whole.lineage.kafka.clone().unwrap();
    let ranges: Vec<(i32, i64, i64, usize)> =
        read.partitions.iter().map(|p| (p.partition, p.from, p.until, p.messages)).collect();
    assert_eq!(ranges, [(0, 0, 4, 4), (1, 0, 4, 4)]);

    // Part of it, then the same offsets again: the same frame, the same hash.
    let part = KafkaSource {
        until: KafkaUntil::Limits(KafkaLimits { max_messages: Some(3), ..Default::default() }),
        ..kafka(&at, "events")
    };
    let first = SourceConfig::Kafka(part).read("events").unwrap();
    assert_eq!(first.frame.height(), 3);
    let offsets = first.lineage.kafka.unwrap();
    let again = KafkaSource {
        from: KafkaFrom::Offsets(offsets.partitions.iter().map(|p| (p.partition, p.from)).collect()),
        until: KafkaUntil::Limits(KafkaLimits {
            offsets: Some(offsets.partitions.iter().map(|p| (p.partition, p.until)).collect()),
            ..Default::default()
        }),
        ..kafka(&at, "events")
    };
    let second = SourceConfig::Kafka(again).read("events").unwrap();
    assert_eq!(second.lineage.sha256, first.lineage.sha256);
    assert!(second.frame.equals_missing(&first.frame));

    // From a time: the messages at or after it.
    let later = KafkaSource { from: KafkaFrom::Named("2023-11-14T22:13:24Z".into()), ..kafka(&at, "events") };
    let frame = SourceConfig::Kafka(later).read("events").unwrap().frame;
    let ids: Vec<i64> = frame.column("id").unwrap().i64().unwrap().into_no_null_iter().collect();
    assert_eq!(ids, [4, 6, 5, 7]);

    // A limit of more messages than there are ends at the end.
    let many = KafkaSource {
        until: KafkaUntil::Limits(KafkaLimits { max_messages: Some(100), ..Default::default() }),
        ..kafka(&at, "events")
    };
    assert_eq!(SourceConfig::Kafka(many).read("events").unwrap().frame.height(), 8);
    // From a time, timestamps out of order: the first message at or after it, and all after it.
    broker.create_topic("times", 1).unwrap();
    broker.produce("times", 0, &[(t0, r#"{"id": 0}"#), (t0 + 5000, r#"{"id": 1}"#), (t0, r#"{"id": 2}"#)]).unwrap();
    let since = KafkaSource { from: KafkaFrom::Named("2023-11-14T22:13:22Z".into()), ..kafka(&at, "times") };
    let read = SourceConfig::Kafka(since).read("times").unwrap();
    let ids: Vec<i64> = read.frame.column("id").unwrap().i64().unwrap().into_no_null_iter().collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(read.lineage.kafka.unwrap().partitions[0].from, 1);

    // From the latest: nothing yet, with the named columns.
    let latest = KafkaSource {
        from: KafkaFrom::Named("latest".into()),
        columns: Some(vec!["id".into(), "who.name".into()]),
        ..kafka(&at, "events")
    };
    let empty = SourceConfig::Kafka(latest).read("events").unwrap().frame;
    assert_eq!((column_names(&empty), empty.height()), (vec!["id".to_string(), "who.name".to_string()], 0));

    // A consumer group goes on where its last committed read stopped.
    let grouped = KafkaSource { group: Some("nightly".into()), ..kafka(&at, "events") };
    let read = SourceConfig::Kafka(grouped.clone()).read("events").unwrap();
    assert_eq!(read.frame.height(), 8);
    let again = SourceConfig::Kafka(grouped.clone()).read("events").unwrap();
    assert_eq!(again.frame.height(), 8, "nothing is committed until the dataset is written");
    commit_offsets(read.lineage.kafka.as_ref().unwrap(), std::time::Duration::from_secs(5)).unwrap();
    broker.produce("events", 1, &[(t0 + 9000, r#"{"id": 8, "who": {"name": "n8", "age": 28}}"#)]).unwrap();
    let next = SourceConfig::Kafka(grouped).read("events").unwrap();
    let ids: Vec<i64> = next.frame.column("id").unwrap().i64().unwrap().into_no_null_iter().collect();
    assert_eq!(ids, [8]);
    assert_eq!(next.lineage.kafka.unwrap().partitions[1].from, 4);

    // CSV lines, typed as a CSV file's.
    broker.create_topic("lines", 1).unwrap();
    broker
        .produce("lines", 0, &[(t0, "1,Adelie,39.1"), (t0, "2,\"Gentoo, big\",NA\n"), (t0, "3,Chinstrap,46.5")])
        .unwrap();
    let lines = KafkaSource {
        format: MessageFormat::Csv,
        columns: Some(vec!["id".into(), "species".into(), "bill".into()]),
        ..kafka(&at, "lines")
    };
    let frame = SourceConfig::Kafka(lines.clone()).read("lines").unwrap().frame;
    assert_eq!(frame.column("id").unwrap().dtype(), &DataType::Int64);
    assert_eq!(frame.column("bill").unwrap().null_count(), 1);
    assert_eq!(frame.column("species").unwrap().str().unwrap().get(1), Some("Gentoo, big"));

    // A message with an unclosed quote is named, not joined to the next.
    broker.create_topic("quotes", 1).unwrap();
    broker.produce("quotes", 0, &[(t0, "1,\"Adelie,39.1"), (t0, "2,Gentoo,40.0")]).unwrap();
    let e =
        SourceConfig::Kafka(KafkaSource { topic: "quotes".into(), ..lines.clone() }).read("q").unwrap_err().to_string();
    assert!(e.contains("partition 0 offset 0") && e.contains("quote"), "{e}");

    // What goes wrong, named.
    let err = |opts: KafkaSource| SourceConfig::Kafka(opts).read("t").unwrap_err().to_string();
    let e = err(kafka(&at, "nope"));
    assert!(e.contains("nope") && e.contains("does not exist") && e.contains("events"), "{e}");
    let e = err(KafkaSource { columns: None, ..lines });
    assert!(e.contains("kafka.columns"), "{e}");
    let e = err(KafkaSource { from: KafkaFrom::Named("yesterday".into()), ..kafka(&at, "events") });
    assert!(e.contains("kafka.from") && e.contains("yesterday"), "{e}");
    let e = err(KafkaSource { until: KafkaUntil::Named("forever".into()), ..kafka(&at, "events") });
    assert!(e.contains("kafka.until") && e.contains("forever"), "{e}");
    let e = err(KafkaSource { until: KafkaUntil::Limits(KafkaLimits::default()), ..kafka(&at, "events") });
    assert!(e.contains("kafka.until"), "{e}");
    let e = err(KafkaSource { from: KafkaFrom::Offsets([(0, -1)].into()), ..kafka(&at, "events") });
    assert!(e.contains("kafka.from") && e.contains("negative"), "{e}");
    let e = err(KafkaSource { brokers: Vec::new(), ..kafka(&at, "events") });
    assert!(e.contains("kafka.brokers"), "{e}");
    let e = err(KafkaSource { group: Some(String::new()), ..kafka(&at, "events") });
    assert!(e.contains("group") && e.contains("1 to 32767 bytes"), "{e}");
    broker.create_topic("mixed", 1).unwrap();
    broker.produce("mixed", 0, &[(t0, r#"{"id": 1}"#), (t0, "not json")]).unwrap();
    let e = err(kafka(&at, "mixed"));
    assert!(e.contains("partition 0 offset 1") && e.contains("not JSON"), "{e}");
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let started = Instant::now();
    let e = err(KafkaSource { timeout_seconds: 1.0, ..kafka(&nobody, "events") });
    assert!(e.contains(&nobody), "{e}");
    assert!(started.elapsed().as_secs_f64() < 10.0, "an unreachable broker is reported within the timeout");
    // A broker that wants clients to authenticate refuses this one: said so, within the timeout.
    let guarded = KafkaBroker::start_authenticating().unwrap();
    let started = Instant::now();
    let e = err(KafkaSource { timeout_seconds: 2.0, ..kafka(&guarded.address(), "events") });
    assert!(e.contains(&guarded.address()) && e.contains("authenticat"), "{e}");
    assert!(started.elapsed().as_secs_f64() < 10.0, "{e}");
}
