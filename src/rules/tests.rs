//! Engine tests: the rule API over a real SQLite store, and one test per
//! sandbox limit.

use std::path::PathBuf;
use std::sync::Arc;

use super::loader::parse_rule;
use super::{Evaluator, FindingKind, RuleOutcome};
use crate::config::Config;
use crate::readings::store::Store;
use crate::readings::{Batch, Labels};
use crate::time::parse_time;

struct Fixture {
    _dir: tempfile::TempDir,
    config: Config,
    evaluator: Evaluator,
}

const SH: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn t(s: &str) -> i64 {
    parse_time(s, SH).unwrap()
}

/// (metric, labels, time, value)
type Reading<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, f64);

fn fixture(readings: &[Reading]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let path = dir.path().join("rulewatch.ron");
    let config = Config::parse(
        &path,
        r#"(timezone: "Asia/Shanghai", rules: "rules", store: "s.db",
            mail: (from: "a@example.cn", transport: File(dir: "outbox")),
            recipients: { "env": ["e@example.cn"] },
            limits: (max_operations: 200000, rule_timeout: "1s"))"#,
    )
    .unwrap();
    let store = Store::open(&config.store_path).unwrap();
    let mut batch = Batch::new();
    for (metric, labels, time, value) in readings {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        batch.push(metric, labels, t(time), *value);
    }
    if !batch.is_empty() {
        store.write(&batch).unwrap();
    }
    let evaluator = Evaluator::new(&config, Arc::new(store));
    Fixture {
        _dir: dir,
        config,
        evaluator,
    }
}

const HEAD: &str =
    "const RULE = #{ id: \"r\", title: \"T\", severity: \"warning\", notify: [\"env\"] };\n";

impl Fixture {
    fn run(&self, body: &str, at: &str) -> RuleOutcome {
        let source = format!("{HEAD}{body}");
        let (rule, _) = parse_rule(
            self.evaluator.engine(),
            &self.config,
            &PathBuf::from("rules/r.rhai"),
            source,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        self.evaluator.evaluate(&rule, t(at))
    }

    fn messages(&self, body: &str, at: &str) -> Vec<String> {
        let o = self.run(body, at);
        assert!(o.error.is_none(), "{:?}", o.error);
        o.findings.into_iter().map(|f| f.message).collect()
    }
}

fn air() -> Fixture {
    fixture(&[
        ("pm25", &[("county", "南宫")], "2021-01-10", 80.0),
        ("pm25", &[("county", "南宫")], "2021-01-20", 60.0),
        ("pm25", &[("county", "南宫")], "2021-02-05", 40.0),
        ("pm25", &[("county", "清河")], "2021-01-10", 50.0),
        ("pm25", &[("county", "清河")], "2021-01-20", 52.0),
        ("pm25", &[("county", "巨鹿")], "2021-01-15", 90.0),
        ("unemployment_rate", &[], "2021-01-31", 4.7),
    ])
}

#[test]
fn latest_sees_only_readings_up_to_now() {
    let f = air();
    let body =
        r#"let r = latest("pm25", #{ county: "南宫" }); breach(#{}, `${r.value} ${r.time.date}`);"#;
    assert_eq!(f.messages(body, "2021-01-25"), ["60.0 2021-01-20"]);
    assert_eq!(f.messages(body, "2021-03-01"), ["40.0 2021-02-05"]);
    let none = r#"if latest("pm25", #{ county: "南宫" }) == () { no_data(#{}, "none") }"#;
    assert_eq!(f.messages(none, "2021-01-01"), ["none"]);
    let o = f.run(r#"no_data(#{ county: "南宫" }, "x")"#, "2021-01-01");
    assert_eq!(o.findings[0].kind, FindingKind::NoData);
}

#[test]
fn agg_over_windows() {
    let f = air();
    let body = r#"breach(#{}, `${agg("pm25", #{ county: "南宫" }, "last_month", "avg")}`);"#;
    assert_eq!(f.messages(body, "2021-02-10"), ["70.0"]);
    let body = r#"breach(#{}, `${agg("pm25", #{}, "month", "max")} ${agg("pm25", #{}, "month", "count")}`);"#;
    assert_eq!(f.messages(body, "2021-01-31"), ["90.0 5.0"]);
    // 30d window includes both ends.
    let body = r#"breach(#{}, `${agg("pm25", #{ county: "南宫" }, "10d", "sum")}`);"#;
    assert_eq!(f.messages(body, "2021-01-20"), ["140.0"]);
    let body = r#"if agg("pm25", #{ county: "x" }, "year", "avg") == () { breach(#{}, "none") }"#;
    assert_eq!(f.messages(body, "2021-06-01"), ["none"]);
    let body = r#"breach(#{}, `${agg("pm25", #{}, "all", "p50")}`);"#;
    assert_eq!(f.messages(body, "2021-06-01"), ["56.0"]);
}

#[test]
fn group_and_rank() {
    let f = air();
    let body = r#"
        let g = group("pm25", #{}, "county", "last_month", "avg");
        for x in g { breach(#{ county: x.key }, `${x.key} ${x.value} ${rank(g, x.key)}`); }
    "#;
    assert_eq!(
        f.messages(body, "2021-02-10"),
        ["南宫 70.0 2", "巨鹿 90.0 3", "清河 51.0 1"]
    );
    let body = r#"let g = group("pm25", #{}, "county", "last_month", "avg");
        breach(#{}, `${rank(g, "巨鹿", "desc")} ${rank(g, "无") == ()} ${top(g, 1)[0].key} ${percentile(g, 0.5)}`);"#;
    assert_eq!(f.messages(body, "2021-02-10"), ["1 true 巨鹿 70.0"]);
}

#[test]
fn above_and_below_keep_the_groups_past_a_limit_in_order() {
    let f = air();
    // Last month's means: 南宫 70, 巨鹿 90, 清河 51.
    let body = r#"
        for g in group("pm25", #{}, "county", "last_month", "avg").above(60) {
            breach(#{ county: g.key }, `above ${g.key} ${g.value}`);
        }
        let g = group("pm25", #{}, "county", "last_month", "avg");
        for x in below(g, 70.0) { breach(#{ county: x.key, low: "y" }, `below ${x.key}`); }
        breach(#{}, `${above(g, 90).len()} ${below(g, 51).len()} ${g.len()}`);
    "#;
    assert_eq!(
        f.messages(body, "2021-02-10"),
        ["above 南宫 70.0", "above 巨鹿 90.0", "below 清河", "0 0 3"]
    );
    // Maps a rule built itself, and plain numbers, filter alike; a limit that
    // is not a number is named.
    let body = r#"
        let m = [#{ key: "a", value: 1 }, #{ key: "b", value: 5.5 }];
        breach(#{}, `${above(m, 2)[0].key} ${below([3, 1.5, 7], 2)}`);
    "#;
    assert_eq!(f.messages(body, "2021-02-10"), ["b [1.5]"]);
    let o = f.run(r#"above([1, 2], "75");"#, "2021-02-10");
    let e = o.error.expect("a text limit is refused");
    assert!(e.message.contains("limit"), "{}", e.message);
}

#[test]
fn group_keeps_groups_and_labels_with_readings_in_the_window() {
    let f = fixture(&[
        (
            "pm25",
            &[("county", "南宫"), ("site", "a")],
            "2021-01-10",
            10.0,
        ),
        (
            "pm25",
            &[("county", "南宫"), ("site", "b")],
            "2021-01-12",
            20.0,
        ),
        (
            "pm25",
            &[("county", "南宫"), ("site", "c")],
            "2020-06-01",
            99.0,
        ),
        (
            "pm25",
            &[("county", "清河"), ("site", "d")],
            "2021-01-11",
            30.0,
        ),
        (
            "pm25",
            &[("county", "清河"), ("site", "d2")],
            "2020-06-01",
            99.0,
        ),
        ("pm25", &[("site", "e")], "2021-01-11", 40.0),
        (
            "pm25",
            &[("county", "巨鹿"), ("site", "f")],
            "2020-05-01",
            50.0,
        ),
    ]);
    let body = r#"
        for x in group("pm25", #{}, "county", "month", "avg") {
            breach(#{ county: x.key }, `${x.key} ${x.value} ${x.labels.values()}`);
        }
    "#;
    // Sorted by key; 巨鹿 has no reading this month; a group's labels are
    // those its series with readings in the window share.
    assert_eq!(
        f.messages(body, "2021-01-31"),
        [r#"南宫 15.0 ["南宫"]"#, r#"清河 30.0 ["清河", "d"]"#]
    );
    // A series stored since (here by another process) joins its group.
    let other = Store::open(&f.config.store_path).unwrap();
    let mut batch = Batch::new();
    let labels: Labels = [("county", "巨鹿"), ("site", "g")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    batch.push("pm25", labels, t("2021-01-20"), 70.0);
    other.write(&batch).unwrap();
    assert_eq!(
        f.messages(body, "2021-01-31"),
        [
            r#"南宫 15.0 ["南宫"]"#,
            r#"巨鹿 70.0 ["巨鹿", "g"]"#,
            r#"清河 30.0 ["清河", "d"]"#
        ]
    );
}

#[test]
fn breach_details_and_subject_identity() {
    let f = air();
    let o = f.run(
        r#"let r = latest("unemployment_rate"); breach(#{ county: "南宫" }, "高", #{ value: r.value, threshold: 4.5, unit: "%" });"#,
        "2021-02-20",
    );
    let d = &o.findings[0].details;
    assert_eq!(d["value"], 4.7);
    assert_eq!(d["threshold"], 4.5);
    assert_eq!(d["unit"], "%");
    let o = f.run(
        r#"breach(#{ a: "1" }, "x"); breach(#{ a: "1" }, "y");"#,
        "2021-02-20",
    );
    let message = o.error.unwrap().message;
    assert!(
        message.contains("同一次评估对同一对象") && message.contains("reported twice"),
        "{message}"
    );
}

#[test]
fn overdue_finds_missing_reports() {
    let f = fixture(&[
        ("revenue", &[("county", "南宫")], "2021-01-31", 1.0),
        ("revenue", &[("county", "清河")], "2021-01-31", 1.0),
        ("revenue", &[("county", "南宫")], "2021-02-28", 2.0),
    ]);
    let body = r#"breach(#{}, `${overdue("revenue", "county", "month", "15d")}`);"#;
    // 2021-03-10: February is not yet due (due 03-16); January is complete.
    assert_eq!(f.messages(body, "2021-03-10"), ["[]"]);
    assert_eq!(f.messages(body, "2021-03-16"), [r#"["清河"]"#]);
    let body = r#"breach(#{}, `${overdue("revenue", "county", "month", "15d", ["南宫", "巨鹿"])} ${is_overdue("revenue", #{ county: "南宫" }, "month", "15d")}`);"#;
    assert_eq!(f.messages(body, "2021-03-16"), [r#"["巨鹿"] false"#]);
}

#[test]
fn time_helpers() {
    let f = air();
    let body = r#"let n = now(); breach(#{}, `${n.year}-${n.month}-${n.day} ${n.weekday} ${n > time("2021-09-01")} ${days_between(time("2021-09-01"), n)}`);"#;
    assert_eq!(
        f.messages(body, "2021-09-03T12:00"),
        ["2021-9-3 5 true 2.5"]
    );
    let body = r#"breach(#{}, `${fmt(4.5678, 2)} ${pct(0.125)}`);"#;
    assert_eq!(f.messages(body, "2021-09-03"), ["4.57 12.5%"]);
}

#[test]
fn runtime_error_has_file_and_line() {
    let f = air();
    let o = f.run("let x = 1;\nlet y = x + \"a\" * 2;\n", "2021-02-01");
    let e = o.error.unwrap();
    assert_eq!(e.path, PathBuf::from("rules/r.rhai"));
    assert_eq!(e.line, 3, "{e:?}");
    let o = f.run("\nlet r = #{ value: 1 };\nlet v = r.valeu;\n", "2021-02-01");
    let e = o.error.unwrap();
    assert_eq!(e.line, 4, "{e:?}");
    assert_eq!(e.message, "没有字段 valeu");
    assert_eq!(e.hint.as_deref(), Some("是否想用 .value？"));
    let o = f.run("\nagg(\"pm25\", #{}, \"30x\", \"avg\");\n", "2021-02-01");
    let e = o.error.unwrap();
    assert!(e.message.contains("30x"), "{e:?}");
    assert_eq!(e.line, 3);
}

#[test]
fn sandbox_stops_infinite_loops() {
    let f = air();
    let e = f.run("loop { }", "2021-02-01").error.unwrap();
    assert_eq!(
        e.message,
        "运算次数超过上限 200000（limits.max_operations），规则被中止"
    );
    assert!(e.hint.unwrap().contains("循环"));
}

#[test]
fn sandbox_stops_unbounded_recursion() {
    let f = air();
    let e = f
        .run("fn f(n) { f(n + 1) }\nf(0);", "2021-02-01")
        .error
        .unwrap();
    assert!(e.message.starts_with("函数调用嵌套超过上限 32 层"), "{e:?}");
}

#[test]
fn sandbox_bounds_strings_and_arrays() {
    let f = air();
    let e = f
        .run("let s = \"x\"; loop { s += s; }", "2021-02-01")
        .error
        .unwrap();
    assert!(
        e.message.starts_with("字符串长度超过上限 65536 字节"),
        "{e:?}"
    );
    let e = f
        .run("let a = [1]; loop { a += a; }", "2021-02-01")
        .error
        .unwrap();
    assert!(e.message.starts_with("数组超过上限 100000 项"), "{e:?}");
}

#[test]
fn sandbox_has_a_wall_clock_limit() {
    // Plenty of operations allowed, but each is slow: the deadline stops it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let config = Config::parse(
        &dir.path().join("c.ron"),
        r#"(timezone: "UTC", rules: "rules", store: "s.db",
            mail: (from: "a@example.cn", transport: File(dir: "o")),
            limits: (max_operations: 0, rule_timeout: "200ms"))"#,
    )
    .unwrap();
    let evaluator = Evaluator::new(&config, Arc::new(Store::open(&config.store_path).unwrap()));
    let source = "const RULE = #{ id: \"r\", title: \"T\", severity: \"info\", notify: [\"x@example.cn\"] };\nloop { }";
    let (rule, _) = parse_rule(
        evaluator.engine(),
        &config,
        &PathBuf::from("r.rhai"),
        source.into(),
    )
    .unwrap();
    let e = evaluator.evaluate(&rule, 0).error.unwrap();
    assert_eq!(
        e.message,
        "运行时间超过上限 200ms（limits.rule_timeout），规则被中止"
    );
}

#[test]
fn sandbox_refuses_imports_and_eval() {
    let f = air();
    let source = format!("{HEAD}import \"/etc/passwd\" as p;");
    let r = parse_rule(
        f.evaluator.engine(),
        &f.config,
        &PathBuf::from("r.rhai"),
        source,
    );
    let err = match r {
        Err(e) => e[0].message.clone(),
        Ok((rule, _)) => f.evaluator.evaluate(&rule, 0).error.unwrap().message,
    };
    assert!(
        err.to_lowercase().contains("module") || err.contains("import"),
        "{err}"
    );
    let source = format!("{HEAD}eval(\"1\");");
    assert!(parse_rule(
        f.evaluator.engine(),
        &f.config,
        &PathBuf::from("r.rhai"),
        source
    )
    .is_err());
}

#[test]
fn undefined_variables_are_compile_errors() {
    let f = air();
    let source = format!("{HEAD}let x = undefined_thing + 1;");
    let e = parse_rule(
        f.evaluator.engine(),
        &f.config,
        &PathBuf::from("r.rhai"),
        source,
    )
    .unwrap_err();
    assert_eq!(e[0].line, 2);
}

#[test]
fn metadata_errors_point_at_the_field() {
    let f = air();
    let bad = |src: &str| {
        parse_rule(
            f.evaluator.engine(),
            &f.config,
            &PathBuf::from("r.rhai"),
            src.to_string(),
        )
        .unwrap_err()
    };
    let e = bad("// c\nconst RULE = #{\n  id: \"Bad Id\",\n  title: \"T\",\n  severity: \"loud\",\n  schedule: \"0 9 * * *\",\n  notify: [\"nobody\"],\n  repeat: \"7\",\n};");
    let lines: Vec<usize> = e.iter().map(|d| d.line).collect();
    assert_eq!(lines, [3, 5, 6, 7, 8], "{e:?}");
    let e = bad("const RULE = #{ id: \"a\", title: \"T\", severity: \"info\", notfy: [] };");
    assert!(e[0].message.contains("notfy"), "{e:?}");
    let e = bad("const RULE = #{ id: \"a\", title: \"T\", severity: \"info\", notify: [\"env\"],\n \"for\": \"1x\" };");
    // At the value written, not the key.
    assert_eq!((e[0].line, e[0].col), (2, 9), "{e:?}");
    let e = bad("const RULE = #{ id: \"a\",\n for: \"1h\" };");
    assert!(e[0].message.contains("`for` 是 Rhai 的关键字"), "{e:?}");
    assert_eq!(
        e[0].hint.as_deref(),
        Some("写成 \"for\": \"1h\"（持续多久才告警）")
    );
    let e = bad("let x = 1;");
    assert!(e[0].message.contains("缺少规则说明 `const RULE"), "{e:?}");
    // a work-report year, and its grace
    let e = bad("const RULE = #{ id: \"a\", title: \"T\", severity: \"info\", notify: [\"env\"],\n year: 21 };");
    assert!(e[0].message.contains("`year: 21`"), "{e:?}");
    assert_eq!(e[0].line, 2, "{e:?}");
    let e = bad("const RULE = #{ id: \"a\", title: \"T\", severity: \"info\", notify: [\"env\"],\n grace: \"30d\" };");
    assert!(e[0].message.contains("`grace` 要和 `year` 一起写"), "{e:?}");
    let e = bad("const RULE = #{ id: \"a\", title: \"T\", severity: \"info\", notify: [\"env\"], year: 2021,\n grace: \"a month\" };");
    assert!(e[0].message.contains("`a month`"), "{e:?}");
    assert!(
        e[0].hint.as_deref().unwrap_or("").contains("\"grace\""),
        "{e:?}"
    );
    // closes at the end of the year plus the grace, in the configured zone
    let (r, _) = parse_rule(
        f.evaluator.engine(),
        &f.config,
        &PathBuf::from("r.rhai"),
        "const RULE = #{ id: \"a\", title: \"T\", severity: \"info\", notify: [\"env\"], year: 2021 };".into(),
    )
    .unwrap();
    assert_eq!(r.meta.year, Some(2021));
    assert_eq!(r.meta.closes_at, Some(t("2022-03-01")));
    let (r, _) = parse_rule(
        f.evaluator.engine(),
        &f.config,
        &PathBuf::from("r.rhai"),
        "const RULE = #{ id: \"a\", title: \"T\", severity: \"info\", notify: [\"env\"], year: 2021, grace: \"0s\" };".into(),
    )
    .unwrap();
    assert_eq!(r.meta.closes_at, Some(t("2022-01-01")));
}

/// The air helpers pick the edition in force at the reading's (or the
/// evaluation's) time: both sides of 2026-03-01 and 2031-01-01.
#[test]
fn air_helpers_follow_the_edition_in_force() {
    let f = fixture(&[
        ("pm25", &[("county", "南宫")], "2026-02-28T12:00", 75.0),
        ("pm25", &[("county", "南宫")], "2026-03-01T12:00", 75.0),
    ]);
    let body = r#"breach(#{}, `${air_edition()} ${iaqi("pm25", 75.0)} ${air_limit("pm25", "24h", 2)} ${air_limit("pm25", "annual", 2)} ${air_limit("pm25", "annual", 1)} ${air_limit("pm10", "24h", 2)}`);"#;
    assert_eq!(
        f.messages(body, "2021-06-16"),
        ["2012 100.0 75.0 35.0 15.0 150.0"]
    );
    assert_eq!(
        f.messages(body, "2026-02-28T23:59"),
        ["2012 100.0 75.0 35.0 15.0 150.0"]
    );
    let iaqi_75_2026 = 100.0 + 50.0 * 15.0 / 55.0;
    assert_eq!(
        f.messages(body, "2026-03-01T00:00"),
        [format!("2026 {iaqi_75_2026} 60.0 30.0 15.0 120.0")]
    );
    assert_eq!(
        f.messages(body, "2030-12-31T23:59"),
        [format!("2026 {iaqi_75_2026} 60.0 30.0 15.0 120.0")]
    );
    assert_eq!(
        f.messages(body, "2031-01-01T00:00"),
        [format!("2031 {iaqi_75_2026} 50.0 25.0 10.0 100.0")]
    );

    // A reading from `latest` is judged by the edition of its own day, even
    // when the evaluation runs after the change; a bare number by the
    // evaluation's.
    let body = r#"let r = latest("pm25"); breach(#{}, `${r.time.date} ${iaqi("pm25", r)} ${iaqi("pm25", r.value)} ${air_edition(r.time)}`);"#;
    assert_eq!(
        f.messages(body, "2026-03-01T09:00"),
        [format!("2026-02-28 100.0 {iaqi_75_2026} 2012")]
    );
    assert_eq!(
        f.messages(body, "2026-03-02T09:00"),
        [format!("2026-03-01 {iaqi_75_2026} {iaqi_75_2026} 2026")]
    );

    // An explicit edition, by name or by time, overrides the default.
    let body = r#"breach(#{}, `${iaqi("pm25", 75.0, "2012")} ${air_limit("pm25", "24h", 2, "2031")} ${air_limit("pm25", "24h", 2, time("2026-03-01"))} ${composite_index(#{ so2: 60.0, no2: 40.0, pm10: 70.0, pm25: 35.0, co: 4.0, o3: 160.0 }, "2012")}`);"#;
    assert_eq!(f.messages(body, "2031-06-01"), ["100.0 50.0 60.0 6.0"]);
    // composite_index by default: 2012 divisors in 2021, 2026 ones after
    let body = r#"breach(#{}, `${composite_index(#{ so2: 60.0, no2: 40.0, pm10: 60.0, pm25: 30.0, co: 4.0, o3: 160.0 })}`);"#;
    let before = 1.0 + 1.0 + 60.0 / 70.0 + 30.0 / 35.0 + 1.0 + 1.0;
    assert_eq!(f.messages(body, "2021-02-05"), [format!("{before}")]);
    assert_eq!(f.messages(body, "2026-03-05"), ["6.0"]);

    let o = f.run(r#"air_limit("pm25", "24h", 2, "2013");"#, "2021-02-05");
    let e = o.error.unwrap();
    assert!(
        e.message.contains("`2013`") && e.message.contains("\"2026\""),
        "{e:?}"
    );
}

/// `verdict()` turns a missed year into a final finding; `latest_in` and the
/// year window see only that year, whatever arrives after it.
#[test]
fn a_year_verdict_and_the_year_window() {
    let f = fixture(&[
        ("ecommerce_retail", &[], "2021-11-30", 61.0),
        ("ecommerce_retail", &[], "2021-12-31", 67.5),
        ("ecommerce_retail", &[], "2022-01-31", 5.0),
    ]);
    let head = "const RULE = #{ id: \"r\", title: \"T\", severity: \"warning\", notify: [\"env\"], year: 2021 };\n";
    let body = r#"
let r = latest_in("ecommerce_retail", #{}, `${report_year()}`);
if r.time.month == 12 {
    verdict(#{}, r.value >= 70.0, `${report_year()}年全年电商零售额 ${r.value} 亿元, 未完成全年目标 70 亿元`, #{ value: r.value, threshold: 70.0 });
    verdict(#{ item: "met" }, true, "完成");
}
"#;
    let run = |at: &str| {
        let (rule, _) = parse_rule(
            f.evaluator.engine(),
            &f.config,
            &PathBuf::from("rules/r.rhai"),
            format!("{head}{body}"),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        f.evaluator.evaluate(&rule, t(at))
    };
    // December 2021 not yet in: nothing
    let o = run("2021-12-16");
    assert!(o.error.is_none() && o.findings.is_empty(), "{o:?}");
    // The year's figures complete, and still after January 2022 arrives
    for at in ["2022-01-16", "2022-02-16"] {
        let o = run(at);
        assert!(o.error.is_none(), "{:?}", o.error);
        assert_eq!(o.findings.len(), 1, "{at}: the met verdict reports nothing");
        let v = &o.findings[0];
        assert_eq!(v.kind, FindingKind::Breach);
        assert_eq!(v.details["final"], serde_json::json!(true));
        assert_eq!(v.details["year"], serde_json::json!(2021));
        assert_eq!(v.details["value"], serde_json::json!(67.5));
        assert!(
            v.message.starts_with("2021年度结果：未完成。2021年全年"),
            "{}",
            v.message
        );
    }
    // `latest` itself moves on to 2022; `agg` over the year window does not
    let body = r#"breach(#{}, `${latest("ecommerce_retail").value} ${agg("ecommerce_retail", #{}, "2021", "last")} ${agg("ecommerce_retail", #{}, "2021", "count")}`);"#;
    assert_eq!(f.messages(body, "2022-02-16"), ["5.0 67.5 2.0"]);

    // Without `year` in RULE, verdict() says what is missing.
    let o = f.run(r#"verdict(#{}, false, "x");"#, "2022-01-16");
    let e = o.error.unwrap();
    assert!(e.message.contains("year: 2021"), "{e:?}");
}

#[test]
fn a_huge_stored_label_value_does_not_stop_rules() {
    // Stored before ingest limited label values (issue 11): 100 KiB, past
    // the sandbox's 64 KiB string limit. Rules reading it still run.
    let huge = "县".repeat(100 * 1024 / 3 + 1);
    let f = fixture(&[("pm25", &[("county", &huge)], "2021-01-10", 80.0)]);
    let body =
        r#"let r = latest("pm25", #{}); breach(#{}, `${r.value} ${r.labels.county.len()}`);"#;
    let cut = crate::readings::model::MAX_LABEL_VALUE_BYTES / 3;
    assert_eq!(f.messages(body, "2021-02-01"), [format!("80.0 {cut}")]);
    let body =
        r#"for g in group("pm25", #{}, "county", "month", "max") { breach(#{}, `${g.value}`); }"#;
    assert_eq!(f.messages(body, "2021-01-31"), ["80.0"]);
}

/// Rules evaluated at the same time each run on an engine of their own
/// (one shared engine made threads slow each other down), with the same
/// results, limits and errors as one at a time.
/// `evaluate_all` starts the rule that took longest first; its outcomes
/// still come back in the rules' order, each rule's own.
#[test]
fn evaluate_all_answers_in_rule_order_whatever_order_rules_ran_in() {
    let f = air();
    let rule = |id: &str, body: &str| {
        let head = HEAD.replace("id: \"r\"", &format!("id: \"{id}\""));
        parse_rule(
            f.evaluator.engine(),
            &f.config,
            &PathBuf::from(format!("rules/{id}.rhai")),
            format!("{head}{body}"),
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .0
    };
    let rules = [
        rule("quick", r#"breach(#{}, "quick");"#),
        rule(
            "slow",
            "let n = 0; for i in 0..20000 { n += i; } breach(#{}, `slow ${n}`);",
        ),
        rule("fails", "let x = 1 / 0;"),
        rule(
            "groups",
            r#"for g in group("pm25", #{}, "county", "last_month", "avg").above(60) { breach(#{ county: g.key }, g.key); }"#,
        ),
    ];
    for _ in 0..3 {
        let outcomes = f.evaluator.evaluate_all(&rules, t("2021-02-10"));
        let ids: Vec<&str> = outcomes.iter().map(|o| o.rule.as_str()).collect();
        assert_eq!(ids, ["quick", "slow", "fails", "groups"]);
        assert_eq!(outcomes[0].findings[0].message, "quick");
        assert_eq!(outcomes[1].findings[0].message, "slow 199990000");
        assert!(outcomes[2].error.is_some());
        let counties: Vec<&str> = outcomes[3]
            .findings
            .iter()
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(counties, ["南宫", "巨鹿"]);
    }
}

#[test]
fn rules_evaluated_at_once_run_alike_on_engines_of_their_own() {
    let f = fixture(&[
        ("pm25", &[("county", "南宫")], "2021-03-01T08:00", 80.0),
        ("pm25", &[("county", "清河")], "2021-03-01T08:00", 40.0),
    ]);
    let rule = |body: &str| {
        parse_rule(
            f.evaluator.engine(),
            &f.config,
            &PathBuf::from("rules/r.rhai"),
            format!("{HEAD}{body}"),
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .0
    };
    let breach = rule(
        r#"for g in group("pm25", #{}, "county", "1d", "avg") {
               if g.value > 75.0 { breach(#{ county: g.key }, `${g.key} ${g.value}`); }
           }"#,
    );
    let runaway = rule("loop { }");
    let at = t("2021-03-01T12:00");
    let alone: Vec<RuleOutcome> = [&breach, &runaway]
        .iter()
        .map(|r| f.evaluator.evaluate(r, at))
        .collect();
    std::thread::scope(|s| {
        let rules = [&breach, &runaway, &breach, &runaway];
        let handles: Vec<_> = rules
            .iter()
            .map(|r| s.spawn(|| f.evaluator.evaluate(r, at)))
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let o = h.join().unwrap();
            let expected = &alone[i % 2];
            assert_eq!(o.findings, expected.findings, "rule {i}");
            assert_eq!(
                o.error.as_ref().map(|e| &e.message),
                expected.error.as_ref().map(|e| &e.message),
                "rule {i}"
            );
        }
    });
    assert_eq!(alone[0].findings.len(), 1);
    assert!(
        alone[1].error.is_some(),
        "the operations limit holds on every engine"
    );
    // Kept for the next time, at most one for each rule that ran alongside another.
    assert!(f.evaluator.spare_engines() <= 3);
}
