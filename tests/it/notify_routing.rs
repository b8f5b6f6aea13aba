//! Routing by subject (config `owners:`): the overdue-report rule notifies
//! 人社局, 医保局, 民政局 and 考核办; a missing `new_urban_jobs` figure is
//! 人社局's and goes to 人社局 (and 考核办, which owns no metric), not to
//! 医保局. The shipped config and rules, the 2021 fixtures without the
//! figure from June on, replayed; the mails read from the outbox (a real
//! SQLite file) as queued for each address.

use crate::common;

use rulewatch::config::Config;
use rulewatch::readings::store::Store;
use rulewatch::readings::stream::ingest;
use rulewatch::readings::Format;
use rulewatch::ruletest::snapshot::Snapshot;
use rulewatch::time::parse_time;

const SH: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

#[test]
fn a_missing_figure_goes_to_the_bureau_that_owns_it() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("rulewatch.ron");
    std::fs::copy(common::repo().join("rulewatch.ron"), &config_path).unwrap();
    common::copy_shipped_rules(dir.path());
    let config = Config::load(&config_path).unwrap();
    let store = Store::open(&config.store_path).unwrap();
    let csv =
        std::fs::read_to_string(common::repo().join("fixtures/2021/socioeconomic.csv")).unwrap();
    // new_urban_jobs stops after May 2021: June's figure is overdue on 2021-07-16.
    let kept: String = csv
        .lines()
        .filter(|l| !(l.starts_with("new_urban_jobs,2021-") && l[20..22] >= *"06"))
        .map(|l| format!("{l}\n"))
        .collect();
    ingest(&store, kept.as_bytes(), Format::Csv, SH, |_| {}).unwrap();
    drop(store);

    let at = |t: &str| parse_time(t, SH).unwrap();
    let mut snapshot = Snapshot::open(config.clone(), at("2021-07-16T12:00")).unwrap();
    snapshot
        .replay(at("2021-07-16T00:00"), at("2021-07-16T12:00"))
        .unwrap();

    let conn = rusqlite::Connection::open(&config.store_path).unwrap();
    let mails = rulewatch::notify::outbox::list(&conn, None, 1000).unwrap();
    let about = |m: &rulewatch::notify::QueuedMail| {
        m.items.iter().any(|i| {
            i.rule == "social-reports-overdue"
                && i.subject.get("metric").map(String::as_str) == Some("new_urban_jobs")
        })
    };
    let mut to: Vec<&str> = mails
        .iter()
        .filter(|m| about(m))
        .map(|m| m.recipient.as_str())
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["kaohe@example.cn", "renshe@example.cn"],
        "owner and 考核办 only"
    );

    // 人社局's mail greets 人社局 and names the figure in words, never
    // `metric=new_urban_jobs`.
    let mail = mails
        .iter()
        .find(|m| about(m) && m.recipient == "renshe@example.cn")
        .unwrap();
    let text = mail.text.clone();
    assert!(text.starts_with("致：人社局"), "{text}");
    assert!(text.contains("指标：新增城镇居民就业"), "{text}");
    assert!(
        !text.contains("metric=") && !text.contains("new_urban_jobs"),
        "{text}"
    );
    for m in mails.iter().filter(|m| about(m)) {
        assert!(
            !m.text.contains("致：医保局"),
            "医保局 gets nothing about new_urban_jobs"
        );
    }
}
