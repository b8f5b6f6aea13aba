//! Each platform: signature accepted, markdown in Chinese within limits,
//! errors in a 200 answer retried, rate limit kept by grouping, slow
//! answers timed out and retried, secrets never in an error.

use rulewatch::alerts::AlertRule;
use rulewatch::config::{Config, RobotKind};
use rulewatch::notify::chat::CUT_MARK;
use rulewatch::notify::{outbox, RetryPolicy};
use rulewatch::time::{MINUTE, SECOND};
use serde_json::json;

use super::*;

fn robot_rule(id: &str, c: &Config) -> AlertRule {
    let to = c.resolve_recipients(&["env".into()]).unwrap();
    rule(id, 0, 0, &to.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test]
async fn dingtalk_signed_markdown_with_at_for_critical() {
    let server = RobotServer::start("dt-token-1a", "SECdt1secret");
    set_env("RW_DT1_TOKEN", "dt-token-1a");
    set_env("RW_DT1_SECRET", "SECdt1secret");
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &format!(
            r#"DingTalk(token_env: "RW_DT1_TOKEN", secret_env: "RW_DT1_SECRET", at_mobiles: ["13800001111"], base_url: "http://127.0.0.1:{}/robot/send")"#,
            server.port
        ),
    );
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::DingTalk);
    let r = robot_rule("unemployment-rate", &c);
    let rec = store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    assert_eq!(rec.queued.len(), 2, "a mail and a robot message");
    assert_eq!(sender.run_once(t0()).await.unwrap().sent, 2);
    let log = server.log().await;
    assert_eq!(log.len(), 1, "{log:#?}");
    let body = &log[0]["body"];
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(body["markdown"]["title"]
        .as_str()
        .unwrap()
        .starts_with("[严重] 城镇登记失业率"));
    for part in [
        "当前值：5.1%",
        "目标：4.5%",
        "差距：0.6个百分点",
        "责任单位：人社局",
        "[查看详情](https://kaohe.example.cn/rules/unemployment-rate)",
        "@13800001111",
    ] {
        assert!(text.contains(part), "{part} not in {text}");
    }
    // The rule file is the operator's business: the mail carries it.
    assert!(!text.contains("依据"), "{text}");
    assert_eq!(body["at"]["atMobiles"], json!(["13800001111"]));
    assert!(text.len() <= 20_000);
    // Nothing more to send.
    assert_eq!(sender.run_once(t0() + MINUTE).await.unwrap().sent, 0);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_server_retried_and_never_printed() {
    let server = RobotServer::start("dt-token-2b", "SECright");
    set_env("RW_DT2_TOKEN", "dt-token-2b");
    set_env("RW_DT2_SECRET", "SECwrong-7c1e");
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &format!(
            r#"DingTalk(token_env: "RW_DT2_TOKEN", secret_env: "RW_DT2_SECRET", base_url: "http://127.0.0.1:{}/robot/send")"#,
            server.port
        ),
    );
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::DingTalk);
    let sender = sender.with_policy(RetryPolicy {
        first: SECOND,
        max: SECOND,
        report_after: 1,
    });
    let r = robot_rule("unemployment-rate", &c);
    store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    let round = sender.run_once(t0()).await.unwrap();
    assert_eq!((round.sent, round.retried, round.failed), (1, 1, 0));
    let rows = outbox::list(store.connection(), None, 100).unwrap();
    let robot = rows.iter().find(|m| m.channel == "dingtalk").unwrap();
    assert_eq!(robot.status, "queued");
    let error = robot.last_error.clone().unwrap();
    assert!(error.contains("310000"), "{error}");
    // The admin note about it, the stored error: no token, no secret.
    sender.run_once(t0() + SECOND).await.unwrap();
    for m in outbox::list(store.connection(), None, 100).unwrap() {
        let all = format!(
            "{} {} {:?} {}",
            m.subject, m.text, m.last_error, m.recipient
        );
        for secret in ["dt-token-2b", "SECwrong-7c1e"] {
            assert!(!all.contains(secret), "{secret} printed: {all}");
        }
    }
    assert!(server.log().await.is_empty());

    // Connection refused: the error names the robot, never the address with its token.
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &format!(
            r#"DingTalk(token_env: "RW_DT2_TOKEN", secret_env: "RW_DT2_SECRET", base_url: "http://127.0.0.1:{}/robot/send")"#,
            free_port()
        ),
    );
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::DingTalk);
    store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    assert_eq!(sender.run_once(t0()).await.unwrap().retried, 1);
    let rows = outbox::list(store.connection(), Some("queued"), 10).unwrap();
    let error = rows[0].last_error.clone().unwrap();
    assert!(error.contains("RW_DT2_TOKEN"), "{error}");
    assert!(
        !error.contains("dt-token-2b") && !error.contains("SECwrong"),
        "{error}"
    );

    // A missing variable names the variable, at start.
    let c = config(dir.path(), r#"WeCom(key_env: "RW_NOT_SET_ANYWHERE")"#);
    let e = rulewatch::notify::chat::ChatNotifier::from_config(&c, RobotKind::WeCom)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("RW_NOT_SET_ANYWHERE") && e.contains("`env`"),
        "{e}"
    );
    assert!(
        e.starts_with("环境变量 `RW_NOT_SET_ANYWHERE` 没有设置或是空的：它应存放接收组 `env` 的企业微信群机器人的 webhook key。")
            && e.contains("/etc/rulewatch/secrets.env"),
        "{e}"
    );
}

#[tokio::test]
async fn wecom_errcode_in_200_is_retried_and_critical_mentions_by_mobile() {
    let server = RobotServer::start("wc-key-3c", "unused");
    set_env("RW_WC3_KEY", "wc-key-3c");
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &format!(
            r#"WeCom(key_env: "RW_WC3_KEY", at_mobiles: ["13800002222"], base_url: "http://127.0.0.1:{}/cgi-bin/webhook/send")"#,
            server.port
        ),
    );
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::WeCom);
    server.plan(json!([{ "code": 45009 }])).await;
    let r = robot_rule("unemployment-rate", &c);
    // A long explanation: cut at a character boundary (the mail has it
    // whole), the rows under it and the closing line kept.
    let mut finding = breach(&r.id, "南宫", 5.1);
    finding.message = "城镇登记失业率高于目标。".repeat(400);
    store
        .record(t0(), &[(&r, &[finding])], &chat_settings(&c))
        .unwrap();
    let round = sender.run_once(t0()).await.unwrap();
    assert_eq!(
        (round.sent, round.retried),
        (1, 1),
        "mail out, robot retried"
    );
    // 45009 asks for a minute: not before.
    assert_eq!(sender.run_once(t0() + 30 * SECOND).await.unwrap().sent, 0);
    assert_eq!(sender.run_once(t0() + 2 * MINUTE).await.unwrap().sent, 1);
    let log = server.log().await;
    assert_eq!(log.len(), 2, "the markdown and the @ text: {log:#?}");
    let content = log[0]["body"]["markdown"]["content"].as_str().unwrap();
    assert!(content.len() <= 4096, "{}", content.len());
    assert!(content.contains(CUT_MARK), "{content}");
    assert!(content.contains("责任单位：人社局"), "{content}");
    assert!(
        content.ends_with("本消息由 rulewatch 自动发送，详见同时发出的邮件。"),
        "{content}"
    );
    assert!(content.starts_with("**[严重] 城镇登记失业率"), "{content}");
    assert_eq!(log[1]["body"]["msgtype"], "text");
    assert_eq!(
        log[1]["body"]["text"]["mentioned_mobile_list"],
        json!(["13800002222"])
    );
    assert_eq!(sender.run_once(t0() + 10 * MINUTE).await.unwrap().sent, 0);
    assert_eq!(server.log().await.len(), 2);
}

#[tokio::test]
async fn feishu_signature_in_the_body() {
    let server = RobotServer::start("fs-token-4d", "fs-secret-4d");
    set_env("RW_FS4_TOKEN", "fs-token-4d");
    set_env("RW_FS4_SECRET", "fs-secret-4d");
    set_env("RW_FS4_BAD", "fs-wrong-secret");
    let dir = tempfile::tempdir().unwrap();
    let robot = |secret: &str| {
        format!(
            r#"Feishu(token_env: "RW_FS4_TOKEN", secret_env: "{secret}", at_user_ids: ["ou_84aad35d084aa403a838cf73ee18467"], base_url: "http://127.0.0.1:{}/open-apis/bot/v2/hook")"#,
            server.port
        )
    };
    let c = config(dir.path(), &robot("RW_FS4_SECRET"));
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::Feishu);
    let r = robot_rule("unemployment-rate", &c);
    store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    assert_eq!(sender.run_once(t0()).await.unwrap().sent, 2);
    let log = server.log().await;
    assert_eq!(log.len(), 1);
    let card = &log[0]["body"]["card"];
    assert!(card["header"]["title"]["content"]
        .as_str()
        .unwrap()
        .starts_with("[严重]"));
    let md = card["elements"][0]["content"].as_str().unwrap();
    assert!(
        md.contains("当前值：5.1%")
            && md.contains("<at id=ou_84aad35d084aa403a838cf73ee18467></at>"),
        "{md}"
    );

    // The wrong secret: 19021, retried.
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &robot("RW_FS4_BAD"));
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::Feishu);
    store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    assert_eq!(sender.run_once(t0()).await.unwrap().retried, 1);
    let rows = outbox::list(store.connection(), Some("queued"), 10).unwrap();
    assert!(rows[0].last_error.as_ref().unwrap().contains("19021"));
}

#[tokio::test]
async fn rate_limit_groups_and_drops_nothing() {
    let server = RobotServer::start("wc-key-5e", "unused");
    set_env("RW_WC5_KEY", "wc-key-5e");
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &format!(
            r#"WeCom(key_env: "RW_WC5_KEY", base_url: "http://127.0.0.1:{}/cgi-bin/webhook/send")"#,
            server.port
        ),
    );
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::WeCom);
    let r = robot_rule("unemployment-rate", &c);
    // 25 findings in one minute, each sent as soon as it is queued.
    let mut postponed = 0;
    let mut findings = Vec::new();
    for i in 0..25 {
        let t = t0() + i * SECOND;
        // One more county in breach each second (the earlier ones stay).
        findings.push(breach(&r.id, &format!("第{i}县"), 5.1));
        store
            .record(t, &[(&r, &findings)], &chat_settings(&c))
            .unwrap();
        postponed += sender.run_once(t).await.unwrap().postponed;
    }
    assert_eq!(server.log().await.len(), 20, "20 a minute");
    assert_eq!(postponed, 5);
    // The next minute: the five that waited go as one message.
    sender.run_once(t0() + MINUTE + 30 * SECOND).await.unwrap();
    let log = server.log().await;
    // As many as fit 4,096 bytes go together: fewer messages than findings.
    assert!((21..25).contains(&log.len()), "{}", log.len());
    let next = log[20]["body"]["markdown"]["content"].as_str().unwrap();
    assert!(next.starts_with("**rulewatch 共 "), "{next}");
    let all: String = log
        .iter()
        .map(|m| m["body"]["markdown"]["content"].as_str().unwrap())
        .collect();
    for i in 0..25 {
        assert_eq!(
            all.matches(&format!("说明：第{i}县城镇")).count(),
            1,
            "第{i}县: {all}"
        );
    }
    assert_eq!(
        outbox::counts(store.connection()).unwrap().queued,
        0,
        "nothing left, nothing dropped"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let server = RobotServer::start("wc-key-6f", "unused");
    set_env("RW_WC6_KEY", "wc-key-6f");
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &format!(
            r#"WeCom(key_env: "RW_WC6_KEY", base_url: "http://127.0.0.1:{}/cgi-bin/webhook/send", timeout: "1s")"#,
            server.port
        ),
    );
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::WeCom);
    server.plan(json!([{ "sleep": 3, "code": -1 }])).await;
    let r = robot_rule("unemployment-rate", &c);
    store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    assert_eq!(sender.run_once(t0()).await.unwrap().retried, 1);
    let rows = outbox::list(store.connection(), Some("queued"), 10).unwrap();
    assert!(
        rows[0]
            .last_error
            .as_ref()
            .unwrap()
            .contains("no answer within 1 s"),
        "{:?}",
        rows[0].last_error
    );
    assert_eq!(sender.run_once(t0() + MINUTE).await.unwrap().sent, 1);
    assert_eq!(server.log().await.len(), 1);
}

/// What the administrator reads when a robot refuses: which robot (group
/// and variable, never the key), the platform's code and its meaning, when
/// it is tried again, what to fix; the platform's own answer after ` / `.
#[tokio::test]
async fn a_refusing_robot_is_named_with_its_code_meaning_and_fix() {
    let server = RobotServer::start("wc-key-right", "unused");
    set_env("RW_WC7_KEY", "wc-key-wrong-7");
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        &format!(
            r#"WeCom(key_env: "RW_WC7_KEY", base_url: "http://127.0.0.1:{}/cgi-bin/webhook/send")"#,
            server.port
        ),
    );
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::WeCom);
    let sender = sender.with_policy(RetryPolicy {
        report_after: 1,
        ..Default::default()
    });
    let r = robot_rule("unemployment-rate", &c);
    store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    assert_eq!(sender.run_once(t0()).await.unwrap().retried, 1);
    let rows = outbox::list(store.connection(), None, 10).unwrap();
    let robot = rows.iter().find(|m| m.channel == "wecom").unwrap();
    assert_eq!(
        robot.last_error.as_deref().unwrap(),
        "企业微信群机器人（生态环境局，接收组 env，环境变量 RW_WC7_KEY）：平台拒收消息，错误码 93000\
         （webhook 地址无效：key 不对，或机器人已被移出群），将于 2021年3月1日 09:00 重试。\
         请核对 key_env 所指环境变量里的 key，并确认机器人仍在群里 / HTTP 200, code 93000: invalid webhook url"
    );
    // The note to admin carries the same words, and no key.
    let note = rows
        .iter()
        .find(|m| m.recipient == "ops@example.cn")
        .expect("admin told");
    assert!(
        note.text.contains(
            "原因：企业微信群机器人（生态环境局，接收组 env，环境变量 RW_WC7_KEY）：平台拒收消息，错误码 93000"
        ),
        "{}",
        note.text
    );
    for m in &rows {
        let all = format!("{} {} {:?}", m.subject, m.text, m.last_error);
        assert!(!all.contains("wc-key-wrong-7"), "key printed: {all}");
    }

    // Nobody listening at the robot's address.
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = config(
        dir.path(),
        &format!(
            r#"WeCom(key_env: "RW_WC7_KEY", base_url: "http://127.0.0.1:{port}/cgi-bin/webhook/send")"#
        ),
    );
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::WeCom);
    store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    sender.run_once(t0()).await.unwrap();
    let rows = outbox::list(store.connection(), Some("queued"), 10).unwrap();
    let error = rows[0].last_error.clone().unwrap();
    assert!(
        error.starts_with(&format!(
            "连不上企业微信群机器人（生态环境局，接收组 env，环境变量 RW_WC7_KEY）的平台地址 127.0.0.1:{port}（对方拒绝连接，该端口上没有服务），将于 2021年3月1日 09:00 重试。"
        )),
        "{error}"
    );
    assert!(!error.contains("wc-key-wrong-7"), "{error}");
}
