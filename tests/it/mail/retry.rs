//! A mail server that is down, refuses, or stalls delays mail and loses none.

use std::time::Duration;

use rulewatch::notify::{outbox, RetryPolicy};
use rulewatch::time::{HOUR, MINUTE, SECOND};

use super::support::*;

#[tokio::test]
async fn server_down_keeps_mail_queued_and_retries_then_delivers_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nobody listens yet: connection refused
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(5)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let id = store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap()
        .queued[0]
        .clone();

    let round = sender.run_once(t0()).await.unwrap();
    assert_eq!((round.sent, round.retried, round.failed), (0, 1, 0));
    let row = outbox::get(store.connection(), &id).unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 1));
    assert_eq!(
        row.next_attempt,
        t0() + 30 * SECOND,
        "first retry after 30 s"
    );
    assert!(row.last_error.is_some());

    // Not due yet: not tried.
    assert_eq!(
        sender.run_once(t0() + 10 * SECOND).await.unwrap(),
        Default::default()
    );
    // Second failure doubles the delay.
    sender.run_once(t0() + 30 * SECOND).await.unwrap();
    let row = outbox::get(store.connection(), &id).unwrap().unwrap();
    assert_eq!((row.attempts, row.next_attempt), (2, t0() + 90 * SECOND));

    // The server comes up: delivered once, and only once.
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    assert_eq!(
        sender.run_once(t0() + 60 * SECOND).await.unwrap().sent,
        0,
        "still waiting for its time"
    );
    assert_eq!(sender.run_once(t0() + 90 * SECOND).await.unwrap().sent, 1);
    assert_eq!(sender.run_once(t0() + HOUR).await.unwrap().sent, 0);
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, id);

    // It goes down again while the alert resolves: the resolved mail waits, then goes once.
    let mut server = server;
    server.down();
    let later = t0() + 2 * HOUR;
    assert_eq!(
        store
            .record(later, &[(&r, &[])], &settings())
            .unwrap()
            .queued
            .len(),
        1
    );
    assert_eq!(sender.run_once(later).await.unwrap().retried, 1);
    server.up();
    assert_eq!(sender.run_once(later + 30 * SECOND).await.unwrap().sent, 1);
    assert_eq!(sender.run_once(later + HOUR).await.unwrap().sent, 0);
    let got = server.messages();
    assert_eq!(got.len(), 2);
    assert!(got[1].subject.starts_with("[已恢复] "), "{got:#?}");

    let counts = sender.counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (0, 2, 0));
    let stats = sender.stats();
    assert_eq!(stats.sent.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(
        stats
            .failed_attempts
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

#[tokio::test]
async fn admin_hears_once_after_repeated_failure_and_everything_arrives_later() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(5)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap();

    // Step the clock through ten failed attempts.
    let mut now = t0();
    for _ in 0..10 {
        sender.run_once(now).await.unwrap();
        now = sender.next_due().await.unwrap().unwrap();
    }
    let queued = outbox::list(store.connection(), Some("queued"), 100).unwrap();
    let notes: Vec<_> = queued
        .iter()
        .filter(|m| m.recipient == "ops@example.cn")
        .collect();
    assert_eq!(notes.len(), 1, "admin is told once: {queued:#?}");
    assert!(
        notes[0].subject.contains("投递未成功"),
        "{}",
        notes[0].subject
    );
    assert!(notes[0].text.contains("renshe@example.cn"));
    let alert = queued
        .iter()
        .find(|m| m.recipient == "renshe@example.cn")
        .unwrap();
    assert!(alert.attempts >= 5);
    assert!(alert.next_attempt - now <= HOUR, "backoff capped at 1 h");

    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    let later = now + 2 * HOUR;
    let round = sender.run_once(later).await.unwrap();
    assert_eq!(round.sent, 2, "the alert and the note to admin");
    let mut to: Vec<String> = server.messages().into_iter().map(|m| m.to).collect();
    to.sort();
    assert_eq!(to, ["ops@example.cn", "renshe@example.cn"]);
    assert_eq!(sender.run_once(later + HOUR).await.unwrap().sent, 0);
}

#[tokio::test]
async fn permanent_refusal_stops_retrying_and_tells_admin() {
    let fake = FakeSmtp::start(FakeReply::Rcpt("550 5.1.1 no such mailbox")).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, sender) = open(dir.path(), smtp(fake.port, Duration::from_secs(5)));
    let r = rule("unemployment-rate", 0, 0, &["nobody@example.cn"]);
    let id = store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap()
        .queued[0]
        .clone();

    let round = sender.run_once(t0()).await.unwrap();
    assert_eq!((round.sent, round.retried, round.failed), (0, 0, 1));
    let row = outbox::get(store.connection(), &id).unwrap().unwrap();
    assert_eq!(row.status, "failed");
    assert!(
        row.last_error.as_deref().unwrap().contains("550"),
        "{row:?}"
    );
    // Nothing more is tried for it; the note to admin is queued (and refused by
    // this server too, which is only logged: no report about a report).
    let queued = outbox::list(store.connection(), Some("queued"), 10).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipient, "ops@example.cn");
    assert!(
        queued[0].subject.contains("已放弃投递"),
        "{}",
        queued[0].subject
    );
    sender.run_once(t0() + MINUTE).await.unwrap();
    assert_eq!(
        outbox::list(store.connection(), Some("queued"), 10)
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        outbox::list(store.connection(), Some("failed"), 10)
            .unwrap()
            .len(),
        2
    );
    let h = store
        .history(&rulewatch::alerts::HistoryQuery {
            rule: Some(r.id.clone()),
            ..Default::default()
        })
        .unwrap();
    assert!(h
        .iter()
        .any(|e| e.event == rulewatch::alerts::HistoryEvent::Failed));
}

#[tokio::test]
async fn a_4xx_reply_is_retried() {
    let fake = FakeSmtp::start(FakeReply::Rcpt("451 4.7.1 greylisted, try again later")).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, sender) = open(dir.path(), smtp(fake.port, Duration::from_secs(5)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let id = store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap()
        .queued[0]
        .clone();
    let round = sender.run_once(t0()).await.unwrap();
    assert_eq!(round.retried, 1);
    let row = outbox::get(store.connection(), &id).unwrap().unwrap();
    assert_eq!(row.status, "queued");
    assert!(
        row.last_error.as_deref().unwrap().contains("451"),
        "{row:?}"
    );
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_times_out() {
    let fake = FakeSmtp::start(FakeReply::Stall).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, sender) = open(dir.path(), smtp(fake.port, Duration::from_millis(500)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let id = store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap()
        .queued[0]
        .clone();
    let started = std::time::Instant::now();
    let round = sender.run_once(t0()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(round.retried, 1);
    let row = outbox::get(store.connection(), &id).unwrap().unwrap();
    assert_eq!(row.status, "queued");
}

#[test]
fn the_retry_policy_is_30s_doubling_to_an_hour() {
    let p = RetryPolicy::default();
    assert_eq!(
        (p.delay(1), p.delay(2), p.delay(8), p.delay(50)),
        (30 * SECOND, MINUTE, HOUR, HOUR)
    );
    assert_eq!(p.report_after, 5);
}
