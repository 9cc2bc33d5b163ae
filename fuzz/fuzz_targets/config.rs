//! Config loading on any text: the data, training and deployment configs are read and checked,
//! or refused with an error naming the file; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipelines::{DataConfig, DeploymentConfig, TrainingConfig};

thread_local! {
    static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary folder");
}

fuzz_target!(|data: &[u8]| {
    let path = DIR.with(|d| d.path().join("fuzz.yaml"));
    std::fs::write(&path, data).expect("the file is written");
    let named = |e: &dyn std::fmt::Display| {
        assert!(e.to_string().contains("fuzz.yaml"), "the error does not name the file: {e}")
    };
    match DataConfig::load(&path) {
        Ok(config) => {
            if let Err(e) = config.check(&path) {
                named(&e);
            }
        }
        Err(e) => named(&e),
    }
    if let Err(e) = TrainingConfig::load(&path) {
        named(&e);
    }
    if let Err(e) = DeploymentConfig::load(&path) {
        named(&e);
    }
});
