//! Train / validation / test splits: random, stratified, time-based and group-aware, each
//! reproducible from its seed and recorded.

use std::collections::BTreeMap;

use mlops_core::frame::keys;
use mlops_core::{Seed, Value};
use polars::prelude::{DataFrame, DataType, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SelectError, missing, polars_error};
use crate::rows::take;
use crate::sample::{apportion_table, groups_of};

/// How rows are assigned to parts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitMethod {
    /// Uniformly at random (`train_test_split`).
    #[default]
    Random,
    /// Every class of `by` shared out in the same proportions (`stratify=y`).
    Stratified {
        /// The class column.
        by: String,
    },
    /// By time: the latest rows are the test part, so the model is judged on the future.
    Time {
        /// A date or datetime column.
        column: String,
        /// Rows at or after this time are the test part (default: the time that leaves the
        /// `test` share after it).
        #[serde(default)]
        test_from: Option<String>,
        /// Rows from this time up to `test_from` are the validation part.
        #[serde(default)]
        validation_from: Option<String>,
    },
    /// Whole groups of `by` go to one part, so no group is on both sides (`GroupShuffleSplit`).
    Group {
        /// The group column.
        by: String,
    },
}

fn default_test() -> f64 {
    0.2
}

/// The `split:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitParams {
    /// How rows are assigned.
    #[serde(default)]
    pub method: SplitMethod,
    /// Share of rows (of groups, for a group split) in the test part.
    #[serde(default = "default_test")]
    pub test: f64,
    /// Share in the validation part (0 for none).
    #[serde(default)]
    pub validation: f64,
    /// A column whose class balance per part is recorded (the stratify column by default).
    #[serde(default)]
    pub target: Option<String>,
}

impl Default for SplitParams {
    fn default() -> Self {
        SplitParams { method: SplitMethod::Random, test: default_test(), validation: 0.0, target: None }
    }
}

/// The three parts as row numbers of the input, each ascending.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows (empty without a validation share).
    pub validation: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// What was done, for the run record.
    pub report: SplitReport,
}

/// The record of a split: enough to check it and to repeat it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// `random`, `stratified`, `time` or `group`.
    pub method: String,
    /// The seed from config (the split draws from a stream derived from it).
    pub seed: u64,
    /// Rows per part.
    pub rows: BTreeMap<String, usize>,
    /// Rows per class per part, when there is a target or stratify column.
    pub class_balance: Option<ClassBalance>,
    /// The time boundaries of a time split (ISO 8601).
    pub cutoffs: BTreeMap<String, String>,
    /// Groups per part, for a group split.
    pub groups: BTreeMap<String, usize>,
}

/// Rows per class in each part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassBalance {
    /// The class column.
    pub column: String,
    /// Part → class → rows.
    pub parts: BTreeMap<String, BTreeMap<String, usize>>,
}

const PARTS: [&str; 3] = ["train", "validation", "test"];

impl SplitParams {
    fn check(&self, n: usize) -> Result<()> {
        let bad = |key: &str, message: &str| {
            Err(SelectError::Invalid { key: format!("split.{key}"), message: message.into() })
        };
        if !(self.test > 0.0 && self.test < 1.0) {
            return bad("test", "must be between 0 and 1 (exclusive)");
        }
        if !(0.0..1.0).contains(&self.validation) || self.test + self.validation >= 1.0 {
            return bad("validation", "must be at least 0, and test + validation below 1");
        }
        if n < 2 {
            return Err(SelectError::Empty { key: "split".into(), action: "split (at least 2 are needed)" });
        }
        Ok(())
    }

    /// Splits the rows of `df`.
    pub fn split(&self, df: &DataFrame, seed: Seed) -> Result<Split> {
        let n = df.height();
        self.check(n)?;
        let mut draws = seed.derive("split").draws();
        let sizes = |count: usize| {
            let test = (count as f64 * self.test).ceil() as usize;
            let validation = (count as f64 * self.validation).ceil() as usize;
            (test, validation)
        };
        let mut cutoffs = BTreeMap::new();
        let mut group_counts = BTreeMap::new();
        let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
        let name = match &self.method {
            SplitMethod::Random => {
                let (nt, nv) = sizes(n);
                let order = draws.permutation(n);
                test.extend_from_slice(&order[..nt.min(n)]);
                validation.extend_from_slice(&order[nt.min(n)..(nt + nv).min(n)]);
                train.extend_from_slice(&order[(nt + nv).min(n)..]);
                "random"
            }
            SplitMethod::Stratified { by } => {
                let key = "split.method.stratified.by";
                let classes = groups_of(df, by, key)?;
                let needed = if self.validation > 0.0 { 3 } else { 2 };
                if let Some((class, rows)) = classes.iter().find(|(_, r)| r.len() < needed) {
                    return Err(SelectError::TinyClass {
                        key: key.into(),
                        column: by.clone(),
                        class: class.clone(),
                        rows: rows.len(),
                        needed,
                    });
                }
                let counts: Vec<usize> = classes.values().map(Vec::len).collect();
                let (nt, nv) = sizes(n);
                let table = apportion_table(&counts, &[nt, nv, n - nt - nv]);
                for (members, row) in classes.values().zip(table) {
                    let (t, v) = (row[0], row[1]);
                    let order = draws.permutation(members.len());
                    test.extend(order[..t].iter().map(|&i| members[i]));
                    validation.extend(order[t..t + v].iter().map(|&i| members[i]));
                    train.extend(order[t + v..].iter().map(|&i| members[i]));
                }
                "stratified"
            }
            SplitMethod::Time { column, test_from, validation_from } => {
                let times = time_values(df, column)?;
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| (times[i], i));
                let (nt, nv) = sizes(n);
                let parse = |text: &Option<String>, key: &str| -> Result<Option<i64>> {
                    text.as_ref()
                        .map(|t| {
                            parse_time(t).ok_or_else(|| SelectError::Invalid {
                                key: format!("split.method.time.{key}"),
                                message: format!("{t:?} is not a date (YYYY-MM-DD) or datetime"),
                            })
                        })
                        .transpose()
                };
                let at = |k: usize| times[order[n.saturating_sub(k).min(n - 1)]];
                let test_cut = parse(test_from, "test_from")?.unwrap_or_else(|| at(nt));
                let validation_cut = parse(validation_from, "validation_from")?
                    .unwrap_or_else(|| if self.validation > 0.0 { at(nt + nv).min(test_cut) } else { test_cut });
                if validation_cut > test_cut {
                    return Err(SelectError::Invalid {
                        key: "split.method.time.validation_from".into(),
                        message: "must not be after test_from".into(),
                    });
                }
                for i in order {
                    let t = times[i];
                    if t >= test_cut {
                        test.push(i);
                    } else if t >= validation_cut {
                        validation.push(i);
                    } else {
                        train.push(i);
                    }
                }
                if train.is_empty() || test.is_empty() {
                    return Err(SelectError::Invalid {
                        key: "split.method.time".into(),
                        message: format!("the cut-offs leave {} training and {} test row(s)", train.len(), test.len()),
                    });
                }
                cutoffs.insert("test_from".to_string(), show_time(test_cut));
                if !validation.is_empty() {
                    cutoffs.insert("validation_from".to_string(), show_time(validation_cut));
                }
                "time"
            }
            SplitMethod::Group { by } => {
                let groups = groups_of(df, by, "split.method.group.by")?;
                let g = groups.len();
                let (gt, gv) = sizes(g);
                if g < 2 || gt + gv >= g {
                    return Err(SelectError::Invalid {
                        key: "split.method.group.by".into(),
                        message: format!("`{by}` has {g} group(s): too few for the test and validation shares"),
                    });
                }
                let mut members: Vec<Vec<usize>> = groups.into_values().collect();
                draws.shuffle(&mut members);
                for (k, rows) in members.into_iter().enumerate() {
                    let part = if k < gt {
                        &mut test
                    } else if k < gt + gv {
                        &mut validation
                    } else {
                        &mut train
                    };
                    part.extend(rows);
                }
                group_counts = BTreeMap::from([
                    ("test".to_string(), gt),
                    ("validation".to_string(), gv),
                    ("train".to_string(), g - gt - gv),
                ]);
                "group"
            }
        };
        for part in [&mut train, &mut validation, &mut test] {
            part.sort_unstable();
        }
        let target = self.target.clone().or_else(|| match &self.method {
            SplitMethod::Stratified { by } => Some(by.clone()),
            _ => None,
        });
        let class_balance = match target {
            Some(column) => {
                if df.column(&column).is_err() {
                    return Err(missing(df, "split.target", &column));
                }
                let labels = keys(df, &column)?;
                let mut parts = BTreeMap::new();
                for (part, rows) in PARTS.iter().zip([&train, &validation, &test]) {
                    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                    for &i in rows {
                        *counts.entry(labels[i].clone().unwrap_or_else(|| "null".into())).or_insert(0) += 1;
                    }
                    parts.insert(part.to_string(), counts);
                }
                Some(ClassBalance { column, parts })
            }
            None => None,
        };
        let rows =
            PARTS.iter().zip([train.len(), validation.len(), test.len()]).map(|(p, c)| (p.to_string(), c)).collect();
        let report =
            SplitReport { method: name.into(), seed: seed.0, rows, class_balance, cutoffs, groups: group_counts };
        tracing::info!(method = name, train = train.len(), validation = validation.len(), test = test.len(), "split");
        Ok(Split { train, validation, test, report })
    }
}

impl Split {
    /// The three parts as frames: (train, validation, test).
    pub fn frames(&self, df: &DataFrame) -> Result<(DataFrame, DataFrame, DataFrame)> {
        Ok((take(df, &self.train, "split")?, take(df, &self.validation, "split")?, take(df, &self.test, "split")?))
    }
}

/// A date or datetime column as microseconds since 1970; an error for any other type or nulls.
fn time_values(df: &DataFrame, column: &str) -> Result<Vec<i64>> {
    let key = "split.method.time.column";
    let col = df.column(column).map_err(|_| missing(df, key, column))?;
    let per_unit: i64 = match col.dtype() {
        DataType::Date => 86_400_000_000,
        DataType::Datetime(TimeUnit::Microseconds, _) => 1,
        DataType::Datetime(TimeUnit::Milliseconds, _) => 1000,
        DataType::Datetime(TimeUnit::Nanoseconds, _) => -1000,
        other => {
            return Err(SelectError::WrongType {
                key: key.into(),
                column: column.into(),
                found: other.to_string(),
                needed: "a time split needs a date or datetime column".into(),
            });
        }
    };
    let ints = col.to_physical_repr().cast(&DataType::Int64).map_err(polars_error(key))?;
    let ints = ints.i64().map_err(polars_error(key))?;
    let nulls = ints.null_count();
    if nulls > 0 {
        return Err(SelectError::Invalid {
            key: key.into(),
            message: format!("`{column}` has {nulls} null(s); fill or drop them first"),
        });
    }
    Ok(ints.iter().flatten().map(|v| if per_unit > 0 { v * per_unit } else { v / -per_unit }).collect())
}

fn parse_time(text: &str) -> Option<i64> {
    match mlops_core::expr::time_literal(text)? {
        Value::Date(d) => Some(i64::from(d) * 86_400_000_000),
        Value::Datetime(us) => Some(us),
        _ => None,
    }
}

fn show_time(us: i64) -> String {
    if us % 86_400_000_000 == 0 {
        Value::Date((us / 86_400_000_000) as i32).to_string()
    } else {
        Value::Datetime(us).to_string()
    }
}
