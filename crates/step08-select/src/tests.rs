//! Tests of the selection step: filters, slices, columns, samples and splits, with the invariants
//! as properties.

use std::collections::BTreeSet;

use mlops_core::{DType, Scalar, Seed};
use polars::prelude::*;
use proptest::prelude::*;

use crate::*;

fn people() -> DataFrame {
    df!(
        "id" => [1i64, 2, 3, 4, 5, 6, 7, 8],
        "age" => [Some(15i64), Some(22), Some(35), None, Some(41), Some(19), Some(67), Some(30)],
        "income" => [0.0, 52000.0, 61000.0, 48000.0, 99000.0, 51000.0, 20000.0, 75000.0],
        "email" => [Some("a@gmail.com"), Some("b@corp.com"), Some("c@gmail.com"), None, Some("e@gmail.com"), Some("f@x.org"), Some("g@gmail.com"), Some("h@corp.com")],
        "score" => [0.1, 0.5, 0.9, 0.3, 0.95, 0.2, 0.7, 0.99],
        "joined" => [19000i32, 19300, 19400, 19500, 19358, 19723, 19000, 19800],
    )
    .unwrap()
    .lazy()
    .with_column(col("joined").cast(DataType::Date))
    .collect()
    .unwrap()
}

fn ids(df: &DataFrame) -> Vec<i64> {
    df.column("id").unwrap().i64().unwrap().into_no_null_iter().collect()
}

#[test]
fn filters_from_the_workflow() {
    let df = people();
    let run = |f: &str| ids(&filter(&df, f, "select.rows.filter").unwrap());
    assert_eq!(run("age > 18 and income > 50000"), vec![2, 3, 5, 6, 8]);
    assert_eq!(run(r#"email contains "@gmail.com""#), vec![1, 3, 5, 7]);
    // 19358 days is 2023-01-01.
    assert_eq!(run("joined >= 2023-01-01"), vec![3, 4, 5, 6, 8]);
    assert_eq!(run("is_null(age)"), vec![4]);
    // pandas: df[df.score >= df.score.quantile(0.75)] -> 0.9125 and up.
    assert_eq!(run("score >= q(0.75)"), vec![5, 8]);
    // The median is 0.6.
    assert_eq!(run("q(0.5) > score"), vec![1, 2, 4, 6]);
    assert_eq!(run(r#"email starts_with "a" or email ends_with ".org""#), vec![1, 6]);
}

#[test]
fn bad_filters_say_where_and_what() {
    let df = people();
    let err = filter(&df, "age > and income", "select.rows.filter").unwrap_err().to_string();
    assert!(err.contains("select.rows.filter") && err.contains("column 7") && err.contains("`and`"), "{err}");
    let err = filter(&df, "salary > 3", "f").unwrap_err().to_string();
    assert!(err.contains("`salary` not found"), "{err}");
    let err = filter(&df, "age + 1", "f").unwrap_err().to_string();
    assert!(err.contains("not true or false"), "{err}");
    let err = filter(&df, "q(0.9) + 1 > 2", "f").unwrap_err().to_string();
    assert!(err.contains("compared with a column"), "{err}");
    let err = filter(&df, "age contains \"1\"", "f").unwrap_err().to_string();
    assert!(err.contains("needs text"), "{err}");
    let err = filter(&df, "score >= q(1.5)", "f").unwrap_err().to_string();
    assert!(err.contains("between 0 and 1"), "{err}");
}

#[test]
fn slices_by_position_and_label() {
    let df = people();
    let rows = |r: Rows| ids(&r.apply(&df, "select.rows").unwrap());
    assert_eq!(
        rows(Rows { positions: Some(Positions { start: Some(2), stop: Some(5) }), ..Rows::default() }),
        vec![3, 4, 5]
    );
    assert_eq!(
        rows(Rows { positions: Some(Positions { start: Some(-2), stop: None }), ..Rows::default() }),
        vec![7, 8]
    );
    let labels = Labels { column: "id".into(), values: vec![Scalar::Int(7), Scalar::Int(2)], from: None, to: None };
    assert_eq!(rows(Rows { labels: Some(labels), ..Rows::default() }), vec![2, 7]);
    let range = Labels {
        column: "joined".into(),
        values: vec![],
        from: Some(Scalar::Str("2023-01-01".into())),
        to: Some(Scalar::Str("2023-12-31".into())),
    };
    assert_eq!(rows(Rows { labels: Some(range), ..Rows::default() }), vec![3, 4, 5]);
    let both = Rows {
        filter: Some("income > 50000".into()),
        positions: Some(Positions { start: Some(0), stop: Some(2) }),
        labels: None,
    };
    assert_eq!(rows(both), vec![2, 3]);
    let bad = Labels { column: "nope".into(), values: vec![Scalar::Int(1)], from: None, to: None };
    let err = Rows { labels: Some(bad), ..Rows::default() }.apply(&df, "select.rows").unwrap_err();
    assert!(matches!(&err, SelectError::MissingColumn { key, .. } if key == "select.rows.labels.column"), "{err}");
}

#[test]
fn columns_by_name_pattern_and_type() {
    let df = people();
    let pick = |c: Columns| c.resolve(&df, "select.columns").unwrap();
    assert_eq!(pick(Columns { names: vec!["email".into(), "id".into()], ..Columns::default() }), vec!["id", "email"]);
    assert_eq!(pick(Columns { pattern: Some("^(in|sc)".into()), ..Columns::default() }), vec!["income", "score"]);
    assert_eq!(
        pick(Columns { types: vec![TypeSet::Number], exclude: vec!["id".into()], ..Columns::default() }),
        vec!["age", "income", "score"]
    );
    assert_eq!(pick(Columns { types: vec![TypeSet::One(DType::Date)], ..Columns::default() }), vec!["joined"]);
    let err = Columns { names: vec!["nope".into()], ..Columns::default() }.resolve(&df, "select.columns").unwrap_err();
    assert!(err.to_string().starts_with("select.columns.names: column `nope` not found"), "{err}");
    let err = Columns { pattern: Some("(".into()), ..Columns::default() }.resolve(&df, "select.columns").unwrap_err();
    assert!(matches!(err, SelectError::Invalid { .. }));
    let yaml = "columns: {types: [number, date]}\nrows: {filter: 'age > 18'}\nsample: {random: {n: 2}}\n";
    let sel: Selection = mlops_core::config::parse_yaml(yaml, std::path::Path::new("t.yaml")).unwrap();
    let out = sel.apply(&df, Seed(1)).unwrap();
    assert_eq!((out.height(), out.width()), (2, 5));
}

fn classes(n_a: usize, n_b: usize, n_c: usize) -> DataFrame {
    let labels: Vec<&str> = std::iter::repeat_n("a", n_a)
        .chain(std::iter::repeat_n("b", n_b))
        .chain(std::iter::repeat_n("c", n_c))
        .collect();
    let n = labels.len();
    df!("label" => labels, "x" => (0..n as i64).collect::<Vec<_>>(), "group" => (0..n as i64).map(|i| i % 7).collect::<Vec<_>>()).unwrap()
}

#[test]
fn samples() {
    let df = classes(50, 30, 20);
    let draw = |s: Sample| s.rows(&df, Seed(3), "sample").unwrap();
    assert_eq!(draw(Sample::Random { n: Some(10), fraction: None }).len(), 10);
    assert_eq!(draw(Sample::Random { n: None, fraction: Some(0.25) }).len(), 25);
    let strat = draw(Sample::Stratified { by: "label".into(), n: None, fraction: Some(0.1) });
    let labels = mlops_core::frame::keys(&df, "label").unwrap();
    let count = |c: &str| strat.iter().filter(|&&i| labels[i].as_deref() == Some(c)).count();
    assert_eq!((count("a"), count("b"), count("c")), (5, 3, 2));
    assert_eq!(draw(Sample::Systematic { every: 10, start: 3 }), vec![3, 13, 23, 33, 43, 53, 63, 73, 83, 93]);
    let cluster = draw(Sample::Cluster { by: "group".into(), clusters: 2 });
    let groups: BTreeSet<i64> = cluster.iter().map(|&i| i as i64 % 7).collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(cluster.len(), df.height() - (0..df.height()).filter(|i| !groups.contains(&(*i as i64 % 7))).count());
    assert_eq!(
        draw(Sample::Random { n: Some(10), fraction: None }),
        draw(Sample::Random { n: Some(10), fraction: None })
    );
    let err = Sample::Random { n: Some(1000), fraction: None }.rows(&df, Seed(3), "sample").unwrap_err();
    assert!(err.to_string().contains("sample.random.n"), "{err}");
    let err = Sample::Random { n: Some(1), fraction: Some(0.1) }.rows(&df, Seed(3), "sample").unwrap_err();
    assert!(err.to_string().contains("exactly one"), "{err}");
    let err = Sample::Cluster { by: "group".into(), clusters: 9 }.rows(&df, Seed(3), "sample").unwrap_err();
    assert!(err.to_string().contains("7 distinct values"), "{err}");
}

#[test]
fn split_errors_name_the_problem() {
    let df = classes(10, 10, 1);
    let strat = SplitParams { method: SplitMethod::Stratified { by: "label".into() }, ..SplitParams::default() };
    let err = strat.split(&df, Seed(1)).unwrap_err();
    assert!(matches!(&err, SelectError::TinyClass { class, rows: 1, .. } if class == "c"), "{err}");
    assert!(err.to_string().contains("class `c` of `label` has 1 row(s)"), "{err}");
    let time = SplitParams {
        method: SplitMethod::Time { column: "label".into(), test_from: None, validation_from: None },
        ..SplitParams::default()
    };
    let err = time.split(&df, Seed(1)).unwrap_err();
    assert!(matches!(&err, SelectError::WrongType { column, .. } if column == "label"), "{err}");
    assert!(err.to_string().contains("date or datetime"), "{err}");
    let err = SplitParams::default().split(&df.head(Some(0)), Seed(1)).unwrap_err();
    assert!(matches!(err, SelectError::Empty { .. }));
    let err = SplitParams { test: 0.6, validation: 0.5, ..SplitParams::default() }.split(&df, Seed(1)).unwrap_err();
    assert!(err.to_string().starts_with("split.validation"), "{err}");
    let missing = SplitParams { method: SplitMethod::Group { by: "nope".into() }, ..SplitParams::default() };
    assert!(matches!(missing.split(&df, Seed(1)), Err(SelectError::MissingColumn { .. })));
    let yaml = "method: {stratified: {by: label}}\ntest: 0.25\nvalidaton: 0.1\n";
    let err = mlops_core::config::parse_yaml::<SplitParams>(yaml, std::path::Path::new("t.yaml")).unwrap_err();
    assert!(err.to_string().contains("validaton"), "{err}");
}

#[test]
fn time_split_by_cutoff_and_by_share() {
    let df = people();
    let by_cutoff = SplitParams {
        method: SplitMethod::Time {
            column: "joined".into(),
            test_from: Some("2023-06-01".into()),
            validation_from: Some("2023-01-01".into()),
        },
        ..SplitParams::default()
    };
    let s = by_cutoff.split(&df, Seed(1)).unwrap();
    // joined: 19000 19300 19400 19500 19358 19723 19000 19800; 2023-06-01 is day 19509.
    assert_eq!((s.train.clone(), s.validation.clone(), s.test.clone()), (vec![0, 1, 6], vec![2, 3, 4], vec![5, 7]));
    assert_eq!(s.report.cutoffs["test_from"], "2023-06-01");
    let by_share = SplitParams {
        method: SplitMethod::Time { column: "joined".into(), test_from: None, validation_from: None },
        test: 0.25,
        ..SplitParams::default()
    };
    let s = by_share.split(&df, Seed(1)).unwrap();
    assert_eq!(s.test, vec![5, 7]);
    let bad = SplitParams {
        method: SplitMethod::Time { column: "joined".into(), test_from: Some("June".into()), validation_from: None },
        ..SplitParams::default()
    };
    assert!(bad.split(&df, Seed(1)).unwrap_err().to_string().contains("test_from"));
}

fn arb_method() -> impl Strategy<Value = SplitMethod> {
    prop_oneof![
        Just(SplitMethod::Random),
        Just(SplitMethod::Stratified { by: "label".into() }),
        Just(SplitMethod::Group { by: "group".into() }),
    ]
}

proptest! {
    #[test]
    fn splits_partition_the_rows_with_the_requested_sizes(
        n_a in 3usize..60, n_b in 3usize..60, n_c in 3usize..30,
        test in 0.05f64..0.4, validation in prop_oneof![Just(0.0), 0.05f64..0.3],
        method in arb_method(), seed in 0u64..1000,
    ) {
        let df = classes(n_a, n_b, n_c);
        let n = df.height();
        let params = SplitParams { method: method.clone(), test, validation, target: Some("label".into()) };
        let split = match params.split(&df, Seed(seed)) {
            Ok(s) => s,
            // Group splits refuse shares that leave no training group; nothing else may fail.
            Err(SelectError::Invalid { key, .. }) if key == "split.method.group.by" => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let mut all: Vec<usize> = split.train.iter().chain(&split.validation).chain(&split.test).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
        let labels = mlops_core::frame::keys(&df, "label").unwrap();
        match method {
            SplitMethod::Random => {
                prop_assert_eq!(split.test.len(), (n as f64 * test).ceil() as usize);
                prop_assert_eq!(split.validation.len(), (n as f64 * validation).ceil() as usize);
            }
            SplitMethod::Stratified { .. } => {
                // Each part holds every class in the whole's proportion, within one row.
                for (class, size) in [("a", n_a), ("b", n_b), ("c", n_c)] {
                    for part in [&split.train, &split.test, &split.validation] {
                        let got = part.iter().filter(|&&i| labels[i].as_deref() == Some(class)).count() as f64;
                        let exact = size as f64 * part.len() as f64 / n as f64;
                        prop_assert!((got - exact).abs() <= 1.0, "class {} has {} of {}", class, got, exact);
                    }
                }
                prop_assert_eq!(split.test.len(), (n as f64 * test).ceil() as usize);
            }
            _ => {
                let group = |i: &usize| *i as i64 % 7;
                let train: BTreeSet<i64> = split.train.iter().map(group).collect();
                let test_groups: BTreeSet<i64> = split.test.iter().map(group).collect();
                let val: BTreeSet<i64> = split.validation.iter().map(group).collect();
                prop_assert!(train.is_disjoint(&test_groups) && train.is_disjoint(&val) && val.is_disjoint(&test_groups));
            }
        }
        let again = params.split(&df, Seed(seed)).unwrap();
        prop_assert_eq!(again.test, split.test);
        let total: usize = split.report.class_balance.unwrap().parts.values().flat_map(|c| c.values()).sum();
        prop_assert_eq!(total, n);
    }

    #[test]
    fn controlled_rounding_keeps_sums_and_stays_within_one(sizes in proptest::collection::vec(0usize..200, 1..12), a in 0.0f64..1.0, b in 0.0f64..1.0) {
        let total: usize = sizes.iter().sum();
        let first = (total as f64 * a * 0.5).ceil() as usize;
        let second = ((total - first) as f64 * b).floor() as usize;
        let parts = [first, second, total - first - second];
        let table = apportion_table(&sizes, &parts);
        for (c, row) in table.iter().enumerate() {
            prop_assert_eq!(row.iter().sum::<usize>(), sizes[c]);
            for (p, &cell) in row.iter().enumerate() {
                let exact = if total == 0 { 0.0 } else { sizes[c] as f64 * parts[p] as f64 / total as f64 };
                prop_assert!((cell as f64 - exact).abs() <= 1.0 + 1e-9);
            }
        }
        for (p, &size) in parts.iter().enumerate() {
            prop_assert_eq!(table.iter().map(|r| r[p]).sum::<usize>(), size);
        }
    }

    #[test]
    fn any_filter_keeps_whole_rows_or_says_which_filter_is_wrong(
        text in concat!(
            "[a-z0-9 ()<>=!\"'`.,+*/%-]{0,40}",
            "|(age|income|email|score|joined) (>|<|==|contains) [a-z0-9\"@.()-]{0,12}",
            // Numbers where a condition belongs, and quantiles of every column.
            "|(age|income|score|email|[0-9]{1,3}) [-+*/%] [0-9]{1,3}",
            "|(age|income|email|score|joined|salary) (>=|<) q\\(0?\\.[0-9]\\)",
        ),
    ) {
        let df = people();
        let result = filter(&df, &text, "f");
        // `column >= q(p)`: the quantile of a number column, or an error naming the column.
        let quantile_of = regex::Regex::new(r"^(\w+) (>=|<) q\(0?\.\d\)$").unwrap();
        if let Some(column) = quantile_of.captures(&text).map(|c| c[1].to_string()) {
            match &result {
                Ok(_) => prop_assert!(["age", "income", "score"].contains(&column.as_str()), "`{}` passed", text),
                Err(SelectError::Filter { source, .. }) => {
                    prop_assert!(source.to_string().contains(&format!("column `{column}`")), "`{}`: {}", text, source)
                }
                Err(other) => prop_assert!(false, "`{}`: {:?}", text, other),
            }
        }
        match result {
            Ok(kept) => {
                // Rows are kept whole and in order: the frame is `df` without some of its rows.
                let kept_ids = ids(&kept);
                let mask: BooleanChunked = ids(&df).iter().map(|i| Some(kept_ids.contains(i))).collect();
                let expected = df.filter(&mask).unwrap();
                prop_assert!(kept.equals_missing(&expected), "`{}` kept {:?}", text, kept);
            }
            // Parse, type and quantile errors quote the filter as written, under its key.
            Err(SelectError::Filter { key, source }) => {
                prop_assert_eq!(key, "f");
                match *source {
                    mlops_core::CoreError::Expr { source_text, .. } => prop_assert_eq!(source_text, text),
                    other => prop_assert!(false, "`{}`: unexpected filter error {:?}", text, other),
                }
            }
            // A filter that gives something other than true or false quotes itself.
            Err(SelectError::Invalid { key, message }) => {
                prop_assert_eq!(key, "f");
                prop_assert!(message.contains(&format!("`{text}`")) && message.contains("not true or false"), "{}", message);
            }
            Err(other) => prop_assert!(false, "`{}`: unexpected error {:?}", text, other),
        }
    }

    #[test]
    fn a_column_compared_with_a_value_keeps_the_rows_a_user_expects((column, op, value) in comparison()) {
        let text = format!("{column} {op} {}", value.written());
        match (expected_filter(column, op, &value), filter(&people(), &text, "f")) {
            (Ok(want), Ok(kept)) => prop_assert_eq!(ids(&kept), want, "`{}`", text),
            (Err(fragment), Err(SelectError::Filter { key, source })) => {
                prop_assert_eq!(key, "f");
                match *source {
                    mlops_core::CoreError::Expr { source_text, message } => {
                        prop_assert_eq!(&source_text, &text);
                        prop_assert!(message.contains(fragment), "`{}`: {} (expected: {})", text, message, fragment);
                    }
                    other => prop_assert!(false, "`{}`: {:?}, expected an expression error", text, other),
                }
            }
            (want, got) => prop_assert!(false, "`{}`: expected {:?}, got {:?}", text, want, got.map(|df| ids(&df))),
        }
    }
}

/// A value written on the right of a filter's comparison.
#[derive(Clone, Debug)]
enum Literal {
    Number(f64),
    Text(String),
    /// Days since 1970-01-01, written bare (`2023-01-01`) or quoted.
    Date {
        text: &'static str,
        days: i32,
        quoted: bool,
    },
}

impl Literal {
    fn written(&self) -> String {
        match self {
            Literal::Number(x) => x.to_string(),
            Literal::Text(t) => format!("\"{t}\""),
            Literal::Date { text, quoted: true, .. } => format!("\"{text}\""),
            Literal::Date { text, .. } => text.to_string(),
        }
    }
}

fn comparison() -> impl Strategy<Value = (&'static str, &'static str, Literal)> {
    let number = prop_oneof![
        // Values in the data, so `==` finds rows.
        prop::sample::select(vec![0.0, 15.0, 22.0, 30.0, 41.0, 52000.0, 61000.0, 0.5, 0.9, 0.95]),
        (0u32..100_000).prop_map(f64::from),
        (0u32..1000).prop_map(|x| f64::from(x) / 100.0),
    ]
    .prop_map(Literal::Number);
    let text = prop_oneof![
        prop::sample::select(vec!["@gmail.com", "b@corp.com", "corp", "a", "z", ""]).prop_map(String::from),
        "[a-z@.]{0,4}",
    ]
    .prop_map(Literal::Text);
    // Days computed with Python's datetime; the data's dates are 2022-01-08, 2022-11-04,
    // 2023-02-12, 2023-05-23, 2023-01-01, 2024-01-01, 2024-03-18.
    let date = (
        prop::sample::select(vec![
            ("2021-06-30", 18808),
            ("2022-01-08", 19000),
            ("2022-11-05", 19301),
            ("2023-01-01", 19358),
            ("2023-02-13", 19401),
            ("2023-05-24", 19501),
            ("2024-01-01", 19723),
            ("2024-03-19", 19801),
            ("2024-12-31", 20088),
        ]),
        any::<bool>(),
    )
        .prop_map(|((text, days), quoted)| Literal::Date { text, days, quoted });
    (
        prop::sample::select(vec!["age", "income", "email", "score", "joined"]),
        prop::sample::select(vec![">", "<", "==", "contains"]),
        prop_oneof![number, text, date],
    )
}

/// The ids `filter` should keep for `column op value` on [`people`], worked out from the data
/// as written there, or the words of the error it should give.
fn expected_filter(column: &str, op: &str, value: &Literal) -> Result<Vec<i64>, &'static str> {
    let age = [Some(15.0), Some(22.0), Some(35.0), None, Some(41.0), Some(19.0), Some(67.0), Some(30.0)];
    let income = [0.0, 52000.0, 61000.0, 48000.0, 99000.0, 51000.0, 20000.0, 75000.0].map(Some);
    let score = [0.1, 0.5, 0.9, 0.3, 0.95, 0.2, 0.7, 0.99].map(Some);
    let email = [
        Some("a@gmail.com"),
        Some("b@corp.com"),
        Some("c@gmail.com"),
        None,
        Some("e@gmail.com"),
        Some("f@x.org"),
        Some("g@gmail.com"),
        Some("h@corp.com"),
    ];
    let joined = [19000, 19300, 19400, 19500, 19358, 19723, 19000, 19800];
    let holds = |o: std::cmp::Ordering| match op {
        ">" => o.is_gt(),
        "<" => o.is_lt(),
        _ => o.is_eq(),
    };
    // A null never passes a filter.
    let keep = |pass: &dyn Fn(usize) -> Option<bool>| {
        (0..8).filter(|&i| pass(i) == Some(true)).map(|i| i as i64 + 1).collect()
    };
    // A bare date is a text like a quoted one; only a date column reads it as a date.
    let text = match value {
        Literal::Text(t) => Some(t.as_str()),
        Literal::Date { text, .. } => Some(*text),
        Literal::Number(_) => None,
    };
    match (column, op, value) {
        ("email", "contains", _) => match text {
            Some(t) => Ok(keep(&|i| email[i].map(|e| e.contains(t)))),
            None => Err("needs a quoted text on its right"),
        },
        (_, "contains", _) => Err("needs text on its left"),
        ("email", _, _) => match text {
            Some(t) => Ok(keep(&|i| email[i].map(|e| holds(e.cmp(t))))),
            None => Err("cannot compare"),
        },
        // A text compared with a date is read as a date.
        ("joined", _, Literal::Date { days, .. }) => Ok(keep(&|i| Some(holds(joined[i].cmp(days))))),
        ("joined", _, Literal::Text(_)) => Err("is not a date"),
        ("joined", _, _) => Err("cannot compare"),
        (_, _, Literal::Number(x)) => {
            let numbers = match column {
                "age" => age,
                "income" => income,
                _ => score,
            };
            Ok(keep(&|i| numbers[i].map(|v: f64| holds(v.total_cmp(x)))))
        }
        _ => Err("cannot compare"),
    }
}
