//! Many items at once (a first evaluation, a bad month): each robot gets a
//! message within its platform's size that lists what fits and counts the
//! rest per rule, with the status page and the closing line, checked on
//! what the local robot server received (it refuses WeCom markdown over
//! 4,096 bytes and DingTalk or Feishu bodies over 20,000 / 20 KB bytes, as
//! the platforms do).

use rulewatch::config::RobotKind;
use serde_json::Value;

use super::*;

const FOOTER: &str = "本消息由 rulewatch 自动发送，详见同时发出的邮件。";
const PAGE: &str =
    "每一项的明细见状态页各规则的页面：[https://kaohe.example.cn/](https://kaohe.example.cn/)";

/// The markdown of a message the server accepted, without the @ line.
fn markdown(entry: &Value) -> Option<String> {
    let body = &entry["body"];
    let text = match entry["kind"].as_str()? {
        "dingtalk" => body["markdown"]["text"].as_str()?,
        "wecom" => body["markdown"]["content"].as_str()?,
        "feishu" => body["card"]["elements"][0]["content"].as_str()?,
        _ => return None,
    };
    // The @ line follows the closing line.
    let end = text.rfind(FOOTER)? + FOOTER.len();
    assert!(
        text[end..].trim().is_empty() || text[end..].trim_start().starts_with(['@', '<']),
        "only the @ line after the closing line: {text}"
    );
    Some(text[..end].to_string())
}

/// Items listed one by one (`**12. 【…】…**`) and items counted (`…：130 项`).
fn listed_and_counted(text: &str) -> (usize, usize) {
    let listed = text
        .lines()
        .filter(|l| {
            l.strip_prefix("**")
                .and_then(|l| l.split_once(". 【"))
                .is_some_and(|(n, _)| n.parse::<usize>().is_ok())
        })
        .count();
    let counted = text.split_once("**另有 ").map_or(0, |(_, rest)| {
        rest.lines()
            .filter_map(|l| l.strip_prefix("- "))
            .map(|l| {
                let before = &l[..l.find(" 项").expect("each count line says how many")];
                let start = before
                    .rfind(|c: char| !c.is_ascii_digit())
                    .map_or(0, |i| i + before[i..].chars().next().unwrap().len_utf8());
                before[start..].parse::<usize>().unwrap()
            })
            .sum()
    });
    (listed, counted)
}

async fn many_items_fit(kind: RobotKind, robot: &str, token: &str, secret: &str, limit: usize) {
    let server = RobotServer::start(token, secret);
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &robot.replace("PORT", &server.port.to_string()));
    let (mut store, sender) = open_chat(dir.path(), &c, kind);
    let to = c.resolve_recipients(&["env".into()]).unwrap();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let save = std::env::var_os("RULEWATCH_SAVE_CHAT").map(std::path::PathBuf::from);
    for (round, total) in [60usize, 600].into_iter().enumerate() {
        // Two rules, a third and two thirds of the items.
        let jobs = rule(&format!("jobs-{total}"), 0, 0, &to);
        let mut air = rule(&format!("air-{total}"), 0, 0, &to);
        air.title = "PM2.5月均浓度 ≤ 35 µg/m³".into();
        let f_jobs: Vec<_> = (0..total / 3)
            .map(|k| breach(&jobs.id, &format!("县{k:03}"), 5.1))
            .collect();
        let f_air: Vec<_> = (0..total - total / 3)
            .map(|k| breach(&air.id, &format!("县{k:03}"), 41.0))
            .collect();
        let t = t0() + round as i64 * rulewatch::time::HOUR;
        store
            .record(t, &[(&jobs, &f_jobs), (&air, &f_air)], &chat_settings(&c))
            .unwrap();
        let sent = sender.run_once(t).await.unwrap();
        assert_eq!(
            (sent.sent, sent.retried, sent.failed),
            (2, 0, 0),
            "{kind:?} {total}"
        );
        let log = server.log().await;
        let text = log
            .iter()
            .rev()
            .find_map(markdown)
            .expect("a markdown message");
        assert!(
            text.len() <= limit,
            "{kind:?} {total}: {} bytes",
            text.len()
        );
        assert!(
            text.ends_with(&format!("{PAGE}\n\n{FOOTER}")),
            "{kind:?} {total}: count, page, closing line last: {text}"
        );
        let (listed, counted) = listed_and_counted(&text);
        assert!(listed >= 1 && counted >= 1, "{kind:?} {total}: {text}");
        assert_eq!(listed + counted, total, "{kind:?} {total}: {text}");
        assert!(
            text.contains(&format!(
                "另有 {counted} 项未逐条列出（共 {total} 项，群消息篇幅有限，逐条列出前 {listed} 项），按规则计："
            )),
            "{text}"
        );
        assert!(!text.contains(rulewatch::notify::chat::CUT_MARK), "{text}");
        if let Some(dir) = &save {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{}-{total}.md", kind.as_str())), &text).unwrap();
        }
    }
}

#[tokio::test]
async fn wecom_many_items_within_4096_bytes() {
    set_env("RW_SZ_WC_KEY", "sz-wc-key");
    many_items_fit(
        RobotKind::WeCom,
        r#"WeCom(key_env: "RW_SZ_WC_KEY", at_mobiles: ["13800002222"], base_url: "http://127.0.0.1:PORT/cgi-bin/webhook/send")"#,
        "sz-wc-key",
        "unused",
        4_096,
    )
    .await;
}

#[tokio::test]
async fn dingtalk_many_items_within_its_size() {
    set_env("RW_SZ_DT_TOKEN", "sz-dt-token");
    set_env("RW_SZ_DT_SECRET", "SECsz-dt");
    many_items_fit(
        RobotKind::DingTalk,
        r#"DingTalk(token_env: "RW_SZ_DT_TOKEN", secret_env: "RW_SZ_DT_SECRET", at_mobiles: ["13800001111", "13800003333"], base_url: "http://127.0.0.1:PORT/robot/send")"#,
        "sz-dt-token",
        "SECsz-dt",
        18_000,
    )
    .await;
}

#[tokio::test]
async fn feishu_many_items_within_its_size() {
    set_env("RW_SZ_FS_TOKEN", "sz-fs-token");
    set_env("RW_SZ_FS_SECRET", "sz-fs-secret");
    many_items_fit(
        RobotKind::Feishu,
        r#"Feishu(token_env: "RW_SZ_FS_TOKEN", secret_env: "RW_SZ_FS_SECRET", at_user_ids: ["ou_84aad35d084aa403a838cf73ee18467"], base_url: "http://127.0.0.1:PORT/open-apis/bot/v2/hook")"#,
        "sz-fs-token",
        "sz-fs-secret",
        18_000,
    )
    .await;
}
