//! The package manifest on any bytes: read, or refused naming the file; a listed name never
//! reaches outside the package. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

thread_local! {
    static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary folder");
}

fuzz_target!(|data: &[u8]| {
    let dir = DIR.with(|d| d.path().to_path_buf());
    std::fs::write(dir.join("manifest.json"), data).expect("the manifest is written");
    match step16_package::read_manifest(&dir) {
        Ok(manifest) => {
            for f in &manifest.files {
                assert!(!f.path.is_empty() && !f.path.contains(['/', '\\']) && !f.path.starts_with('.'), "{}", f.path);
            }
            // Loading it checks every listed file against the folder (none are there).
            let _ = step16_package::load(&dir);
        }
        Err(e) => assert!(e.to_string().contains("manifest.json"), "the error does not name the file: {e}"),
    }
});
