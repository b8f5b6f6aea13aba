//! The sender loop on the real clock: woken after queuing, stops on shutdown.

use std::time::{Duration, Instant};

use rulewatch::notify::mail::FileMailer;
use rulewatch::notify::Mailer;

use super::support::*;

#[tokio::test]
async fn the_worker_sends_when_woken_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("outbox");
    let (mut store, sender) = open(dir.path(), Mailer::File(FileMailer::new(&eml).unwrap()));
    let wake = sender.waker();
    let stats = sender.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(sender.run(async {
        let _ = stopped.await;
    }));

    let r = rule(
        "unemployment-rate",
        0,
        0,
        &["renshe@example.cn", "zf@example.cn"],
    );
    let rec = store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap();
    assert_eq!(rec.queued.len(), 2);
    wake.notify_one();

    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.sent.load(std::sync::atomic::Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "the worker did not send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read_dir(&eml).unwrap().count(), 2);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("the worker stops on shutdown")
        .unwrap();
}
