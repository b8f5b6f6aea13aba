//! `check`, `ingest` and `eval` through the real binary, with one bad input
//! per file under `tests/fixtures/bad/`: each is rejected with where and what,
//! exit 1, and nothing from it stored.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rulewatch");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

/// A temp folder with a config, a rules folder (copied from `rules_from` if
/// given) and an empty store.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(rules_from: Option<&Path>) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        if let Some(from) = rules_from {
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), rules.join(e.file_name())).unwrap();
            }
        }
        std::fs::write(
            dir.path().join("rulewatch.ron"),
            r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "data/rulewatch.db",
    mail: (from: "rulewatch <alerts@example.cn>", transport: File(dir: "outbox")),
    recipients: { "ops": ["ops@example.cn"] },
)"#,
        )
        .unwrap();
        Site { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn stored(&self) -> usize {
        let db = self.dir.path().join("data/rulewatch.db");
        if !db.exists() {
            return 0;
        }
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row("SELECT coalesce(sum(count), 0) FROM blocks", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_or(0) as usize
    }
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn check_passes_the_shipped_config_and_rules() {
    let shipped = common::shipped_workspace();
    let o = Command::new(BIN)
        .current_dir(shipped.path())
        .arg("check")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        !text(&o.stdout).contains("没有显示名"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn check_warns_of_a_recipient_group_without_a_display_name() {
    let site = Site::new(None);
    site.write(
        "rules/high.rhai",
        "const RULE = #{ id: \"high\", title: \"高\", severity: \"warning\", notify: [\"ops\"] };\n",
    );
    let o = site.run(&["check"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "a warning only: {out}");
    assert!(
        out.contains("rulewatch.ron:6:19: warning: 收件组 `ops` 没有显示名：页面、汇总和邮件里只能显示为“ops（ops@example.cn）” / recipient group `ops` has no display name"),
        "{out}"
    );
    assert!(
        out.contains("提示：在 group_names 里加上 \"ops\": \"人社局\""),
        "{out}"
    );
}

#[test]
fn check_reports_every_broken_rule_file_at_its_line() {
    let site = Site::new(Some(&fixtures().join("rules")));
    let o = site.run(&["check"]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    // The first line of each problem; the source line, caret and hint follow.
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("rules/")).collect();
    let expect = [
        (
            "rules/bad-metadata.rhai:4:15: error:",
            "没有严重程度 `urgent`",
        ),
        ("rules/duplicate-b.rhai:2:", "规则编号 `twice` 重复"),
        ("rules/imports.rhai:2:1: error:", "import"),
        ("rules/syntax.rhai:3:", "error"),
        ("rules/unknown-group.rhai:5:14: error:", "收件组 `nobody`"),
    ];
    for (place, what) in expect {
        assert!(
            lines.iter().any(|l| l.contains(place) && l.contains(what)),
            "no `{place}` … `{what}` in:\n{out}"
        );
    }
    assert_eq!(lines.len(), expect.len(), "one line per problem:\n{out}");
    assert!(!out.contains("good.rhai"), "{out}");
    // The duplicate names the first file too.
    assert!(out.contains("duplicate-a.rhai"), "{out}");
}

#[test]
fn check_reports_config_problems_with_positions() {
    let site = Site::new(None);
    site.write(
        "typo.ron",
        "(\n    timezone: \"Asia/Shanghai\",\n    rules: \"rules\",\n    store: \"s.db\",\n    mail: (from: \"a@example.cn\", transport: File(dir: \"o\")),\n    recipents: {},\n)",
    );
    let o = site.run(&["check", "--config", "typo.ron"]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("typo.ron:6:5: error: 没有配置项 `recipents`：是否想写 `recipients`？"),
        "{out}"
    );
    assert!(
        out.contains("/ Unexpected field named `recipents`"),
        "{out}"
    );

    site.write(
        "dur.ron",
        "(\n    timezone: \"Asia/Shanghai\",\n    rules: \"rules\",\n    store: \"s.db\",\n    defaults: (repeat: \"1天\"),\n    mail: (from: \"a@example.cn\", transport: File(dir: \"o\")),\n)",
    );
    let out = text(&site.run(&["check", "--config", "dur.ron"]).stdout);
    assert!(
        out.contains(
            "dur.ron:5:16: error: `repeat` 的时长 `1天` 无法识别：请写数字加单位，如 `90m`"
        ),
        "{out}"
    );

    site.write(
        "tz.ron",
        "(\n    timezone: \"Mars/Olympus\",\n    rules: \"nowhere\",\n    store: \"s.db\",\n    mail: (from: \"a@example.cn\", transport: File(dir: \"o\")),\n)",
    );
    let out = text(&site.run(&["check", "--config", "tz.ron"]).stdout);
    assert!(
        out.contains("tz.ron:2:5: error: 时区 `Mars/Olympus` 无法识别：请写 IANA 时区名，如 `Asia/Shanghai` / unknown timezone `Mars/Olympus`"),
        "{out}"
    );
    assert!(
        out.contains("tz.ron:3:5: error: 规则文件夹 `nowhere` 不存在")
            && out.contains("/ rules folder `nowhere` does not exist"),
        "{out}"
    );
}

#[test]
fn each_bad_readings_file_is_rejected_with_its_place_and_nothing_stored() {
    let cases = [
        ("malformed.ndjson", "malformed.ndjson:2:"),
        ("not-a-number.csv", "not-a-number.csv:3:"),
        ("non-finite.json", "non-finite.json:1:50: error: 第2项："),
        ("missing-time.ndjson", "missing-time.ndjson:2:"),
        ("bad-time.csv", "2021-02-30"),
        ("bad-metric.ndjson", "pm-25"),
        ("non-utf8.csv", "non-utf8.csv:2:"),
        ("empty.csv", "没有读数"),
    ];
    for (file, expect) in cases {
        let site = Site::new(None);
        let path = fixtures().join("readings").join(file);
        let o = site.run(&["ingest", path.to_str().unwrap()]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{file}: {err}");
        assert!(
            err.contains(expect),
            "{file}: expected `{expect}` in:\n{err}"
        );
        assert!(
            err.contains(
                "未导入：发现 1 条有错的读数，此文件的数据均未存入，请改正后重新导入整个文件 / rejected: 1 bad reading(s), nothing from this file stored"
            ),
            "{file}: {err}"
        );
        assert_eq!(site.stored(), 0, "{file}: nothing stored");
    }
}

#[test]
fn ingest_stores_good_files_and_is_idempotent() {
    let site = Site::new(None);
    site.write(
        "a.csv",
        "metric,time,value,county\npm25,2021-03-01,48,南宫\npm25,2021-03-02T10:00:00+08:00,52.5,南宫\n",
    );
    site.write(
        "b.ndjson",
        "{\"metric\":\"pm25\",\"value\":50,\"time\":\"2021-03-01\",\"labels\":{\"county\":\"南宫\"}}\n",
    );
    let o = site.run(&["ingest", "a.csv", "b.ndjson"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(
            "a.csv: 已存入 2 条读数：新增 2 条，与已存的相同 0 条 / stored 2 readings: 2 new"
        ),
        "{}",
        text(&o.stdout)
    );
    // b.ndjson replaced the 2021-03-01 reading: same identity.
    assert_eq!(site.stored(), 2);
    let o = site.run(&["ingest", "a.csv"]);
    assert!(o.status.success());
    assert_eq!(site.stored(), 2);
}

#[test]
fn ingest_says_what_was_new_unchanged_and_corrected() {
    let site = Site::new(None);
    site.write(
        "a.csv",
        "metric,time,value,county\npm25,2021-03-01,48,南宫\npm25,2021-03-02,52.5,南宫\n",
    );
    let o = site.run(&["ingest", "a.csv"]);
    let out = text(&o.stdout);
    assert!(
        out.starts_with("a.csv: 已存入 2 条读数：新增 2 条，与已存的相同 0 条 / stored 2 readings: 2 new, 0 unchanged (1 new series)"),
        "{out}"
    );
    // The same file again.
    let out = text(&site.run(&["ingest", "a.csv"]).stdout);
    assert!(
        out.contains(
            "新增 0 条，与已存的相同 2 条 / stored 2 readings: 0 new, 2 unchanged (0 new series)"
        ),
        "{out}"
    );
    // A corrected figure replaces the stored one, and is reported.
    site.write(
        "fix.ndjson",
        "{\"metric\":\"pm25\",\"value\":50,\"time\":\"2021-03-01\",\"labels\":{\"county\":\"南宫\"}}\n",
    );
    let out = text(&site.run(&["ingest", "fix.ndjson"]).stdout);
    assert!(
        out.contains("更正旧值 1 条 / stored 1 readings: 0 new, 0 unchanged, 1 changed"),
        "{out}"
    );
    assert_eq!(site.stored(), 2);
}

#[test]
fn ingest_rejects_two_values_for_one_reading_naming_both_lines() {
    let site = Site::new(None);
    site.write(
        "twice.csv",
        "metric,time,value,county\npm25,2021-03-01,48,南宫\npm25,2021-03-01,48,南宫\npm25,2021-03-02,1,南宫\npm25,2021-03-01,49,南宫\n",
    );
    let o = site.run(&["ingest", "twice.csv"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("twice.csv:5: error: 第4项：与第2行（第1项）重复")
            && err.contains("(48 and 49)"),
        "{err}"
    );
    // The equal repeat on line 3 is not an error.
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert_eq!(site.stored(), 0);
    // The same value twice is stored once.
    site.write(
        "same.ndjson",
        "{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n",
    );
    let o = site.run(&["ingest", "same.ndjson"]);
    assert!(
        text(&o.stdout).contains("stored 1 readings: 1 new"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(site.stored(), 1);
}

#[test]
fn an_empty_file_is_one_error() {
    for (name, body) in [
        ("empty.csv", ""),
        ("empty.ndjson", ""),
        ("blank.ndjson", "\n \n"),
        ("empty.json", ""),
        ("header.csv", "metric,time,value\n"),
    ] {
        let site = Site::new(None);
        site.write(name, body);
        let o = site.run(&["ingest", name]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.matches("error:").count(), 1, "{name}: {err}");
        assert!(
            err.contains("没有读数") && err.contains("rejected: 1 bad reading(s)"),
            "{name}: {err}"
        );
    }
}

#[test]
fn ingest_reads_stdin() {
    let site = Site::new(None);
    let mut child = Command::new(BIN)
        .current_dir(site.dir.path())
        .args(["ingest", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"metric\":\"x\",\"value\":1,\"time\":\"2021-01-01\"}\n{\"metric\":\"x\",\"value\":2,\"time\":\"2021-01-02\"}\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(site.stored(), 2);
}

#[test]
fn eval_prints_json_and_fails_when_a_rule_fails() {
    let site = Site::new(None);
    site.write(
        "rules/high.rhai",
        "const RULE = #{ id: \"high\", title: \"高\", severity: \"warning\", notify: [\"ops\"] };\nlet r = latest(\"pm25\", #{ county: \"南宫\" });\nif r != () && r.value > 50.0 { breach(#{ county: \"南宫\" }, `PM2.5 ${r.value}`, #{ value: r.value, threshold: 50 }); }\n",
    );
    site.write(
        "d.csv",
        "metric,time,value,county\npm25,2021-03-01,48,南宫\npm25,2021-03-02,60,南宫\n",
    );
    assert!(site.run(&["ingest", "d.csv"]).status.success());

    let o = site.run(&["eval", "--at", "2021-03-01T12:00", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));

    let o = site.run(&["eval", "--at", "2021-03-02T12:00", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{ "rule": "high", "kind": "breach", "subject": { "county": "南宫" },
            "message": "PM2.5 60.0", "details": { "value": 60.0, "threshold": 50 } }])
    );

    // A runaway rule fails alone: the other rule is still evaluated.
    site.write(
        "rules/loop.rhai",
        "const RULE = #{ id: \"loop\", title: \"L\", severity: \"info\", notify: [\"ops\"] };\n\nloop { }\n",
    );
    let o = site.run(&["eval", "--at", "2021-03-02T12:00", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("high", "breach"), ("loop", "error")]);
    let err = &v[1]["details"];
    assert!(err["file"].as_str().unwrap().ends_with("rules/loop.rhai"));
    assert_eq!(err["line"], 3);

    let o = site.run(&["eval", "--at", "2021-03-02T12:00", "--rule", "high"]);
    assert!(o.status.success());
    // The subject through its display name, never the raw `county=南宫`.
    let out = text(&o.stdout);
    assert!(out.contains("县（市、区）：南宫"), "{out}");
    assert!(!out.contains("county="), "{out}");
}
