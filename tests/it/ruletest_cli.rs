//! `rulewatch test` through the real binary: output, exit codes, the diff,
//! and every malformed-test-file error (one fixture per case under
//! `tests/fixtures/ruletest/bad/`, each stating its expected error on its
//! first line as `// expect: LINE:COL: error: MESSAGE`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ruletest")
}

/// A temporary folder with a config whose rules folder is `rules`.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new(rules: &Path) -> Sandbox {
        let dir = std::env::temp_dir().join(format!("rulewatch-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            r#"(
    timezone: "Asia/Shanghai",
    rules: {:?},
    store: "data/rulewatch.db",
    mail: (from: "rulewatch <alerts@example.cn>", transport: File(dir: "outbox")),
    recipients: {{ "hr": ["renshe@example.cn"], "env": ["huanbao@example.cn"] }},
    admin: ["ops@example.cn"],
)"#,
            rules.display().to_string()
        );
        std::fs::write(dir.join("rulewatch.ron"), config).unwrap();
        Sandbox { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rulewatch"))
            .current_dir(&self.dir)
            .args(args)
            .env_remove("RULEWATCH_CONFIG")
            .output()
            .unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn passing_tests_print_ok_and_the_summary() {
    let s = Sandbox::new(&fixtures().join("rules"));
    let out = s.run(&["test"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = fixtures().join("rules/unemployment-rate.test.ron");
    for case in [
        "pending, firing, reminder, resolved",
        "ticks: schedule",
        "ticks: listed (the default) only evaluates at the listed times",
        "ticks: every 12h",
        "4.5 itself is within the target",
        "no data",
    ] {
        assert!(
            text.contains(&format!("test {}::{case} ... ok\n", name.display())),
            "{text}"
        );
    }
    let fragile = fixtures().join("rules/fragile.test.ron");
    assert!(
        text.contains(&format!(
            "test {}::error, then recovered, then a breach ... ok\n",
            fragile.display()
        )),
        "{text}"
    );
    assert!(text.ends_with("\n7 passed, 0 failed\n"), "{text}");
}

#[test]
fn a_failing_test_prints_a_diff_naming_the_line_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("rulewatch-fail-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixtures().join("rules/unemployment-rate.rhai"),
        dir.join("u.rhai"),
    )
    .unwrap();
    let test = r#"(
    rules: ["u.rhai"],
    series: [(metric: "unemployment_rate", labels: {"county": "南宫"}, start: "2021-03-01", step: "1d", values: "4.6x2")],
    tests: [
        (name: "passes", evals: [(at: "2021-03-01T09:00", alerts: [(subject: {"county": "南宫"}, kind: breach, state: pending)])]),
        (
            name: "fails",
            evals: [
                (at: "2021-03-01T09:00", alerts: [
                    (subject: {"county": "南宫"}, kind: breach, state: firing, message: "超过 4.6%"),
                ]),
                (at: "2021-03-02T09:00", alerts: [
                    (subject: {"county": "威县"}, kind: breach),
                ]),
            ],
        ),
    ],
)
"#;
    let file = dir.join("u.test.ron");
    std::fs::write(&file, test).unwrap();
    let s = Sandbox::new(&dir);
    let out = s.run(&["test", file.to_str().unwrap()]);
    let text = stdout(&out);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let f = file.display().to_string();
    assert!(text.starts_with(&format!("test {f}::passes ... ok\ntest {f}::fails ... FAILED\n\nfailures:\n\n---- {f}::fails ----\n")), "{text}");
    assert!(
        text.contains(&format!(
            "{f}:9: at 2021-03-01T09:00 (2021-03-01T09:00:00+08:00):\n"
        )),
        "{text}"
    );
    assert!(text.contains("  ~ line 10: unemployment-rate {county=南宫} breach, firing, message containing \"超过 4.6%\"\n"), "{text}");
    assert!(
        text.contains("        state:   expected firing, got pending\n"),
        "{text}"
    );
    assert!(text.contains("        message: expected to contain \"超过 4.6%\", got \"城镇登记失业率 4.6% 超过 4.5%\"\n"), "{text}");
    assert!(
        text.contains(&format!(
            "{f}:12: at 2021-03-02T09:00 (2021-03-02T09:00:00+08:00):\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "  - line 13: expected unemployment-rate {county=威县} breach, any active state\n"
        ),
        "{text}"
    );
    assert!(text.contains("  + unexpected: unemployment-rate {county=南宫} breach, firing, message \"城镇登记失业率 4.6% 超过 4.5%\", value 4.6, mail firing\n"), "{text}");
    assert!(text.ends_with("\n1 passed, 1 failed\n"), "{text}");
}

#[test]
fn every_malformed_test_file_is_reported_at_its_position() {
    let s = Sandbox::new(&fixtures().join("rules"));
    let bad = fixtures().join("bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&bad)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "one fixture per case: {files:?}");
    let mut wrong = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let first = String::from_utf8_lossy(&bytes)
            .lines()
            .next()
            .unwrap()
            .to_string();
        let want = first
            .strip_prefix("// expect: ")
            .unwrap_or_else(|| panic!("{}: first line must be `// expect: …`", file.display()));
        let out = s.run(&["test", file.to_str().unwrap()]);
        let text = stdout(&out);
        let prefix = format!("{}:", file.display());
        let found = text
            .lines()
            .any(|l| l.starts_with(&prefix) && l[prefix.len()..].contains(want));
        if out.status.code() != Some(1) || !found || !text.ends_with("0 passed, 1 failed\n") {
            wrong.push(format!(
                "{}\n  want: {want}\n  got:  {text}",
                file.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn missing_paths_fail() {
    let s = Sandbox::new(&fixtures().join("rules"));
    let out = s.run(&["test", "nope.test.ron"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "nope.test.ron: error: no such test file or folder\n0 passed, 1 failed\n"
    );
}

/// The shipped rules pass their tests; lowering a shipped threshold makes
/// `rulewatch test` fail with a diff that names the test and its line.
#[test]
fn changing_a_shipped_threshold_fails_with_a_diff() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("rulewatch-shipped-{}", uuid::Uuid::new_v4()));
    common::copy_shipped_rules(&dir);
    std::fs::copy(repo.join("rulewatch.ron"), dir.join("rulewatch.ron")).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_rulewatch"))
            .current_dir(&dir)
            .arg("test")
            .env_remove("RULEWATCH_CONFIG")
            .output()
            .unwrap()
    };

    let before = run();
    let text = stdout(&before);
    assert_eq!(before.status.code(), Some(0), "{text}");
    let summary = text.lines().last().unwrap();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
    let files = text
        .lines()
        .filter(|l| l.starts_with("test "))
        .map(|l| l.split("::").next().unwrap())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(files.len(), 41, "every shipped rule has tests: {files:?}");

    let rule = dir.join("rules/social/unemployment-rate.rhai");
    let src = std::fs::read_to_string(&rule).unwrap();
    assert!(src.contains("const LIMIT = 4.5;"));
    std::fs::write(
        &rule,
        src.replace("const LIMIT = 4.5;", "const LIMIT = 4.0;"),
    )
    .unwrap();

    let after = run();
    let text = stdout(&after);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(after.status.code(), Some(1), "{text}");
    let f = "rules/social/unemployment-rate.test.ron";
    assert!(
        text.contains(&format!(
            "test {f}::the limit 4.5 itself passes ... FAILED\n"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("---- {f}::the limit 4.5 itself passes ----\n{f}:24: at 2021-04-16T09:00 (2021-04-16T09:00:00+08:00):\n  + unexpected: unemployment-rate {{}} breach, firing, message \"2021年3月城镇登记失业率 4.5% 超过目标 4.0%")), "{text}");
    let summary = text.lines().last().unwrap();
    assert!(
        summary.ends_with(" failed") && !summary.ends_with(" 0 failed"),
        "{summary}"
    );
}
