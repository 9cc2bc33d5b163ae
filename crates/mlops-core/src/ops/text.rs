//! Text clean-up: trimming, collapsing spaces, case, and the other steps of a text column.

use serde::{Deserialize, Serialize};

use super::*;
#[cfg(feature = "frame")]
use crate::CoreError;
use crate::Result;
#[cfg(feature = "frame")]
use crate::frame::*;
use crate::value::{Row, Value};
#[cfg(feature = "frame")]
use polars::prelude::{self as pl, DataFrame, IntoSeries, PlSmallStr};

/// Text clean-up steps, applied in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextStep {
    /// Remove leading and trailing white space.
    Trim,
    /// Lower case.
    Lower,
    /// Upper case.
    Upper,
    /// First letter of each word upper case, the rest lower case.
    Title,
    /// Remove characters that are neither letters, digits, `_` nor white space (pandas'
    /// `str.replace(r'[^\w\s]', '')`).
    StripPunctuation,
    /// Collapse runs of white space into one space.
    CollapseSpaces,
    /// Empty text becomes null.
    EmptyToNull,
}

/// Applies text steps to one string; `None` when the result is null.
pub fn clean_text(steps: &[TextStep], input: &str) -> Option<String> {
    let mut out = String::new();
    clean_text_into(steps, input, &mut out).then_some(out)
}

/// [`clean_text`] into a buffer the caller reuses from value to value; `false` when the result
/// is null. Trimming narrows the borrowed input; the text is copied into `out` once a step
/// changes it, and changed in place there where it is ASCII.
pub fn clean_text_into(steps: &[TextStep], input: &str, out: &mut String) -> bool {
    let keep = |c: char| c.is_alphanumeric() || c == '_' || c.is_whitespace();
    // The text so far: a slice of the input until a step changes it, then `out`.
    let mut borrowed = Some(input);
    let owned = |borrowed: &mut Option<&str>, out: &mut String| {
        if let Some(b) = borrowed.take() {
            out.clear();
            out.push_str(b);
        }
    };
    // A step that makes a new text: it becomes `out`, the input left behind.
    let replace = |next: String, borrowed: &mut Option<&str>, out: &mut String| {
        *borrowed = None;
        *out = next;
    };
    for step in steps {
        let current = borrowed.unwrap_or(out.as_str());
        match step {
            TextStep::Trim => match borrowed {
                Some(b) => borrowed = Some(b.trim()),
                None => {
                    let end = out.trim_end().len();
                    out.truncate(end);
                    let start = out.len() - out.trim_start().len();
                    out.drain(..start);
                }
            },
            TextStep::Lower if current.is_ascii() => {
                if current.bytes().any(|b| b.is_ascii_uppercase()) {
                    owned(&mut borrowed, out);
                    out.make_ascii_lowercase();
                }
            }
            TextStep::Upper if current.is_ascii() => {
                if current.bytes().any(|b| b.is_ascii_lowercase()) {
                    owned(&mut borrowed, out);
                    out.make_ascii_uppercase();
                }
            }
            TextStep::Lower => replace(current.to_lowercase(), &mut borrowed, out),
            TextStep::Upper => replace(current.to_uppercase(), &mut borrowed, out),
            TextStep::Title => replace(title_case(current), &mut borrowed, out),
            TextStep::StripPunctuation => {
                if !current.chars().all(keep) {
                    owned(&mut borrowed, out);
                    out.retain(keep);
                }
            }
            TextStep::CollapseSpaces => {
                replace(current.split_whitespace().collect::<Vec<_>>().join(" "), &mut borrowed, out)
            }
            TextStep::EmptyToNull => {
                if current.is_empty() {
                    return false;
                }
            }
        }
    }
    owned(&mut borrowed, out);
    true
}

/// Python's `str.title()`: a letter after a non-letter is upper case, other letters lower case.
pub fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if c.is_alphabetic() {
            if prev_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

pub(super) fn text_row(row: &mut Row, column: &str, steps: &[TextStep]) -> Result<()> {
    let v = cell(row, column);
    if let Value::Str(s) = &v {
        row.insert(column.to_string(), clean_text(steps, s).map_or(Value::Null, Value::Str));
    } else if !v.is_null() {
        return Err(wrong_type(column, &v, "text"));
    }
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn text_frame(df: DataFrame, name: &str, steps: &[TextStep]) -> Result<DataFrame> {
    let col = column(&df, name)?;
    let ca = col.str().map_err(|_| CoreError::WrongType {
        column: name.to_string(),
        found: col.dtype().to_string(),
        expected: "text".into(),
    })?;
    let out = par_text(ca, |part| {
        // A short text is cleaned once per distinct value; a long one into one buffer
        // for every value: no allocation per text.
        let mut cleaned = pl::StringChunkedBuilder::new(PlSmallStr::EMPTY, part.len());
        let mut memo = ShortTextMemo::default();
        let mut buf = String::new();
        for (view, text) in text_views(part) {
            let Some(s) = text else {
                cleaned.append_null();
                continue;
            };
            let known = memo.get_or(view, || clean_text_into(steps, s, &mut buf).then(|| buf.clone()));
            match known {
                Some(Some(c)) => cleaned.append_value(c),
                Some(None) => cleaned.append_null(),
                None if clean_text_into(steps, s, &mut buf) => cleaned.append_value(&buf),
                None => cleaned.append_null(),
            }
        }
        cleaned.finish().into_series()
    })?;
    put(df, out.with_name(name.into()))
}
