//! Retention: every `retention.every` the daemon deletes what the config's
//! `retention` no longer keeps (readings per metric, alert history, sent
//! mail) and gives freed space back to the disk.
//!
//! Why a task of its own, in small steps: a store runs for years, and its
//! first pass after retention is switched on may delete millions of rows.
//! Each step is one short transaction (a few hundred rows), with a pause
//! after it, on the blocking pool: ingest waits at most one step for the
//! write lock, and evaluation, which reads the memory copy, not at all.
//! What is never deleted: open alerts (`alert_state`), their history since
//! they became active, and unsent mail.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::state::Daemon;
use crate::config::Retention;
use crate::readings::store::Store;
use crate::time::Millis;

/// Day blocks per readings step: an hourly series' block is ~400 bytes, a
/// minute series' ~23 KiB, so a step writes at most a few MiB.
const STEP_BLOCKS: usize = 200;
/// History rows per step (a row is a few hundred bytes).
const STEP_ROWS: usize = 1000;
/// Sent mails per step (a mail with charts is tens of KiB).
const STEP_MAILS: usize = 100;
/// Pages given back to the disk per step (4 MiB).
const STEP_PAGES: u64 = 1024;
/// Pause after each step: the writers waiting for the lock go first.
const PAUSE: Duration = Duration::from_millis(20);
/// The first pass waits this long after start (or `every`, if shorter), so
/// start-up and the first evaluations are not slowed by it.
const FIRST_PASS: Duration = Duration::from_secs(60);

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub readings: u64,
    pub history: usize,
    pub sent_mail: usize,
    /// Pages given back to the disk.
    pub pages: u64,
}

/// What retention deleted since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct RetentionStats {
    readings: AtomicU64,
    history: AtomicU64,
    sent_mail: AtomicU64,
}

/// Starts the pruning task and adds the store's size and what retention
/// deleted to `/metrics`.
pub fn start(daemon: &Arc<Daemon>) {
    let stats = Arc::new(RetentionStats::default());
    let (s, path, cap) = (
        stats.clone(),
        daemon.store.path().to_path_buf(),
        daemon.config().retention.max_store_bytes,
    );
    daemon
        .metrics
        .add_extra(Box::new(move |out| render_metrics(out, &path, cap, &s)));
    tokio::spawn(run(daemon.clone(), stats));
}

fn render_metrics(out: &mut String, store: &std::path::Path, cap: Option<u64>, s: &RetentionStats) {
    let size = |suffix: &str| {
        let mut p = store.as_os_str().to_owned();
        p.push(suffix);
        std::fs::metadata(p).map_or(0, |m| m.len())
    };
    let _ = writeln!(
        out,
        "# HELP rulewatch_store_bytes Size of the store file and its write-ahead log."
    );
    let _ = writeln!(out, "# TYPE rulewatch_store_bytes gauge");
    let _ = writeln!(out, "rulewatch_store_bytes {}", size("") + size("-wal"));
    if let Some(cap) = cap {
        let _ = writeln!(
            out,
            "# HELP rulewatch_store_max_bytes The store's size cap (retention.max_store_bytes)."
        );
        let _ = writeln!(out, "# TYPE rulewatch_store_max_bytes gauge");
        let _ = writeln!(out, "rulewatch_store_max_bytes {cap}");
    }
    let _ = writeln!(
        out,
        "# HELP rulewatch_retention_deleted_total Rows retention deleted since start."
    );
    let _ = writeln!(out, "# TYPE rulewatch_retention_deleted_total counter");
    for (what, n) in [
        ("readings", &s.readings),
        ("history", &s.history),
        ("sent_mail", &s.sent_mail),
    ] {
        let _ = writeln!(
            out,
            "rulewatch_retention_deleted_total{{what=\"{what}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
}

/// Prunes every `retention.every` until shutdown (nothing to do when the
/// config keeps everything for good and the store has nothing to give back).
async fn run(daemon: Arc<Daemon>, stats: Arc<RetentionStats>) {
    let every = |d: &Daemon| Duration::from_millis(d.config().retention.every.max(1) as u64);
    let mut wait = FIRST_PASS.min(every(&daemon));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = daemon.shutdown_signal() => return,
        }
        // Read at each pass: a config reload (SIGHUP) applies from the next one.
        let retention = daemon.config().retention.clone();
        wait = every(&daemon);
        let d = daemon.clone();
        let done = tokio::task::spawn_blocking(move || {
            let now = chrono::Utc::now().timestamp_millis();
            let conn = crate::db::open(d.store.path(), crate::db::Durability::Normal)
                .map_err(|e| e.to_string())?;
            prune_pass(&d.store, &conn, &retention, now, PAUSE, &|| {
                d.is_shutting_down()
            })
        })
        .await;
        match done {
            Ok(Ok(s)) if s == PassSummary::default() => {
                tracing::debug!("retention: nothing to delete")
            }
            Ok(Ok(s)) => {
                stats.readings.fetch_add(s.readings, Ordering::Relaxed);
                stats.history.fetch_add(s.history as u64, Ordering::Relaxed);
                stats
                    .sent_mail
                    .fetch_add(s.sent_mail as u64, Ordering::Relaxed);
                tracing::info!(
                readings = s.readings, history = s.history, sent_mail = s.sent_mail, pages_freed = s.pages,
                "保留期限清理完成：删除读数 {} 条、历史记录 {} 条、已发邮件 {} 封 / retention pass done",
                s.readings, s.history, s.sent_mail
                )
            }
            Ok(Err(e)) => tracing::error!(
                error = %e,
                "保留期限清理未完成，下次再试；存储库 {} / retention pass failed, tried again at the next pass",
                daemon.store.path().display()
            ),
            Err(e) => tracing::error!(error = %e, "retention pass crashed"),
        }
    }
}

/// One pass at `now`: readings, history, sent mail, then freed pages back to
/// the disk, each in steps with `pause` after each; stops early when `stop`
/// says so (shutdown). `conn` is a connection to the store for the alert and
/// outbox tables. Blocking.
pub fn prune_pass(
    store: &Store,
    conn: &Connection,
    retention: &Retention,
    now: Millis,
    pause: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<PassSummary, String> {
    let mut sum = PassSummary::default();
    let metrics = store.stored_metrics().map_err(|e| e.to_string())?;
    for metric in metrics {
        let Some(keep) = retention.readings_for(&metric) else {
            continue;
        };
        loop {
            if stop() {
                return Ok(sum);
            }
            let step = store
                .prune_step(&metric, now.saturating_sub(keep), STEP_BLOCKS)
                .map_err(|e| e.to_string())?;
            sum.readings += step.readings;
            if step.blocks == 0 {
                break;
            }
            std::thread::sleep(pause);
        }
    }
    if let Some(keep) = retention.history {
        loop {
            if stop() {
                return Ok(sum);
            }
            let n = crate::alerts::history::prune_step(conn, now.saturating_sub(keep), STEP_ROWS)
                .map_err(|e| format!("alert history: {e}"))?;
            sum.history += n;
            if n == 0 {
                break;
            }
            std::thread::sleep(pause);
        }
    }
    if let Some(keep) = retention.sent_mail {
        loop {
            if stop() {
                return Ok(sum);
            }
            let n = crate::notify::outbox::prune_sent(conn, now.saturating_sub(keep), STEP_MAILS)
                .map_err(|e| format!("outbox: {e}"))?;
            sum.sent_mail += n;
            if n == 0 {
                break;
            }
            std::thread::sleep(pause);
        }
    }
    loop {
        if stop() {
            return Ok(sum);
        }
        let n = store.reclaim(STEP_PAGES).map_err(|e| e.to_string())?;
        sum.pages += n;
        if n == 0 {
            break;
        }
        std::thread::sleep(pause);
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::{Batch, Labels};
    use crate::time::{DAY, HOUR};

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_pass_deletes_what_retention_no_longer_keeps_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Store::open(&path).unwrap();
        let now = 400 * DAY;
        // Hourly pm25 over 400 days for 20 counties, and a yearly figure.
        let mut b = Batch::new();
        for c in 0..20 {
            let labels: Labels = [("county".to_string(), format!("c{c}"))].into();
            for h in 0..(400 * 24) {
                b.push("pm25", labels.clone(), h * HOUR, 50.0);
            }
        }
        b.push("gdp", Labels::new(), DAY, 98.0);
        store.write(&b).unwrap();
        let conn = crate::db::open(&path, crate::db::Durability::Normal).unwrap();
        let old = now - 100 * DAY;
        let recent = now - DAY;
        conn.execute_batch(&format!(
            "INSERT INTO alert_state VALUES ('r', 'alert', '{{\"county\":\"c1\"}}', 'firing', {since}, {since}, NULL, {now}, 'm', '{{}}');
             INSERT INTO alert_history (time, rule, subject, event, message, content_hash) VALUES
               ({old}, 'r', '{{\"county\":\"c0\"}}', 'transition', 'closed long ago', ''),
               ({before_open}, 'r', '{{\"county\":\"c1\"}}', 'transition', 'before the open alert', ''),
               ({since}, 'r', '{{\"county\":\"c1\"}}', 'transition', 'the open alert began', ''),
               ({recent}, 'r', '{{\"county\":\"c0\"}}', 'transition', 'recent', '');
             INSERT INTO outbox (message_id, recipient, kind, subject, text_body, html_body, items, created, status, next_attempt, sent_at) VALUES
               ('<old-sent>', 'a@b.cn', 'alert', 's', 't', 'h', '[]', {old}, 'sent', {old}, {old}),
               ('<old-queued>', 'a@b.cn', 'alert', 's', 't', 'h', '[]', {old}, 'queued', {old}, NULL),
               ('<old-failed>', 'a@b.cn', 'alert', 's', 't', 'h', '[]', {old}, 'failed', {old}, NULL),
               ('<recent-sent>', 'a@b.cn', 'alert', 's', 't', 'h', '[]', {recent}, 'sent', {recent}, {recent});
             INSERT INTO outbox_inline VALUES ('<old-sent>', 'c1', 'image/png', zeroblob(100));
             INSERT INTO outbox_charts VALUES ('<old-sent>', 'c1', '{{}}');",
            since = now - 60 * DAY,
            before_open = now - 70 * DAY,
        ))
        .unwrap();
        let retention = Retention {
            readings: Some(30 * DAY),
            metrics: [("gdp".to_string(), None)].into(),
            history: Some(30 * DAY),
            sent_mail: Some(31 * DAY),
            max_store_bytes: None,
            every: HOUR,
        };
        // Readings keep arriving during the pass.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (summary, written) = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let mut b = Batch::new();
                    b.push(
                        "pm25",
                        [("county".to_string(), "new".to_string())].into(),
                        now + n * HOUR,
                        1.0,
                    );
                    store.write(&b).unwrap();
                    n += 1;
                }
                n
            });
            let summary = prune_pass(
                &store,
                &conn,
                &retention,
                now,
                Duration::from_millis(1),
                &|| false,
            )
            .unwrap();
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            (summary, writer.join().unwrap())
        });
        // 370 whole days of 20 hourly series; the day holding the cut is kept.
        assert_eq!(summary.readings, 20 * 370 * 24);
        assert_eq!(
            store.count_readings().unwrap(),
            20 * 30 * 24 + 1 + written as u64
        );
        assert_eq!(count(&conn, "SELECT min(start) FROM blocks b JOIN series s ON s.id = b.series_id WHERE s.metric = 'pm25' AND s.labels != '{\"county\":\"new\"}'"), 370 * DAY);
        assert_eq!(count(&conn, "SELECT count(*) FROM blocks b JOIN series s ON s.id = b.series_id WHERE s.metric = 'gdp'"), 1, "kept for good");
        // History: the open alert's rows since it began, and recent ones.
        let kept: Vec<String> = conn
            .prepare("SELECT message FROM alert_history ORDER BY time")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(kept, ["the open alert began", "recent"]);
        assert_eq!(summary.history, 2);
        assert_eq!(count(&conn, "SELECT count(*) FROM alert_state"), 1);
        // Outbox: only the old sent mail, with its images and charts.
        let left: Vec<String> = conn
            .prepare("SELECT message_id FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(left, ["<old-queued>", "<old-failed>", "<recent-sent>"]);
        assert_eq!(summary.sent_mail, 1);
        assert_eq!(
            count(&conn, "SELECT count(*) FROM outbox_inline")
                + count(&conn, "SELECT count(*) FROM outbox_charts"),
            0
        );
        // The space went back to the disk (a new store vacuums incrementally).
        assert!(summary.pages > 100, "{summary:?}");
        assert_eq!(count(&conn, "PRAGMA freelist_count"), 0);
        // Rules see what the file holds.
        let in_memory = store
            .with_series(
                "pm25",
                &[("county".to_string(), "c3".to_string())].into(),
                Millis::MIN,
                |it| {
                    it.map(|s| s.range(Millis::MIN, Millis::MAX).0.len())
                        .sum::<usize>()
                },
            )
            .unwrap();
        assert_eq!(in_memory, 30 * 24);
        // A second pass finds nothing more.
        let again = prune_pass(&store, &conn, &retention, now, Duration::ZERO, &|| false).unwrap();
        assert_eq!(again, PassSummary::default());
    }
}
