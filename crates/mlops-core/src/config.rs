//! Loading typed configuration from YAML, with errors that name the file, the key path and the line.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::{CoreError, Result};

/// Reads `path` and deserializes it into `T`.
///
/// `T` should use `#[serde(deny_unknown_fields)]` so that a misspelt key fails here, before any work
/// starts. Enum variants with data are written as one-key maps: `fill: {constant: 0}`.
pub fn load_yaml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io("cannot read config", path, e))?;
    parse_yaml(&text, path)
}

/// Deserializes YAML text; `origin` names the file in errors.
pub fn parse_yaml<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    let de = serde_yaml::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
    // Enums with data are written as one-key maps (`csv: {path: ...}`) rather than YAML tags
    // (`!csv`), which is what people write by hand.
    let result: std::result::Result<T, serde_yaml::Error> =
        serde_yaml::with::singleton_map_recursive::deserialize(tracked);
    result.map_err(|inner| {
        let key = track.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let location = inner.location();
        // The YAML error text repeats the position at its end; drop that part, we print our own.
        let mut message = inner.to_string();
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        // The YAML error may start with the path of the enclosing map; we print the full key.
        if let Some((prefix, rest)) = message.split_once(": ")
            && !prefix.contains(' ')
            && key.starts_with(prefix)
        {
            message = rest.to_string();
        }
        CoreError::Config {
            file: origin.to_path_buf(),
            key,
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
        }
    })
}

/// A configuration error found by a check after parsing (a value out of range, an unknown column).
pub fn invalid(origin: &Path, key: impl Into<String>, message: impl Into<String>) -> CoreError {
    CoreError::Config { file: origin.to_path_buf(), key: key.into(), line: None, column: None, message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        threshold: f64,
    }

    #[test]
    fn unknown_key_names_file_key_and_line() {
        let err = parse_yaml::<Outer>("inner:\n  threshold: 0.5\n  treshold: 2\n", Path::new("c.yaml")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.yaml: line 3"), "{text}");
        assert!(text.contains("key `inner.treshold`: unknown field `treshold`"), "{text}");
        assert!(text.contains("unknown field `treshold`"), "{text}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse_yaml::<Outer>("inner:\n  threshold: lots\n", Path::new("c.yaml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("key `inner.threshold`"), "{text}");
    }
}
