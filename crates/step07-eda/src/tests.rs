//! Tests of the EDA step: statistics against pandas, the report's sections, properties.

use polars::prelude::*;
use proptest::prelude::*;

use crate::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn sample() -> DataFrame {
    df!(
        "a" => [Some(1.0), Some(2.0), Some(2.0), Some(3.0), None, Some(10.0), Some(4.0)],
        "b" => [Some(2.0), None, Some(4.0), Some(6.0), Some(8.0), Some(1.0), Some(5.0)],
        "c" => [7i64, 7, 7, 7, 7, 7, 7],
        "s" => [Some("x"), Some("y"), Some("x"), None, Some("z"), Some("x"), Some("y")],
    )
    .unwrap()
}

/// The numbers pandas 3.1 gives for the same frame (`describe`, `skew`, `kurt`, `corr`,
/// `np.histogram(bins=3)`).
#[test]
fn statistics_match_pandas() {
    let params = EdaParams { histogram_bins: 3, ..EdaParams::default() };
    let p = profile(&sample(), &params).unwrap();
    let a = p.variables[0].numeric.as_ref().unwrap();
    assert_eq!(p.variables[0].count, 6);
    assert_eq!(p.variables[0].nulls.count, 1);
    assert!(close(a.mean, 3.6666666666666665));
    assert!(close(a.std.unwrap(), 3.265986323710904));
    assert_eq!((a.min, a.q1, a.median, a.q3, a.max), (1.0, 2.0, 2.5, 3.75, 10.0));
    assert!(close(a.skew.unwrap(), 1.9423688194725983));
    assert!(close(a.kurtosis.unwrap(), 4.055859375000001));
    assert_eq!(a.histogram.counts, vec![4, 1, 1]);
    assert_eq!(a.histogram.edges, vec![1.0, 4.0, 7.0, 10.0]);
    // IQR fences 2 - 1.5·1.75 and 3.75 + 1.5·1.75: only 10 is outside.
    assert_eq!(a.outliers.count, 1);

    let c = &p.variables[2];
    let cs = c.numeric.as_ref().unwrap();
    assert_eq!((cs.std, cs.skew, cs.kurtosis), (Some(0.0), None, None));
    assert_eq!(p.constant_columns, vec!["c".to_string()]);

    let corr = &p.correlations;
    assert_eq!(corr.columns, vec!["a", "b", "c"]);
    assert!(close(corr.pearson[0][1].unwrap(), -0.47739603762933147));
    // pandas ranks each pair on the rows both have (0, 2, 3, 5, 6): a's ranks [1, 2, 3, 5, 4]
    // against b's [2, 3, 5, 1, 4] give -0.1. Ranking each column over all its values instead
    // (a's [1, 2.5, 4, 6, 5], counting row 1) would give 0.
    assert!((corr.spearman[0][1].unwrap() - -0.1).abs() < 1e-9, "{:?}", corr.spearman[0][1]);
    assert_eq!(corr.spearman[0][1], corr.spearman[1][0]);
    // With the same null rows no pair needs ranking again (pandas: 0.4).
    let same = df!("x" => [Some(1.0), Some(2.0), None, Some(4.0), Some(3.0)], "y" => [Some(1.0), Some(3.0), None, Some(2.0), Some(5.0)]).unwrap();
    let p2 = profile(&same, &EdaParams::default()).unwrap();
    assert!(close(p2.correlations.spearman[0][1].unwrap(), 0.4));
    assert_eq!(corr.pearson[2][2], None);
    assert_eq!(corr.pearson[0][0], Some(1.0));

    let s = &p.variables[3];
    assert_eq!(s.kind, Kind::Categorical);
    assert_eq!((s.count, s.unique), (6, 3));
    assert_eq!(s.top[0], Frequency { value: "x".into(), count: 3 });
    assert_eq!(s.top[1], Frequency { value: "y".into(), count: 2 });
}

/// Ties and nulls on different rows in every pair: `df.corr(method="spearman")` in pandas 3.1.
#[test]
fn spearman_ranks_each_pair_on_the_rows_both_have_as_pandas_does() {
    let df = df!(
        "p" => [Some(3.0), Some(1.0), None, Some(2.0), Some(2.0), Some(5.0), None, Some(4.0), Some(1.0), Some(0.5)],
        "q" => [Some(1.0), Some(1.0), Some(2.0), None, Some(3.0), Some(3.0), Some(3.0), Some(0.0), None, Some(-1.0)],
        "r" => [None, Some(7i64), Some(7), Some(7), Some(1), Some(2), None, Some(5), Some(5), Some(6)],
    )
    .unwrap();
    let rho = profile(&df, &EdaParams::default()).unwrap().correlations.spearman;
    let pandas = [
        [1.0, 0.4707919090691997, -0.49074074074074076],
        [0.4707919090691997, 1.0, -0.5],
        [-0.49074074074074076, -0.5, 1.0],
    ];
    for (i, row) in pandas.iter().enumerate() {
        for (j, &want) in row.iter().enumerate() {
            let got = rho[i][j].unwrap();
            assert!((got - want).abs() < 1e-9, "[{i}][{j}]: {got} against pandas' {want}");
        }
    }
}

#[test]
fn warnings_name_what_a_user_should_look_at() {
    let n = 200;
    let df = df!(
        "id" => (0..n).map(|i| format!("id-{i}")).collect::<Vec<_>>(),
        "x" => (0..n).map(|i| i as f64).collect::<Vec<_>>(),
        "twice_x" => (0..n).map(|i| 2.0 * i as f64 + 1.0).collect::<Vec<_>>(),
        "tail" => (0..n).map(|i| if i % 50 == 0 { 1000.0 } else { (i % 7) as f64 }).collect::<Vec<_>>(),
        "gappy" => (0..n).map(|i| (i % 2 == 0).then_some(1.5 * i as f64)).collect::<Vec<_>>(),
        "one" => vec!["same"; n],
    )
    .unwrap();
    let p = profile(&df, &EdaParams::default()).unwrap();
    let has = |pred: &dyn Fn(&Warning) -> bool| p.warnings.iter().any(pred);
    assert!(has(&|w| matches!(w, Warning::HighCardinality { column, unique: 200, .. } if column == "id")));
    assert!(has(
        &|w| matches!(w, Warning::Correlated { a, b, r } if a == "x" && b == "twice_x" && (*r - 1.0).abs() < 1e-12)
    ));
    assert!(has(&|w| matches!(w, Warning::Skewed { column, .. } if column == "tail")));
    assert!(has(&|w| matches!(w, Warning::HighNulls { column, percent } if column == "gappy" && *percent == 50.0)));
    assert!(has(&|w| matches!(w, Warning::Constant { column } if column == "one")));
    assert!(!has(&|w| matches!(w, Warning::Duplicates { .. })));
}

#[test]
fn duplicates_dates_and_booleans() {
    let dates = [Some(19000i32), Some(19001), None, Some(19000)];
    let df = df!(
        "d" => dates,
        "flag" => [Some(true), Some(false), Some(true), Some(true)],
        "k" => [1i64, 2, 3, 1],
    )
    .unwrap();
    let df = df.lazy().with_column(col("d").cast(DataType::Date)).collect().unwrap();
    let p = profile(&df, &EdaParams::default()).unwrap();
    assert_eq!(p.duplicates.count, 1);
    let d = p.variables[0].temporal.as_ref().unwrap();
    assert_eq!((d.min.as_str(), d.max.as_str()), ("2022-01-08", "2022-01-09"));
    assert_eq!(p.variables[0].top[0], Frequency { value: "2022-01-08".into(), count: 2 });
    let flag = p.variables[1].categories.as_ref().unwrap();
    assert_eq!(flag.values[0], Frequency { value: "true".into(), count: 3 });
    assert!(p.warnings.iter().any(|w| matches!(w, Warning::Duplicates { rows: 1, .. })));
}

#[test]
fn bad_input_is_named() {
    let empty = sample().head(Some(0));
    assert!(matches!(profile(&empty, &EdaParams::default()), Err(EdaError::Empty)));
    let params = EdaParams { columns: vec!["nope".into()], ..EdaParams::default() };
    let err = profile(&sample(), &params).unwrap_err();
    assert!(matches!(&err, EdaError::MissingColumn { column, .. } if column == "nope"));
    assert!(err.to_string().contains("available: a, b, c, s"));
    let params = EdaParams { histogram_bins: 0, ..EdaParams::default() };
    assert!(matches!(profile(&sample(), &params), Err(EdaError::Invalid { key: "histogram_bins", .. })));
    let yaml = "histogram_bins: 10\nbins: 3\n";
    let err = mlops_core::config::parse_yaml::<EdaParams>(yaml, std::path::Path::new("eda.yaml")).unwrap_err();
    assert!(err.to_string().contains("bins"), "{err}");
}

#[test]
fn report_has_every_section_and_figure_and_no_rows() {
    let p = profile(&sample(), &EdaParams::default()).unwrap();
    let figures = vec![
        Figure {
            slot: Slot::Variable("a".into()),
            title: "Histogram of a".into(),
            svg: "<svg id=\"h-a\"></svg>".into(),
        },
        Figure { slot: Slot::Pearson, title: "Pearson".into(), svg: "<svg id=\"pearson\"></svg>".into() },
        Figure { slot: Slot::Missing, title: "Nulls <per> column".into(), svg: "<svg id=\"nulls\"></svg>".into() },
    ];
    let meta = ReportMeta { title: "demo@1234".into(), ..ReportMeta::default() };
    let html = render_html(&p, &meta, &figures);
    for (id, label) in SECTIONS {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "section {id}");
        assert!(html.contains(&format!("<a href=\"#{id}\">{label}</a>")), "toc {id}");
    }
    for id in ["h-a", "pearson", "nulls"] {
        assert!(html.contains(&format!("<svg id=\"{id}\">")), "figure {id}");
    }
    assert!(html.contains("Nulls &lt;per&gt; column"));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
}

#[test]
fn writing_a_report_replaces_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&sample(), &EdaParams::default()).unwrap();
    let written = write_report(dir.path(), &p, "<html></html>").unwrap();
    let back: Profile = serde_json::from_slice(&std::fs::read(&written.json).unwrap()).unwrap();
    assert_eq!(back, p);
    assert_eq!(std::fs::read_to_string(&written.html).unwrap(), "<html></html>");
}

fn arb_frame() -> impl Strategy<Value = DataFrame> {
    let cell = prop_oneof![Just(None), (-1e6f64..1e6).prop_map(Some), Just(Some(0.0)), Just(Some(f64::NAN))];
    (1usize..40).prop_flat_map(move |n| {
        (
            proptest::collection::vec(cell.clone(), n),
            proptest::collection::vec(cell.clone(), n),
            proptest::collection::vec(proptest::option::of("[a-c]{0,2}"), n),
        )
            .prop_map(|(x, y, s)| df!("x" => x, "y" => y, "s" => s).unwrap())
    })
}

proptest! {
    #[test]
    fn profiles_never_panic_and_stay_consistent(df in arb_frame()) {
        let p = profile(&df, &EdaParams::default()).unwrap();
        for v in &p.variables {
            prop_assert_eq!(v.count + v.nulls.count, df.height());
            if let Some(n) = &v.numeric {
                prop_assert_eq!(n.histogram.counts.iter().sum::<usize>(), v.count);
                prop_assert!(n.min <= n.q1 && n.q1 <= n.median && n.median <= n.q3 && n.q3 <= n.max);
            }
            prop_assert!(v.unique <= v.count);
        }
        let c = &p.correlations;
        for i in 0..c.columns.len() {
            for j in 0..c.columns.len() {
                prop_assert_eq!(c.pearson[i][j], c.pearson[j][i]);
                for m in [c.pearson[i][j], c.spearman[i][j]].into_iter().flatten() {
                    prop_assert!((-1.0..=1.0).contains(&m));
                }
            }
        }
    }

    #[test]
    fn spearman_equals_ranking_each_pair_again(
        pairs in proptest::collection::vec(
            (proptest::option::weighted(0.8, -4i64..4), proptest::option::weighted(0.8, -50.0f64..50.0)),
            2..60,
        ),
    ) {
        // Few distinct integers make long ties; nulls fall on different rows in each column.
        let (x, y): (Vec<Option<i64>>, Vec<Option<f64>>) = pairs.into_iter().unzip();
        let df = df!("x" => &x, "y" => &y).unwrap();
        let rho = profile(&df, &EdaParams::default()).unwrap().correlations.spearman[0][1];
        let both: Vec<(f64, f64)> = x.iter().zip(&y).filter_map(|(a, b)| Some(((*a)? as f64, (*b)?))).collect();
        let (xs, ys): (Vec<f64>, Vec<f64>) = both.into_iter().unzip();
        let want = mlops_core::stats::pearson_centred(&average_ranks(&xs), &average_ranks(&ys));
        match (rho, want) {
            (Some(got), Some(want)) => prop_assert!((got - want).abs() < 1e-9, "{} against {}", got, want),
            (got, want) => prop_assert_eq!(got, want),
        }
    }
}

/// The average ranks (1-based, ties sharing their mean) of `values`, by sorting them: how pandas
/// ranks a pair's rows.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let end = (start..order.len()).find(|&k| values[order[k]] != values[order[start]]).unwrap_or(order.len());
        for &i in &order[start..end] {
            ranks[i] = (start + end + 1) as f64 / 2.0;
        }
        start = end;
    }
    ranks
}
