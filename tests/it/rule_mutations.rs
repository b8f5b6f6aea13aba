//! Mutation checks of the shipped multi-subject rules: every per-subject
//! target and every listed subject is changed or dropped, one at a time, and
//! the rule's own tests (`rulewatch test`, the real binary) must fail. A rule
//! whose tests still pass after such a change does not pin what it promises:
//! e.g. a section's target loosened from Ⅳ to Ⅴ without any test noticing.

use crate::common;

use common::repo;

use std::path::{Path, PathBuf};
use std::process::Command;

/// One change to one rule file.
struct Mutant {
    rule: &'static str,
    what: String,
    from: String,
    to: String,
}

/// The lines of `src` between `const NAME = [` (or `#{`) and the closing
/// `];` / `};`, each holding one entry.
fn entry_lines<'a>(src: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = src
        .lines()
        .skip_while(|l| !l.starts_with(&format!("const {name} = ")));
    let open = lines.next().unwrap_or_else(|| panic!("no `const {name}`"));
    assert!(
        open.ends_with('[') || open.ends_with('{'),
        "`const {name}` spans lines: {open}"
    );
    lines
        .take_while(|l| !l.starts_with("];") && !l.starts_with("};"))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .collect()
}

/// Each entry of a multi-line array constant dropped in turn.
fn drop_each(rule: &'static str, src: &str, name: &str) -> Vec<Mutant> {
    entry_lines(src, name)
        .into_iter()
        .map(|line| Mutant {
            rule,
            what: format!("{name} without {}", line.trim()),
            from: format!("{line}\n"),
            to: String::new(),
        })
        .collect()
}

/// `"section": N,` entries of a map constant moved one class each way (1–6:
/// a target of 6, 劣Ⅴ类, would accept anything).
fn shift_each(rule: &'static str, src: &str, name: &str) -> Vec<Mutant> {
    let mut out = Vec::new();
    for line in entry_lines(src, name) {
        let (key, value) = line.rsplit_once(": ").expect("`key: value`");
        let n: i64 = value.trim_end_matches(',').parse().expect("a class number");
        for m in [n - 1, n + 1] {
            if (1..=6).contains(&m) {
                out.push(Mutant {
                    rule,
                    what: format!("{name}{} {n} → {m}", key.trim()),
                    from: format!("{line}\n"),
                    to: format!("{key}: {m},\n"),
                });
            }
        }
    }
    out
}

fn read(rule: &str) -> String {
    std::fs::read_to_string(repo().join(format!("rules/{rule}"))).unwrap()
}

fn mutants() -> Vec<Mutant> {
    let mut all = Vec::new();
    let water = "environment/water-sections.rhai";
    all.extend(shift_each(water, &read(water), "TARGETS"));
    for rule in [
        "economy/economy-reports-overdue.rhai",
        "agriculture/agriculture-reports-overdue.rhai",
        "environment/water-resources-reports-overdue.rhai",
        "education/education-reports-overdue.rhai",
        "social/social-reports-overdue.rhai",
    ] {
        let src = read(rule);
        all.extend(drop_each(rule, &src, "METRICS"));
        if src.contains("const STATUS = [") {
            all.extend(drop_each(rule, &src, "STATUS"));
        }
    }
    let air = "environment/air-data-overdue.rhai";
    all.extend(drop_each(air, &read(air), "POLLUTANTS"));
    let park = "economy/park-facilities-built.rhai";
    for item in ["第三污水处理厂", "西区消防站"] {
        all.push(Mutant {
            rule: park,
            what: format!("ITEMS without {item}"),
            from: "const ITEMS = [\"第三污水处理厂\", \"西区消防站\"];".into(),
            to: format!(
                "const ITEMS = [\"{}\"];",
                if item == "西区消防站" {
                    "第三污水处理厂"
                } else {
                    "西区消防站"
                }
            ),
        });
    }
    let projects = "economy/projects-started.rhai";
    for n in [4, 6] {
        all.push(Mutant {
            rule: projects,
            what: format!("EXPECTED 5 → {n}"),
            from: "const EXPECTED = 5;".into(),
            to: format!("const EXPECTED = {n};"),
        });
    }
    all
}

/// `rulewatch test` of one rule's test file in `dir`: did it pass?
fn passes(dir: &Path, rule: &str) -> bool {
    let tests = format!("rules/{}", rule.replace(".rhai", ".test.ron"));
    let out = Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .current_dir(dir)
        .args(["test", &tests])
        .env_remove("RULEWATCH_CONFIG")
        .output()
        .unwrap();
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "rulewatch test {tests} exited {other:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn every_subject_target_of_the_multi_subject_rules_is_pinned_by_their_tests() {
    let dir: PathBuf = std::env::temp_dir().join(format!("rulewatch-mut-{}", uuid::Uuid::new_v4()));
    common::copy_shipped_rules(&dir);
    std::fs::copy(repo().join("rulewatch.ron"), dir.join("rulewatch.ron")).unwrap();

    let mutants = mutants();
    // six sections (targets 4 4 5 5 3 3), each moved one class both ways
    assert_eq!(
        mutants
            .iter()
            .filter(|m| m.rule.ends_with("water-sections.rhai"))
            .count(),
        12
    );
    let mut survivors = Vec::new();
    let mut rules: Vec<&str> = mutants.iter().map(|m| m.rule).collect();
    rules.dedup();
    for rule in rules {
        assert!(passes(&dir, rule), "{rule}: its tests fail unmutated");
    }
    for m in &mutants {
        let path = dir.join("rules").join(m.rule);
        let original = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            original.matches(&m.from).count(),
            1,
            "{}: `{}` must occur once",
            m.rule,
            m.from
        );
        std::fs::write(&path, original.replacen(&m.from, &m.to, 1)).unwrap();
        if passes(&dir, m.rule) {
            survivors.push(format!("{}: {}", m.rule, m.what));
        }
        std::fs::write(&path, original).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        survivors.is_empty(),
        "{} of {} mutants survive (the tests do not notice):\n{}",
        survivors.len(),
        mutants.len(),
        survivors.join("\n")
    );
}
