//! Renaming and dropping columns.

#[cfg(feature = "frame")]
use crate::CoreError;
use crate::Result;
#[cfg(feature = "frame")]
use crate::frame::*;
use crate::value::{Row, Value};
#[cfg(feature = "frame")]
use polars::prelude::DataFrame;

pub(super) fn rename_row(row: &mut Row, mapping: &[(String, String)]) -> Result<()> {
    let moved: Vec<(String, Value)> =
        mapping.iter().map(|(from, to)| (to.clone(), row.remove(from).unwrap_or(Value::Null))).collect();
    row.extend(moved);
    Ok(())
}

pub(super) fn drop_row(row: &mut Row, columns: &[String]) -> Result<()> {
    for c in columns {
        row.remove(c);
    }
    Ok(())
}

#[cfg(feature = "frame")]
pub(super) fn rename_frame(df: DataFrame, mapping: &[(String, String)]) -> Result<DataFrame> {
    let names = column_names(&df);
    for (from, _) in mapping {
        if !names.contains(from) {
            return Err(CoreError::missing_column(from, &names));
        }
    }
    let renamed: Vec<String> = names
        .iter()
        .map(|n| mapping.iter().find(|(from, _)| from == n).map_or_else(|| n.clone(), |(_, to)| to.clone()))
        .collect();
    let mut df = df;
    df.set_column_names(&renamed).map_err(pe("cannot rename columns"))?;
    Ok(df)
}

#[cfg(feature = "frame")]
pub(super) fn drop_frame(df: DataFrame, columns: &[String]) -> Result<DataFrame> {
    for c in columns {
        column(&df, c)?;
    }
    Ok(df.drop_many(columns.iter().map(String::as_str)))
}
