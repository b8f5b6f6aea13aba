//! Charts in alert mail: a firing mail, sent through the file transport,
//! parsed back: the HTML part shows an inline PNG by `cid:`, the PNG is in
//! the same `multipart/related`, and the text part is complete without it.

mod web_support;

use std::sync::Arc;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use rulewatch::notify::chart::ChartSource;
use rulewatch::notify::mail::FileMailer;
use rulewatch::notify::{MailSettings, Mailer, Sender};
use web_support::{t, Workspace};

fn sent_mails(ws: &Workspace, now: i64, charts: Arc<dyn ChartSource>) -> Vec<(String, Vec<u8>)> {
    let config = ws.config();
    let out = ws.dir.path().join("sent");
    let mailer = Mailer::File(FileMailer::new(&out).unwrap());
    let sender = Sender::open(
        &config.store_path,
        mailer,
        MailSettings::from_config(&config),
    )
    .unwrap()
    .with_charts(charts);
    let rt = tokio::runtime::Runtime::new().unwrap();
    loop {
        let round = rt.block_on(sender.run_once(now)).unwrap();
        if round.sent == 0 {
            break;
        }
    }
    let mut mails: Vec<(String, Vec<u8>)> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    mails.sort();
    mails
}

#[test]
fn a_firing_mail_shows_its_chart_inline() {
    let ws = Workspace::new(&[]);
    // 2021-04-16 09:00: March unemployment 4.7% > 4.5% fires (fixtures/README.md).
    let snapshot = ws.replay("2021-04-01", "2021-04-16T12:00");
    let charts = snapshot.mail_charts.clone();
    drop(snapshot);
    let mails = sent_mails(&ws, t("2021-04-16T12:00"), charts);
    assert!(!mails.is_empty(), "no mail was sent");

    let (path, raw) = mails
        .iter()
        .find(|(_, raw)| {
            let m = MessageParser::default().parse(raw).unwrap();
            m.to().and_then(|a| a.first()).and_then(|a| a.address()) == Some("renshe@example.cn")
                && m.body_text(0).is_some_and(|t| t.contains("城镇登记失业率"))
        })
        .expect("the 人社局 mail about unemployment");
    let msg = MessageParser::default().parse(raw).unwrap();
    let subject = msg.subject().unwrap();
    assert!(subject.contains("城镇登记失业率"), "{subject}");

    // Structure: alternative(text, related(html, png)).
    let root_type = msg.content_type().unwrap();
    assert_eq!(root_type.ctype(), "multipart");
    assert_eq!(root_type.subtype(), Some("alternative"), "{path}");
    let related = msg
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "multipart" && c.subtype() == Some("related"))
        })
        .expect("a multipart/related part");
    let PartType::Multipart(children) = &related.body else {
        panic!("related is not multipart")
    };
    assert!(children.len() >= 2, "html and at least one image");

    // The HTML part references the image by cid...
    let html = msg.body_html(0).unwrap();
    let cid = html
        .split("src=\"cid:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an <img src=\"cid:…\"> in the HTML part")
        .to_string();
    // ...and the image with that Content-ID is a PNG in the same related part.
    let image = children
        .iter()
        .map(|&i| &msg.parts[i as usize])
        .find(|p| p.content_id() == Some(cid.as_str()))
        .unwrap_or_else(|| panic!("no part with Content-ID <{cid}>"));
    let ct = image.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("image", Some("png")));
    let png = image.contents();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    assert_eq!(
        (reader.info().width, reader.info().height),
        (
            rulewatch::notify::chart::WIDTH,
            rulewatch::notify::chart::HEIGHT
        )
    );
    if let Ok(dir) = std::env::var("RULEWATCH_KEEP_CHART") {
        std::fs::write(std::path::Path::new(&dir).join("mail-chart.png"), png).unwrap();
    }

    // The text part stands on its own: the numbers are there, no image reference.
    let text = msg.body_text(0).unwrap();
    assert!(text.contains("4.7"), "{text}");
    assert!(text.contains("4.5"), "{text}");
    assert!(!text.contains("cid:"), "{text}");
}

#[test]
fn mails_without_a_chart_stay_plain_alternative() {
    let ws = Workspace::new(&[]);
    // 2021-06-16: May's new_urban_jobs never reported (no data: no chart).
    let snapshot = ws.replay("2021-06-16", "2021-06-16T12:00");
    let charts = snapshot.mail_charts.clone();
    drop(snapshot);
    let mails = sent_mails(&ws, t("2021-06-16T12:00"), charts);
    let overdue = mails
        .iter()
        .map(|(_, raw)| MessageParser::default().parse(raw).unwrap())
        .find(|m| {
            // Matched by the rule header: the words name no metric id.
            m.header_raw("X-Rulewatch-Rule")
                .is_some_and(|r| r.contains("social-reports-overdue"))
                && !m.body_text(0).unwrap().contains("告警")
        })
        .expect("the overdue-report mail");
    let html = overdue.body_html(0).unwrap();
    assert!(!html.contains("cid:"), "{html}");
    assert!(!overdue
        .parts
        .iter()
        .any(|p| p.content_type().is_some_and(|c| c.ctype() == "image")));
}
