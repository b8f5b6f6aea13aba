//! At a full store (SQLite's own size limit, as `retention.max_store_bytes`
//! sets it): an evaluation's alert changes are not recorded, half or whole,
//! until there is room again, while mail already queued still goes out,
//! once. The size cap is set for this test's store file only.

use crate::mail::support;

use rulewatch::notify::mail::FileMailer;
use rulewatch::notify::Mailer;
use support::*;

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn a_full_store_records_nothing_half_sends_what_is_queued_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    rulewatch::db::set_size_limit(&dir.path().join("rulewatch.db"), Some(1 << 20));
    let eml = dir.path().join("outbox");
    let (mut store, sender) = open(dir.path(), Mailer::File(FileMailer::new(&eml).unwrap()));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    // A breach recorded and its mail queued while there is room. Its
    // message is long: each history row of the mail takes pages of its own.
    let mut long = breach(&r.id, "南宫", 5.1);
    long.message = format!("南宫城镇登记失业率 5.1% 超过 4.5%。{}", "说明".repeat(3000));
    let rec = store
        .record(t0(), &[(&r, std::slice::from_ref(&long))], &settings())
        .unwrap();
    assert_eq!(rec.queued.len(), 1);

    // Something else fills the store to its cap, to the last byte it takes.
    let db = dir.path().join("rulewatch.db");
    let filler = rulewatch::db::open(&db, rulewatch::db::Durability::Normal).unwrap();
    filler
        .execute_batch("CREATE TABLE filler (b BLOB)")
        .unwrap();
    let mut size = 64 * 1024;
    while size > 0 {
        match filler.execute("INSERT INTO filler VALUES (zeroblob(?1))", [size]) {
            Ok(_) => {}
            Err(e) if rulewatch::db::is_disk_full(&e) => size /= 2,
            Err(e) => panic!("{e}"),
        }
    }

    // A new breach cannot be recorded: nothing of it is (state, history, mail).
    let history_before = count(&filler, "SELECT count(*) FROM alert_history");
    let err = store
        .record(
            t0() + 60_000,
            &[(&r, &[long.clone(), breach(&r.id, "清河", 6.0)])],
            &settings(),
        )
        .unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert_eq!(store.alerts(None).unwrap().len(), 1);
    assert_eq!(
        count(&filler, "SELECT count(*) FROM alert_history"),
        history_before
    );
    assert_eq!(count(&filler, "SELECT count(*) FROM outbox"), 1);

    // The mail queued before still goes out, once. Its `sent` history row
    // finds no room, nor perhaps its mark: then the sender holds it as
    // delivered and marks it once there is room, never sending it again.
    let now = t0() + 120_000;
    let status = || count(&filler, "SELECT count(*) FROM outbox WHERE status = 'sent'");
    match sender.run_once(now).await {
        Ok(round) => {
            assert_eq!(round.sent, 1);
            assert_eq!(status(), 1, "marked without its history rows");
        }
        Err(e) => assert!(e.is_disk_full(), "{e}"),
    }
    assert_eq!(
        count(
            &filler,
            "SELECT count(*) FROM alert_history WHERE event = 'sent'"
        ),
        0
    );
    for k in 1..4 {
        match sender.run_once(now + k).await {
            Ok(round) => assert_eq!(round.sent, 0),
            Err(e) => assert!(e.is_disk_full(), "{e}"),
        }
    }
    assert_eq!(std::fs::read_dir(&eml).unwrap().count(), 1, "sent once");

    // Space returns: the next evaluation records the change and mails it.
    filler.execute_batch("DELETE FROM filler").unwrap();
    assert_eq!(sender.run_once(t0() + 150_000).await.unwrap().sent, 0);
    assert_eq!(status(), 1, "marked now, not sent again");
    let rec = store
        .record(
            t0() + 180_000,
            &[(&r, &[long.clone(), breach(&r.id, "清河", 6.0)])],
            &settings(),
        )
        .unwrap();
    assert_eq!(rec.transitions.len(), 1, "清河 fires now");
    assert_eq!(rec.queued.len(), 1);
    assert_eq!(sender.run_once(t0() + 240_000).await.unwrap().sent, 1);
    assert_eq!(std::fs::read_dir(&eml).unwrap().count(), 2);
}
