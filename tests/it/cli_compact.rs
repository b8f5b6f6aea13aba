//! `rulewatch compact`: refused while the daemon holds the store, shrinks a
//! store with free pages once it is stopped (nothing lost), and turns a store
//! from before schema 2 incremental. The real binary, real SQLite files.

use crate::daemon_support;

use std::path::Path;
use std::process::{Command, Output};

use daemon_support::daemon;
use rusqlite::Connection;

fn query(store: &Path, sql: &str) -> i64 {
    let conn = Connection::open(store).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Readings in day blocks, and staged by HTTP ingest (schema 3 on).
fn readings_in(store: &Path) -> i64 {
    let staged = query(
        store,
        "SELECT count(*) FROM sqlite_master WHERE name = 'staged'",
    ) > 0;
    query(store, "SELECT coalesce(sum(count), 0) FROM blocks")
        + if staged {
            query(store, "SELECT coalesce(sum(count), 0) FROM staged")
        } else {
            0
        }
}

fn compact(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .current_dir(dir)
        .args(["compact", "--config", "rulewatch.ron"])
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// NDJSON: `per` hourly readings of each of `series` series.
fn ndjson(series: usize, per: usize) -> String {
    let start = 1_609_430_400_000i64; // 2021-01-01T00:00:00+08:00
    let mut out = String::new();
    for s in 0..series {
        for i in 0..per {
            let t = chrono::DateTime::from_timestamp_millis(start + i as i64 * 3_600_000)
                .unwrap()
                .to_rfc3339();
            out.push_str(&format!(
                "{{\"metric\":\"aqi\",\"value\":{i}.5,\"time\":\"{t}\",\"labels\":{{\"station\":\"s{s}\"}}}}\n"
            ));
        }
    }
    out
}

#[test]
fn refused_while_the_daemon_runs_then_shrinks_the_stopped_store_losing_nothing() {
    let mut d = daemon().start();
    let r = d.post("/api/v1/readings", "application/x-ndjson", ndjson(400, 200));
    assert_eq!(r.status, 200, "{}", r.text);

    // While the daemon runs: refused, naming it.
    let out = compact(d.dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("rulewatch run 正在运行，不能压缩存储库")
            && err.contains(&format!("pid {}", d.pid()))
            && err.contains("systemctl stop rulewatch"),
        "{err}"
    );

    d.signal("TERM");
    assert_eq!(d.wait_exit(20).code(), Some(0));
    let store = d.path("data/rulewatch.db");
    // Half the readings gone (as retention would delete them): free pages.
    {
        let conn = Connection::open(&store).unwrap();
        conn.execute("DELETE FROM blocks WHERE series_id % 2 = 0", [])
            .unwrap();
    }
    let kept = readings_in(&store);
    assert!(kept > 0 && kept < 80_000, "{kept}");
    assert!(query(&store, "PRAGMA freelist_count") > 0);
    let before = std::fs::metadata(&store).unwrap().len();

    let out = compact(d.dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("已压缩"),
        "{}",
        text(&out.stdout)
    );
    let after = std::fs::metadata(&store).unwrap().len();
    assert!(after < before, "{before} → {after}");
    assert_eq!(query(&store, "PRAGMA freelist_count"), 0);
    assert_eq!(readings_in(&store), kept, "nothing lost");
    let check: String = Connection::open(&store)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_store_from_before_schema_2_becomes_incremental() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let store = dir.path().join("data/rulewatch.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store/v1.db"),
        &store,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rulewatch.ron"),
        r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "data/rulewatch.db",
    mail: (from: "alerts@example.cn", transport: File(dir: "outbox")),
)
"#,
    )
    .unwrap();
    assert_eq!(query(&store, "PRAGMA auto_vacuum"), 0, "the fixture: none");
    let readings = readings_in(&store);
    assert!(readings > 0);

    let out = compact(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(query(&store, "PRAGMA auto_vacuum"), 2, "incremental");
    assert_eq!(query(&store, "PRAGMA user_version"), 3, "migrated");
    assert_eq!(readings_in(&store), readings);
}
