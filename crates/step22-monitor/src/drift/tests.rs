//! Drift against scipy's values and Evidently's choices, the settings' checks, and the invariants of every method.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

/// A small deterministic generator (SplitMix64) for the reference cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(serde::Serialize)]
struct Case {
    kind: &'static str,
    reference: serde_json::Value,
    current: serde_json::Value,
}

fn numeric(rng: &mut Rng, n: usize, f: impl Fn(&mut Rng) -> f64) -> Vec<f64> {
    (0..n).map(|_| f(rng)).collect()
}

fn categories(rng: &mut Rng, n: usize, weights: &[u64]) -> Vec<String> {
    let total: u64 = weights.iter().sum();
    (0..n)
        .map(|_| {
            let mut x = rng.below(total);
            let mut k = 0;
            while x >= weights[k] {
                x -= weights[k];
                k += 1;
            }
            format!("c{k}")
        })
        .collect()
}

/// Cases that go through every method and every branch of Evidently's choice.
fn cases() -> Vec<(Case, Sample, Sample)> {
    let mut rng = Rng(42);
    let mut out = Vec::new();
    let mut push_numeric = |reference: Vec<f64>, current: Vec<f64>| {
        let (r, c) = (
            Sample::Numeric(Numbers::new(reference.iter().map(|v| Some(*v)))),
            Sample::Numeric(Numbers::new(current.iter().map(|v| Some(*v)))),
        );
        out.push((Case { kind: "numeric", reference: reference.into(), current: current.into() }, r, c));
    };
    let normal = |shift: f64, scale: f64| move |r: &mut Rng| r.normal() * scale + shift;
    // Small references (KS): the same distribution, a shift, equal and unequal sizes, a large
    // current sample (the asymptotic p-value).
    push_numeric(numeric(&mut rng, 300, normal(0.0, 1.0)), numeric(&mut rng, 300, normal(0.0, 1.0)));
    push_numeric(numeric(&mut rng, 300, normal(0.0, 1.0)), numeric(&mut rng, 300, normal(0.3, 1.0)));
    push_numeric(numeric(&mut rng, 800, normal(10.0, 2.0)), numeric(&mut rng, 1300, normal(10.2, 2.0)));
    push_numeric(numeric(&mut rng, 1000, normal(0.0, 1.0)), numeric(&mut rng, 20_000, normal(0.05, 1.0)));
    push_numeric(numeric(&mut rng, 37, normal(0.0, 1.0)), numeric(&mut rng, 53, normal(0.5, 1.5)));
    // Integers with many ties: KS on ties, Jensen-Shannon on values (at most 20 distinct).
    push_numeric(numeric(&mut rng, 900, |r| r.below(15) as f64), numeric(&mut rng, 1100, |r| r.below(17) as f64));
    push_numeric(numeric(&mut rng, 5000, |r| r.below(15) as f64), numeric(&mut rng, 7000, |r| r.below(15) as f64));
    // Few values: chi-squared (3-5 values), Z (2 values), Jensen-Shannon for large references.
    push_numeric(
        numeric(&mut rng, 600, |r| r.below(4) as f64),
        numeric(&mut rng, 700, |r| r.below(4) as f64 * 1.0 + 0.0),
    );
    push_numeric(
        numeric(&mut rng, 600, |r| r.below(2) as f64),
        numeric(&mut rng, 400, |r| (r.below(10) < 3) as u8 as f64),
    );
    push_numeric(numeric(&mut rng, 3000, |r| r.below(3) as f64), numeric(&mut rng, 4000, |r| r.below(3) as f64));
    // Large references: Wasserstein and Sturges bins; a tail the reference never saw.
    push_numeric(numeric(&mut rng, 5000, normal(0.0, 1.0)), numeric(&mut rng, 8000, normal(0.0, 1.0)));
    push_numeric(numeric(&mut rng, 20_000, normal(50.0, 10.0)), numeric(&mut rng, 60_000, normal(53.0, 12.0)));
    push_numeric(numeric(&mut rng, 3000, |r| r.uniform()), numeric(&mut rng, 3000, |r| r.uniform() * 1.5));
    // The same sample on both sides.
    let same = numeric(&mut rng, 2000, normal(1.0, 3.0));
    push_numeric(same.clone(), same);
    let mut push_categorical = |reference: Vec<String>, current: Vec<String>| {
        let (r, c) = (
            Sample::Categorical(reference.iter().map(|s| Some(s.as_str())).collect()),
            Sample::Categorical(current.iter().map(|s| Some(s.as_str())).collect()),
        );
        out.push((Case { kind: "categorical", reference: reference.into(), current: current.into() }, r, c));
    };
    push_categorical(categories(&mut rng, 500, &[5, 3, 2]), categories(&mut rng, 600, &[5, 3, 2]));
    push_categorical(categories(&mut rng, 500, &[5, 3, 2]), categories(&mut rng, 600, &[3, 3, 4]));
    push_categorical(categories(&mut rng, 700, &[6, 4]), categories(&mut rng, 300, &[5, 5]));
    // A category the reference never saw.
    push_categorical(categories(&mut rng, 400, &[5, 3, 0]), categories(&mut rng, 400, &[5, 3, 1]));
    push_categorical(
        categories(&mut rng, 20_000, &[40, 30, 20, 9, 1]),
        categories(&mut rng, 30_000, &[40, 30, 20, 9, 1]),
    );
    push_categorical(
        categories(&mut rng, 20_000, &[40, 30, 20, 9, 1]),
        categories(&mut rng, 30_000, &[30, 30, 20, 15, 5]),
    );
    out
}

fn python() -> std::process::Command {
    std::process::Command::new("python3")
}

#[test]
fn every_method_equals_scipy_and_auto_picks_what_evidently_picks() {
    let cases = cases();
    let input = serde_json::to_vec(&cases.iter().map(|(c, ..)| c).collect::<Vec<_>>()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/drift_scipy.py");
    let mut child = python()
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with scipy on PATH (`make test` puts the test environment first)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference script failed");
    let expected: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(expected.len(), cases.len());
    let mut compared = 0;
    for (i, ((case, reference, current), want)) in cases.iter().zip(&expected).enumerate() {
        let auto = column_drift("x", reference, current, &DriftRule::default()).unwrap();
        assert_eq!(auto.method.name(), want["auto"].as_str().unwrap(), "case {i}: Evidently's choice");
        for method in [
            DriftMethod::Ks,
            DriftMethod::Wasserstein,
            DriftMethod::Chisquare,
            DriftMethod::Z,
            DriftMethod::Jensenshannon,
            DriftMethod::Psi,
        ] {
            let Some(scipy) = want.get(method.name()).and_then(serde_json::Value::as_f64) else { continue };
            let rule = DriftRule { method, ..DriftRule::default() };
            let ours = column_drift("x", reference, current, &rule).unwrap().scores[0].value;
            assert!(
                (ours - scipy).abs() <= 1e-9,
                "case {i} ({}): {} is {ours}, scipy says {scipy}",
                case.kind,
                method.name()
            );
            compared += 1;
        }
        if let (Some(d), Sample::Numeric(r), Sample::Numeric(c)) =
            (want.get("ks_statistic").and_then(|v| v.as_f64()), reference, current)
        {
            let ks = ks_2samp(r.values(), c.values()).unwrap();
            assert!((ks.statistic - d).abs() <= 1e-12, "case {i}: KS statistic {} against {d}", ks.statistic);
        }
    }
    assert!(compared >= 90, "only {compared} values compared");
}

#[test]
fn a_shifted_column_drifts_and_the_same_distribution_does_not() {
    let mut rng = Rng(7);
    let reference = Sample::Numeric(Numbers::new((0..5000).map(|_| Some(rng.normal()))));
    let same = Sample::Numeric(Numbers::new((0..5000).map(|_| Some(rng.normal()))));
    let shifted = Sample::Numeric(Numbers::new((0..5000).map(|_| Some(rng.normal() + 0.5))));
    for method in [
        DriftMethod::Auto,
        DriftMethod::Ks,
        DriftMethod::Wasserstein,
        DriftMethod::Jensenshannon,
        DriftMethod::Psi,
        DriftMethod::KsOrPsi,
    ] {
        let rule = DriftRule { method, ..DriftRule::default() };
        assert!(
            !column_drift("x", &reference, &same, &rule).unwrap().drifted,
            "{}: the same distribution",
            method.name()
        );
        assert!(
            column_drift("x", &reference, &shifted, &rule).unwrap().drifted,
            "{}: a shift of half a deviation",
            method.name()
        );
    }
}

#[test]
fn the_dataset_drifts_when_the_share_of_drifted_columns_reaches_the_threshold() {
    let a: Sample = Sample::Categorical(["x", "y", "x", "y"].iter().cycle().take(400).map(|s| Some(*s)).collect());
    let b: Sample = Sample::Categorical(["x", "x", "x", "y"].iter().cycle().take(400).map(|s| Some(*s)).collect());
    let report = data_drift([("same", &a, &a), ("moved", &a, &b)], &DriftConfig::default());
    assert_eq!((report.drifted, report.share), (1, 0.5));
    assert!(report.dataset_drift, "half the columns drifted, the default share is 0.5");
    let strict = DriftConfig { share: 0.6, ..DriftConfig::default() };
    assert!(!data_drift([("same", &a, &a), ("moved", &a, &b)], &strict).dataset_drift);
    // A column rule of its own: a distance threshold no shift reaches.
    let mut lenient = DriftConfig::default();
    lenient
        .columns
        .insert("moved".into(), DriftRule { method: DriftMethod::Psi, threshold: Some(5.0), psi_threshold: None });
    let report = data_drift([("same", &a, &a), ("moved", &a, &b)], &lenient);
    assert_eq!(report.columns[1].method, DriftMethod::Psi);
    assert!(!report.dataset_drift);
}

#[test]
fn columns_that_cannot_be_compared_are_listed_with_the_reason_and_the_rest_still_count() {
    let numbers = Sample::Numeric(Numbers::new((0..100).map(|i| Some(f64::from(i)))));
    let nothing = Sample::Numeric(Numbers::new([None, Some(f64::NAN), Some(f64::INFINITY)]));
    let words: Sample = Sample::Categorical([Some("a"), Some("b")].into_iter().collect());
    let mut config = DriftConfig::default();
    config.columns.insert("words".into(), DriftRule { method: DriftMethod::Ks, ..DriftRule::default() });
    let report = data_drift(
        [
            ("empty", &numbers, &nothing),
            ("mixed", &numbers, &words),
            ("words", &words, &words),
            ("ok", &numbers, &numbers),
        ],
        &config,
    );
    assert_eq!(report.columns.len(), 1);
    let reasons: Vec<&str> = report.skipped.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(report.skipped.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), ["empty", "mixed", "words"]);
    assert!(reasons[0].contains("the current data has no value"), "{}", reasons[0]);
    assert!(reasons[1].contains("reference is Numeric"), "{}", reasons[1]);
    assert!(reasons[2].contains("`ks` compares numbers"), "{}", reasons[2]);
    assert_eq!(nothing.missing(), 3, "nulls, NaN and infinities are missing values");
}

#[test]
fn out_of_range_settings_are_refused_naming_the_key() {
    let bad = |config: DriftConfig| config.check().unwrap_err().to_string();
    assert!(bad(DriftConfig { share: 0.0, ..DriftConfig::default() }).starts_with("drift.share: 0 is not in (0, 1]"));
    assert!(
        bad(DriftConfig { threshold: Some(1.5), ..DriftConfig::default() })
            .starts_with("drift.threshold: 1.5 is not a p-value")
    );
    let mut c = DriftConfig::default();
    c.columns.insert("mass".into(), DriftRule { method: DriftMethod::Psi, threshold: Some(-1.0), psi_threshold: None });
    assert!(bad(c).starts_with("drift.columns.mass.threshold: -1 is not a positive distance"));
    let mut c = DriftConfig::default();
    c.columns.insert("mass".into(), DriftRule { method: DriftMethod::Ks, threshold: None, psi_threshold: Some(0.2) });
    assert!(bad(c).starts_with("drift.columns.mass.psi_threshold: only `ks_or_psi`"));
    let mut c = DriftConfig::default();
    c.columns.insert(
        "mass".into(),
        DriftRule { method: DriftMethod::KsOrPsi, threshold: Some(0.01), psi_threshold: Some(0.3) },
    );
    assert_eq!(c.check(), Ok(()));
}

fn sample_strategy() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    let value = prop_oneof![(-5i32..5).prop_map(f64::from), -1e6f64..1e6];
    (prop::collection::vec(value.clone(), 1..300), prop::collection::vec(value, 1..300))
}

proptest! {
    // Long inputs are slow to generate in a debug build; a few dozen cover the sign and zero cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn samples_sort_as_a_comparison_sort_does(mut values in prop::collection::vec(prop_oneof![-1e300f64..1e300, (-3i32..3).prop_map(f64::from), Just(-0.0), Just(f64::MIN_POSITIVE)], 4096..9000)) {
        values.iter_mut().for_each(|v| *v += 0.0);
        let mut want = values.clone();
        want.sort_unstable_by(f64::total_cmp);
        sample::sort_floats(&mut values);
        prop_assert_eq!(values, want);
    }
}

proptest! {
    #[test]
    fn scores_are_in_range_and_identical_samples_never_drift((reference, current) in sample_strategy()) {
        let r = Sample::Numeric(Numbers::new(reference.iter().map(|v| Some(*v))));
        let c = Sample::Numeric(Numbers::new(current.iter().map(|v| Some(*v))));
        for method in [DriftMethod::Auto, DriftMethod::Ks, DriftMethod::Wasserstein, DriftMethod::Chisquare, DriftMethod::Z, DriftMethod::Jensenshannon, DriftMethod::Psi, DriftMethod::KsOrPsi] {
            let rule = DriftRule { method, ..DriftRule::default() };
            let d = column_drift("x", &r, &c, &rule).unwrap();
            for s in &d.scores {
                prop_assert!(!s.value.is_nan(), "{} gave NaN", s.method.name());
                if s.method.is_test() {
                    prop_assert!((0.0..=1.0).contains(&s.value), "{} p-value {}", s.method.name(), s.value);
                } else {
                    prop_assert!(s.value >= 0.0, "{} distance {}", s.method.name(), s.value);
                }
            }
            let same = column_drift("x", &r, &r, &rule).unwrap();
            prop_assert!(!same.drifted, "{} says a sample drifted from itself: {:?}", method.name(), same.scores);
        }
    }
}
