//! Step 11, candidates: the model families a training run chooses from, as one serializable
//! [`Model`] enum with `predict` and, for classifiers, `predict_proba`.
//!
//! In: a [`ModelSpec`] (family and hyperparameters, from YAML), a feature matrix
//! (`ndarray::Array2<f64>`, one row per example) and [`Labels`] (class indices or values).
//! Out: a fitted [`Model`]. Families so far: logistic regression (L2, solved with L-BFGS as
//! scikit-learn's default), Gaussian naive Bayes and k-nearest neighbours for classification;
//! linear, ridge, lasso, elastic net and k-nearest neighbours for regression; decision trees and
//! random forests for both (on features binned at training quantiles, trees grown over the
//! cores), gradient-boosted trees (log loss or squared error), and support vector machines
//! (`svc` and `svr`: LIBSVM's C-SVC and ε-SVR with linear, rbf or polynomial kernels, solved by
//! SMO as scikit-learn's `SVC` and `SVR`; `svc` is one-vs-one with Platt-scaled probabilities).
//!
//! SVC follows scikit-learn's `SVC(probability=True)`: `predict` is the one-vs-one vote and
//! `predict_proba` the pairwise-coupled Platt sigmoids fitted on an internal 5-fold
//! cross-validation, so on borderline rows the voted class and the most probable one can differ,
//! exactly as in scikit-learn. The cross-validation is shuffled by the spec's `random_state`, so
//! probabilities repeat run to run but are not bit-equal to scikit-learn's.
//!
//! Invariants:
//! - hyperparameters are checked before fitting, and a NaN or infinite feature is an error naming
//!   its column: nothing half-fitted comes out;
//! - every probability row sums to 1; a fitted model survives a serde round trip with identical
//!   predictions; fitting is deterministic.
//!
//! ```
//! use ndarray::array;
//! use step11_candidates::{Labels, ModelSpec, fit};
//!
//! let x = array![[0.0], [1.0], [2.0], [3.0]];
//! let model = fit(&ModelSpec::Linear, &x, &Labels::Values(vec![1.0, 3.0, 5.0, 7.0]), &["x".into()])?;
//! let y = model.predict(&array![[4.0]])?;
//! assert!((y[0] - 9.0).abs() < 1e-9);
//! # Ok::<(), step11_candidates::ModelError>(())
//! ```

mod bayes;
mod boost;
mod holdout;
mod knn;
mod lbfgs;
mod linear;
mod suggest;
mod svm;
mod tree;

pub use bayes::GaussianNbParams;
pub use boost::{BoostParams, EarlyStopping};
pub use knn::KnnParams;
pub use linear::{ElasticNetParams, LassoParams, LogisticParams, RidgeParams};
pub use suggest::{LARGE, SMALL, suggest};
pub use svm::{Gamma, Kernel, Machine, Pair, Poly, SvcParams, SvrParams};
pub use tree::{ForestParams, Node, Tree, TreeParams};

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// What stops a fit or a prediction.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// A hyperparameter outside its domain.
    #[error("{model}.{parameter}: {message}")]
    Parameter {
        /// The model family.
        model: &'static str,
        /// The hyperparameter.
        parameter: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A feature value that is not a finite number.
    #[error("{model}: feature `{column}` has a {what} value in row {row}; impute or drop it before training")]
    NotFinite {
        /// The model family.
        model: &'static str,
        /// The feature.
        column: String,
        /// NaN or infinite.
        what: &'static str,
        /// The row.
        row: usize,
    },
    /// The data does not fit the model.
    #[error("{model}: {message}")]
    Data {
        /// The model family.
        model: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Result of the candidates step.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// A model family and its hyperparameters, as the training config writes them
/// (`{logistic_regression: {c: 0.5}}`, `gaussian_nb`, `{ridge: {alpha: 10}}`). Each family's
/// hyperparameters are a type of its own module with its defaults stated once and a check that
/// turns them into the settings its fitter takes ([`ParamGuard`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// Multinomial (binary: logistic) regression with an L2 penalty: minimises
    /// `C · Σ log-loss + ½‖W‖²` (the intercept is not penalised), as scikit-learn's default.
    LogisticRegression(#[serde(default)] LogisticParams),
    /// Gaussian naive Bayes.
    GaussianNb(#[serde(default)] GaussianNbParams),
    /// k-nearest-neighbour classifier (Euclidean distance, uniform votes).
    KnnClassifier(#[serde(default)] KnnParams),
    /// Ordinary least squares.
    Linear,
    /// Least squares with an L2 penalty `alpha ‖w‖²`.
    Ridge(#[serde(default)] RidgeParams),
    /// Least squares with an L1 penalty, by coordinate descent.
    Lasso(#[serde(default)] LassoParams),
    /// Least squares with L1 and L2 penalties, by coordinate descent.
    ElasticNet(#[serde(default)] ElasticNetParams),
    /// k-nearest-neighbour regressor (mean of the neighbours).
    KnnRegressor(#[serde(default)] KnnParams),
    /// A CART classification tree (Gini), on binned features.
    DecisionTreeClassifier(#[serde(default)] TreeParams),
    /// A CART regression tree (squared error), on binned features.
    DecisionTreeRegressor(#[serde(default)] TreeParams),
    /// A random forest of classification trees: bootstrap samples, √d features per split,
    /// probabilities averaged over the trees.
    RandomForestClassifier(#[serde(default)] ForestParams),
    /// A random forest of regression trees (all features per split, as scikit-learn).
    RandomForestRegressor(#[serde(default)] ForestParams),
    /// Gradient-boosted trees on binned features with log loss (binary or multinomial), like
    /// scikit-learn's `HistGradientBoostingClassifier`.
    GradientBoostingClassifier(#[serde(default)] BoostParams),
    /// Gradient-boosted trees with squared error, like `HistGradientBoostingRegressor`.
    GradientBoostingRegressor(#[serde(default)] BoostParams),
    /// C-support vector classification, as scikit-learn's `SVC(probability=True)`: one binary
    /// machine per pair of classes, `predict` by their votes, `predict_proba` from Platt
    /// sigmoids coupled pairwise (`{svc: {c: 10, gamma: 0.1}}`).
    Svc(#[serde(default)] SvcParams),
    /// ε-support vector regression, as scikit-learn's `SVR` (`{svr: {c: 1, epsilon: 0.1}}`).
    Svr(#[serde(default)] SvrParams),
}

/// Hyperparameters that passed their family's check. Only [`ParamGuard::check`] makes one, so a
/// fitter that takes one never sees a value outside its domain (linfa's `ParamGuard` shape).
#[derive(Debug)]
pub struct Checked<'a, P>(&'a P);

impl<P> std::ops::Deref for Checked<'_, P> {
    type Target = P;
    fn deref(&self) -> &P {
        self.0
    }
}

/// One family's unchecked hyperparameters, as they come from YAML.
pub trait ParamGuard: Sized {
    /// Checks every hyperparameter against its domain for `rows` training rows; the error names
    /// the family (`model`) and the hyperparameter.
    fn check_ref(&self, model: &'static str, rows: usize) -> Result<()>;

    /// The checked hyperparameters, which the family's fitter takes.
    fn check(&self, model: &'static str, rows: usize) -> Result<Checked<'_, Self>> {
        self.check_ref(model, rows)?;
        Ok(Checked(self))
    }
}

/// The error of a hyperparameter outside its domain.
pub(crate) fn bad(model: &'static str, parameter: &'static str, message: String) -> Result<()> {
    Err(ModelError::Parameter { model, parameter, message })
}

impl ModelSpec {
    /// The family's name.
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::LogisticRegression(_) => "logistic_regression",
            ModelSpec::GaussianNb(_) => "gaussian_nb",
            ModelSpec::KnnClassifier(_) => "knn_classifier",
            ModelSpec::Linear => "linear",
            ModelSpec::Ridge(_) => "ridge",
            ModelSpec::Lasso(_) => "lasso",
            ModelSpec::ElasticNet(_) => "elastic_net",
            ModelSpec::KnnRegressor(_) => "knn_regressor",
            ModelSpec::DecisionTreeClassifier(_) => "decision_tree_classifier",
            ModelSpec::DecisionTreeRegressor(_) => "decision_tree_regressor",
            ModelSpec::RandomForestClassifier(_) => "random_forest_classifier",
            ModelSpec::RandomForestRegressor(_) => "random_forest_regressor",
            ModelSpec::GradientBoostingClassifier(_) => "gradient_boosting_classifier",
            ModelSpec::GradientBoostingRegressor(_) => "gradient_boosting_regressor",
            ModelSpec::Svc(_) => "svc",
            ModelSpec::Svr(_) => "svr",
        }
    }

    /// Whether it predicts classes.
    pub fn is_classifier(&self) -> bool {
        matches!(
            self,
            ModelSpec::LogisticRegression(_)
                | ModelSpec::GaussianNb(_)
                | ModelSpec::KnnClassifier(_)
                | ModelSpec::DecisionTreeClassifier(_)
                | ModelSpec::RandomForestClassifier(_)
                | ModelSpec::GradientBoostingClassifier(_)
                | ModelSpec::Svc(_)
        )
    }

    /// Checks the hyperparameters against their domains, before any data is touched.
    pub fn check(&self, rows: usize) -> Result<()> {
        let model = self.name();
        match self {
            ModelSpec::LogisticRegression(p) => p.check_ref(model, rows),
            ModelSpec::GaussianNb(p) => p.check_ref(model, rows),
            ModelSpec::KnnClassifier(p) | ModelSpec::KnnRegressor(p) => p.check_ref(model, rows),
            ModelSpec::Linear => Ok(()),
            ModelSpec::Ridge(p) => p.check_ref(model, rows),
            ModelSpec::Lasso(p) => p.check_ref(model, rows),
            ModelSpec::ElasticNet(p) => p.check_ref(model, rows),
            ModelSpec::DecisionTreeClassifier(p) | ModelSpec::DecisionTreeRegressor(p) => p.check_ref(model, rows),
            ModelSpec::RandomForestClassifier(p) | ModelSpec::RandomForestRegressor(p) => p.check_ref(model, rows),
            ModelSpec::GradientBoostingClassifier(p) | ModelSpec::GradientBoostingRegressor(p) => {
                p.check_ref(model, rows)
            }
            ModelSpec::Svc(p) => p.check_ref(model, rows),
            ModelSpec::Svr(p) => p.check_ref(model, rows),
        }
    }
}

/// What a model learns to predict, one label per row: the target type that steps 11-14 and the
/// runs share (the training run keeps each part's labels in one, a fold's too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Labels {
    /// Class indices `0..classes`.
    Classes {
        /// One per row.
        y: Vec<usize>,
        /// How many classes.
        classes: usize,
    },
    /// Numbers.
    Values(Vec<f64>),
}

impl Labels {
    /// The rows labelled.
    pub fn len(&self) -> usize {
        match self {
            Labels::Classes { y, .. } => y.len(),
            Labels::Values(y) => y.len(),
        }
    }

    /// Whether no row is labelled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fitted model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Logistic regression: `coef[k]` and `intercept[k]` per class (one row for two classes).
    Logistic {
        /// Classes.
        classes: usize,
        /// Coefficients per output.
        coef: Vec<Vec<f64>>,
        /// Intercept per output.
        intercept: Vec<f64>,
    },
    /// Gaussian naive Bayes: per class, feature means and variances, and the class prior.
    GaussianNb {
        /// Means per class.
        theta: Vec<Vec<f64>>,
        /// Variances per class (smoothed).
        var: Vec<Vec<f64>>,
        /// Class priors.
        prior: Vec<f64>,
    },
    /// k-nearest neighbours: the training rows themselves.
    Knn {
        /// Neighbours.
        k: usize,
        /// Training rows.
        x: Vec<Vec<f64>>,
        /// Training targets (class index as a number, or the value).
        y: Vec<f64>,
        /// Classes, for a classifier.
        classes: Option<usize>,
    },
    /// Trees whose leaves are averaged: one tree, or a random forest.
    Forest {
        /// The trees.
        trees: Vec<Tree>,
        /// Classes, for a classifier (leaves hold class shares); `None` for a regressor.
        classes: Option<usize>,
        /// Impurity-based feature importances, summing to 1.
        importance: Vec<f64>,
        /// Features.
        features: usize,
    },
    /// Gradient-boosted trees: raw score = base + the leaves of every round's trees.
    Boosted {
        /// Base raw score per output.
        base: Vec<f64>,
        /// Per round, one tree per output.
        rounds: Vec<Vec<Tree>>,
        /// Classes, for a classifier (2: one log-odds output; more: one output per class).
        classes: Option<usize>,
        /// Split-gain feature importances, summing to 1.
        importance: Vec<f64>,
        /// Features.
        features: usize,
        /// Mean training loss after each round.
        train_loss: Vec<f64>,
        /// Mean loss on the held-out rows after each round (with early stopping).
        validation_loss: Vec<f64>,
    },
    /// A linear regression (from OLS, ridge, lasso or elastic net).
    Linear {
        /// Coefficients.
        coef: Vec<f64>,
        /// Intercept.
        intercept: f64,
    },
    /// A support vector machine: kernel expansions over one shared list of support vectors.
    Svm {
        /// The kernel.
        kernel: Kernel,
        /// The kernel's γ, resolved at fit time.
        gamma: f64,
        /// Support vectors: the training rows some machine gives a nonzero coefficient.
        support: Vec<Vec<f64>>,
        /// One machine per pair of classes present in training (pairs in class order) for a
        /// classifier; one machine for a regressor.
        machines: Vec<Machine>,
        /// Classes, for a classifier; `None` for a regressor.
        classes: Option<usize>,
        /// Features.
        features: usize,
    },
}

pub(crate) fn rows(x: &ArrayView2<'_, f64>) -> Vec<Vec<f64>> {
    x.rows().into_iter().map(|r| r.to_vec()).collect()
}

fn check_finite(model: &'static str, x: &Array2<f64>, names: &[String]) -> Result<()> {
    for ((row, col), v) in x.indexed_iter() {
        if !v.is_finite() {
            return Err(ModelError::NotFinite {
                model,
                column: names.get(col).cloned().unwrap_or_else(|| format!("#{col}")),
                what: if v.is_nan() { "NaN" } else { "infinite" },
                row,
            });
        }
    }
    Ok(())
}

/// Grows a forest's trees (with or without bootstrap samples; one tree for a decision tree) into
/// a [`Model::Forest`].
fn forest_of(
    x: &Array2<f64>,
    labels: &Labels,
    classes: Option<usize>,
    f: &ForestParams,
    default_share: f64,
) -> Result<Model> {
    let (trees, bootstrap, t) = (f.n_estimators, f.bootstrap, f.tree());
    let d = x.ncols();
    let share = t.max_features.unwrap_or(default_share);
    let growth = tree::Growth {
        max_depth: t.max_depth.unwrap_or(usize::MAX),
        min_samples_split: t.min_samples_split,
        min_samples_leaf: t.min_samples_leaf,
        max_features: ((share * d as f64).round() as usize).clamp(1, d.max(1)),
    };
    let data = tree::Binned::new(x);
    let (trees, importance) =
        tree::forest(&data, labels, x.nrows(), trees, bootstrap, growth, mlops_core::Seed(t.random_state))
            .ok_or_else(|| ModelError::Data { model: "forest", message: "a tree-growing thread failed".into() })?;
    Ok(Model::Forest { trees, classes, importance, features: d })
}

fn boosted(
    model: &'static str,
    x: &Array2<f64>,
    loss: boost::Loss,
    y: &[f64],
    b: &BoostParams,
    classes: Option<usize>,
) -> Result<Model> {
    let stopping = boost::Stopping {
        validation_fraction: b.validation_fraction,
        n_iter_no_change: b.n_iter_no_change,
        tol: b.tol,
    };
    let settings = boost::Settings {
        rounds: b.max_iter,
        learning_rate: b.learning_rate,
        lambda: b.l2_regularization,
        max_depth: b.max_depth.unwrap_or(usize::MAX),
        max_leaf_nodes: b.max_leaf_nodes,
        min_samples_leaf: b.min_samples_leaf,
        early_stopping: b.early_stopping.applies(x.nrows()).then_some(stopping),
        quantized: b.quantized_gradients,
        seed: mlops_core::Seed(b.random_state),
    };
    let fitted = boost::boost(x, loss, y, &settings, model)?;
    Ok(Model::Boosted {
        base: fitted.base,
        rounds: fitted.rounds,
        classes,
        importance: fitted.importance,
        features: x.ncols(),
        train_loss: fitted.train_loss,
        validation_loss: fitted.validation_loss,
    })
}

/// Fits a model family on a feature matrix; `names` are the feature columns, for errors.
pub fn fit(spec: &ModelSpec, x: &Array2<f64>, target: &Labels, names: &[String]) -> Result<Model> {
    let model = spec.name();
    spec.check(x.nrows())?;
    check_finite(model, x, names)?;
    let n = x.nrows();
    let data = |message: String| ModelError::Data { model, message };
    match (spec.is_classifier(), target) {
        (true, Labels::Classes { y, classes }) => {
            if y.len() != n {
                return Err(data(format!("{} labels for {n} rows", y.len())));
            }
            if *classes < 2 || y.iter().any(|&c| c >= *classes) {
                return Err(data(format!("needs labels in 0..{classes} and at least two classes")));
            }
            let seen = y.iter().collect::<std::collections::BTreeSet<_>>().len();
            if seen < 2 {
                return Err(data("the training rows hold only one class".into()));
            }
        }
        (false, Labels::Values(y)) => {
            if y.len() != n {
                return Err(data(format!("{} targets for {n} rows", y.len())));
            }
            if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                return Err(data(format!("target row {i} is not a finite number")));
            }
        }
        (true, Labels::Values(_)) => return Err(data("a classifier needs class labels, not numbers".into())),
        (false, Labels::Classes { .. }) => return Err(data("a regressor needs numbers, not class labels".into())),
    }
    if n == 0 {
        return Err(data("no training rows".into()));
    }
    let fitted = match (spec, target) {
        (ModelSpec::LogisticRegression(p), Labels::Classes { y, classes }) => {
            linear::logistic(x, y, *classes, &p.check(model, n)?)
        }
        (ModelSpec::GaussianNb(p), Labels::Classes { y, classes }) => bayes::fit(x, y, *classes, &p.check(model, n)?),
        (ModelSpec::KnnClassifier(p), Labels::Classes { y, classes }) => Model::Knn {
            k: p.check(model, n)?.k,
            x: rows(&x.view()),
            y: y.iter().map(|&c| c as f64).collect(),
            classes: Some(*classes),
        },
        (ModelSpec::KnnRegressor(p), Labels::Values(y)) => {
            Model::Knn { k: p.check(model, n)?.k, x: rows(&x.view()), y: y.to_vec(), classes: None }
        }
        (ModelSpec::Linear, Labels::Values(y)) => linear::ridge(x, y, 0.0),
        (ModelSpec::Ridge(p), Labels::Values(y)) => linear::ridge(x, y, p.check(model, n)?.alpha),
        (ModelSpec::Lasso(p), Labels::Values(y)) => linear::elastic_net(x, y, &p.check(model, n)?.as_elastic_net()),
        (ModelSpec::ElasticNet(p), Labels::Values(y)) => linear::elastic_net(x, y, &*p.check(model, n)?),
        (ModelSpec::DecisionTreeClassifier(t), Labels::Classes { classes, .. }) => {
            let t = t.check(model, n)?;
            forest_of(x, target, Some(*classes), &t.single(), 1.0)?
        }
        (ModelSpec::DecisionTreeRegressor(t), Labels::Values(_)) => {
            forest_of(x, target, None, &t.check(model, n)?.single(), 1.0)?
        }
        (ModelSpec::RandomForestClassifier(f), Labels::Classes { classes, .. }) => {
            let sqrt = (x.ncols() as f64).sqrt().floor().max(1.0) / x.ncols().max(1) as f64;
            forest_of(x, target, Some(*classes), &*f.check(model, n)?, sqrt)?
        }
        (ModelSpec::GradientBoostingClassifier(b), Labels::Classes { y, classes }) => {
            let loss = if *classes == 2 { boost::Loss::Binary } else { boost::Loss::Multinomial(*classes) };
            let y: Vec<f64> = y.iter().map(|&c| c as f64).collect();
            boosted(model, x, loss, &y, &*b.check(model, n)?, Some(*classes))?
        }
        (ModelSpec::GradientBoostingRegressor(b), Labels::Values(y)) => {
            boosted(model, x, boost::Loss::Squared, y, &*b.check(model, n)?, None)?
        }
        (ModelSpec::RandomForestRegressor(f), Labels::Values(_)) => {
            forest_of(x, target, None, &*f.check(model, n)?, 1.0)?
        }
        (ModelSpec::Svc(p), Labels::Classes { y, classes }) => {
            let p = p.check(model, n)?;
            svm::classifier(x, y, *classes, &p.settings(), mlops_core::Seed(p.random_state))?
        }
        (ModelSpec::Svr(p), Labels::Values(y)) => {
            let p = p.check(model, n)?;
            svm::regressor(x, y, p.epsilon, &p.settings())
        }
        _ => return Err(data("the model and the target do not match".into())),
    };
    tracing::debug!(model, rows = n, features = x.ncols(), "fitted");
    Ok(fitted)
}

impl Model {
    /// The number of features the model was fitted on.
    pub fn features(&self) -> usize {
        match self {
            Model::Logistic { coef, .. } => coef.first().map_or(0, Vec::len),
            Model::GaussianNb { theta, .. } => theta.first().map_or(0, Vec::len),
            Model::Knn { x, .. } => x.first().map_or(0, Vec::len),
            Model::Linear { coef, .. } => coef.len(),
            Model::Forest { features, .. } | Model::Boosted { features, .. } | Model::Svm { features, .. } => *features,
        }
    }

    /// The parts of a fitted SVM.
    fn svm_view(&self) -> Option<svm::View<'_>> {
        match self {
            Model::Svm { kernel, gamma, support, machines, classes, features } => Some(svm::View {
                kernel: *kernel,
                gamma: *gamma,
                support,
                machines,
                classes: *classes,
                features: *features,
            }),
            _ => None,
        }
    }

    /// The loss after each iteration, by name, for the iterative models that keep it (gradient
    /// boosting: `train_loss`, and `validation_loss` with early stopping). Empty for the others.
    pub fn iteration_losses(&self) -> Vec<(&'static str, &[f64])> {
        match self {
            Model::Boosted { train_loss, validation_loss, .. } => {
                [("train_loss", train_loss), ("validation_loss", validation_loss)]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k, v.as_slice()))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Feature importances, for the families that have them (trees and forests: mean impurity
    /// decrease, summing to 1; linear models and linear-kernel SVMs: shares of |coefficient|,
    /// summed over an SVC's pairwise machines).
    pub fn feature_importances(&self) -> Option<Vec<f64>> {
        match self {
            Model::Forest { importance, .. } | Model::Boosted { importance, .. } => Some(importance.clone()),
            Model::Linear { coef, .. } => {
                let total: f64 = coef.iter().map(|c| c.abs()).sum();
                Some(coef.iter().map(|c| if total > 0.0 { c.abs() / total } else { 0.0 }).collect())
            }
            Model::Svm { .. } => self.svm_view().and_then(|v| v.importances()),
            _ => None,
        }
    }

    fn check_width(&self, x: &Array2<f64>) -> Result<()> {
        if x.ncols() != self.features() {
            return Err(ModelError::Data {
                model: "model",
                message: format!("{} features given, {} expected", x.ncols(), self.features()),
            });
        }
        Ok(())
    }

    /// Class probabilities per row (`None` for a regressor); every row sums to 1.
    pub fn predict_proba(&self, x: &Array2<f64>) -> Result<Option<Vec<Vec<f64>>>> {
        self.check_width(x)?;
        Ok(match self {
            Model::Logistic { classes, coef, intercept } => Some(linear::logistic_proba(x, *classes, coef, intercept)),
            Model::GaussianNb { theta, var, prior } => Some(bayes::proba(x, theta, var, prior)),
            Model::Knn { k, x: train, y, classes: Some(classes) } => Some(knn::proba(x, train, y, *k, *classes)),
            Model::Forest { trees, classes: Some(classes), .. } => Some(
                x.rows()
                    .into_iter()
                    .map(|row| {
                        let row = row.to_vec();
                        let mut p = vec![0.0; *classes];
                        for t in trees {
                            p.iter_mut().zip(t.leaf(&row)).for_each(|(a, b)| *a += b);
                        }
                        p.iter_mut().for_each(|v| *v /= trees.len() as f64);
                        p
                    })
                    .collect(),
            ),
            Model::Boosted { classes: Some(classes), .. } => Some(
                self.raw_scores(x)
                    .into_iter()
                    .map(|mut z| {
                        if *classes == 2 {
                            let p = 1.0 / (1.0 + (-z[0]).exp());
                            vec![1.0 - p, p]
                        } else {
                            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                            z.iter_mut().for_each(|v| *v = (*v - max).exp());
                            let sum: f64 = z.iter().sum();
                            z.iter_mut().for_each(|v| *v /= sum);
                            z
                        }
                    })
                    .collect(),
            ),
            Model::Svm { classes: Some(_), .. } => self.svm_view().map(|v| v.proba(x)).transpose()?,
            Model::Knn { classes: None, .. }
            | Model::Linear { .. }
            | Model::Forest { classes: None, .. }
            | Model::Boosted { classes: None, .. }
            | Model::Svm { classes: None, .. } => None,
        })
    }

    /// The model as a compact binary blob (postcard), for packages.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_stdvec(self)
            .map_err(|e| ModelError::Data { model: "model", message: format!("cannot encode: {e}") })
    }

    /// A model from [`Model::to_bytes`]; a damaged blob is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        postcard::from_bytes(bytes)
            .map_err(|e| ModelError::Data { model: "model", message: format!("not a model blob: {e}") })
    }

    /// Raw scores of a boosted model per row (empty for other families).
    fn raw_scores(&self, x: &Array2<f64>) -> Vec<Vec<f64>> {
        let Model::Boosted { base, rounds, .. } = self else { return Vec::new() };
        x.rows()
            .into_iter()
            .map(|row| {
                let row = row.to_vec();
                let mut z = base.clone();
                for trees in rounds {
                    for (zk, t) in z.iter_mut().zip(trees) {
                        *zk += t.leaf(&row)[0];
                    }
                }
                z
            })
            .collect()
    }

    /// Predictions and, for a classifier, class probabilities per row: what [`Model::predict`]
    /// and [`Model::predict_proba`] give, with the probabilities computed once.
    pub fn predict_with_proba(&self, x: &Array2<f64>) -> Result<Predictions> {
        if self.svm_view().is_some() {
            return Ok(Predictions { predicted: self.predict(x)?, proba: self.predict_proba(x)? });
        }
        let proba = self.predict_proba(x)?;
        let predicted = match &proba {
            Some(p) => most_probable(p),
            None => self.predict(x)?,
        };
        Ok(Predictions { predicted, proba })
    }

    /// Predictions per row: the class index (as a number) for a classifier, the value otherwise.
    /// Classifiers predict the most probable class (the first one on a tie), except SVC, which
    /// predicts by one-vs-one votes as scikit-learn does (the lower class on a tie); its
    /// Platt probabilities may favour another class on borderline rows.
    pub fn predict(&self, x: &Array2<f64>) -> Result<Vec<f64>> {
        if let Some(view) = self.svm_view() {
            self.check_width(x)?;
            return match view.classes {
                Some(_) => view.votes(x),
                None => Ok(view.decisions(x)?.into_iter().map(|d| d.first().copied().unwrap_or(0.0)).collect()),
            };
        }
        if let Some(p) = self.predict_proba(x)? {
            return Ok(most_probable(&p));
        }
        Ok(match self {
            Model::Knn { k, x: train, y, .. } => knn::regress(x, train, y, *k),
            Model::Linear { coef, intercept } => {
                x.rows().into_iter().map(|r| r.dot(&ndarray::ArrayView1::from(coef)) + intercept).collect()
            }
            Model::Boosted { .. } => self.raw_scores(x).into_iter().map(|z| z[0]).collect(),
            Model::Forest { trees, .. } => x
                .rows()
                .into_iter()
                .map(|row| {
                    let row = row.to_vec();
                    trees.iter().map(|t| t.leaf(&row)[0]).sum::<f64>() / trees.len() as f64
                })
                .collect(),
            _ => Vec::new(),
        })
    }
}

/// What [`Model::predict_with_proba`] gives.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    /// [`Model::predict`]'s numbers.
    pub predicted: Vec<f64>,
    /// [`Model::predict_proba`]'s probabilities.
    pub proba: Option<Vec<Vec<f64>>>,
}

/// Each row's most probable class (the first one on a tie), as a number.
fn most_probable(proba: &[Vec<f64>]) -> Vec<f64> {
    proba
        .iter()
        .map(|row| {
            row.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as f64
        })
        .collect()
}

#[cfg(test)]
mod tests;
