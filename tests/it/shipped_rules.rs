//! Tests read only the shipped rules: the files git tracks under `rules/`.
//! An official's own unfinished rule dropped into the working tree's
//! `rules/` must not break the project's tests (nor `scripts/test`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn an_untracked_rule_in_the_working_tree_is_not_copied() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    git(root, &["init", "-q"]);
    std::fs::create_dir_all(root.join("rules/social")).unwrap();
    std::fs::write(root.join("rules/social/a.rhai"), "// shipped").unwrap();
    std::fs::write(root.join("rules/social/a.test.ron"), "// shipped").unwrap();
    git(root, &["add", "rules"]);
    // The official's own rule, half written, never added.
    std::fs::write(root.join("rules/social/mine.rhai"), "const RULE = #{ id: ").unwrap();
    std::fs::create_dir_all(root.join("rules/drafts")).unwrap();
    std::fs::write(root.join("rules/drafts/x.rhai"), "let").unwrap();

    assert_eq!(
        common::shipped_rule_files(root),
        [
            PathBuf::from("rules/social/a.rhai"),
            PathBuf::from("rules/social/a.test.ron")
        ]
    );
    let to = tempfile::tempdir().unwrap();
    common::copy_shipped_rules_from(root, to.path());
    assert!(to.path().join("rules/social/a.rhai").is_file());
    assert!(!to.path().join("rules/social/mine.rhai").exists());
    assert!(!to.path().join("rules/drafts").exists());
}

/// No test copies or loads the working tree's `rules/` folder wholesale:
/// they go through `common::copy_shipped_rules` or `shipped_workspace`.
#[test]
fn no_test_reads_the_working_tree_rules_folder_wholesale() {
    let tests = common::repo().join("tests");
    let mut offenders = Vec::new();
    let mut stack = vec![tests];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for bad in [
                    "repo().join(\"rules\")",
                    "repo.join(\"rules\")",
                    "CARGO_MANIFEST_DIR\")).join(\"rules\")",
                ] {
                    // This file names the patterns it looks for.
                    if text.contains(bad) && !p.ends_with("shipped_rules.rs") {
                        offenders.push(format!("{}: {bad}", p.display()));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// `scripts/test` runs the rules' own tests on the shipped files only.
#[test]
fn scripts_test_runs_rule_tests_on_the_shipped_files() {
    let script = std::fs::read_to_string(common::repo().join("scripts/test")).unwrap();
    assert!(!script.contains("cargo run --quiet -- test\n"), "{script}");
    assert!(script.contains("scripts/copy-shipped-rules.sh"), "{script}");
    let copy =
        std::fs::read_to_string(common::repo().join("scripts/copy-shipped-rules.sh")).unwrap();
    assert!(copy.contains("git ls-files -z -- rules"), "{copy}");
}

/// Every metric the fixtures report has a display name in the shipped
/// config's words: a mail's 指标 row never shows `schools_built`.
#[test]
fn every_shipped_metric_has_a_display_name() {
    let config = rulewatch::config::Config::load(&common::repo().join("rulewatch.ron")).unwrap();
    let words = rulewatch::status::Words::for_config(&config);
    let mut missing = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(common::repo().join("fixtures/2021")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("csv") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = header.iter().position(|h| *h == "metric").unwrap();
        for line in lines {
            let metric = line.split(',').nth(at).unwrap();
            if words.value("metric", metric) == metric {
                missing.insert(metric.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "metrics without a display name: {missing:?}"
    );
}
