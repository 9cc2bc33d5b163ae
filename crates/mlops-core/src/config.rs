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

/// A configuration error found by a check after parsing (a value out of range, an unknown column),
/// with the line of the key in `origin` when the file can be read and the key found there.
pub fn invalid(origin: &Path, key: impl Into<String>, message: impl Into<String>) -> CoreError {
    let key = key.into();
    let line = std::fs::read_to_string(origin).ok().and_then(|text| key_line(&text, &key));
    CoreError::Config { file: origin.to_path_buf(), key, line, column: None, message: message.into() }
}

/// The 1-based line of a dotted key path (`gate.margin`, `alerts[2].when`) in YAML text written
/// in block style; a key inside a flow mapping (`gate: {margin: -1}`) gives the line of the
/// deepest key found. List indices are not followed: the first match serves.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let want: Vec<&str> = key.split('.').map(|k| k.split('[').next().unwrap_or(k).trim()).collect();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut best: Option<(usize, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let content = raw.split(" #").next().unwrap_or(raw);
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // A list item's keys sit two columns in, level with the lines that follow it.
        let (indent, item) = match trimmed.strip_prefix("- ") {
            Some(item) => (content.len() - trimmed.len() + 2, item),
            None => (content.len() - trimmed.len(), trimmed),
        };
        let Some((name, rest)) = item.split_once(':') else { continue };
        let name = name.trim().trim_matches(|c| c == '"' || c == '\'');
        path.retain(|(at, _)| *at < indent);
        path.push((indent, name.to_string()));
        let depth = path.iter().zip(&want).take_while(|((_, a), b)| a == *b).count();
        if depth == path.len() && best.is_none_or(|(d, _)| depth > d) {
            best = Some((depth, i + 1));
            if depth == want.len() {
                break;
            }
            // `key: {a: 1}`: the rest of the path lies on this line.
            let rest = rest.trim_start();
            if rest.starts_with('{') && want[depth..].iter().all(|k| rest.contains(&format!("{k}:"))) {
                best = Some((want.len(), i + 1));
                break;
            }
        }
    }
    best.map(|(_, line)| line)
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
    fn a_checked_key_is_found_on_its_line() {
        let text = "# policy\nmodel: churn\ngate:\n  metric: f1\n  margin: -1 # too low\nretention: {keep_last: 0}\nalerts:\n  - {name: a}\n  - name: b\n    when: x\n";
        assert_eq!(key_line(text, "gate.margin"), Some(5));
        assert_eq!(key_line(text, "gate"), Some(3));
        assert_eq!(key_line(text, "retention.keep_last"), Some(6));
        assert_eq!(key_line(text, "alerts[1].when"), Some(10));
        assert_eq!(key_line(text, "nowhere.at_all"), None);
        let dir = std::env::temp_dir().join(format!("mlops-core-key-line-{}", std::process::id()));
        std::fs::write(&dir, text).unwrap();
        let err = invalid(&dir, "gate.margin", "-1 is not a number >= 0").to_string();
        let _ = std::fs::remove_file(&dir);
        assert!(err.contains("line 5") && err.contains("gate.margin"), "{err}");
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
