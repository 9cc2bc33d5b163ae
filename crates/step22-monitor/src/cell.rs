//! One logged value as the prediction log's JSON holds it, read without building a JSON tree:
//! text borrowed from the log's row unless it has escapes, and a request's rows handed over one
//! at a time in a buffer that is reused.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A value of the log: what the server wrote after it conformed a request to the signature.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum LoggedValue<'a> {
    /// Missing.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// Text (dates are text too: `2007-11-11`).
    Text(Cow<'a, str>),
}

impl LoggedValue<'_> {
    /// The number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            LoggedValue::Number(v) => Some(*v),
            _ => None,
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = LoggedValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, a boolean, a number or text")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(LoggedValue::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(LoggedValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(LoggedValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(LoggedValue::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(LoggedValue::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(LoggedValue::Number(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(LoggedValue::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(LoggedValue::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(LoggedValue::Text(Cow::Owned(v)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LoggedValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// A JSON array of rows (each an array of values), each row handed to `on_row` as it is read;
/// answers the number of rows.
pub(crate) struct Rows<F> {
    pub on_row: F,
}

impl<'de, F: FnMut(&[LoggedValue<'de>])> DeserializeSeed<'de> for Rows<F> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(&[LoggedValue<'de>])> Visitor<'de> for Rows<F> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<usize, A::Error> {
        let mut buffer = Vec::new();
        let mut rows = 0;
        while seq.next_element_seed(Row { buffer: &mut buffer })?.is_some() {
            (self.on_row)(&buffer);
            rows += 1;
        }
        Ok(rows)
    }
}

/// One row, into a reused buffer.
struct Row<'b, 'de> {
    buffer: &'b mut Vec<LoggedValue<'de>>,
}

impl<'de> DeserializeSeed<'de> for Row<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Row<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row: a list of values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.buffer.clear();
        while let Some(v) = seq.next_element::<LoggedValue<'de>>()? {
            self.buffer.push(v);
        }
        Ok(())
    }
}
