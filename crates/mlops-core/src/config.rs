//! Loading typed configuration from YAML, with errors that name the file, the key path and the
//! line.

use std::path::Path;

use std::collections::BTreeMap;

use serde::Deserialize;
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

/// Deserializes an externally tagged enum that may also be written as a bare variant name when
/// all of that variant's options have defaults: `bool` reads as `{bool: {}}`, and a bare YAML
/// `null` as the variant named `null`. Use with `#[serde(deserialize_with = ...)]`.
pub fn bare_or_tagged<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error as _;
    let value = serde_json::Value::deserialize(deserializer)?;
    let name = match &value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => Some("null".to_string()),
        _ => None,
    };
    match name {
        None => T::deserialize(value).map_err(D::Error::custom),
        // A unit variant reads from its name; a variant with options from `{name: {}}`.
        Some(name) => T::deserialize(serde_json::Value::String(name.clone())).or_else(|unit_err| {
            let mut map = serde_json::Map::new();
            map.insert(name, serde_json::Value::Object(serde_json::Map::new()));
            T::deserialize(serde_json::Value::Object(map)).map_err(|_| D::Error::custom(unit_err))
        }),
    }
}

/// [`bare_or_tagged`] for every value of a map (`types: {Active: bool, Created: {date: {...}}}`).
pub fn bare_or_tagged_values<'de, D, T>(deserializer: D) -> std::result::Result<BTreeMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    struct Bare<T>(T);
    impl<'de, T: DeserializeOwned> Deserialize<'de> for Bare<T> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            bare_or_tagged(d).map(Bare)
        }
    }
    let map = BTreeMap::<String, Bare<T>>::deserialize(deserializer)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
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

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Kind {
        Plain,
        Null,
        Tuned {
            #[serde(default)]
            level: u8,
        },
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Kinds {
        #[serde(deserialize_with = "bare_or_tagged_values")]
        kinds: BTreeMap<String, Kind>,
        #[serde(deserialize_with = "bare_or_tagged")]
        one: Kind,
    }

    #[test]
    fn bare_names_and_tagged_maps_read_alike() {
        let k: Kinds = parse_yaml(
            "kinds: {a: plain, b: tuned, c: {tuned: {level: 3}}}
one: null
",
            Path::new("k.yaml"),
        )
        .unwrap();
        assert_eq!(k.kinds["a"], Kind::Plain);
        assert_eq!(k.kinds["b"], Kind::Tuned { level: 0 });
        assert_eq!(k.kinds["c"], Kind::Tuned { level: 3 });
        assert_eq!(k.one, Kind::Null);
        let err = parse_yaml::<Kinds>(
            "kinds: {a: plian}
one: plain
",
            Path::new("k.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("key `kinds.a`") && err.contains("unknown variant `plian`"), "{err}");
        let err = parse_yaml::<Kinds>(
            "kinds: {a: {tuned: {levle: 1}}}
one: plain
",
            Path::new("k.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("key `kinds.a`") && err.contains("unknown field `levle`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse_yaml::<Outer>("inner:\n  threshold: lots\n", Path::new("c.yaml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("key `inner.threshold`"), "{text}");
    }
}
