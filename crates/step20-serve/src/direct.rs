//! MLflow JSON bodies read straight into the cells of the signature's columns, without building
//! a `serde_json::Value` tree: the two shapes clients send most (`dataframe_records`, and
//! `dataframe_split` with `columns`, what MLflow's client sends for a pandas frame).
//!
//! Anything else, and any body this reader does not accept, goes to the general reader in
//! [`crate::protocol`], which also words every error: this path only ever answers rows that the
//! general one would answer the same.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::scorer::{Cell, Token};

/// The body could not be read by this path; the general reader takes it.
pub(crate) struct Declined;

/// The cells of a body: `cells[i * width + j]` is row `i`'s cell for signature input `j`.
pub(crate) struct Cells<'a> {
    pub rows: usize,
    width: usize,
    cells: Vec<Option<Token<'a>>>,
}

impl<'a> Cells<'a> {
    /// Row `i`'s cell for signature input `j` (`None`: the request lacks the column).
    pub fn get(&self, i: usize, j: usize) -> Option<Cell<'_>> {
        self.cells[i * self.width + j].as_ref().map(Cell::Token)
    }
}

/// Reads `body` when it is an object with `dataframe_records`, or `dataframe_split` with
/// `columns` (and optionally `params`), of at most `max` rows, into cells of the signature inputs
/// `names`.
pub(crate) fn read<'a>(body: &'a [u8], names: &[&str], max: usize) -> Result<Cells<'a>, Declined> {
    let mut state = State { names, width: names.len(), max, cells: Vec::new(), order: Vec::new() };
    let mut de = serde_json::Deserializer::from_slice(body);
    let rows = de.deserialize_map(BodyVisitor { state: &mut state }).map_err(|_| Declined)?;
    de.end().map_err(|_| Declined)?;
    Ok(Cells { rows, width: state.width, cells: state.cells })
}

struct State<'s, 'a> {
    names: &'s [&'s str],
    width: usize,
    /// Most rows taken: a longer body is left to the general reader, which refuses it.
    max: usize,
    cells: Vec<Option<Token<'a>>>,
    /// The keys of the last record in order, with their signature input: the next record
    /// usually has the same keys in the same order, so a key is matched by one comparison.
    order: Vec<(Key<'a>, Option<usize>)>,
}

impl State<'_, '_> {
    fn input(&self, key: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == key)
    }
}

/// An object key, borrowed from the body when it has no escapes.
#[derive(Clone, PartialEq)]
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> de::Deserialize<'de> for Token<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Token<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Token<'de>, E> {
                Ok(Token::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Token<'de>, E> {
                Ok(Token::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Token<'de>, E> {
                Ok(Token::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Token<'de>, E> {
                Ok(Token::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Token<'de>, E> {
                Ok(i64::try_from(v).map_or(Token::UInt(v), Token::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Token<'de>, E> {
                Ok(Token::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Token<'de>, E> {
                Ok(Token::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Token<'de>, E> {
                Ok(Token::Str(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Token<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Token::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Token<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Token::Object)
            }
        }
        d.deserialize_any(V)
    }
}

fn declined<E: de::Error>() -> E {
    E::custom("declined")
}

/// The top-level object; answers the number of rows read.
struct BodyVisitor<'r, 's, 'a> {
    state: &'r mut State<'s, 'a>,
}

impl<'de> Visitor<'de> for BodyVisitor<'_, '_, 'de> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut rows = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match (key.0.as_ref(), rows) {
                ("dataframe_records", None) => rows = Some(map.next_value_seed(Records { state: &mut *self.state })?),
                ("dataframe_split", None) => rows = Some(map.next_value_seed(Split { state: &mut *self.state })?),
                ("params", _) => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => return Err(declined()),
            }
        }
        rows.ok_or_else(declined)
    }
}

/// `[{"col": value, ...}, ...]`.
struct Records<'r, 's, 'a> {
    state: &'r mut State<'s, 'a>,
}

impl<'de> DeserializeSeed<'de> for Records<'_, '_, 'de> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_, '_, 'de> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut rows = 0;
        while seq.next_element_seed(Record { state: &mut *self.state })?.is_some() {
            rows += 1;
            if rows > self.state.max {
                return Err(declined());
            }
        }
        Ok(rows)
    }
}

/// One record: its cells are appended to the state's.
struct Record<'r, 's, 'a> {
    state: &'r mut State<'s, 'a>,
}

impl<'de> DeserializeSeed<'de> for Record<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Record<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.state;
        let base = state.cells.len();
        state.cells.resize(base + state.width, None);
        let mut at = 0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let j = match state.order.get(at) {
                Some((k, j)) if *k == key => *j,
                _ => {
                    let j = state.input(&key.0);
                    state.order.truncate(at);
                    state.order.push((key, j));
                    j
                }
            };
            at += 1;
            match j {
                // A repeated key: the general reader keeps the last value; leave it to it.
                Some(j) if state.cells[base + j].is_some() => return Err(declined()),
                Some(j) => state.cells[base + j] = Some(map.next_value::<Token<'de>>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `{"columns": [...], "data": [[...], ...]}` (other keys, such as `index`, ignored).
struct Split<'r, 's, 'a> {
    state: &'r mut State<'s, 'a>,
}

impl<'de> DeserializeSeed<'de> for Split<'_, '_, 'de> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Split<'_, '_, 'de> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with columns and data")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut columns: Option<Vec<Key<'de>>> = None;
        let mut data: Option<Vec<Vec<Token<'de>>>> = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.0.as_ref() {
                "columns" if columns.is_none() => columns = Some(map.next_value()?),
                "data" if data.is_none() => data = Some(map.next_value()?),
                "columns" | "data" => return Err(declined()),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (Some(columns), Some(data)) = (columns, data) else { return Err(declined()) };
        let state = self.state;
        let at: Vec<Option<usize>> = columns.iter().map(|c| state.input(&c.0)).collect();
        let mut seen = std::collections::HashSet::with_capacity(columns.len());
        let distinct = columns.iter().all(|c| seen.insert(c.0.as_ref()));
        if !distinct || data.len() > state.max || data.iter().any(|r| r.len() != columns.len()) {
            return Err(declined());
        }
        let rows = data.len();
        state.cells.reserve(rows * state.width);
        for row in data {
            let base = state.cells.len();
            state.cells.resize(base + state.width, None);
            for (token, j) in row.into_iter().zip(&at) {
                if let Some(j) = j {
                    state.cells[base + j] = Some(token);
                }
            }
        }
        Ok(rows)
    }
}
