//! `rulewatch backtest` and `rulewatch preview` over the shipped rules and
//! the synthetic 2021 fixtures: the transitions the fixtures were designed
//! for (`fixtures/README.md`), replayed through the real state machine, and
//! a daily replay over a year in well under a second.

use crate::common;

use common::fixtures_workspace as workspace;

use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rulewatch");

fn run(args: &[&str]) -> Output {
    let ws = workspace();
    let _guard = ws.lock.lock().unwrap_or_else(|e| e.into_inner());
    Command::new(BIN)
        .arg("--config")
        .arg(&ws.config)
        .args(args)
        .output()
        .unwrap()
}

/// (time, subject label value or "", from, to, value) of each transition.
fn timeline(
    rule: &str,
    from: &str,
    to: &str,
) -> Vec<(String, String, String, String, Option<f64>)> {
    let out = run(&[
        "backtest", "--rule", rule, "--from", from, "--to", to, "--format", "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .map(|r| {
            let subject = r["subject"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join(",");
            (
                r["time"].as_str().unwrap().to_string(),
                subject,
                r["from"].as_str().unwrap().to_string(),
                r["to"].as_str().unwrap().to_string(),
                r["value"].as_f64(),
            )
        })
        .collect()
}

fn row(
    time: &str,
    subject: &str,
    from: &str,
    to: &str,
    value: Option<f64>,
) -> (String, String, String, String, Option<f64>) {
    (
        format!("{time}T09:00:00+08:00"),
        subject.into(),
        from.into(),
        to.into(),
        value,
    )
}

#[test]
fn unemployment_fires_for_march_and_april_and_resolves_with_may() {
    assert_eq!(
        timeline("unemployment-rate", "2021-01-01", "2021-12-31"),
        [
            row("2021-04-16", "", "inactive", "firing", Some(4.7)),
            row("2021-06-16", "", "firing", "resolved", Some(4.6)),
        ]
    );
}

#[test]
fn water_sections_breach_then_recover_and_a_missing_month_is_no_data() {
    let s = "索泸河城区下游断面(合成)";
    let x = "西沙河段芦头断面(合成)";
    assert_eq!(
        timeline("water-sections", "2021-01-01", "2021-12-31"),
        [
            row("2021-05-10", s, "inactive", "firing", Some(5.0)),
            row("2021-09-10", s, "firing", "resolved", Some(5.0)),
            row("2021-11-10", x, "inactive", "no_data", None),
            row("2021-12-10", x, "no_data", "resolved", None),
        ]
    );
}

#[test]
fn pm25_rank_out_of_the_first_tier_in_january_and_december() {
    assert_eq!(
        timeline("air-pm25-rank", "2021-01-01", "2022-01-31"),
        [
            row("2021-02-05", "南宫", "inactive", "firing", Some(7.0)),
            row("2021-03-05", "南宫", "firing", "resolved", Some(7.0)),
            row("2022-01-05", "南宫", "inactive", "firing", Some(6.0)),
        ]
    );
}

#[test]
fn text_timeline_and_step() {
    let out = run(&[
        "backtest",
        "--rule",
        "park-revenue",
        "--from",
        "2021-01-01T09:00",
        "--to",
        "2021-12-31",
        "--step",
        "1d",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("时间") && lines[0].contains("原状态") && lines[0].contains("说明"),
        "{text}"
    );
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // June's figure is stamped 06-30 00:00: the daily replay sees it that morning.
    assert!(
        lines[1].starts_with("2021-06-30 09:00  —")
            && words(lines[1])[3..6] == ["正常", "告警", "98"],
        "{text}"
    );
    assert!(
        lines[2].starts_with("2021-08-31 09:00") && words(lines[2])[3..5] == ["告警", "已恢复"],
        "{text}"
    );
    // The recovery says what is true now and marks the old problem as past.
    assert!(
        words(lines[2])[5] == "—" && lines[2].contains("评估未再发现该问题（此前："),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("评估 365 次") && err.contains("365 evaluation(s)"),
        "{err}"
    );

    let bad = run(&[
        "backtest",
        "--rule",
        "nope",
        "--from",
        "2021-01-01",
        "--to",
        "2021-02-01",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let bad = run(&[
        "backtest",
        "--rule",
        "park-revenue",
        "--from",
        "2021-03-01",
        "--to",
        "2021-02-01",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

/// A year of daily ticks replays in one go, each step's verdict in order
/// (how fast is for the benchmarks, not for a test).
#[test]
fn a_daily_replay_over_a_year_gives_every_step() {
    use rulewatch::config::Config;
    use rulewatch::readings::store::Store;
    use rulewatch::rules::engine::new_engine;
    use rulewatch::rules::{load_rules, Evaluator};
    use rulewatch::ruletest::backtest::{replay, ticks};
    use rulewatch::time::{parse_time, DAY};

    let ws = workspace();
    let _guard = ws.lock.lock().unwrap_or_else(|e| e.into_inner());
    let config = Config::load(&ws.config).unwrap();
    let tz = config.timezone;
    let (rules, _) = load_rules(&new_engine(&config.limits), &config);
    let rule = rules.iter().find(|r| r.meta.id == "air-pm25-rank").unwrap();
    let store = std::sync::Arc::new(Store::open(&config.store_path).unwrap());
    let evaluator = Evaluator::new(&config, store);
    let from = parse_time("2021-01-01T09:00", tz).unwrap();
    let to = parse_time("2021-12-31T09:00", tz).unwrap();
    let times = ticks(rule, from, to, Some(DAY), tz);
    assert_eq!(times.len(), 365);
    let result = replay(&evaluator, rule, &times);
    let got: Vec<(&str, &str, &str)> = result
        .rows
        .iter()
        .map(|r| (r.time.as_str(), r.from, r.to))
        .collect();
    assert_eq!(
        got,
        [
            ("2021-02-01T09:00:00+08:00", "inactive", "firing"),
            ("2021-03-01T09:00:00+08:00", "firing", "resolved"),
        ]
    );
}

#[test]
fn preview_renders_the_real_mail_without_sending() {
    let out = run(&[
        "preview",
        "--rule",
        "unemployment-rate",
        "--at",
        "2021-04-16T09:00",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nTo: renshe@example.cn\n"), "{text}");
    let subject = text.lines().find(|l| l.starts_with("Subject: ")).unwrap();
    assert!(subject.contains("城镇登记失业率"), "{subject}");
    assert!(
        text.contains("--- text/plain ---") && text.contains("4.7%"),
        "{text}"
    );
    assert!(
        text.contains("--- text/html ---\n<!DOCTYPE html>"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing sent"));
    // Nothing went to the outbox.
    let outbox = workspace().config.parent().unwrap().join("outbox");
    assert!(!outbox.exists() || std::fs::read_dir(&outbox).unwrap().next().is_none());

    let quiet = run(&[
        "preview",
        "--rule",
        "unemployment-rate",
        "--at",
        "2021-10-16T09:00",
    ]);
    assert!(quiet.status.success());
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("would send no mail"));
}
