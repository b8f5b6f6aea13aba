//! Charts in alert mail: a firing mail, sent through the file transport,
//! parsed back: the HTML part shows an inline PNG by `cid:`, the PNG is in
//! the same `multipart/related`, and the text part is complete without it.

use crate::web_support;

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

#[test]
fn a_rank_rule_charts_its_monthly_place_with_the_tier_line() {
    let ws = Workspace::new(&[]);
    // 2022-01-05 09:00: December 2021 PM2.5, 南宫 6th of 16 > tier 5 fires
    // (fixtures/README.md); January 2021 was 7th.
    let at = t("2022-01-05T09:00");
    let snapshot = ws.replay("2022-01-05", "2022-01-05T12:00");
    let entry = snapshot
        .rules
        .iter()
        .find(|e| e.rule.meta.id == "air-pm25-rank")
        .expect("the PM2.5 rank rule");
    let spec = entry.rule.meta.chart.clone().expect("a chart");
    let subject: rulewatch::readings::Labels = [("county".to_string(), "南宫".to_string())].into();
    let data = rulewatch::status::series::chart_data(
        &snapshot.store,
        &spec,
        Some(&subject),
        at,
        chrono_tz::Asia::Shanghai,
    );
    // The place, month by month (complete months only), among 16 counties;
    // not a concentration.
    assert_eq!(data.rank_of, Some(16));
    assert_eq!(data.unit, "名");
    let places: Vec<f64> = data.lines[0].points.iter().map(|p| p.1).collect();
    assert_eq!(places.len(), 12, "January to December 2021: {places:?}");
    assert_eq!(places.first(), Some(&7.0), "{places:?}");
    assert_eq!(places.last(), Some(&6.0), "{places:?}");
    assert!(
        places.iter().all(|p| (1.0..=16.0).contains(p)),
        "{places:?}"
    );
    assert_eq!(data.target.first().map(|p| p.1), Some(5.0), "the tier line");

    // The mail for it carries the drawn chart and a legend in words.
    let charts = snapshot.mail_charts.clone();
    drop(snapshot);
    let mails = sent_mails(&ws, t("2022-01-05T12:00"), charts);
    let msg = mails
        .iter()
        .map(|(_, raw)| MessageParser::default().parse(raw).unwrap())
        .find(|m| {
            m.header_raw("X-Rulewatch-Rule")
                .is_some_and(|r| r.contains("air-pm25-rank"))
        })
        .expect("the PM2.5 rank mail");
    let html = msg.body_html(0).unwrap();
    assert!(html.contains("src=\"cid:"), "{html}");
    assert!(html.contains("每月名次（共16个），第1名在上"), "{html}");
    let png = msg
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|c| c.ctype() == "image"))
        .expect("the chart image")
        .contents()
        .to_vec();
    if let Ok(dir) = std::env::var("RULEWATCH_KEEP_CHART") {
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join("rank-chart.png"), &png).unwrap();
        std::fs::write(dir.join("rank-mail.html"), html.as_ref()).unwrap();
    }
}
