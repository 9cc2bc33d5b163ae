//! Column selection by name, pattern and type.

use mlops_core::DType;
use mlops_core::frame::dtype_of;
use polars::prelude::DataFrame;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SelectError, missing};

/// Which columns to keep: those named, those whose name matches `pattern`, those of a type in
/// `types` (all when none of the three is given), minus `exclude`; in frame order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Columns {
    /// Columns by name.
    pub names: Vec<String>,
    /// A regular expression matched against the whole name (`^num_`, `_mm$`).
    pub pattern: Option<String>,
    /// Columns of these types (`float`, `int`, `string`, `bool`, `date`, `datetime`; `number` for
    /// int and float).
    pub types: Vec<TypeSet>,
    /// Columns to leave out in any case.
    pub exclude: Vec<String>,
}

/// A type, or all numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeSet {
    /// Integers and floats (pandas' `select_dtypes(include="number")`).
    Number,
    /// One logical type.
    #[serde(untagged)]
    One(DType),
}

impl TypeSet {
    fn has(self, t: Option<DType>) -> bool {
        match (self, t) {
            (TypeSet::Number, Some(t)) => matches!(t, DType::Int | DType::Float),
            (TypeSet::One(want), Some(t)) => want == t,
            (_, None) => false,
        }
    }
}

impl Columns {
    /// The column names selected from `df`, in frame order; `key` prefixes errors.
    pub fn resolve(&self, df: &DataFrame, key: &str) -> Result<Vec<String>> {
        for n in self.names.iter().chain(&self.exclude) {
            if df.column(n).is_err() {
                let which = if self.names.contains(n) { "names" } else { "exclude" };
                return Err(missing(df, &format!("{key}.{which}"), n));
            }
        }
        let pattern = match &self.pattern {
            Some(p) => Some(Regex::new(p).map_err(|e| SelectError::Invalid {
                key: format!("{key}.pattern"),
                message: format!("{p:?} is not a regular expression: {e}"),
            })?),
            None => None,
        };
        let everything = self.names.is_empty() && pattern.is_none() && self.types.is_empty();
        let chosen: Vec<String> = df
            .columns()
            .iter()
            .filter(|c| {
                let name = c.name().as_str();
                everything
                    || self.names.iter().any(|n| n == name)
                    || pattern.as_ref().is_some_and(|p| p.is_match(name))
                    || self.types.iter().any(|t| t.has(dtype_of(c.dtype())))
            })
            .map(|c| c.name().to_string())
            .filter(|n| !self.exclude.contains(n))
            .collect();
        if chosen.is_empty() {
            return Err(SelectError::Invalid { key: key.to_string(), message: "selects no column".into() });
        }
        Ok(chosen)
    }
}
