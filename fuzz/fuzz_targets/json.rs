//! The JSON and NDJSON readers on any bytes: a frame or an error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use step01_ingest::{JsonSource, Reader, SourceConfig};

thread_local! {
    static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary folder");
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, text)) = data.split_first() else { return };
    let path = DIR.with(|d| d.path().join("fuzz.json"));
    std::fs::write(&path, text).expect("the file is written");
    let opts = JsonSource {
        record_path: (options & 1 == 1).then(|| "data".to_string()),
        max_level: (options & 2 == 2).then_some(usize::from(options >> 4)),
        ..JsonSource::new(&path)
    };
    let config = if options & 8 == 0 { SourceConfig::Json(opts) } else { SourceConfig::Ndjson(opts) };
    if let Err(e) = config.read("fuzz") {
        assert!(e.to_string().contains("fuzz.json"), "the error does not name the file: {e}");
    }
});
