//! The monthly digest: one mail per recipient group, summarising every target
//! the group is told about (each rule whose `notify` names it): its state,
//! the value against the target, the trend since a month ago, and what is
//! overdue. The report leaders read, not only alarms.
//!
//! Built from the same [`StatusSource`] as the status page, so the digest and
//! the page never disagree. Sent on `digest.schedule` (default the 1st of
//! each month, 09:00 local); the Message-ID is keyed by group, address and
//! month, so queuing the same month's digest twice sends it once.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{Datelike, Months};
use rusqlite::Connection;

use super::{message_id, MailKind, OutgoingMail};
use crate::alerts::{Alert, HistoryQuery, State};
use crate::config::Config;
use crate::rules::loader::ChartLine;
use crate::status::format::{escape_html as escape, format_number, round};
use crate::status::{rule_status, Figure, FigureSource, RuleStatus, StateLabel, StatusSource};
use crate::time::{to_local, Millis, DAY};

/// How a target moved since a month before the digest.
#[derive(Debug, Clone, PartialEq)]
pub enum Trend {
    /// `from` (at or before a month ago) → `to` (the latest reading).
    Change {
        from: f64,
        to: f64,
        from_at: Millis,
        to_at: Millis,
    },
    /// No reading newer than a month ago; the latest is from `latest`.
    Stale { latest: Millis },
    /// Readings only from the last month: nothing to compare with.
    New,
    /// The rule has no chart, or several subjects: no single trend.
    Unknown,
}

/// One target in a digest.
#[derive(Debug, Clone)]
pub struct DigestItem {
    pub status: RuleStatus,
    pub trend: Trend,
}

/// One group's digest, rendered.
#[derive(Debug, Clone)]
pub struct Digest {
    pub group: String,
    pub recipients: Vec<String>,
    /// The bureaus that own the group's rules, for the greeting.
    pub owners: Vec<String>,
    pub at: Millis,
    pub items: Vec<DigestItem>,
    /// Active `no_data` alerts of the group's rules: figures not reported in time.
    pub overdue: Vec<(String, Alert)>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn trend(status: &RuleStatus, at: Millis, tz: chrono_tz::Tz) -> Trend {
    let Some(chart) = status.chart.as_ref().filter(|c| c.lines.len() == 1) else {
        return Trend::Unknown;
    };
    let points = &chart.lines[0].points;
    let Some(&(to_at, to)) = points.last() else {
        return Trend::Unknown;
    };
    let local = to_local(at, tz);
    let month_ago = local
        .checked_sub_months(Months::new(1))
        .map(|t| t.timestamp_millis())
        .unwrap_or(at - 30 * DAY);
    if to_at <= month_ago {
        return Trend::Stale { latest: to_at };
    }
    match points.iter().rev().find(|(t, _)| *t <= month_ago) {
        Some(&(from_at, from)) => Trend::Change {
            from,
            to,
            from_at,
            to_at,
        },
        None => Trend::New,
    }
}

fn num(v: f64, unit: &str) -> String {
    format!("{}{unit}", format_number(round(v)))
}

/// A difference: between percentages in 个百分点 (words.md), else in the unit.
fn diff(v: f64, unit: &str) -> String {
    match unit {
        "%" => format!("{}个百分点", format_number(round(v))),
        _ => num(v, unit),
    }
}

fn trend_text(t: &Trend, unit: &str, tz: chrono_tz::Tz) -> String {
    match t {
        Trend::Change { from, to, .. } => {
            let d = to - from;
            if d.abs() < 1e-9 {
                format!("与一个月前持平（{}）", num(*to, unit))
            } else {
                format!(
                    "较一个月前{}{}（{} → {}）",
                    if d > 0.0 { "上升 " } else { "下降 " },
                    diff(d.abs(), unit),
                    num(*from, unit),
                    num(*to, unit)
                )
            }
        }
        Trend::Stale { latest } => format!(
            "一个月内无新数据（最新为 {}）",
            to_local(*latest, tz).format("%Y-%m-%d")
        ),
        Trend::New => "本月首次有数据".into(),
        Trend::Unknown => "—".into(),
    }
}

fn figure_text(f: &Option<Figure>, status: &RuleStatus) -> (String, String, String) {
    let Some(f) = f else {
        return ("—".into(), "—".into(), "—".into());
    };
    let target = match (
        f.target,
        status.entry.rule.meta.chart.as_ref().map(|c| c.line),
    ) {
        (Some(t), Some(ChartLine::Pace(total))) if f.source == FigureSource::Reading => {
            format!("序时 {}（全年 {}）", num(t, &f.unit), num(total, &f.unit))
        }
        (Some(t), _) => num(t, &f.unit),
        (None, _) => "—".into(),
    };
    let gap = match (f.gap, f.source) {
        (None, _) => "—".into(),
        (Some(g), FigureSource::Finding) => format!("差 {}", diff(g.abs(), &f.unit)),
        (Some(g), FigureSource::Reading) if g >= 0.0 => format!("比目标 +{}", diff(g, &f.unit)),
        (Some(g), FigureSource::Reading) => format!("比目标 −{}", diff(-g, &f.unit)),
    };
    let mut value = num(f.value, &f.unit);
    if !f.subject.is_empty() && f.subject != "—" {
        value = format!("{value}（{}）", f.subject);
    }
    (value, target, gap)
}

fn days(from: Millis, to: Millis) -> i64 {
    ((to - from) / DAY).max(0)
}

/// The digests due at `at`: one per recipient group that is told about at
/// least one loaded rule.
pub fn digests(
    source: &dyn StatusSource,
    config: &Config,
    at: Millis,
) -> Result<Vec<Digest>, String> {
    let tz = source.timezone();
    let all_alerts = source.alerts(None)?;
    let entries = source.rules();
    let mut out = Vec::new();
    for (group, recipients) in &config.recipients {
        let mut items = Vec::new();
        let mut overdue = Vec::new();
        let mut owners = BTreeSet::new();
        for entry in entries
            .iter()
            .filter(|e| e.rule.meta.notify.contains(group))
        {
            let id = entry.rule.meta.id.clone();
            let alerts: Vec<Alert> = all_alerts
                .iter()
                .filter(|a| a.rule == id)
                .cloned()
                .collect();
            let history = source
                .history(&HistoryQuery {
                    rule: Some(id),
                    until: Some(at),
                    ..Default::default()
                })
                .unwrap_or_default();
            for a in alerts.iter().filter(|a| a.state == State::NoData) {
                overdue.push((entry.rule.meta.title.clone(), a.clone()));
            }
            if let Some(o) = &entry.rule.meta.owner {
                owners.insert(o.clone());
            }
            let status = rule_status(source, entry.clone(), alerts, &history, at);
            // 未评估 is noise to a reader: only what has been judged is listed.
            if status.state == StateLabel::Unknown {
                continue;
            }
            let trend = trend(&status, at, tz);
            items.push(DigestItem { status, trend });
        }
        // Nothing judged yet (before the first evaluation): no digest.
        if items.is_empty() {
            continue;
        }
        items.sort_by(|a, b| (a.status.state, a.status.id()).cmp(&(b.status.state, b.status.id())));
        let owners: Vec<String> = owners.into_iter().collect();
        let name = config.group_name(group);
        let (subject, text, html) = render(&name, &items, &overdue, at, tz);
        out.push(Digest {
            group: group.clone(),
            recipients: recipients.clone(),
            owners,
            at,
            items,
            overdue,
            subject,
            text,
            html,
        });
    }
    Ok(out)
}

fn render(
    group: &str,
    items: &[DigestItem],
    overdue: &[(String, Alert)],
    at: Millis,
    tz: chrono_tz::Tz,
) -> (String, String, String) {
    let local = to_local(at, tz);
    let date = format!("{}年{}月{}日", local.year(), local.month(), local.day());
    let firing: Vec<&DigestItem> = items
        .iter()
        .filter(|i| i.status.state == StateLabel::Firing || i.status.state == StateLabel::Error)
        .collect();
    let mut counts: Vec<(StateLabel, usize)> = Vec::new();
    for i in items {
        match counts.iter_mut().find(|(s, _)| *s == i.status.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((i.status.state, 1)),
        }
    }
    counts.sort();
    let count_text = counts
        .iter()
        .map(|(s, n)| format!("{} {n} 项", s.zh()))
        .collect::<Vec<_>>()
        .join("、");
    // The greeting names the reader's own group (致：人社局).
    let who = group.to_string();
    let verdicts: Vec<&DigestItem> = items
        .iter()
        .filter(|i| i.status.state.is_verdict())
        .collect();
    let mut years: Vec<i32> = verdicts.iter().filter_map(|i| i.status.year()).collect();
    years.sort_unstable_by(|a, b| b.cmp(a));
    years.dedup();
    let subject = format!(
        "[月报] {}年{}月 目标进展：{} 项目标，告警 {} 项，逾期未报 {} 项（{}）",
        local.year(),
        local.month(),
        items.len(),
        firing
            .iter()
            .filter(|i| i.status.state == StateLabel::Firing)
            .count(),
        overdue.len(),
        group
    );

    // Plain text: complete on its own.
    let mut text = String::new();
    let _ = writeln!(text, "目标进展月报 · {date}");
    let _ = writeln!(text, "致：{who}");
    let _ = writeln!(text, "共 {} 项目标：{count_text}。\n", items.len());
    let _ = writeln!(text, "一、需要关注");
    if firing.is_empty() {
        let _ = writeln!(text, "   无。");
    }
    for (n, i) in firing.iter().enumerate() {
        let s = &i.status;
        let (value, target, gap) = figure_text(&s.figure, s);
        let since = s
            .worst_alert()
            .map(|a| {
                format!(
                    "，自 {} 起已 {} 天",
                    to_local(a.active_since, tz).format("%Y-%m-%d"),
                    days(a.active_since, at)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "   {}. 【{}】{}{since}\n      当前 {value}；目标 {target}；{gap}",
            n + 1,
            s.state.zh(),
            s.entry.rule.meta.title
        );
        if let Some(a) = s.worst_alert() {
            let _ = writeln!(text, "      {}", a.message);
        }
    }
    for y in &years {
        let _ = writeln!(text, "\n{y}年度结果");
        for i in verdicts.iter().filter(|i| i.status.year() == Some(*y)) {
            let s = &i.status;
            let (value, target, _) = figure_text(&s.figure, s);
            let figures = if value == "—" {
                String::new()
            } else {
                format!("：当前 {value}，目标 {target}")
            };
            let _ = writeln!(
                text,
                "   - 【{}】{}{figures}",
                s.state.zh(),
                s.entry.rule.meta.title
            );
        }
    }
    let _ = writeln!(text, "\n二、逾期未报");
    if overdue.is_empty() {
        let _ = writeln!(text, "   无。");
    }
    for (title, a) in overdue {
        let _ = writeln!(
            text,
            "   - {}：{}（自 {} 起）",
            title,
            a.message,
            to_local(a.active_since, tz).format("%Y-%m-%d")
        );
    }
    let _ = writeln!(text, "\n三、全部目标");
    for (n, i) in items.iter().enumerate() {
        let s = &i.status;
        let (value, target, gap) = figure_text(&s.figure, s);
        let unit = s.figure.as_ref().map(|f| f.unit.as_str()).unwrap_or("");
        let _ = writeln!(
            text,
            "   {}. [{}] {}\n      当前 {value}；目标 {target}；{gap}；{}",
            n + 1,
            s.label(),
            s.entry.rule.meta.title,
            trend_text(&i.trend, unit, tz)
        );
    }
    let _ = write!(
        text,
        "\n--\n状态页可查看每项目标的趋势图和告警历史。本邮件由 rulewatch 每月自动发送，请勿直接回复。"
    );

    // HTML, inline styles only (mail clients drop <style>).
    let td = "padding: 0.3em 0.5em; border-bottom: 1px solid #eee; vertical-align: top;";
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family: 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif; color: #222; max-width: 56em;\">\n<h2 style=\"margin: 0.3em 0;\">目标进展月报 · {}</h2>\n<p>致：{}<br>共 {} 项目标：{}。</p>\n",
        escape(&subject),
        escape(&date),
        escape(&who),
        items.len(),
        escape(&count_text)
    );
    html.push_str("<h3>一、需要关注</h3>\n");
    if firing.is_empty() {
        html.push_str("<p>无。</p>\n");
    } else {
        html.push_str("<ol>\n");
        for i in &firing {
            let s = &i.status;
            let (value, target, gap) = figure_text(&s.figure, s);
            let _ = writeln!(
                html,
                "<li><b style=\"color: {};\">【{}】</b>{}<br>当前 {}；目标 {}；{}{}</li>",
                color(s.state),
                s.state.zh(),
                escape(&s.entry.rule.meta.title),
                escape(&value),
                escape(&target),
                escape(&gap),
                s.worst_alert()
                    .map(|a| format!(
                        "<br><span style=\"color: #555;\">{}</span>",
                        escape(&a.message)
                    ))
                    .unwrap_or_default()
            );
        }
        html.push_str("</ol>\n");
    }
    for y in &years {
        let _ = writeln!(html, "<h3>{y}年度结果</h3>\n<ul>");
        for i in verdicts.iter().filter(|i| i.status.year() == Some(*y)) {
            let s = &i.status;
            let (value, target, _) = figure_text(&s.figure, s);
            let figures = if value == "—" {
                String::new()
            } else {
                format!("：当前 {}，目标 {}", escape(&value), escape(&target))
            };
            let _ = writeln!(
                html,
                "<li><b style=\"color: {};\">【{}】</b>{}{figures}</li>",
                color(s.state),
                s.state.zh(),
                escape(&s.entry.rule.meta.title)
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<h3>二、逾期未报</h3>\n");
    if overdue.is_empty() {
        html.push_str("<p>无。</p>\n");
    } else {
        html.push_str("<ul>\n");
        for (title, a) in overdue {
            let _ = writeln!(
                html,
                "<li>{}：{}（自 {} 起）</li>",
                escape(title),
                escape(&a.message),
                to_local(a.active_since, tz).format("%Y-%m-%d")
            );
        }
        html.push_str("</ul>\n");
    }
    let _ = write!(
        html,
        "<h3>三、全部目标</h3>\n<table style=\"border-collapse: collapse; width: 100%; font-size: 0.9em;\">\n<tr style=\"background: #f0f0f0;\"><th style=\"{td} text-align: left;\">状态</th><th style=\"{td} text-align: left;\">目标</th><th style=\"{td} text-align: left;\">当前值</th><th style=\"{td} text-align: left;\">目标值</th><th style=\"{td} text-align: left;\">差距</th><th style=\"{td} text-align: left;\">较一个月前</th></tr>\n"
    );
    for i in items {
        let s = &i.status;
        let (value, target, gap) = figure_text(&s.figure, s);
        let unit = s.figure.as_ref().map(|f| f.unit.as_str()).unwrap_or("");
        let _ = writeln!(
            html,
            "<tr><td style=\"{td} color: {}; font-weight: bold; white-space: nowrap;\">{}</td><td style=\"{td}\">{}</td><td style=\"{td}\">{}</td><td style=\"{td}\">{}</td><td style=\"{td}\">{}</td><td style=\"{td}\">{}</td></tr>",
            color(s.state),
            escape(&s.label()),
            escape(&s.entry.rule.meta.title),
            escape(&value),
            escape(&target),
            escape(&gap),
            escape(&trend_text(&i.trend, unit, tz))
        );
    }
    html.push_str("</table>\n<p style=\"color: #777; font-size: 0.85em;\">状态页可查看每项目标的趋势图和告警历史。本邮件由 rulewatch 每月自动发送，请勿直接回复。</p>\n</body>\n</html>\n");
    (subject, text, html)
}

fn color(s: StateLabel) -> &'static str {
    match s {
        StateLabel::Ok => "#2e7d32",
        StateLabel::Pending => "#f9a825",
        StateLabel::Firing => "#c62828",
        StateLabel::Missed => "#b71c1c",
        StateLabel::Met => "#1b5e20",
        StateLabel::NoData => "#546e7a",
        StateLabel::Error => "#6a1b9a",
        StateLabel::Unknown => "#9e9e9e",
    }
}

/// The digests as mails, one per address of each group; the Message-ID is
/// keyed by (group, address, month), so a month's digest is queued once.
pub fn compose(digests: &[Digest], tz: chrono_tz::Tz) -> Vec<OutgoingMail> {
    let mut out = Vec::new();
    for d in digests {
        let month = to_local(d.at, tz).format("%Y-%m").to_string();
        for to in &d.recipients {
            out.push(OutgoingMail {
                message_id: message_id(["digest", d.group.as_str(), to.as_str(), month.as_str()]),
                channel: super::ChannelKind::Mail,
                recipient: to.clone(),
                kind: MailKind::Alert,
                subject: d.subject.clone(),
                text: d.text.clone(),
                html: d.html.clone(),
                items: Vec::new(),
                inline: Vec::new(),
                charts: Vec::new(),
            });
        }
    }
    out
}

/// Queues `at`'s digests in the outbox (the sender delivers them). Returns
/// the Message-IDs newly queued (already queued this month: none).
pub fn queue(
    conn: &Connection,
    source: &dyn StatusSource,
    config: &Config,
    at: Millis,
) -> Result<Vec<String>, String> {
    let mails = compose(&digests(source, config, at)?, source.timezone());
    let mut queued = Vec::new();
    for mail in &mails {
        if super::outbox::enqueue(conn, mail, at).map_err(|e| e.to_string())? {
            queued.push(mail.message_id.clone());
        }
    }
    Ok(queued)
}
