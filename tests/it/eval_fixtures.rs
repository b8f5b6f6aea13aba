//! The shipped config and rule library against the synthetic 2021 fixtures,
//! through the real binary: `ingest fixtures/2021/*.csv`, then
//! `eval --at DATE --format json`, asserting the designed events listed in
//! `fixtures/README.md` (one test per kind of rule).

use crate::common;

use common::fixtures_workspace as workspace;

use std::process::Command;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_rulewatch");

/// `eval --at AT 09:00 --format json [--rule RULE]`: the findings.
fn eval(at: &str, rule: Option<&str>) -> Vec<Value> {
    let ws = workspace();
    let _guard = ws.lock.lock().unwrap_or_else(|e| e.into_inner());
    let at = if at.contains('T') {
        at.to_string()
    } else {
        format!("{at}T09:00")
    };
    let mut cmd = Command::new(BIN);
    cmd.arg("eval")
        .arg("--config")
        .arg(&ws.config)
        .args(["--at", &at, "--format", "json"]);
    if let Some(rule) = rule {
        cmd.args(["--rule", rule]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "eval --at {at} {rule:?} exited {}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("eval --at {at}: not JSON ({e}): {stdout}"));
    findings.as_array().expect("a JSON array").clone()
}

/// The findings of one rule at one time.
fn findings(rule: &str, at: &str) -> Vec<Value> {
    let found = eval(at, Some(rule));
    for f in &found {
        assert_eq!(f["rule"], rule, "{f}");
        assert_ne!(f["kind"], "error", "rule {rule} failed at {at}: {f}");
    }
    found
}

/// Asserts the rule reports nothing at `at`.
fn quiet(rule: &str, at: &str) {
    let found = findings(rule, at);
    assert!(
        found.is_empty(),
        "{rule} at {at}: expected nothing, got {found:#?}"
    );
}

/// Asserts exactly one finding of `kind` for `subject` and returns it.
fn one(rule: &str, at: &str, kind: &str, subject: Value) -> Value {
    let found = findings(rule, at);
    assert_eq!(
        found.len(),
        1,
        "{rule} at {at}: expected one finding, got {found:#?}"
    );
    let f = found.into_iter().next().unwrap();
    assert_eq!(f["kind"], kind, "{rule} at {at}: {f:#}");
    assert_eq!(f["subject"], subject, "{rule} at {at}: {f:#}");
    assert!(
        !f["message"].as_str().unwrap_or("").is_empty(),
        "{rule} at {at}: empty message"
    );
    f
}

fn num(f: &Value, key: &str) -> f64 {
    f["details"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("details.{key} is not a number: {f:#}"))
}

fn close(f: &Value, key: &str, expected: f64) {
    let got = num(f, key);
    assert!(
        (got - expected).abs() < 1e-6,
        "details.{key} = {got}, expected {expected}: {f:#}"
    );
}

/// A breach with `details` value / threshold / gap / unit as given, and a
/// message mentioning each of `words`.
fn breach(
    rule: &str,
    at: &str,
    subject: Value,
    (value, threshold, gap): (f64, f64, f64),
    unit: &str,
    words: &[&str],
) -> Value {
    let f = one(rule, at, "breach", subject);
    close(&f, "value", value);
    close(&f, "threshold", threshold);
    close(&f, "gap", gap);
    assert_eq!(f["details"]["unit"], unit, "{f:#}");
    let message = f["message"].as_str().unwrap();
    for w in words {
        assert!(
            message.contains(w),
            "{rule} at {at}: message lacks `{w}`: {message}"
        );
    }
    f
}

#[test]
fn shipped_config_and_rules_pass_check() {
    let shipped = common::shipped_workspace();
    let out = Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(shipped.path().join("rulewatch.ron"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_rule_evaluates_without_error_all_year() {
    for at in [
        "2021-01-16",
        "2021-02-05",
        "2021-03-10",
        "2021-04-16",
        "2021-06-16",
        "2021-09-01",
        "2021-11-10",
        "2022-01-16",
    ] {
        for f in eval(at, None) {
            assert_ne!(f["kind"], "error", "at {at}: {f:#}");
        }
    }
}

#[test]
fn quiet_dates() {
    let found = eval("2021-10-16", None);
    assert!(
        found.is_empty(),
        "2021-10-16: expected nothing, got {found:#?}"
    );

    let mut rules: Vec<String> = eval("2021-01-16", None)
        .iter()
        .map(|f| {
            assert_eq!(f["kind"], "breach", "{f:#}");
            f["rule"].as_str().unwrap().to_string()
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "groundwater-balance",
            "private-school-share",
            "shelterbelt-control",
        ]
    );
    // (waste-sorting-towns is a 2021 goal: the end-2020 baseline is not judged)
}

#[test]
fn limit_rules() {
    let f = breach(
        "unemployment-rate",
        "2021-04-16",
        json!({}),
        (4.7, 4.5, 0.2),
        "%",
        &["2021年3月", "4.7%", "4.5%", "0.2 个百分点"],
    );
    assert_eq!(f["details"]["period"], "2021-03-31");
    breach(
        "unemployment-rate",
        "2021-05-16",
        json!({}),
        (4.6, 4.5, 0.1),
        "%",
        &["4.6%"],
    );
    quiet("unemployment-rate", "2021-06-16");

    breach(
        "private-school-share",
        "2021-01-16",
        json!({}),
        (5.9, 5.0, 0.9),
        "%",
        &["5.9%"],
    );
    breach(
        "private-school-share",
        "2021-04-16",
        json!({}),
        (5.6, 5.0, 0.6),
        "%",
        &["5.6%"],
    );
    quiet("private-school-share", "2021-10-16");

    breach(
        "shelterbelt-control",
        "2021-06-16",
        json!({}),
        (79.6, 80.0, 0.4),
        "%",
        &["79.6%"],
    );
    quiet("shelterbelt-control", "2021-07-16");

    // A 2021 goal: on pace from the end-2020 18.8% to 30% at the year end.
    quiet("waste-sorting-towns", "2021-01-16");
    breach(
        "waste-sorting-towns",
        "2021-04-16",
        json!({}),
        (18.8, 21.6, 2.8),
        "%",
        &["18.8%", "应达 21.6%", "落后 2.8 个百分点"],
    );
    quiet("waste-sorting-towns", "2021-07-16");
    quiet("waste-sorting-towns", "2022-01-16");

    breach(
        "groundwater-balance",
        "2021-04-16",
        json!({}),
        (-150.0, 0.0, 150.0),
        "万立方米",
        &["-150"],
    );
    breach(
        "groundwater-balance",
        "2021-07-16",
        json!({}),
        (-60.0, 0.0, 60.0),
        "万立方米",
        &["-60"],
    );
    quiet("groundwater-balance", "2021-10-16");

    quiet("grain-output", "2021-10-16");
    breach(
        "grain-output",
        "2021-11-16",
        json!({}),
        (24.3, 25.0, 0.7),
        "万吨",
        &["2021年", "24.3 万吨", "25.0 万吨"],
    );
    for rule in [
        "grain-area",
        "medical-insurance-rate",
        "public-kindergarten-share",
        "village-green-coverage",
    ] {
        for at in ["2021-01-16", "2021-07-16", "2021-11-16"] {
            quiet(rule, at);
        }
    }
}

#[test]
fn rank_rules() {
    let nangong = json!({ "county": "南宫" });
    let f = breach(
        "air-pm25-rank",
        "2021-02-05",
        nangong.clone(),
        (7.0, 5.0, 2.0),
        "名",
        &["2021年1月", "第 7 名", "前 5 名"],
    );
    close(&f, "concentration", 97.9);
    close(&f, "counties", 16.0);
    assert_eq!(f["details"]["month"], "2021-01");
    quiet("air-pm25-rank", "2021-03-05");
    // Rank 5 is the last place in the tier: passes.
    quiet("air-pm25-rank", "2021-12-05");
    let f = breach(
        "air-pm25-rank",
        "2022-01-05",
        nangong.clone(),
        (6.0, 5.0, 1.0),
        "名",
        &["2021年12月"],
    );
    close(&f, "concentration", 85.8);

    let f = breach(
        "air-pm10-rank",
        "2021-04-05",
        nangong.clone(),
        (8.0, 5.0, 3.0),
        "名",
        &["PM10"],
    );
    close(&f, "concentration", 124.8);
    quiet("air-pm10-rank", "2021-05-05");

    let f = breach(
        "air-composite-rank",
        "2021-02-05",
        nangong.clone(),
        (8.0, 5.0, 3.0),
        "名",
        &["7.466"],
    );
    close(&f, "index", 7.466);
    quiet("air-composite-rank", "2021-04-05");
    let f = breach(
        "air-composite-rank",
        "2022-01-05",
        nangong,
        (7.0, 5.0, 2.0),
        "名",
        &["6.653"],
    );
    close(&f, "index", 6.653);
    for month in 3..=12 {
        quiet("air-composite-rank", &format!("2021-{month:02}-05"));
    }
}

#[test]
fn per_section_rule() {
    let section = json!({ "section": "索泸河城区下游断面(合成)" });
    for (at, class, gap) in [
        ("2021-05-10", 5.0, 1.0),
        ("2021-06-10", 5.0, 1.0),
        ("2021-07-10", 6.0, 2.0),
        ("2021-08-10", 5.0, 1.0),
    ] {
        let f = breach(
            "water-sections",
            at,
            section.clone(),
            (class, 4.0, gap),
            "类",
            &["Ⅳ类"],
        );
        if class == 6.0 {
            assert_eq!(f["details"]["class"], "劣Ⅴ类", "{f:#}");
        }
    }
    quiet("water-sections", "2021-09-10");
    let f = one(
        "water-sections",
        "2021-11-10",
        "no_data",
        json!({ "section": "西沙河段芦头断面(合成)" }),
    );
    assert!(
        f["message"].as_str().unwrap().contains("2021年10月"),
        "{f:#}"
    );
    quiet("water-sections", "2021-12-10");
}

#[test]
fn pace_rules() {
    quiet("park-revenue", "2021-06-16");
    let f = breach(
        "park-revenue",
        "2021-07-16",
        json!({}),
        (98.0, 110.0, 12.0),
        "亿元",
        &["截至2021年6月", "98.0 亿元", "110.0 亿元"],
    );
    close(&f, "tolerance", 11.0);
    close(&f, "target", 220.0);
    breach(
        "park-revenue",
        "2021-08-16",
        json!({}),
        (114.0, 128.333, 14.333),
        "亿元",
        &["2021年7月"],
    );
    quiet("park-revenue", "2021-09-16");
    quiet("park-revenue", "2022-01-16");

    quiet("ecommerce-retail", "2021-12-16");
    breach(
        "ecommerce-retail",
        "2022-01-16",
        json!({}),
        (67.5, 70.0, 2.5),
        "亿元",
        &["全年", "67.5 亿元", "70.0 亿元"],
    );

    // May's jobs figure is missing: the pace rule judges April's instead of
    // calling the gap "behind".
    quiet("urban-jobs", "2021-06-16");

    for rule in [
        "urban-complexes",
        "maker-spaces",
        "agri-projects",
        "family-farms",
        "rural-roads",
        "beautiful-villages",
        "beautiful-courtyards",
        "farm-service-stations",
        "vocational-training",
        "urban-jobs",
        "rural-labor-transfer",
    ] {
        for month in [2, 5, 8, 11] {
            quiet(rule, &format!("2021-{month:02}-16"));
        }
        quiet(rule, "2022-01-16");
    }
}

#[test]
fn year_end_count_rules() {
    // "9条、75.7公里": the length is met, the count is not
    for month in [2, 5, 8, 11] {
        quiet("canal-dredging", &format!("2021-{month:02}-16"));
    }
    let found = findings("canal-dredging", "2022-01-16");
    assert_eq!(found.len(), 1, "{found:#?}");
    breach(
        "canal-dredging",
        "2022-01-16",
        json!({ "item": "河渠条数" }),
        (8.0, 9.0, 1.0),
        "条",
        &["清淤疏浚河渠 8 条", "9 条"],
    );
    // "5条、10.9公里": both met
    quiet("rural-roads", "2022-01-16");

    quiet("high-value-bases", "2021-12-16");
    breach(
        "high-value-bases",
        "2022-01-16",
        json!({}),
        (1.0, 2.0, 1.0),
        "个",
        &["2021年底"],
    );
    quiet("tax-buildings", "2022-01-16");
    quiet("schools-built", "2022-01-16");
}

#[test]
fn milestone_rules() {
    let campus = json!({ "item": "南宫中学新校区" });
    quiet("nangong-middle-school-campus", "2021-08-31");
    let f = breach(
        "nangong-middle-school-campus",
        "2021-09-01",
        campus.clone(),
        // Overdue counts from the deadline day: 0 days on the day itself.
        (0.0, 1.0, 0.0),
        "完成状态(1=完成)",
        &["2021-09-01", "0 天"],
    );
    assert_eq!(f["details"]["deadline"], "2021-09-01");
    let f = one(
        "nangong-middle-school-campus",
        "2021-09-16",
        "breach",
        campus,
    );
    close(&f, "days_late", 15.0);
    quiet("nangong-middle-school-campus", "2021-10-01");

    quiet("elderly-care-center", "2022-01-01");
    quiet("park-facilities-built", "2022-01-01");

    quiet("projects-started", "2021-12-31");
    breach(
        "projects-started",
        "2022-01-01",
        json!({ "project": "亿元项目E(合成)" }),
        (0.0, 1.0, 0.0),
        "开工状态(1=已开工)",
        &["亿元项目E(合成)"],
    );
}

#[test]
fn no_data_rules() {
    quiet("social-reports-overdue", "2021-06-15");
    let f = one(
        "social-reports-overdue",
        "2021-06-16",
        "no_data",
        json!({ "metric": "new_urban_jobs" }),
    );
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("2021-04-30"), "{message}");
    quiet("social-reports-overdue", "2021-07-16");

    // Before the fixtures' first due date every monthly metric is overdue.
    // (5 monthly figures, the 5 projects' and the 2 facilities' status reports)
    let found = findings("economy-reports-overdue", "2021-01-05");
    assert_eq!(found.len(), 12, "{found:#?}");
    assert!(found.iter().all(|f| f["kind"] == "no_data"));
    for rule in [
        "economy-reports-overdue",
        "agriculture-reports-overdue",
        "water-resources-reports-overdue",
        "education-reports-overdue",
    ] {
        for month in 1..=12 {
            quiet(rule, &format!("2021-{month:02}-16"));
        }
    }
    // Daily air data: complete all year; four days after the fixtures end
    // (2021-12-31) every pollutant of 南宫 is missing.
    for at in ["2021-03-01", "2021-06-16", "2021-12-31", "2022-01-03"] {
        quiet("air-data-overdue", at);
    }
    let found = findings("air-data-overdue", "2022-01-04");
    assert_eq!(found.len(), 6, "{found:#?}");
    assert!(found.iter().all(|f| f["kind"] == "no_data"
        && f["subject"]["county"] == "南宫"
        && f["message"]
            .as_str()
            .unwrap()
            .contains("最近一条为 2021-12-31")));
}
