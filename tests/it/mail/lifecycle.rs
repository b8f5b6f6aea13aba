//! The alert lifecycle as recipients see it, on a fake clock, through SMTP.

use std::time::Duration;

use rulewatch::alerts::{AlertStore, HistoryEvent, HistoryQuery, State};
use rulewatch::time::{HOUR, MINUTE};

use super::support::*;

#[tokio::test]
async fn fires_once_stays_quiet_then_one_resolved_mail() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let f = [breach(&r.id, "南宫", 5.1)];

    let first = store.record(t0(), &[(&r, &f)], &settings()).unwrap();
    assert_eq!(first.queued.len(), 1);
    sender.run_once(t0()).await.unwrap();
    assert_eq!(server.messages().len(), 1);

    // Same findings again: nothing new queued, nothing sent.
    for step in 1..=3 {
        let again = store
            .record(t0() + step * MINUTE, &[(&r, &f)], &settings())
            .unwrap();
        assert!(again.queued.is_empty(), "step {step}: {again:?}");
        assert_eq!(sender.run_once(t0() + step * MINUTE).await.unwrap().sent, 0);
    }
    assert_eq!(server.messages().len(), 1);

    // Recovery: one resolved mail.
    let resolved = store
        .record(t0() + HOUR, &[(&r, &[])], &settings())
        .unwrap();
    assert_eq!(resolved.queued.len(), 1);
    sender.run_once(t0() + HOUR).await.unwrap();
    let got = server.messages();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .any(|m| m.subject == "[已恢复] 城镇登记失业率 ≤ 4.5%（南宫）"),
        "{got:#?}"
    );
    // And quiet after that.
    assert!(store
        .record(t0() + 2 * HOUR, &[(&r, &[])], &settings())
        .unwrap()
        .queued
        .is_empty());
    assert!(store.alerts(None).unwrap().is_empty());
}

#[tokio::test]
async fn a_breach_shorter_than_for_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));
    let r = rule("unemployment-rate", HOUR, 0, &["renshe@example.cn"]);
    let f = [breach(&r.id, "南宫", 5.1)];
    for (at, findings) in [(0, &f[..]), (30 * MINUTE, &f[..]), (59 * MINUTE, &[][..])] {
        let rec = store
            .record(t0() + at, &[(&r, findings)], &settings())
            .unwrap();
        assert!(rec.queued.is_empty());
        sender.run_once(t0() + at).await.unwrap();
    }
    assert!(server.messages().is_empty());
    let history = store.history(&HistoryQuery::default()).unwrap();
    let states: Vec<_> = history.iter().map(|h| (h.from, h.to)).collect();
    assert_eq!(
        states,
        [
            (Some(State::Inactive), Some(State::Pending)),
            (Some(State::Pending), Some(State::Inactive))
        ],
        "the pending episode is in the history, without mail"
    );

    // Held for `for`: fires.
    store
        .record(t0() + 2 * HOUR, &[(&r, &f)], &settings())
        .unwrap();
    store
        .record(t0() + 3 * HOUR, &[(&r, &f)], &settings())
        .unwrap();
    sender.run_once(t0() + 3 * HOUR).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn reminds_after_repeat_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));
    let r = rule("unemployment-rate", 0, 24 * HOUR, &["renshe@example.cn"]);
    let f = [breach(&r.id, "南宫", 5.1)];
    let mut sent = Vec::new();
    for at in [
        0,
        HOUR,
        23 * HOUR,
        24 * HOUR - 1,
        24 * HOUR,
        25 * HOUR,
        48 * HOUR,
    ] {
        store.record(t0() + at, &[(&r, &f)], &settings()).unwrap();
        sender.run_once(t0() + at).await.unwrap();
        sent.push(server.messages().len());
    }
    assert_eq!(sent, [1, 1, 1, 1, 2, 2, 3]);
    let got = server.messages();
    assert_eq!(
        got.iter()
            .filter(|m| m.subject.starts_with("[严重][提醒] "))
            .count(),
        2,
        "{got:#?}"
    );
}

#[tokio::test]
async fn one_mail_per_recipient_per_evaluation_across_rules() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));
    let a = rule(
        "unemployment-rate",
        0,
        0,
        &["renshe@example.cn", "zf@example.cn"],
    );
    let mut b = rule("pm25", 0, 0, &["huanbao@example.cn", "zf@example.cn"]);
    b.title = "PM2.5 年均浓度 ≤ 35".into();
    b.severity = rulewatch::alerts::Severity::Warning;
    let fa = [breach(&a.id, "南宫", 5.1)];
    let fb = [breach(&b.id, "南宫", 41.0)];
    let rec = store
        .record(t0(), &[(&a, &fa), (&b, &fb)], &settings())
        .unwrap();
    assert_eq!(rec.queued.len(), 3);
    sender.run_once(t0()).await.unwrap();
    let mut got: Vec<(String, String)> = server
        .messages()
        .into_iter()
        .map(|m| (m.to, m.subject))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "huanbao@example.cn".to_string(),
                "[警告] PM2.5 年均浓度 ≤ 35（南宫）".to_string()
            ),
            (
                "renshe@example.cn".to_string(),
                "[严重] 城镇登记失业率 ≤ 4.5%（南宫）".to_string()
            ),
            (
                "zf@example.cn".to_string(),
                "[严重] 城镇登记失业率 ≤ 4.5%（南宫） 等 2 项".to_string()
            ),
        ]
    );
}

#[tokio::test]
async fn a_restart_continues_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rulewatch.db");
    let outbox = dir.path().join("outbox");
    let r = rule("unemployment-rate", HOUR, 24 * HOUR, &["renshe@example.cn"]);
    let f = [breach(&r.id, "南宫", 5.1)];
    {
        let mut store = AlertStore::open(&db).unwrap();
        store.record(t0(), &[(&r, &f)], &settings()).unwrap(); // pending
    }
    {
        let mut store = AlertStore::open(&db).unwrap();
        assert_eq!(store.alerts(None).unwrap()[0].state, State::Pending);
        let rec = store.record(t0() + HOUR, &[(&r, &f)], &settings()).unwrap();
        assert_eq!(rec.queued.len(), 1, "`for` counted across the restart");
    }
    {
        let mut store = AlertStore::open(&db).unwrap();
        let rec = store
            .record(t0() + 2 * HOUR, &[(&r, &f)], &settings())
            .unwrap();
        assert!(rec.queued.is_empty(), "not re-announced after restart");
        let rec = store
            .record(t0() + 25 * HOUR, &[(&r, &f)], &settings())
            .unwrap();
        assert_eq!(rec.notices[0].kind, rulewatch::alerts::NoticeKind::Reminder);
    }
    let mailer =
        rulewatch::notify::Mailer::File(rulewatch::notify::mail::FileMailer::new(&outbox).unwrap());
    let sender = rulewatch::notify::Sender::open(&db, mailer, settings()).unwrap();
    assert_eq!(sender.run_once(t0() + 26 * HOUR).await.unwrap().sent, 2);
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 2);
}

#[tokio::test]
async fn history_keeps_transitions_and_mails_by_rule_and_since() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let mailer =
        rulewatch::notify::Mailer::File(rulewatch::notify::mail::FileMailer::new(&outbox).unwrap());
    let (mut store, sender) = open(dir.path(), mailer);
    let a = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let mut b = rule("pm25", 0, 0, &["huanbao@example.cn"]);
    b.content_hash = "pm25-v1".into();
    store
        .record(
            t0(),
            &[
                (&a, &[breach(&a.id, "南宫", 5.1)]),
                (&b, &[breach(&b.id, "南宫", 40.0)]),
            ],
            &settings(),
        )
        .unwrap();
    sender.run_once(t0() + 1000).await.unwrap();
    store
        .record(t0() + HOUR, &[(&a, &[]), (&b, &[])], &settings())
        .unwrap();

    let all_a = store
        .history(&HistoryQuery {
            rule: Some(a.id.clone()),
            ..Default::default()
        })
        .unwrap();
    let events: Vec<(HistoryEvent, Option<String>)> =
        all_a.iter().map(|h| (h.event, h.notice.clone())).collect();
    assert_eq!(
        events,
        [
            (HistoryEvent::Transition, None),
            (HistoryEvent::Queued, Some("firing".into())),
            (HistoryEvent::Sent, Some("firing".into())),
            (HistoryEvent::Transition, None),
            (HistoryEvent::Queued, Some("resolved".into())),
        ]
    );
    assert!(all_a
        .iter()
        .all(|h| h.rule == a.id && h.content_hash == a.content_hash));
    assert_eq!(all_a[0].value, Some(5.1));
    assert_eq!(all_a[0].subject, labels("南宫"));
    assert_eq!(all_a[1].recipient.as_deref(), Some("renshe@example.cn"));
    assert_eq!(all_a[2].time, t0() + 1000);

    let since = store
        .history(&HistoryQuery {
            rule: Some(b.id.clone()),
            since: Some(t0() + HOUR),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(since.len(), 2, "{since:#?}");
    assert!(since
        .iter()
        .all(|h| h.time >= t0() + HOUR && h.content_hash == "pm25-v1"));
}
