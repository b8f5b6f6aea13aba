//! The daemon over time: schedules, hot reload, signals. Real binary, real
//! files, real signals.

use crate::daemon_support;

use std::time::{Duration, Instant};

use daemon_support::{daemon, pm25_rule, slow_rule, write_atomically};

const NEVER: &str = "0 0 9 1 1 *";
const BREACH: &str = r#"{"metric":"pm25","value":91.5,"time":"2021-03-02T10:00:00+08:00","labels":{"county":"南宫"}}"#;

#[test]
fn a_broken_edit_keeps_the_last_good_version_and_a_fix_takes_effect() {
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
        .start();
    assert_eq!(
        d.post("/api/v1/readings", "application/x-ndjson", BREACH)
            .status,
        200
    );
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 91.5"]);
    let good_hash = d.rule_status("pm25-high").unwrap()["content_hash"].clone();

    // Broken edit (saved the way editors do: temp file, rename).
    let broken =
        pm25_rule("pm25-high", "v2", NEVER).replace("r.value > 75.0 {", "r.value > 75.0 {{");
    d.write_rule("pm25.rhai", &broken);
    let status = d.wait_for(10, "the load error in /api/v1/rules", |d| {
        d.rule_status("pm25-high")
            .filter(|r| r["status"] == "load_error")
    });
    let error = status["error"].as_str().unwrap();
    assert!(error.contains("pm25.rhai:"), "{error}");
    assert_eq!(
        status["content_hash"], good_hash,
        "the last good version is the one evaluating"
    );
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 91.5"], "still v1");
    assert_eq!(d.metric("rulewatch_rule_files_broken"), Some(1.0));

    // Admin is told, once for this broken version.
    let note = d.wait_for(10, "the note to admin", |d| {
        d.outbox()
            .into_iter()
            .find(|m| m.contains("ops@example.cn"))
    });
    assert!(note.contains("pm25.rhai"), "{note}");
    let notes = |d: &daemon_support::Daemon| {
        d.outbox()
            .iter()
            .filter(|m| m.contains("To: ops@example.cn"))
            .count()
    };
    assert_eq!(notes(&d), 1);
    // Touching the file again with the same broken content tells no one.
    write_atomically(&d.rules_dir().join("pm25.rhai"), &broken);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(notes(&d), 1);

    // The fix takes effect.
    d.write_rule("pm25.rhai", &pm25_rule("pm25-high", "v3", NEVER));
    d.wait_for(10, "the fixed version", |d| {
        d.rule_status("pm25-high").filter(|r| r["status"] == "ok")
    });
    assert_eq!(d.messages("pm25-high"), ["v3: pm25 91.5"]);
    assert!(d.rule_status("pm25-high").unwrap()["error"].is_null());
}

#[test]
fn files_added_and_removed_while_running() {
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
        .start();
    d.write_rule("second.rhai", &pm25_rule("pm25-second", "second", NEVER));
    d.wait_for(10, "the new rule", |d| d.rule_status("pm25-second"));
    assert_eq!(d.messages("pm25-second"), ["second: no pm25"]);

    // In a subfolder too.
    std::fs::create_dir(d.rules_dir().join("sub")).unwrap();
    d.write_rule("sub/third.rhai", &pm25_rule("pm25-third", "third", NEVER));
    d.wait_for(10, "the rule in a subfolder", |d| {
        d.rule_status("pm25-third")
    });

    std::fs::remove_file(d.rules_dir().join("second.rhai")).unwrap();
    d.wait_for(10, "the rule to go", |d| {
        d.rule_status("pm25-second").is_none().then_some(())
    });
    let r = d.post("/api/v1/evaluate?rule=pm25-second", "application/json", "");
    assert_eq!(r.status, 404);
    assert_eq!(d.get("/healthz").json()["rules"], 2);
}

#[test]
fn sighup_rescans_the_rules() {
    let mut d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
        .start();
    let before = d.metric("rulewatch_rule_reloads_total").unwrap();
    d.signal("HUP");
    d.wait_for(10, "a reload", |d| {
        (d.metric("rulewatch_rule_reloads_total").unwrap() > before).then_some(())
    });
    assert!(d.logs().contains("SIGHUP"));
    assert_eq!(d.get("/healthz").status, 200, "still running");
    d.signal("TERM");
    assert_eq!(d.wait_exit(20).code(), Some(0));
}

#[test]
fn scheduled_runs_evaluate_as_of_the_scheduled_instant() {
    let d = daemon()
        .rule("tick.rhai", pm25_rule("tick", "tick", "*/2 * * * * *"))
        .start();
    let last = d.wait_for(15, "two scheduled evaluations", |d| {
        let r = d.rule_status("tick")?;
        let n = d.metric("rulewatch_evaluations_total{rule=\"tick\",result=\"ok\"}")?;
        (n >= 2.0).then(|| r["last_evaluation"].clone())
    });
    assert_eq!(last["trigger"], "schedule");
    let at = last["at_ms"].as_i64().unwrap();
    // The tick ran up to half a second late; the rule saw the instant itself.
    assert_eq!(
        at % 2000,
        0,
        "evaluated as of {at}, not a scheduled instant"
    );
    // And its no-data alert was recorded at that instant.
    let alerts = d.get("/api/v1/alerts?rule=tick").json();
    assert_eq!(alerts["alerts"][0]["state"], "no_data", "{alerts}");
}

#[test]
fn overlapping_runs_are_skipped_and_counted() {
    // Runs every second, takes 2.5 s (stopped by its time limit).
    let d = daemon()
        .rule_timeout("2500ms")
        .rule("slow.rhai", slow_rule("slow", "* * * * * *"))
        .start();
    d.wait_for(20, "a skipped run", |d| {
        (d.metric("rulewatch_evaluations_skipped_total{rule=\"slow\"}")? >= 1.0).then_some(())
    });
    d.wait_for(20, "the run to end at its limit", |d| {
        (d.metric("rulewatch_rule_errors_total{rule=\"slow\"}")? >= 1.0).then_some(())
    });
    assert!(d.logs().contains("previous evaluation still running"));
    let r = d.rule_status("slow").unwrap();
    assert!(
        r["last_evaluation"]["error"]
            .as_str()
            .unwrap()
            .contains("运行时间超过上限"),
        "{r}"
    );
    assert!(r["skipped_overlapping_runs"].as_u64().unwrap() >= 1);
}

#[test]
fn sigterm_exits_zero() {
    for sig in ["TERM", "INT"] {
        let mut d = daemon()
            .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
            .start();
        assert_eq!(
            d.post("/api/v1/readings", "application/x-ndjson", BREACH)
                .status,
            200
        );
        d.signal(sig);
        let status = d.wait_exit(20);
        assert_eq!(status.code(), Some(0), "SIG{sig}:\n{}", d.logs());
        assert!(d.logs().contains("stopped cleanly"), "{}", d.logs());
        // The listener is closed.
        assert!(d.http.get(d.url("/healthz")).send().is_err());
    }
}

#[test]
fn sigterm_lets_the_evaluation_in_flight_finish() {
    let mut d = daemon()
        .rule_timeout("2s")
        .rule("slow.rhai", slow_rule("slow", NEVER))
        .start();
    let url = d.url("/api/v1/evaluate?rule=slow");
    let http = d.http.clone();
    let started = Instant::now();
    let call = std::thread::spawn(move || {
        let r = http
            .post(url)
            .header("Authorization", format!("Bearer {}", daemon_support::TOKEN))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    });
    d.wait_for(10, "the evaluation to start", |d| {
        (d.metric("rulewatch_evaluations_in_flight")? >= 1.0).then_some(())
    });
    d.signal("TERM");
    let (status, body) = call.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["failed"], 1, "it ran to its limit: {v}");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.logs());
    let logs = d.logs();
    let finished = logs.find("rule failed").expect("the evaluation finished");
    let stopped = logs.find("stopped cleanly").expect("clean stop");
    assert!(finished < stopped, "{logs}");
}

#[test]
fn a_changed_schedule_is_rescheduled() {
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
        .start();
    let runs = |d: &daemon_support::Daemon| {
        d.metric("rulewatch_evaluations_total{rule=\"pm25-high\",result=\"ok\"}")
            .unwrap_or(0.0)
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&d), 0.0, "never scheduled yet");

    d.write_rule("pm25.rhai", &pm25_rule("pm25-high", "v2", "* * * * * *"));
    d.wait_for(15, "scheduled runs on the new schedule", |d| {
        (runs(d) >= 2.0).then_some(())
    });
    assert_eq!(
        d.rule_status("pm25-high").unwrap()["last_evaluation"]["trigger"],
        "schedule"
    );

    d.write_rule("pm25.rhai", &pm25_rule("pm25-high", "v3", NEVER));
    d.wait_for(10, "the reload", |d| {
        d.rule_status("pm25-high")
            .filter(|r| r["schedule"] == NEVER)
    });
    std::thread::sleep(Duration::from_millis(1500)); // a tick already taken may still finish
    let settled = runs(&d);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(runs(&d), settled, "the every-second job is gone");
}

#[test]
fn a_second_daemon_on_the_same_store_is_refused_and_cli_ingest_still_works() {
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
        .start();
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .current_dir(d.dir.path())
        .args(["run", "--config", "rulewatch.ron"])
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second daemon must refuse");
    assert!(
        err.contains(&format!("pid {}", d.pid())) && err.contains("rulewatch.db"),
        "the refusal names the running daemon and the store: {err}"
    );
    assert!(err.contains("另一个 rulewatch run"), "Chinese first: {err}");
    // The first one keeps serving.
    assert_eq!(d.get("/healthz").status, 200);

    // `rulewatch ingest` writes beside the running daemon.
    std::fs::write(d.path("more.ndjson"), format!("{BREACH}\n")).unwrap();
    let ingest = std::process::Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .current_dir(d.dir.path())
        .args(["ingest", "--config", "rulewatch.ron", "more.ndjson"])
        .output()
        .unwrap();
    assert!(
        ingest.status.success(),
        "ingest beside the daemon: {}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 91.5"]);
}

#[test]
fn a_digest_missed_while_down_is_queued_late_once() {
    // Daily at midnight: today's (or yesterday's) instant passed while this
    // daemon was "down" (not yet started).
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
        .digest_schedule("0 0 0 * * *")
        .start();
    d.wait_for(20, "the late digest", |d| {
        d.logs().contains("monthly digest queued").then_some(())
    });
    d.wait_for(20, "the digest mail in the outbox", |d| {
        (!d.outbox().is_empty()).then_some(())
    });
    // Once: the same month's digest is never queued twice.
    assert_eq!(d.logs().matches("monthly digest queued").count(), 1);
}
