//! The `chart` entry of `RULE`: accepted and checked by the loader, and in
//! the shipped rules the same numbers the rule itself uses (so the line on
//! the page is the line the rule judges by).

use crate::common;

use std::path::Path;

use rhai::Dynamic;
use rulewatch::config::Config;
use rulewatch::rules::engine::new_engine;
use rulewatch::rules::load_rules;
use rulewatch::rules::loader::{parse_rule, Breach, ChartLine, ChartRange};

fn config() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rulewatch.ron")).unwrap()
}

fn rule_with_chart(chart: &str) -> String {
    format!(
        "const RULE = #{{\n    id: \"r\",\n    title: \"t\",\n    severity: \"info\",\n    notify: [\"kaohe\"],\n    chart: {chart},\n}};\n"
    )
}

fn parse(chart: &str) -> Result<rulewatch::rules::loader::ChartSpec, String> {
    let config = config();
    let engine = new_engine(&config.limits);
    parse_rule(
        &engine,
        &config,
        Path::new("r.rhai"),
        rule_with_chart(chart),
    )
    .map(|(r, _)| r.meta.chart.expect("a chart"))
    .map_err(|e| {
        e.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[test]
fn good_charts() {
    let c = parse(r#"#{ metric: "m", threshold: 4, breach: "above" }"#).unwrap();
    assert_eq!(
        c.line,
        ChartLine::Flat(4.0),
        "an integer threshold is a number"
    );
    assert_eq!(c.breach, Some(Breach::Above));
    assert!(
        matches!(c.range, ChartRange::Window(_)),
        "default: the last 365 days"
    );
    let c = parse(r#"#{ metric: "m", year: 2021, pace: 220.0, tolerance: 0.05 }"#).unwrap();
    assert_eq!(c.line, ChartLine::Pace(220.0));
    assert_eq!(c.breach, Some(Breach::Below), "behind the pace is a breach");
    assert_eq!(c.range, ChartRange::Year(2021));
    let c = parse(r#"#{ metric: "pm25", filter: #{ county: "南宫" }, monthly: true }"#).unwrap();
    assert_eq!(c.line, ChartLine::None);
    assert_eq!(c.filter.get("county").map(String::as_str), Some("南宫"));
    let c = parse(r#"#{ metric: "water_class", threshold: "finding", breach: "above" }"#).unwrap();
    assert_eq!(c.line, ChartLine::FromFinding);
}

#[test]
fn bad_charts_point_at_the_chart_key() {
    for (chart, expect, expect_zh) in [
        (
            r#"#{ metric: "m", threshold: 4 }"#,
            "say which side breaches it",
            "哪一边算超标",
        ),
        (
            r#"#{ metric: "m", threshold: 4, breach: "up" }"#,
            "use `above` or `below`",
            "上限写 \"above\"",
        ),
        (
            r#"#{ metric: "m", threshold: "LIMIT", breach: "above" }"#,
            "give a number",
            "请写数字",
        ),
        (
            r#"#{ metric: "m", threshold: 1, pace: 2 }"#,
            "not both",
            "只能写一个",
        ),
        (
            r#"#{ metric: "m", window: "30d", year: 2021 }"#,
            "not both",
            "只能写一个",
        ),
        (
            r#"#{ metric: "m", window: "fortnight" }"#,
            "bad window",
            "写法有误",
        ),
        (
            r#"#{ metric: "m", threshold: 1, breach: "below", tolerance: 0.1 }"#,
            "goes with `pace`",
            "只和 `pace`（进度线）一起用",
        ),
        (
            r#"#{ metric: "m", threshold: 1, breach: "below", year_end: true }"#,
            "needs `year`",
            "要配 `year`",
        ),
        (
            r#"#{ metric: "no such metric!" }"#,
            "not a metric name",
            "不是指标名",
        ),
        (r#"#{ metric: "m", colour: "red" }"#, "colour", "colour"),
    ] {
        let err = parse(chart).unwrap_err();
        assert!(err.contains(expect), "{chart}: {err}");
        // Chinese first: the fix in the author's words, then the English.
        assert!(err.contains(expect_zh), "{chart}: {err}");
        let zh_at = err.find(expect_zh).unwrap();
        assert!(
            expect_zh == "colour" || zh_at < err.find(expect).unwrap(),
            "{err}"
        );
        assert!(
            err.starts_with("r.rhai:6:"),
            "points at `chart:` (line 6): {err}"
        );
    }
}

fn constant(ast: &rhai::AST, name: &str) -> Option<Dynamic> {
    ast.iter_literal_variables(true, false)
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, v)| v)
}

fn float(v: Dynamic) -> f64 {
    v.as_float().unwrap_or_else(|_| v.as_int().unwrap() as f64)
}

#[test]
fn shipped_charts_use_the_rules_own_numbers() {
    let shipped = common::shipped_workspace();
    let config = Config::load(&shipped.path().join("rulewatch.ron")).unwrap();
    let engine = new_engine(&config.limits);
    let (rules, problems) = load_rules(&engine, &config);
    assert!(problems.iter().all(|p| !p.is_error), "{problems:?}");
    let mut charted = 0;
    for r in &rules {
        let Some(c) = &r.meta.chart else { continue };
        charted += 1;
        let id = &r.meta.id;
        if let Some(m) = constant(&r.ast, "METRIC") {
            assert_eq!(c.metric, m.into_string().unwrap(), "{id}: metric");
        }
        if c.rank.is_some() {
            // A rank rule charts the place, with the tier as its line.
            assert_eq!(
                c.unit.as_deref(),
                Some("名"),
                "{id}: a rank chart is in places"
            );
            assert_eq!(c.rank.as_deref(), Some("county"), "{id}: ranked by county");
            assert_eq!(
                c.line,
                ChartLine::Flat(float(constant(&r.ast, "TIER").expect("TIER"))),
                "{id}: the tier line"
            );
            assert_eq!(
                c.breach,
                Some(Breach::Above),
                "{id}: past the tier breaches"
            );
        } else if let Some(u) = constant(&r.ast, "UNIT") {
            assert_eq!(
                c.unit.as_deref(),
                Some(u.into_string().unwrap().as_str()),
                "{id}: unit"
            );
        }
        match c.line {
            ChartLine::Flat(_) if c.rank.is_some() => {}
            ChartLine::Flat(x) => {
                let expected = constant(&r.ast, "LIMIT").or_else(|| constant(&r.ast, "TARGET"));
                assert_eq!(
                    x,
                    float(expected.expect("LIMIT or TARGET")),
                    "{id}: threshold"
                );
            }
            ChartLine::Pace(total) => {
                assert_eq!(
                    total,
                    float(constant(&r.ast, "TARGET").unwrap()),
                    "{id}: pace"
                );
                assert_eq!(
                    c.tolerance,
                    float(constant(&r.ast, "TOLERANCE").unwrap()),
                    "{id}: tolerance"
                );
            }
            _ => {}
        }
        if let Some(y) = constant(&r.ast, "YEAR") {
            assert_eq!(
                c.range,
                ChartRange::Year(y.as_int().unwrap() as i32),
                "{id}: year"
            );
        }
        if let Some(county) = constant(&r.ast, "COUNTY") {
            assert_eq!(
                c.filter.get("county").cloned(),
                Some(county.into_string().unwrap()),
                "{id}"
            );
        }
    }
    // Every shipped rank rule with a chart metric (unit 名) charts the rank.
    for r in &rules {
        if r.meta.id.ends_with("-rank") {
            if let Some(c) = &r.meta.chart {
                assert!(
                    c.rank.is_some(),
                    "{}: charts the rank, not a concentration",
                    r.meta.id
                );
            }
        }
    }
    assert_eq!(
        charted, 31,
        "every rule with one metric on one scale has a chart"
    );
}
