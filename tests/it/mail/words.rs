//! What an administrator reads when mail cannot be delivered: the stored
//! error (`last_error`), the rule's history (shown on its status page) and
//! the note to `admin` say in Chinese which server and address, what
//! happened, when it is tried again or that it is not, and what to do; the
//! server's own text follows after ` / `. Against real aiosmtpd servers.

use std::path::Path;
use std::time::Duration;

use rulewatch::alerts::{HistoryEvent, HistoryQuery};
use rulewatch::notify::outbox;

use super::support::*;

/// One alert to `to`, one send round; the stored error, the history's and
/// the note to admin queued for it (if any).
async fn fail_once(dir: &Path, port: u16, to: &str) -> (String, String, Option<String>) {
    let (mut store, sender) = open(dir, smtp(port, Duration::from_secs(5)));
    let sender = sender.with_policy(rulewatch::notify::RetryPolicy {
        report_after: 1,
        ..Default::default()
    });
    let r = rule("unemployment-rate", 0, 0, &[to]);
    let id = store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap()
        .queued[0]
        .clone();
    sender.run_once(t0()).await.unwrap();
    let row = outbox::get(store.connection(), &id).unwrap().unwrap();
    let history = store
        .history(&HistoryQuery {
            rule: Some(r.id.clone()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|h| matches!(h.event, HistoryEvent::Failed | HistoryEvent::Delayed))
        .find_map(|h| h.error)
        .unwrap_or_default();
    let note = outbox::list(store.connection(), Some("queued"), 10)
        .unwrap()
        .into_iter()
        .find(|m| m.recipient == "ops@example.cn")
        .map(|m| m.text);
    (row.last_error.unwrap(), history, note)
}

#[tokio::test]
async fn a_refused_address_is_named_with_the_fix_and_the_servers_words() {
    let port = free_port();
    let _server = RefusingSmtp::start(port, "550 5.1.1 mailbox unavailable");
    let dir = tempfile::tempdir().unwrap();
    let (error, history, note) = fail_once(dir.path(), port, "nobody@example.cn").await;
    assert_eq!(
        error,
        format!(
            "邮件服务器 127.0.0.1:{port} 永久拒收发往 nobody@example.cn 的邮件（550：收件邮箱不存在或不收信），不再重试。\
             请核对这个收件地址是否写错或已停用，在配置里改正 / permanent error (550): 5.1.1 mailbox unavailable"
        )
    );
    assert_eq!(
        history, error,
        "the rule's history (its status page) says the same"
    );
    let note = note.expect("admin told");
    assert!(note.contains(&format!("原因：{error}")), "{note}");
    assert!(note.contains("不再重试"), "{note}");
}

#[tokio::test]
async fn a_greylisted_address_says_when_it_is_tried_again() {
    let port = free_port();
    let _server = RefusingSmtp::start(port, "451 4.7.1 greylisted, try again later");
    let dir = tempfile::tempdir().unwrap();
    let (error, history, note) = fail_once(dir.path(), port, "renshe@example.cn").await;
    // t0 is 09:00; the first retry 30 s later.
    assert_eq!(
        error,
        format!(
            "邮件服务器 127.0.0.1:{port} 暂时不收发往 renshe@example.cn 的邮件（451：服务器暂时无法处理，常见于灰名单），\
             将于 2021年3月1日 09:00 重试。一般会自行恢复；若一直如此，请联系邮件服务器管理员 / \
             transient error (451): 4.7.1 greylisted, try again later"
        )
    );
    assert_eq!(history, error);
    assert!(note.expect("admin told after one try").contains("仍在重试"));
}

#[tokio::test]
async fn a_server_not_running_is_named_with_what_to_check() {
    let port = free_port(); // nobody listens
    let dir = tempfile::tempdir().unwrap();
    let (error, _, _) = fail_once(dir.path(), port, "renshe@example.cn").await;
    assert!(
        error.starts_with(&format!(
            "连不上邮件服务器 127.0.0.1:{port}（对方拒绝连接，该端口上没有服务），将于 2021年3月1日 09:00 重试。\
             请确认邮件服务器在运行、配置 mail 的 host 和 port 正确、防火墙放行 / "
        )),
        "{error}"
    );
}
