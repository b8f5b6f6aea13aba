//! The mistakes a Chinese rule author makes, one bad rule file each under
//! `tests/fixtures/bad/authoring/`: `rulewatch check` names the place
//! (`file:line:col`), says what is wrong in Chinese and gives the fix
//! (`提示：…`). The table below is the contract; the snapshots
//! (`tests/snapshots/`) hold the whole rendered message, caret included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rulewatch");

fn authoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad/authoring")
}

/// A temp folder with a config (recipient groups `env` and `hr`) and the
/// given rule files in `rules/`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(limits: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(
            dir.path().join("rulewatch.ron"),
            format!(
                r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "data/rulewatch.db",
    mail: (from: "rulewatch <alerts@example.cn>", transport: File(dir: "outbox")),
    recipients: {{ "env": ["huanbao@example.cn"], "hr": ["renshe@example.cn"] }},
    {limits}
)"#
            ),
        )
        .unwrap();
        Site { dir }
    }

    fn rule(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join("rules").join(name), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .current_dir(self.dir.path())
            .args(args)
            .env_remove("RULEWATCH_CONFIG")
            .output()
            .unwrap()
    }
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// (fixture, `line:col`, words of the message, words of the hint).
const MISTAKES: &[(&str, &str, &str, &str)] = &[
    (
        "fullwidth-comma",
        "10:35",
        "全角逗号“，”",
        "第10行第35列是全角逗号“，”，请改为半角逗号“,”",
    ),
    (
        "fullwidth-semicolon",
        "10:18",
        "全角分号“；”",
        "请改为半角分号“;”",
    ),
    (
        "fullwidth-colon",
        "3:10",
        "全角冒号“：”",
        "请改为半角冒号“:”",
    ),
    (
        "fullwidth-parens",
        "12:12",
        "全角左括号“（”",
        "请改为半角括号“(”",
    ),
    (
        "fullwidth-brace",
        "11:12",
        "全角左花括号“｛”",
        "请改为半角花括号“{”",
    ),
    (
        "fullwidth-equals",
        "10:13",
        "全角等号“＝”",
        "请改为半角等号“=”",
    ),
    (
        "chinese-quotes",
        "10:16",
        "中文引号",
        "“unemployment_rate” 请改为 \"unemployment_rate\"",
    ),
    (
        "chinese-single-quotes",
        "10:16",
        "中文引号",
        "请改为 \"unemployment_rate\"",
    ),
    (
        "unquoted-text",
        "10:13",
        "代码里出现了中文“失业率超标”",
        "\"失业率超标\"",
    ),
    (
        "missing-brace",
        "13:25",
        "if 的代码块没有结束：缺少“}”",
        "补上“}”",
    ),
    (
        "missing-paren",
        "12:11",
        "函数 breach 的调用没有结束：缺少“)”",
        "在 breach(…) 的最后一个参数之后补上“)”",
    ),
    (
        "missing-semicolon",
        "10:36",
        "语句末尾缺少半角分号“;”",
        "在第10行末尾加上 ;",
    ),
    ("unterminated-string", "10:16", "字符串没有结束", "补上 \""),
    (
        "misspelled-function",
        "10:9",
        "没有函数 lastest",
        "没有函数 lastest，是否想用 latest？",
    ),
    (
        "misspelled-breach",
        "12:5",
        "没有函数 breech",
        "是否想用 breach？",
    ),
    (
        "misspelled-field",
        "11:17",
        "没有字段 valu",
        "是否想用 r.value？",
    ),
    (
        "undefined-constant",
        "12:25",
        "`LIMT` 没有定义",
        "是否想用 LIMIT？",
    ),
    (
        "five-field-cron",
        "5:15",
        "只有 5 段",
        "写成 \"0 0 9 16 * *\"",
    ),
    (
        "for-unquoted",
        "6:5",
        "`for` 是 Rhai 的关键字",
        "写成 \"for\": \"1h\"",
    ),
    (
        "import",
        "10:1",
        "规则不能导入模块或其他文件",
        "删去 import 这一行",
    ),
    (
        "unknown-group",
        "5:14",
        "收件组 `人社局` 在 rulewatch.ron 里没有定义",
        "已定义的收件组：env、hr",
    ),
    (
        "misspelled-group",
        "5:14",
        "收件组 `evn`",
        "是否想用 \"env\"？",
    ),
    (
        "misspelled-severity",
        "4:15",
        "没有严重程度 `critcal`",
        "是否想用 \"critical\"？",
    ),
    (
        "misspelled-key",
        "3:5",
        "RULE 里没有 `titel` 这一项",
        "是否想写 title？",
    ),
    (
        "missing-notify",
        "1:1",
        "RULE 缺少 `notify`",
        "notify: [\"组名\"]",
    ),
    ("chinese-duration", "6:13", "时长 `7天` 写得不对", "\"7d\""),
    (
        "bad-id",
        "2:9",
        "规则编号 `Unemployment_Rate`",
        "id: \"unemployment-rate\"",
    ),
];

#[test]
fn each_author_mistake_is_named_at_its_place_with_a_fix() {
    let mut seen = Vec::new();
    for &(case, place, message, hint) in MISTAKES {
        let site = Site::new("");
        let file = format!("{case}.rhai");
        let source = std::fs::read_to_string(authoring().join(&file)).unwrap();
        site.rule(&file, &source);
        let o = site.run(&["check"]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{case}: {out}{}", text(&o.stderr));
        let first = out.lines().next().unwrap_or("");
        let head = format!("rules/{file}:{place}: error: ");
        assert!(
            first.starts_with(&head),
            "{case}: want `{head}…`, got:\n{out}"
        );
        assert!(
            first.contains(message),
            "{case}: want `{message}` in:\n{out}"
        );
        let hint_line = out.lines().find(|l| l.contains("= 提示：")).unwrap_or("");
        assert!(
            hint_line.contains(hint),
            "{case}: want hint `{hint}` in:\n{out}"
        );
        // The source line is shown, with a caret under the place.
        let line: usize = place.split(':').next().unwrap().parse().unwrap();
        let code = source.lines().nth(line - 1).unwrap();
        assert!(out.contains(&format!("{line} │ {code}")), "{case}: {out}");
        assert!(out.contains('^'), "{case}: {out}");
        insta::assert_snapshot!(case, out);
        seen.push(file);
    }
    // Every fixture is in the table.
    let mut files: Vec<String> = std::fs::read_dir(authoring())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    seen.sort();
    assert_eq!(files, seen);
}

#[test]
fn caret_sits_under_the_mistake_counting_chinese_characters_as_two_columns() {
    let site = Site::new("");
    let source = std::fs::read_to_string(authoring().join("fullwidth-comma.rhai")).unwrap();
    // Chinese text before the mistake on the same line.
    let source = source.replace(
        "let r = latest(\"unemployment_rate\"，",
        "let r = latest(\"失业率\"，",
    );
    site.rule("r.rhai", &source);
    let out = text(&site.run(&["check"]).stdout);
    let code = out.lines().find(|l| l.contains("latest(")).unwrap();
    let caret = out.lines().find(|l| l.contains('^')).unwrap();
    let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
    assert_eq!(
        width(&code[..code.find('，').unwrap()]),
        width(&caret[..caret.find('^').unwrap()]),
        "{out}"
    );
    assert!(out.starts_with("rules/r.rhai:10:21: error: "), "{out}");
}

#[test]
fn eval_names_the_failed_rule_file_line_and_the_limit_it_hit() {
    let site = Site::new("limits: (max_operations: 5000),");
    site.rule(
        "loop.rhai",
        "const RULE = #{ id: \"loop\", title: \"L\", severity: \"info\", notify: [\"hr\"] };\n\nlet n = 0;\nwhile n >= 0 { n += 1; }\n",
    );
    let o = site.run(&["eval", "--at", "2021-03-01T09:00"]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    let row = out.lines().find(|l| l.starts_with("loop")).unwrap();
    assert!(
        row.contains("rules/loop.rhai:4:")
            && row.contains("运算次数超过上限 5000（limits.max_operations）"),
        "{out}"
    );
    let err = text(&o.stderr);
    assert!(err.contains("4 │ while n >= 0 { n += 1; }"), "{err}");
    let o = site.run(&["eval", "--at", "2021-03-01T09:00", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["details"]["line"], 4);
    assert!(
        v[0]["details"]["hint"].as_str().unwrap().contains("循环"),
        "{v}"
    );
    assert!(err.contains("= 提示：检查循环是否一定会结束"), "{err}");
}

#[test]
fn check_warns_about_metrics_the_store_has_never_seen() {
    let site = Site::new("");
    site.rule(
        "u.rhai",
        "const RULE = #{ id: \"u\", title: \"U\", severity: \"info\", notify: [\"hr\"] };\nlet r = latest(\"unemployment_rat\");\nlet a = agg(\"pm25\", #{}, \"30d\", \"mean\");\n",
    );
    // No store yet: no warning (every metric would be unseen).
    let o = site.run(&["check"]);
    assert!(o.status.success());
    assert!(!text(&o.stdout).contains("warning"), "{}", text(&o.stdout));

    std::fs::write(
        site.dir.path().join("d.csv"),
        "metric,time,value\nunemployment_rate,2021-03-01,4.2\npm25,2021-03-01,40\n",
    )
    .unwrap();
    assert!(site.run(&["ingest", "d.csv"]).status.success());
    let o = site.run(&["check"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "a warning does not fail check: {out}");
    assert!(
        out.starts_with("rules/u.rhai:2:16: warning: 数据库里还没有指标 `unemployment_rat` 的数据"),
        "{out}"
    );
    assert!(
        out.contains("= 提示：是否想用 \"unemployment_rate\"？"),
        "{out}"
    );
    assert!(
        !out.contains("pm25"),
        "a stored metric is not warned about: {out}"
    );
}

#[test]
fn one_check_shows_every_mistake_of_a_file_even_after_a_full_width_comma() {
    let site = Site::new("");
    site.rule(
        "u.rhai",
        "const RULE = #{\n    id: \"u\",\n    title: \"城镇登记失业率 ≤ 4.5%\",\n    severity: \"critical\",\n    schedule: \"0 9 16 * *\",\n    notify: [\"hr\"],\n};\nlet r = lastest(\"unemployment_rate\"，#{});\n",
    );
    let out = text(&site.run(&["check"]).stdout);
    let heads: Vec<&str> = out.lines().filter(|l| l.starts_with("rules/")).collect();
    assert_eq!(heads.len(), 3, "{out}");
    assert!(
        heads[0].starts_with("rules/u.rhai:5:15: error: 执行时间 `0 9 16 * *` 只有 5 段"),
        "{out}"
    );
    assert!(
        heads[1].starts_with("rules/u.rhai:8:9: error: 没有函数 lastest"),
        "{out}"
    );
    assert!(
        heads[2].starts_with("rules/u.rhai:8:36: error: 代码里用了全角逗号“，”"),
        "{out}"
    );
}

#[test]
fn check_follows_a_metric_name_through_a_constant() {
    let site = Site::new("");
    site.rule(
        "u.rhai",
        "const RULE = #{ id: \"u\", title: \"U\", severity: \"info\", notify: [\"hr\"] };\nconst METRIC = \"unemployment_rat\";\nlet r = latest(METRIC);\n",
    );
    std::fs::write(
        site.dir.path().join("d.csv"),
        "metric,time,value\nunemployment_rate,2021-03-01,4.2\n",
    )
    .unwrap();
    assert!(site.run(&["ingest", "d.csv"]).status.success());
    let out = text(&site.run(&["check"]).stdout);
    assert!(
        out.starts_with("rules/u.rhai:3:16: warning: 数据库里还没有指标 `unemployment_rat` 的数据"),
        "{out}"
    );
    assert!(
        out.contains("│                ^^^^^^\n"),
        "the caret spans `METRIC`: {out}"
    );
}
