//! What each kind of mail says, pinned as snapshots (text and HTML), from
//! the 2021 fixtures replayed through the shipped rules and config: firing,
//! reminder, resolved, no-data, data-arrived, milestone, a year's final
//! verdict, the monthly digest and a note to admin. Review a change with
//! `cargo insta review`; every snapshot is also checked for raw keys.

use crate::common;

use rulewatch::config::Config;
use rulewatch::notify::{digest, QueuedMail};
use rulewatch::readings::store::Store;
use rulewatch::readings::stream::ingest;
use rulewatch::readings::Format;
use rulewatch::ruletest::snapshot::Snapshot;
use rulewatch::time::parse_time;

const SH: chrono_tz::Tz = chrono_tz::Asia::Shanghai;
const MILESTONES: [&str; 4] = [
    "elderly-care-center",
    "nangong-middle-school-campus",
    "projects-started",
    "park-facilities-built",
];

fn at(t: &str) -> i64 {
    parse_time(t, SH).unwrap()
}

/// No `key=value`, no metric id, no zone offset or seconds in what a reader gets.
fn check_words(name: &str, text: &str) {
    for bad in [
        "county=",
        "metric=",
        "_unit",
        "=µg",
        "+08:00",
        "concentration",
    ] {
        assert!(!text.contains(bad), "{name}: `{bad}` in\n{text}");
    }
}

fn pin(name: &str, text: &str, html: &str) {
    check_words(name, text);
    check_words(name, html);
    insta::assert_snapshot!(format!("{name}.txt"), text);
    insta::assert_snapshot!(format!("{name}.html"), html);
}

#[test]
fn every_kind_of_mail_in_text_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("rulewatch.ron");
    std::fs::copy(common::repo().join("rulewatch.ron"), &config_path).unwrap();
    common::copy_shipped_rules(dir.path());
    let config = Config::load(&config_path).unwrap();
    let store = Store::open(&config.store_path).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(common::repo().join("fixtures/2021"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    for f in files {
        ingest(
            &store,
            std::fs::File::open(&f).unwrap(),
            Format::Csv,
            SH,
            |_| {},
        )
        .unwrap();
    }
    drop(store);

    let mut snap = Snapshot::open(config.clone(), at("2022-01-16T12:00")).unwrap();
    snap.replay(at("2021-01-01T00:00"), at("2022-01-16T12:00"))
        .unwrap();
    let conn = rusqlite::Connection::open(&config.store_path).unwrap();
    let mut mails: Vec<QueuedMail> = rulewatch::notify::outbox::list(&conn, None, 100_000).unwrap();
    mails.sort_by_key(|m| m.id);
    let first = |pred: &dyn Fn(&QueuedMail) -> bool| -> &QueuedMail {
        mails.iter().find(|m| pred(m)).expect("such a mail")
    };
    let single = |kind: &'static str| {
        move |m: &QueuedMail| {
            m.items.len() == 1
                && m.items[0].notice == kind
                && !MILESTONES.contains(&m.items[0].rule.as_str())
        }
    };
    for (name, kind) in [
        ("firing", "firing"),
        ("reminder", "reminder"),
        ("resolved", "resolved"),
        ("no_data", "no_data"),
        ("data_arrived", "data_returned"),
        ("final_verdict", "final_verdict"),
    ] {
        let pred = single(kind);
        let m = first(&pred);
        pin(name, &m.text, &m.html);
    }
    let m = first(&|m: &QueuedMail| {
        m.items.len() == 1
            && m.items[0].notice == "firing"
            && MILESTONES.contains(&m.items[0].rule.as_str())
    });
    pin("milestone", &m.text, &m.html);
    assert!(
        m.text.contains("完成情况：未完成") && m.text.contains("逾期："),
        "{}",
        m.text
    );

    let digests = digest::digests(&snap, &config, at("2022-01-16T12:00")).unwrap();
    let hr = digests
        .iter()
        .find(|d| d.group == "hr")
        .expect("人社局's digest");
    assert!(hr.text.contains("致：人社局"), "{}", hr.text);
    assert!(!hr.text.contains("未评估"), "{}", hr.text);
    pin("digest", &hr.text, &hr.html);

    let note = rulewatch::notify::compose_note(
        "load:rules/x.rhai:h",
        "x",
        "规则文件无法加载：rules/x.rhai",
        "rules/x.rhai:3:11: 第3行第11列是全角逗号“，”，请改为半角逗号“,”",
        at("2021-03-01T09:00"),
        &config.admin,
    );
    pin("admin", &note[0].text, &note[0].html);
}
