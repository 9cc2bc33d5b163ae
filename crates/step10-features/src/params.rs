//! The `features:` section.

use std::collections::BTreeMap;

use mlops_core::features::{DatePart, GroupStat, TextStat};
use mlops_core::ops::Closed;
use serde::{Deserialize, Serialize};

/// Every feature to build, then the selection. Each part is fitted on the training rows only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureParams {
    /// Date parts per date column (all parts when the list is empty): `<column>_<part>`.
    pub dates: BTreeMap<String, Vec<DatePart>>,
    /// Text statistics per text column (all when empty): `<column>_<stat>`.
    pub text: BTreeMap<String, Vec<TextStat>>,
    /// Labelled bins per numeric column, with fixed or quantile edges (`pd.cut` / `pd.qcut`).
    pub bins: BTreeMap<String, BinSpec>,
    /// Ratios, products and any other expression (`income_per_person: income / household_size`).
    pub derive: Vec<Derived>,
    /// Polynomial and interaction features of some numeric columns.
    pub polynomial: Option<Polynomial>,
    /// Lags and rolling means ordered by a time column within groups.
    pub lags: Vec<LagSpec>,
    /// Statistics of a column within groups (mean, std, percentile rank).
    pub group_stats: Vec<GroupSpec>,
    /// Smoothed target encoding per categorical column, out-of-fold on the training rows.
    pub target_encode: BTreeMap<String, TargetSpec>,
    /// Categorical encodings per column (`one_hot`, `ordinal`, `label`; step 5's encodings),
    /// learned from the training rows only: categories seen only in the test rows are unseen,
    /// as they will be in production.
    #[serde(deserialize_with = "mlops_core::config::bare_or_tagged_values")]
    pub encode: BTreeMap<String, step05_transform::Encoding>,
    /// Which features to keep.
    pub select: Option<SelectSpec>,
    /// Filling of missing values in the kept numeric features with a statistic of the training
    /// rows (after the selection, before scaling), as scikit-learn's `SimpleImputer`.
    pub impute: Option<ImputeSpec>,
    /// Scaling of the kept numeric features, fitted on the training rows (last, after the
    /// selection): what linear models, k-NN and SVMs need.
    pub scale: Option<ScaleSpec>,
}

/// The statistic that fills a missing value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Imputer {
    /// The training mean.
    Mean,
    /// The training median.
    Median,
    /// Zero.
    Zero,
}

/// Filling of missing numeric values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImputeSpec {
    /// `mean`, `median` or `zero`.
    pub strategy: Imputer,
    /// Columns to fill (default: every integer and float column left, so values missing only in
    /// served rows are filled too, except the `exclude` ones and the targets).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Columns never filled.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Scaling of numeric features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSpec {
    /// `standard`, `minmax` or `robust`.
    pub method: step05_transform::Scaler,
    /// Columns to scale (default: every integer and float column left, except the `exclude` ones
    /// and the targets named in `select` and `target_encode`).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Columns never scaled, such as the target.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Bins of one column: exactly one of `edges` and `quantiles`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinSpec {
    /// Fixed, increasing edges (`pd.cut(bins=[0, 18, 35, 50])`).
    #[serde(default)]
    pub edges: Option<Vec<f64>>,
    /// Equal-frequency bins learned on the training rows (`pd.qcut(q=4)`).
    #[serde(default)]
    pub quantiles: Option<usize>,
    /// One label per bin (default: `[a, b)` style ranges).
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Column written (default `<column>_bin`).
    #[serde(default)]
    pub output: Option<String>,
    /// Which edge a bin includes (pandas' default: right).
    #[serde(default = "right")]
    pub closed: Closed,
}

fn right() -> Closed {
    Closed::Right
}

/// A feature computed from an expression of other columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// The new column.
    pub name: String,
    /// The expression (`income / household_size`, `weight / (height / 100) ^ 2` as
    /// `weight / ((height / 100) * (height / 100))`).
    pub expr: String,
}

/// Products of columns up to a degree (scikit-learn's `PolynomialFeatures`, no bias column).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Polynomial {
    /// Numeric columns.
    pub columns: Vec<String>,
    /// Highest degree, 2 or 3.
    #[serde(default = "two")]
    pub degree: usize,
    /// Only products of distinct columns (no squares).
    #[serde(default)]
    pub interaction_only: bool,
}

fn two() -> usize {
    2
}

/// Lags and rolling means of one column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagSpec {
    /// Numeric column.
    pub column: String,
    /// Time (or sequence) column that orders the rows.
    pub order_by: String,
    /// Group column (one sequence when absent).
    #[serde(default)]
    pub by: Option<String>,
    /// Lags in rows: `<column>_lag<k>`.
    #[serde(default)]
    pub lags: Vec<usize>,
    /// Rolling-mean windows in rows, the current row included: `<column>_rolling_mean<w>`.
    #[serde(default)]
    pub rolling: Vec<usize>,
}

/// Statistics of one column within groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Numeric column.
    pub column: String,
    /// Group column.
    pub by: String,
    /// Statistics: `<column>_<stat>_by_<by>` (default: mean, std and rank).
    #[serde(default)]
    pub stats: Vec<GroupStat>,
}

/// Target encoding of one column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The target column.
    pub target: String,
    /// Weight of the prior: `(sum + m · prior) / (count + m)`.
    #[serde(default = "one")]
    pub smoothing: f64,
    /// Folds for the out-of-fold values of the training rows.
    #[serde(default = "five")]
    pub folds: usize,
    /// Keep the encoded column as well.
    #[serde(default)]
    pub keep_input: bool,
}

fn one() -> f64 {
    1.0
}

fn five() -> usize {
    5
}

/// Which numeric features to keep, in this order of filters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectSpec {
    /// The target column (never dropped, never a feature).
    pub target: String,
    /// Columns never dropped (identifiers, keys).
    #[serde(default)]
    pub keep: Vec<String>,
    /// Drop features whose training variance is at most this (`VarianceThreshold`).
    #[serde(default)]
    pub variance: Option<f64>,
    /// Of two features whose |Pearson r| exceeds this, drop the later one.
    #[serde(default)]
    pub correlation: Option<f64>,
    /// Keep the `k` features that score best against the target (`SelectKBest`).
    #[serde(default)]
    pub k_best: Option<KBest>,
    /// Keep the `top` features a model ranks highest (tree-based importance).
    #[serde(default)]
    pub importance: Option<ImportanceSpec>,
}

/// `SelectKBest`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KBest {
    /// Features to keep.
    pub k: usize,
    /// The score.
    pub score: Score,
}

/// A univariate score of a feature against the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    /// ANOVA F between classes (`f_classif`).
    AnovaF,
    /// Chi-squared of non-negative features against classes (`chi2`).
    Chi2,
    /// Mutual information, estimated on 10 equal-frequency bins (classes stay as they are).
    MutualInfo,
    /// F statistic of the correlation with a numeric target (`f_regression`).
    FRegression,
}

impl Score {
    /// Its name in config.
    pub fn name(self) -> &'static str {
        match self {
            Score::AnovaF => "anova_f",
            Score::Chi2 => "chi2",
            Score::MutualInfo => "mutual_info",
            Score::FRegression => "f_regression",
        }
    }
}

/// Model-based selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportanceSpec {
    /// Features to keep.
    pub top: usize,
}
