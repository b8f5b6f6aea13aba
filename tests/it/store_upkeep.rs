//! The store over years: a full store (SQLite's own size limit, the
//! config's `retention.max_store_bytes`), an old store migrated on start,
//! retention in the running daemon, and `rulewatch backup` while the daemon
//! takes readings. The real binary on loopback, real SQLite files.

use crate::daemon_support;

use std::path::Path;
use std::process::Command;

use daemon_support::{daemon, pm25_rule, Daemon};
use rusqlite::Connection;

fn count(store: &Path, sql: &str) -> i64 {
    let conn = Connection::open(store).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Readings in day blocks, and staged by HTTP ingest.
fn readings_in(store: &Path) -> i64 {
    count(store, "SELECT (SELECT coalesce(sum(count), 0) FROM blocks) + (SELECT coalesce(sum(count), 0) FROM staged)")
}

/// NDJSON: `n` readings of `metric`, one series per reading's `series`
/// label, an hour apart from `first_hour` (hours since 2021-01-01).
fn ndjson(metric: &str, series: &str, first_hour: i64, n: i64) -> String {
    let start = 1_609_430_400_000i64; // 2021-01-01T00:00:00+08:00
    (0..n)
        .map(|i| {
            format!(
                "{{\"metric\":\"{metric}\",\"value\":{i}.5,\"time\":\"{}\",\"labels\":{{\"s\":\"{series}\"}}}}\n",
                rfc3339(start + (first_hour + i) * 3_600_000)
            )
        })
        .collect()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// The start of an answer, for assertion messages.
fn head(text: &str) -> String {
    text.chars().take(300).collect()
}

fn rulewatch(d: &Daemon, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .current_dir(d.dir.path())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_full_store_refuses_readings_with_507_keeps_evaluating_and_recovers_by_itself() {
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .config("retention: (max_store_bytes: 1048576),")
        .start();
    let store = d.path("data/rulewatch.db");
    // A breach is stored before the store fills up.
    let breach = r#"{"metric":"pm25","value":120,"time":"2021-03-01T10:00:00+08:00","labels":{"county":"南宫"}}"#;
    assert_eq!(
        d.post("/api/v1/readings", "application/x-ndjson", breach)
            .status,
        200
    );
    // Fill it: batches of 2,000 readings (12 series × a week) until refused.
    let mut accepted = 1;
    let mut refused = None;
    for k in 0..400 {
        let body: String = (0..12)
            .map(|s| ndjson("noise", &format!("b{k}s{s}"), 0, 167))
            .collect();
        let r = d.post("/api/v1/readings", "application/x-ndjson", body);
        match r.status {
            200 => accepted += r.json()["accepted"].as_i64().unwrap(),
            507 => {
                refused = Some(r);
                break;
            }
            other => panic!("{other}: {}", head(&r.text)),
        }
    }
    let refused = refused.expect("the store never filled up");
    let message = refused.json()["error"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("存储空间已满，本批读数未保存"),
        "{message}"
    );
    assert!(
        message.contains("retention") && message.contains("store full, nothing stored"),
        "{message}"
    );
    // Nothing of the refused batch is in the file.
    assert_eq!(readings_in(&store), accepted);
    // Then smaller and smaller batches, until a single reading finds no room.
    let mut k = 0;
    for (series, hours) in [(12, 48), (4, 24), (2, 4), (1, 1)] {
        loop {
            k += 1;
            let body: String = (0..series)
                .map(|s| ndjson("noise", &format!("t{k}s{s}"), 0, hours))
                .collect();
            let r = d.post("/api/v1/readings", "application/x-ndjson", body);
            match r.status {
                200 => accepted += r.json()["accepted"].as_i64().unwrap(),
                507 => break,
                other => panic!("{other}: {}", head(&r.text)),
            }
            assert!(k < 2000, "the store never filled up");
        }
    }
    assert_eq!(readings_in(&store), accepted);
    let size = std::fs::metadata(&store).unwrap().len();
    assert!(size <= 1_048_576 + 4096, "the cap holds: {size} bytes");

    // The daemon keeps evaluating (its rules read memory) and answering.
    assert_eq!(d.messages("pm25-high"), ["v1: pm25 120.0"]);
    assert_eq!(d.get("/healthz").status, 200);
    assert!(d.logs().contains("存储空间已满"), "{}", d.logs());
    assert_eq!(d.metric("rulewatch_store_max_bytes"), Some(1_048_576.0));

    // Space returns (an operator deletes the filler): the next requests
    // succeed without a restart.
    {
        let conn = Connection::open(&store).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        conn.execute_batch(
            "DELETE FROM blocks WHERE series_id IN (SELECT id FROM series WHERE metric = 'noise')",
        )
        .unwrap();
        // Filler batches still staged by HTTP ingest (each row is one batch,
        // all noise: its first reading's series, 8 bytes LE, tells).
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = conn.prepare("SELECT id, data FROM staged").unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for (id, data) in rows {
            let series = i64::from_le_bytes(data[..8].try_into().unwrap());
            let metric: String = conn
                .query_row("SELECT metric FROM series WHERE id = ?1", [series], |r| {
                    r.get(0)
                })
                .unwrap();
            if metric == "noise" {
                conn.execute("DELETE FROM staged WHERE id = ?1", [id])
                    .unwrap();
            }
        }
    }
    let r = d.post(
        "/api/v1/readings",
        "application/x-ndjson",
        ndjson("pm10", "after", 0, 500),
    );
    assert_eq!(r.status, 200, "{}", head(&r.text));
    assert_eq!(readings_in(&store), 1 + 500);
    // And the breach is recorded and mailed, once.
    d.evaluate(Some("pm25-high"));
    let alerts = d.get("/api/v1/alerts?rule=pm25-high").json();
    assert_eq!(alerts["alerts"][0]["state"], "firing", "{alerts}");
    let mails = d.wait_for(30, "the alert mail", |d| {
        let m = d.outbox();
        (!m.is_empty()).then_some(m)
    });
    assert_eq!(mails.len(), 1);
    d.evaluate(Some("pm25-high"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(d.outbox().len(), 1, "not repeated");
}

#[test]
fn a_store_made_by_schema_1_is_migrated_on_start_and_its_queued_mail_goes_out() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store/v1.db");
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-nangong", "v2", "0 0 9 1 1 *"))
        .store_from(&fixture)
        .start();
    let store = d.path("data/rulewatch.db");
    assert_eq!(count(&store, "PRAGMA user_version"), 3);
    assert!(
        d.logs().contains("存储库结构已从版本 1 升级到 3"),
        "{}",
        d.logs()
    );
    // Its readings, its open alert and its queued mail are all there.
    assert_eq!(d.messages("pm25-nangong"), ["v2: pm25 120.0"]);
    let alerts = d.get("/api/v1/alerts?rule=pm25-nangong").json();
    assert_eq!(alerts["alerts"][0]["state"], "firing", "{alerts}");
    // A mail file is written before its row is marked sent: wait for both
    // (waiting for the files alone once saw a row still queued).
    let queued = || {
        count(
            &store,
            "SELECT count(*) FROM outbox WHERE status = 'queued'",
        )
    };
    let mails = d.wait_for(30, "the two queued mails, sent", |d| {
        let m = d.outbox();
        (m.len() >= 2 && queued() == 0).then_some(m)
    });
    assert_eq!(mails.len(), 2);
    assert_eq!(
        count(&store, "SELECT count(*) FROM outbox WHERE status = 'sent'"),
        3
    );
}

#[test]
fn a_store_newer_than_the_binary_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    {
        let conn = Connection::open(&newer).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .args(["ingest", "--config"])
        .arg(write_config(dir.path(), &newer))
        .arg("-")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("由更新版本的 rulewatch 写入"), "{err}");
    assert!(err.contains("restore a backup"), "{err}");
}

fn write_config(dir: &Path, store: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let path = dir.join("rulewatch.ron");
    std::fs::write(
        &path,
        format!(
            r#"(timezone: "Asia/Shanghai", rules: "rules", store: "{}",
               mail: (from: "a <a@example.cn>", transport: File(dir: "outbox")),
               recipients: {{ "env": ["huanbao@example.cn"] }})"#,
            store.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_daemon_prunes_old_readings_and_history_as_configured() {
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .config(r#"retention: (readings: "400d", metrics: { "gdp": "forever" }, every: "1s"),"#)
        .start();
    let store = d.path("data/rulewatch.db");
    // 2021 is years ago: pm10 of then goes, gdp of then stays, today's pm10 stays.
    let now = chrono_now_ms();
    let today = format!(
        "{{\"metric\":\"pm10\",\"value\":3,\"time\":\"{}\",\"labels\":{{}}}}\n",
        rfc3339(now)
    );
    let body = format!(
        "{}{}{today}",
        ndjson("pm10", "old", 0, 48),
        ndjson("gdp", "old", 0, 1)
    );
    assert_eq!(
        d.post("/api/v1/readings", "application/x-ndjson", body)
            .status,
        200
    );
    d.wait_for(30, "the old pm10 readings to go", |_| {
        (readings_in(&store) == 2).then_some(())
    });
    assert_eq!(
        count(&store, "SELECT count(*) FROM blocks b JOIN series s ON s.id = b.series_id WHERE s.metric = 'gdp'"),
        1
    );
    d.wait_for(30, "the pass to be logged", |d| {
        d.logs().contains("保留期限清理完成").then_some(())
    });
    assert_eq!(
        d.metric("rulewatch_retention_deleted_total{what=\"readings\"}"),
        Some(48.0)
    );
    assert!(d.metric("rulewatch_store_bytes").unwrap() > 0.0);
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn backup_while_the_daemon_takes_readings_is_a_consistent_store() {
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .start();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let copies = std::thread::scope(|s| {
        // Batches of 100 readings, one after the other, during the backups.
        let writer = s.spawn(|| {
            let mut k = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = d.post(
                    "/api/v1/readings",
                    "application/x-ndjson",
                    ndjson("pm25", &format!("w{k}"), 0, 100),
                );
                assert_eq!(r.status, 200, "{}", head(&r.text));
                k += 1;
            }
            k
        });
        let mut copies = Vec::new();
        for i in 0..4 {
            std::thread::sleep(std::time::Duration::from_millis(150));
            let file = format!("backup-{i}.db");
            let out = rulewatch(&d, &["backup", "--config", "rulewatch.ron", &file]);
            let said = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{said}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(said.starts_with("已备份"), "{said}");
            copies.push(d.path(&file));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let batches = writer.join().unwrap();
        assert!(batches > 0);
        copies
    });
    let mut last = 0;
    for copy in &copies {
        // A whole store on its own: checks out, current schema, whole batches only.
        assert_eq!(count(copy, "PRAGMA user_version"), 3);
        let conn = Connection::open(copy).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let n = readings_in(copy);
        assert_eq!(n % 100, 0, "{n}");
        assert!(n >= last);
        last = n;
    }
    assert!(last > 0);
    // The copy is what `rulewatch` reads as its store: eval against it.
    let cfg = write_config(&d.path("restored"), &copies[3]);
    std::fs::write(
        d.path("restored/rules/pm25.rhai"),
        pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .args(["eval", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Backing up onto the store itself is refused.
    let out = rulewatch(
        &d,
        &["backup", "--config", "rulewatch.ron", "data/rulewatch.db"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("不能是存储库本身"));
}

#[test]
fn rulewatch_ingest_at_a_full_store_stores_nothing_of_the_file_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let config = write_config(dir.path(), &store);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen(
            "(timezone",
            "(retention: (max_store_bytes: 1048576), timezone",
            1,
        ),
    )
    .unwrap();
    // 40 series × 3,000 hours: about 2 MiB of readings, twice the cap.
    let body: String = (0..40)
        .map(|s| ndjson("pm25", &format!("s{s}"), 0, 3000))
        .collect();
    std::fs::write(dir.path().join("big.ndjson"), body).unwrap();
    std::fs::write(dir.path().join("small.ndjson"), ndjson("pm25", "x", 0, 10)).unwrap();
    let ingest = |file: &str| {
        Command::new(env!("CARGO_BIN_EXE_rulewatch"))
            .current_dir(dir.path())
            .args(["ingest", "--config"])
            .arg(&config)
            .arg(file)
            .output()
            .unwrap()
    };
    let out = ingest("big.ndjson");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("big.ndjson: 存储空间已满，本文件的读数一条也未保存"),
        "{err}"
    );
    assert!(err.contains("nothing from this file stored"), "{err}");
    assert_eq!(readings_in(&store), 0);
    // A file that fits still goes in.
    let out = ingest("small.ndjson");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(readings_in(&store), 10);
}
