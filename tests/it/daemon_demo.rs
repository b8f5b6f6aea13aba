//! `rulewatch run --demo`, the README's first command: the shipped config,
//! rules and fixtures, replayed on a fast clock; alert mail lands in the outbox.

use crate::common;

use common::{copy_dir, free_port, repo};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rulewatch");

fn subjects(outbox: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p: PathBuf = e.path();
        if p.extension().is_some_and(|x| x == "eml") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.starts_with("Subject:")) {
                out.push(line.to_string());
            }
        }
    }
    out
}

#[test]
fn demo_replays_the_fixtures_and_mails_appear() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = std::fs::read_to_string(repo().join("rulewatch.ron"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    std::fs::write(dir.path().join("rulewatch.ron"), config).unwrap();
    common::copy_shipped_rules(dir.path());
    copy_dir(&repo().join("fixtures"), &dir.path().join("fixtures"));

    // 30 virtual days a second, January to mid-February 2021.
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "run",
            "--demo",
            "--demo-speed",
            "30",
            "--demo-to",
            "2021-02-15",
        ])
        .env_remove("RULEWATCH_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let outbox = dir.path().join("outbox");
    let started = Instant::now();
    // The designed February event: Nangong's January composite index ranks 8th.
    let found = loop {
        let s = subjects(&outbox);
        if !s.is_empty() {
            let alerts: serde_json::Value =
                reqwest::blocking::get(format!("http://127.0.0.1:{port}/api/v1/alerts"))
                    .and_then(|r| r.json())
                    .unwrap_or_default();
            let rules: Vec<String> = alerts["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["rule"].as_str().unwrap_or("").to_string())
                .collect();
            if rules.iter().any(|r| r == "air-composite-rank") {
                break Some(rules);
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    let rules = found.unwrap_or_else(|| {
        panic!(
            "no air-composite-rank alert within 60 s; outbox: {:?}",
            subjects(&outbox)
        )
    });
    assert!(rules.iter().any(|r| r == "air-pm25-rank"), "{rules:?}");
    assert!(
        status.success(),
        "SIGTERM ends the demo cleanly: {status:?}"
    );
    assert!(!subjects(&outbox).is_empty());
    // The demo's own store, beside the configured one, which stays untouched.
    assert!(dir.path().join("data/demo.db").exists());
    assert!(!dir.path().join("data/rulewatch.db").exists());
}
