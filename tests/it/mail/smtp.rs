//! What arrives at a real SMTP server: subject, parts, escaping, Message-ID.

use std::time::Duration;

use rulewatch::notify::outbox;

use super::support::*;

#[tokio::test]
async fn delivers_decoded_subject_both_parts_escaped_html_and_stable_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));

    let mut r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    r.owner = Some("人社局 <就业科> & \"办公室\"".into());
    let mut f = breach(&r.id, "南宫", 5.1);
    f.message = "失业率 <script>alert('x')</script> 超标".into();
    let recorded = store.record(t0(), &[(&r, &[f])], &settings()).unwrap();
    assert_eq!(recorded.queued.len(), 1);
    let queued_id = recorded.queued[0].clone();

    let round = sender.run_once(t0()).await.unwrap();
    assert_eq!(round.sent, 1);
    let got = server.messages();
    assert_eq!(got.len(), 1, "{got:#?}");
    let m = &got[0];
    assert_eq!(m.subject, "[严重] 城镇登记失业率 ≤ 4.5%（南宫）");
    assert!(
        m.raw_subject.starts_with("=?utf-8?") || m.raw_subject.starts_with("=?UTF-8?"),
        "subject must be RFC 2047-encoded on the wire: {}",
        m.raw_subject
    );
    assert_eq!(m.to, "renshe@example.cn");
    assert!(m.from.contains("alerts@example.cn"), "{}", m.from);
    assert_eq!(m.content_type, "multipart/alternative");
    assert_eq!(m.message_id, queued_id, "Message-ID is the queued one");
    // What the mail is about, in plain ASCII headers (the county percent-encoded).
    assert_eq!(m.x_rule, "unemployment-rate");
    assert_eq!(m.x_subject, "county=%E5%8D%97%E5%AE%AB");
    assert_eq!(m.x_transition, "firing");

    let text = m.text.as_deref().expect("text part");
    let html = m.html.as_deref().expect("html part");
    for needle in [
        "5.1%",
        "4.5%",
        "0.6个百分点",
        "县（市、区）：南宫",
        "2021年3月1日 09:00",
        "rules/unemployment-rate.rhai",
    ] {
        assert!(text.contains(needle), "text lacks {needle}:\n{text}");
        // HTML: the name and the value in cells of their own.
        let value = needle.split('：').next_back().unwrap();
        assert!(html.contains(value), "html lacks {value}:\n{html}");
    }
    assert!(!text.contains("county=") && !html.contains("county="));
    assert!(
        text.contains("<script>alert('x')</script>"),
        "text is as written"
    );
    assert!(
        !html.contains("<script>"),
        "html must escape rule strings:\n{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("人社局 &lt;就业科&gt; &amp; &quot;办公室&quot;"),
        "{html}"
    );

    // Stable: the outbox row keeps the id, and composing the same notice again gives it too.
    let row = outbox::get(store.connection(), &queued_id)
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "sent");
    let again = rulewatch::notify::compose_all(&recorded.notices, &settings());
    assert_eq!(again[0].message_id, queued_id);
}

#[tokio::test]
async fn a_mail_with_several_items_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let findings = [
        breach(&r.id, "南宫", 5.1),
        breach(&r.id, "威县", 4.9),
        breach(&r.id, "清河", 6.0),
    ];
    store.record(t0(), &[(&r, &findings)], &settings()).unwrap();
    sender.run_once(t0()).await.unwrap();
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].subject.starts_with("[严重] 城镇登记失业率 ≤ 4.5%（"),
        "{}",
        got[0].subject
    );
    assert!(got[0].subject.ends_with(" 等 3 项"), "{}", got[0].subject);
    let text = got[0].text.as_deref().unwrap();
    assert!(text.contains("3 项新通知"), "{text}");
    for county in ["南宫", "威县", "清河"] {
        assert!(text.contains(&format!("县（市、区）：{county}")), "{text}");
        assert!(!text.contains(&format!("county={county}")), "{text}");
    }
}
