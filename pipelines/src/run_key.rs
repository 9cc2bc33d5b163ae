//! One builder for the content keys under which the runs reuse earlier outputs: a step's outputs
//! are reused when the hash of everything they depend on is unchanged. Every key also covers the
//! toolkit's version and the source commit, so a new build never serves an old build's results.

use std::sync::OnceLock;

use serde::Serialize;

/// The inputs of one step's outputs, hashed into a key by [`RunKey::finish`].
pub(crate) struct RunKey {
    parts: Vec<serde_json::Value>,
    encodable: bool,
}

impl RunKey {
    /// A key for the outputs of `step` (the name keeps keys of different steps apart).
    pub(crate) fn new(step: &'static str) -> RunKey {
        RunKey { parts: vec![serde_json::Value::from(step)], encodable: true }
    }

    /// Adds an input the outputs depend on.
    pub(crate) fn with(mut self, input: &impl Serialize) -> RunKey {
        match serde_json::to_value(input) {
            Ok(value) => self.parts.push(value),
            Err(_) => self.encodable = false,
        }
        self
    }

    /// The key: the SHA-256 of the inputs, the toolkit's version and the source commit; `None`
    /// when an input cannot be encoded (then nothing is reused or recorded).
    pub(crate) fn finish(self) -> Option<String> {
        if !self.encodable {
            return None;
        }
        let inputs = (self.parts, env!("CARGO_PKG_VERSION"), source_commit());
        mlops_core::hash::sha256_json(&inputs).ok()
    }
}

/// The source commit of the working directory, when it is a git checkout (asked once per process).
pub(crate) fn source_commit() -> Option<String> {
    static COMMIT: OnceLock<Option<String>> = OnceLock::new();
    COMMIT
        .get_or_init(|| {
            let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::RunKey;

    #[test]
    fn a_key_changes_with_any_input_and_with_the_step() {
        let key = |step, a: u32, b: &str| RunKey::new(step).with(&a).with(&b).finish();
        let base = key("fit", 1, "x");
        assert!(base.as_deref().is_some_and(|k| k.len() == 64), "{base:?}");
        assert_eq!(base, key("fit", 1, "x"), "the same inputs give the same key");
        assert_ne!(base, key("fit", 2, "x"));
        assert_ne!(base, key("fit", 1, "y"));
        assert_ne!(base, key("features", 1, "x"));
    }

    #[test]
    fn an_input_that_cannot_be_encoded_gives_no_key() {
        let map: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        assert_eq!(RunKey::new("fit").with(&map).finish(), None);
    }
}
