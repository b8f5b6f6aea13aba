//! A rule's status page after its mail was refused: the history row says,
//! in the words of `notify::failure`, which server refused which address,
//! that it is not retried, and what to do (the server's own words after
//! ` / `). The 2021 fixtures replayed, the mail sent to a real aiosmtpd
//! that refuses every recipient.

use std::time::Duration;

use rulewatch::notify::{MailSettings, Sender};
use rulewatch::web::page;

use crate::mail::support::{free_port, smtp, RefusingSmtp};
use crate::web_support::Workspace;

#[tokio::test]
async fn a_refused_mail_is_explained_on_the_rule_page() {
    let ws = Workspace::new(&[]);
    // unemployment-rate fires on 2021-04-16 and queues its mail.
    let s = ws.replay("2021-01-01", "2021-04-16T12:00");
    let port = free_port();
    let _server = RefusingSmtp::start(port, "550 5.1.1 mailbox unavailable");
    let config = ws.config();
    let sender = Sender::open(
        &config.store_path,
        smtp(port, Duration::from_secs(5)),
        MailSettings::from_config(&config),
    )
    .unwrap();
    // Every queued mail is tried and refused (notes to admin too).
    for _ in 0..20 {
        let round = sender.run_once(s.now).await.unwrap();
        if round.failed == 0 && round.sent == 0 && round.retried == 0 {
            break;
        }
        assert_eq!(round.sent, 0);
    }
    let html = page::rule(&s, "unemployment-rate").unwrap();
    if let Some(file) = std::env::var_os("RULEWATCH_SAVE_PAGE") {
        std::fs::write(file, &html).unwrap();
    }
    let expected = format!(
        "原因：邮件服务器 127.0.0.1:{port} 永久拒收发往 renshe@example.cn 的邮件（550：收件邮箱不存在或不收信），不再重试。\
         请核对这个收件地址是否写错或已停用，在配置里改正 / permanent error (550): 5.1.1 mailbox unavailable"
    );
    assert!(
        html.split("<tr>")
            .any(|row| row.contains("邮件发送失败") && row.contains(&expected)),
        "{html}"
    );
}

/// A message to a group's robot is a group message on the rule page, named
/// by its platform and group, not a mail to `wecom:hr:VAR`.
#[test]
fn a_robot_message_is_a_group_message_on_the_rule_page() {
    let ws = Workspace::new(&[]);
    let path = ws.dir.path().join("rulewatch.ron");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        r#""hr":        ["renshe@example.cn"],"#,
        r#""hr": (mail: ["renshe@example.cn"], robots: [WeCom(key_env: "RW_PAGE_HR_KEY")]),"#,
    );
    assert!(
        text.contains("RW_PAGE_HR_KEY"),
        "the hr group is in the config"
    );
    std::fs::write(&path, text).unwrap();
    // unemployment-rate fires on 2021-04-16: a mail and a robot message queued.
    let s = ws.replay("2021-01-01", "2021-04-16T12:00");
    let html = page::rule(&s, "unemployment-rate").unwrap();
    if let Some(file) = std::env::var_os("RULEWATCH_SAVE_ROBOT_PAGE") {
        std::fs::write(file, &html).unwrap();
    }
    let rows: Vec<&str> = html.split("<tr>").collect();
    assert!(
        rows.iter().any(|r| r.contains("群消息排队：告警")
            && r.contains("（发往人社局的企业微信群机器人）")
            && !r.contains("RW_PAGE_HR_KEY")),
        "{html}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("邮件排队：告警") && r.contains("（收件人 renshe@example.cn）")),
        "{html}"
    );
}
