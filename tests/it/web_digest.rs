//! The monthly digest for the 2021 fixtures at a fixed date (every rule
//! replayed on its schedule from January): what each group reads.

use crate::web_support;

use rulewatch::notify::digest::{self, Digest, Trend};
use rulewatch::status::StateLabel;
use web_support::{t, Workspace};

fn digest_of<'a>(all: &'a [Digest], group: &str) -> &'a Digest {
    all.iter()
        .find(|d| d.group == group)
        .unwrap_or_else(|| panic!("no digest for `{group}`"))
}

#[test]
fn december_first_digest_for_the_2021_fixtures() {
    let ws = Workspace::new(&[]);
    let at = "2021-12-01T09:00";
    let snapshot = ws.replay("2021-01-01", at);
    let config = ws.config();
    let all = digest::digests(&snapshot, &config, t(at)).unwrap();
    if std::env::var("RULEWATCH_PRINT_DIGEST").is_ok() {
        for d in &all {
            println!(
                "=== {} → {:?}\n{}\n{}\n",
                d.group, d.recipients, d.subject, d.text
            );
        }
    }
    // Every group that some rule notifies gets one digest; each lists exactly its rules.
    let groups: Vec<&str> = all.iter().map(|d| d.group.as_str()).collect();
    for g in ["agri", "env", "hr", "kaohe", "park", "edu", "water"] {
        assert!(groups.contains(&g), "{groups:?}");
    }
    for d in &all {
        for i in &d.items {
            assert!(i.status.entry.rule.meta.notify.contains(&d.group));
        }
        assert_eq!(d.recipients, config.recipients[&d.group]);
    }

    // 农业农村局: grain output 24.3 < 25 万吨 has fired since 2021-11-16.
    let agri = digest_of(&all, "agri");
    let grain = agri
        .items
        .iter()
        .find(|i| i.status.id() == "grain-output")
        .unwrap();
    assert_eq!(grain.status.state, StateLabel::Firing);
    assert_eq!(agri.items[0].status.id(), "grain-output", "worst first");
    assert!(agri.subject.contains("2021年12月"), "{}", agri.subject);
    assert!(agri.subject.contains("告警 1 项"), "{}", agri.subject);
    let attention = agri.text.split("二、逾期未报").next().unwrap();
    assert!(attention.contains("粮食总产量25万吨以上"), "{}", agri.text);
    assert!(
        attention.contains("当前 24.3万吨；目标 25万吨；差 0.7万吨"),
        "{}",
        agri.text
    );
    assert!(
        attention.contains("自 2021-11-16 起已 15 天"),
        "{}",
        agri.text
    );

    // 人社局: unemployment back under 4.5% since June; the November figure
    // (stamped 11-30) against October's is the trend.
    let hr = digest_of(&all, "hr");
    let unemployment = hr
        .items
        .iter()
        .find(|i| i.status.id() == "unemployment-rate")
        .unwrap();
    assert_eq!(unemployment.status.state, StateLabel::Ok);
    match unemployment.trend {
        Trend::Change { from_at, to_at, .. } => {
            assert_eq!(from_at, t("2021-10-31"));
            assert_eq!(to_at, t("2021-11-30"));
        }
        ref other => panic!("{other:?}"),
    }
    assert!(hr.text.contains("城镇登记失业率不超过4.5%"), "{}", hr.text);
    assert!(hr.text.contains("较一个月前"), "{}", hr.text);
    // Pace targets show the pace and the full-year target.
    assert!(hr.text.contains("（全年 5000人）"), "{}", hr.text);

    // 生态环境局: a water section's October figure never came: overdue.
    let env = digest_of(&all, "env");
    assert_eq!(env.overdue.len(), 1, "{:?}", env.overdue);
    let overdue = env.text.split("二、逾期未报").nth(1).unwrap();
    assert!(overdue.contains("西沙河段芦头断面(合成)"), "{}", env.text);
    assert!(env.subject.contains("逾期未报 1 项"), "{}", env.subject);

    // Half-yearly figures: no new reading within the month is said so.
    let nature = digest_of(&all, "nature");
    assert!(
        nature
            .text
            .contains("一个月内无新数据（最新为 2021-06-30）"),
        "{}",
        nature.text
    );

    // The HTML carries the same table, escaped.
    assert!(agri.html.contains("<td style=\""));
    assert!(agri.html.contains("粮食总产量25万吨以上"));
}

#[test]
fn digest_mails_are_queued_once_per_month() {
    let ws = Workspace::new(&[]);
    let at = t("2021-12-01T09:00");
    let snapshot = ws.replay("2021-11-01", "2021-12-01T09:00");
    let config = ws.config();
    let conn = rulewatch::alerts::open_db(&config.store_path).unwrap();
    let first = digest::queue(&conn, &snapshot, &config, at).unwrap();
    let groups_with_rules = digest::digests(&snapshot, &config, at).unwrap().len();
    assert!(
        first.len() >= groups_with_rules,
        "one per address: {first:?}"
    );
    let again = digest::queue(&conn, &snapshot, &config, at + 60_000).unwrap();
    assert!(again.is_empty(), "same month queued again: {again:?}");
    // The configured schedule (rulewatch.ron) is the 1st at 09:00.
    let ticks = config
        .digest
        .schedule
        .between(t("2021-01-01"), t("2021-12-31"), web_support::SH);
    assert_eq!(ticks.len(), 12);
    assert_eq!(ticks[11], at);
}
