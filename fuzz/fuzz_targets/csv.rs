//! The plain CSV reader against polars' reader: on any bytes the plain reader takes, both give
//! the same frame (types, values and missing values); bytes it leaves to polars never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use step01_ingest::{CsvSource, fuzzing};

thread_local! {
    static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary folder");
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options; the rest is the file.
    let Some((&options, text)) = data.split_first() else { return };
    let path = DIR.with(|d| d.path().join("fuzz.csv"));
    std::fs::write(&path, text).expect("the file is written");
    let delimiter = [',', ';', '\t', '|'][usize::from(options & 3)];
    let opts = CsvSource {
        delimiter,
        null_values: if options & 4 == 0 { vec!["NA".into()] } else { Vec::new() },
        infer_schema_rows: 1 + usize::from(options >> 3),
        ..CsvSource::new(&path)
    };
    let general = fuzzing::general(&opts);
    match fuzzing::plain(&opts) {
        Ok(Some(frame)) => {
            let general = general.unwrap_or_else(|e| panic!("the plain reader read the file, polars refused it: {e}"));
            assert!(
                frame.schema() == general.schema() && frame.equals_missing(&general),
                "the readers differ\nplain {frame:?}\ngeneral {general:?}"
            );
        }
        Ok(None) => {}
        Err(e) => panic!("the plain reader fails only to open or read the file: {e}"),
    }
});
