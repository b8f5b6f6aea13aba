//! Random kills under HTTP ingest: the real daemon (`rulewatch run`) takes
//! batches from one client while a rule reads the metric every second (so
//! both ways of storing a request are used: staged, for series the memory
//! copy holds, and straight into the day blocks, for series it does not
//! after a restart); it is SIGKILLed at random moments and restarted on the
//! same store, again and again. A batch whose answer did not arrive is sent
//! again to the next daemon, as a client would. Then:
//! - every reading that got a 200 is in the store with its value;
//! - no (series, time) is stored twice, and nothing is stored that was not sent;
//! - a batch sent again counts its readings as new or unchanged, never changed;
//! - the staged rows are all folded once another process opens the store.
//!
//! `RULEWATCH_INGEST_KILLS=50 cargo test --test it http_ingest_kills -- --nocapture`
//! for a longer run (8 kills by default).

use crate::common::{free_port, start_daemon, wait_port, Rng};

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SERIES: usize = 40;
const TIMES_PER_BATCH: usize = 5;

/// Batch `n`: every series at `TIMES_PER_BATCH` times of its own (so each
/// batch's (series, time) pairs are its alone), values telling the batch.
/// Even batches: every series, times of the last day (`recent`, a live
/// feed: staged once the daemon loads their series); odd batches: half the
/// series, hours of 2023 (a back-fill: staged only once the rule has loaded
/// the series, written straight into the blocks before).
fn batch(n: usize, recent: i64) -> Vec<(String, i64, f64)> {
    let (base, step, series): (i64, i64, Vec<usize>) = if n.is_multiple_of(2) {
        (recent, 1_000, (0..SERIES).collect())
    } else {
        (1_700_000_000_000, 3_600_000, (0..SERIES / 2).collect())
    };
    let mut out = Vec::new();
    for k in 0..TIMES_PER_BATCH {
        let t = base + ((n * TIMES_PER_BATCH + k) as i64) * step;
        for &s in &series {
            out.push((format!("c{s:03}"), t, (n * 1000 + s) as f64 + 0.25));
        }
    }
    out
}

fn body(readings: &[(String, i64, f64)]) -> String {
    readings
        .iter()
        .map(|(c, t, v)| {
            let time = chrono::DateTime::from_timestamp_millis(*t).unwrap().to_rfc3339();
            format!("{{\"metric\":\"pm25\",\"value\":{v},\"time\":\"{time}\",\"labels\":{{\"county\":\"{c}\"}}}}\n")
        })
        .collect()
}

#[test]
fn random_sigkills_under_http_ingest_lose_no_acknowledged_reading() {
    let kills: usize = std::env::var("RULEWATCH_INGEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    // A rule reading the metric every second: the daemon's memory copy
    // holds the series it loaded, so their batches are staged.
    std::fs::write(
        dir.path().join("rules/watch.rhai"),
        r#"const RULE = #{
    id: "watch",
    title: "PM2.5 watch",
    owner: "生态环境局",
    severity: "warning",
    schedule: "* * * * * *",
    notify: [],
};
let r = latest("pm25", #{});
"#,
    )
    .unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("rulewatch.ron"),
        format!(
            r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "data/rulewatch.db",
    listen: "127.0.0.1:{port}",
    mail: (from: "test <t@example.cn>", transport: File(dir: "outbox")),
    admin: [],
)
"#
        ),
    )
    .unwrap();

    // One client: batches in order; one whose answer did not come is sent
    // again (to the next daemon) before the next batch.
    // A day ago, to the second: even batches' times start here.
    let recent = (chrono::Utc::now().timestamp() - 86_400) * 1000;
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = {
        let (stop, pause, acked, sent) = (stop.clone(), pause.clone(), acked.clone(), sent.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .unwrap();
            let mut n = 0usize;
            let mut resent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                if pause.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let readings = batch(n, recent);
                sent.store(n + 1, Ordering::Relaxed);
                let answer = http
                    .post(format!("http://127.0.0.1:{port}/api/v1/readings"))
                    .header("content-type", "application/x-ndjson")
                    .body(body(&readings))
                    .send()
                    .and_then(|r| Ok((r.status(), r.json::<serde_json::Value>()?)));
                match answer {
                    Ok((status, json)) if status.is_success() => {
                        let count = |k: &str| json[k].as_u64().unwrap() as usize;
                        assert_eq!(count("accepted"), readings.len(), "{json}");
                        assert_eq!(count("changed"), 0, "batch {n}: {json}");
                        assert_eq!(count("new") + count("unchanged"), readings.len(), "{json}");
                        if count("unchanged") > 0 {
                            resent += 1;
                        }
                        acked.lock().unwrap().push(n);
                        n += 1;
                    }
                    Ok((status, json)) => panic!("batch {n}: {status} {json}"),
                    // The daemon is down (killed): the same batch again, soon.
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            resent
        })
    };

    let mut rng = Rng::from_clock("kill");
    for k in 0..kills {
        let mut daemon = start_daemon(dir.path(), &format!("run-{k}.log"));
        assert!(wait_port(port), "daemon {k} did not listen");
        // Kill at a random moment of its working life: 0.3 – 2.3 s in.
        // Staged readings are folded after 1 s without ingest: every third
        // run the client pauses for a while first, so that some kills land
        // during or after a fold.
        if k % 3 == 2 {
            std::thread::sleep(Duration::from_millis(300 + rng.below(500)));
            pause.store(true, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(900 + rng.below(600)));
            pause.store(false, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(300 + rng.below(2000)));
        daemon.kill().unwrap(); // SIGKILL
        daemon.wait().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let resent = client.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let sent = sent.load(Ordering::Relaxed);

    // A last run, stopped cleanly; then the store read from outside.
    let mut daemon = start_daemon(dir.path(), "final.log");
    assert!(wait_port(port));
    Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(daemon.wait().unwrap().success());

    // Restarts that found staged rows (a kill before their fold) and folded them.
    let replays = (0..kills)
        .map(|k| format!("run-{k}.log"))
        .chain(["final.log".to_string()])
        .filter(|log| {
            std::fs::read_to_string(dir.path().join(log))
                .unwrap_or_default()
                .contains("staged readings folded into day blocks")
        })
        .count();
    let path = dir.path().join("data/rulewatch.db");
    let stored = stored_readings(&path);
    let mut missing = Vec::new();
    for &n in &acked {
        for (county, t, v) in batch(n, recent) {
            match stored.get(&(county.clone(), t)) {
                Some(&got) if got == v => {}
                other => missing.push((n, county, t, other.copied())),
            }
        }
    }
    let may_hold: usize = (0..sent).map(|n| batch(n, recent).len()).sum();
    println!(
        "kills {kills}: batches acknowledged {}, sent {sent}, resent after a kill and found stored {resent}, readings stored {}, starts that folded staged rows {replays}",
        acked.len(),
        stored.len()
    );
    assert!(
        replays > 0,
        "no kill left staged rows: the test did not test staging"
    );
    assert!(acked.len() >= 5, "too few batches to count");
    assert!(
        missing.is_empty(),
        "acknowledged readings missing: {:?}",
        &missing[..missing.len().min(10)]
    );
    assert!(
        stored.len() <= may_hold,
        "{} stored, at most {may_hold} sent",
        stored.len()
    );
}

/// Every stored reading by (county, time), read the way another process
/// reads the store (opening it folds what is staged); panics on a time
/// stored twice.
fn stored_readings(path: &Path) -> HashMap<(String, i64), f64> {
    let store = rulewatch::readings::store::Store::open(path).unwrap();
    let total = store.count_readings().unwrap() as usize;
    drop(store);
    let conn = rusqlite::Connection::open(path).unwrap();
    let staged: i64 = conn
        .query_row("SELECT count(*) FROM staged", [], |r| r.get(0))
        .unwrap();
    assert_eq!(staged, 0, "opening the store folds what is staged");
    let mut stmt = conn
        .prepare("SELECT s.labels, b.data FROM blocks b JOIN series s ON s.id = b.series_id WHERE s.metric = 'pm25'")
        .unwrap();
    let mut out = HashMap::new();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .unwrap();
    for row in rows {
        let (labels, data) = row.unwrap();
        let labels: HashMap<String, String> = serde_json::from_str(&labels).unwrap();
        let county = labels["county"].clone();
        let mut last = i64::MIN;
        for c in data.chunks_exact(16) {
            let t = i64::from_le_bytes(c[..8].try_into().unwrap());
            let v = f64::from_le_bytes(c[8..].try_into().unwrap());
            assert!(t > last, "{county}: time {t} stored twice or out of order");
            last = t;
            assert!(out.insert((county.clone(), t), v).is_none());
        }
    }
    assert_eq!(out.len(), total, "count_readings agrees");
    out
}

/// Readings staged by the running daemon are seen by `rulewatch eval` run
/// beside it, and `rulewatch ingest` beside it writes over them (a later
/// write wins, as without staging); the daemon then sees the correction.
#[test]
fn staged_readings_are_seen_by_eval_and_ingest_beside_the_daemon() {
    use crate::daemon_support::{daemon, pm25_rule};
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", "0 0 9 1 1 *"))
        .start();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rulewatch"))
            .current_dir(d.dir.path())
            .args(args)
            .args(["--config", "rulewatch.ron"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let reading = |v: f64| {
        format!(
            r#"{{"metric":"pm25","value":{v},"time":"2021-03-01T10:00:00+08:00","labels":{{"county":"南宫"}}}}"#
        )
    };
    let r = d.post("/api/v1/readings", "application/x-ndjson", reading(120.0));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        d.metric("rulewatch_ingest_staged_readings_total"),
        Some(1.0)
    );
    // `rulewatch eval` (its own process) sees the staged reading.
    let found = cli(&["eval", "--at", "2021-03-01T12:00", "--format", "json"]);
    assert!(found.contains("pm25 120"), "{found}");
    // Staged again (the daemon's copy is current), then corrected by a file.
    let r = d.post("/api/v1/readings", "application/x-ndjson", reading(130.0));
    assert_eq!(r.json()["changed"], 1, "{}", r.text);
    std::fs::write(d.path("fix.ndjson"), reading(50.0) + "\n").unwrap();
    let said = cli(&["ingest", "fix.ndjson"]);
    assert!(said.contains("stored 1 readings"), "{said}");
    assert_eq!(
        d.messages("pm25-high"),
        Vec::<String>::new(),
        "the file's 50 wins"
    );
    let found = cli(&["eval", "--at", "2021-03-01T12:00", "--format", "json"]);
    assert_eq!(found.trim(), "[]");
    // And the daemon counts the next request over the corrected value.
    let r = d.post("/api/v1/readings", "application/x-ndjson", reading(50.0));
    assert_eq!(r.json()["unchanged"], 1, "{}", r.text);
}
