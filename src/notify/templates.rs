//! Mail text: subject, plain text and HTML, from embedded templates.
//!
//! Every string a rule or a reading provides (title, message, labels,
//! details, file names) is HTML-escaped before it reaches the HTML part.
//! Templates are filled in one pass, so a value that happens to contain
//! `{{items}}` is printed, not expanded.

use chrono_tz::Tz;

use crate::alerts::state::{Audience, Notice, NoticeKind, Severity};
use crate::readings::Labels;
use crate::rules::finding::subject_text;
use crate::status::format::{escape_html, format_number};
use crate::time::{to_local, Millis};

const MAIL_HTML: &str = include_str!("templates/mail.html");
const ITEM_HTML: &str = include_str!("templates/item.html");
const ROW_HTML: &str = include_str!("templates/row.html");
const CHART_HTML: &str = include_str!("templates/chart.html");
const MAIL_TEXT: &str = include_str!("templates/mail.txt");

/// A mail's words, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Replaces each `{{name}}` of `template` with its value, in one pass.
/// Unknown names are left as they are.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = &after[..end];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The time as officials read it, in the configured zone: `2021-03-01 09:00:00 +08:00`.
pub fn local_time(t: Millis, tz: Tz) -> String {
    to_local(t, tz).format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

/// What a notice is, in a word or two.
pub fn kind_label(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Firing => "告警",
        NoticeKind::Reminder => "仍未恢复（提醒）",
        NoticeKind::NoData => "缺少数据",
        NoticeKind::NoDataReminder => "仍缺少数据（提醒）",
        NoticeKind::Resolved => "已恢复",
        NoticeKind::DataReturned => "数据已到",
        NoticeKind::RuleError => "规则求值出错",
        NoticeKind::RuleRecovered => "规则恢复正常",
        NoticeKind::FinalVerdict => "年度结果：未完成",
    }
}

fn color(n: &Notice) -> &'static str {
    if n.kind.is_recovery() {
        return "#2e7d32";
    }
    match n.severity {
        Severity::Critical => "#c62828",
        Severity::Warning => "#ef6c00",
        Severity::Info => "#1565c0",
    }
}

/// Label values for the subject line: `南宫` or `南宫, S1`; empty for the rule as a whole.
fn subject_values(subject: &Labels) -> String {
    subject.values().cloned().collect::<Vec<_>>().join(", ")
}

/// Order within a mail: bad news first, worst severity first, then by rule and subject.
pub fn sort_notices(notices: &mut [&Notice]) {
    notices.sort_by(|a, b| {
        (
            a.kind.is_recovery(),
            std::cmp::Reverse(a.severity),
            a.kind,
            &a.rule,
            &a.subject,
        )
            .cmp(&(
                b.kind.is_recovery(),
                std::cmp::Reverse(b.severity),
                b.kind,
                &b.rule,
                &b.subject,
            ))
    });
}

/// The subject line: `[严重] 城镇登记失业率 ≤ 4.5%（南宫）`, with `等 N 项` when the
/// mail holds several items; `[已恢复] …` when all of it is good news.
pub fn subject_line(notices: &[&Notice]) -> String {
    let mut sorted = notices.to_vec();
    sort_notices(&mut sorted);
    let Some(head) = sorted.first() else {
        return "[rulewatch] 无新通知".into();
    };
    let tag = match head.kind {
        NoticeKind::Resolved | NoticeKind::DataReturned | NoticeKind::RuleRecovered => {
            "[已恢复] ".to_string()
        }
        NoticeKind::RuleError => "[规则错误] ".to_string(),
        NoticeKind::Firing => format!("[{}] ", head.severity.label_zh()),
        NoticeKind::Reminder => format!("[{}][提醒] ", head.severity.label_zh()),
        NoticeKind::NoData | NoticeKind::NoDataReminder => {
            format!("[{}][缺数据] ", head.severity.label_zh())
        }
        // words.md: `2021年度结果：未完成`, never 已恢复
        NoticeKind::FinalVerdict => match head.details.get("year").and_then(|y| y.as_i64()) {
            Some(year) => format!("[{year}年度结果：未完成] "),
            None => "[年度结果：未完成] ".to_string(),
        },
    };
    let mut line = tag;
    line.push_str(&one_line(&head.title));
    let values = subject_values(&head.subject);
    if !values.is_empty() {
        line.push_str(&format!("（{}）", one_line(&values)));
    }
    if sorted.len() > 1 {
        line.push_str(&format!(" 等 {} 项", sorted.len()));
    }
    line
}

/// Header values must not carry line breaks.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `(name, value)` rows describing one notice, unescaped.
pub(crate) fn rows(n: &Notice, tz: Tz) -> Vec<(&'static str, String)> {
    let mut rows: Vec<(&'static str, String)> = Vec::new();
    let number = |key: &str| n.details.get(key).and_then(|v| v.as_f64());
    let unit = n
        .details
        .get("unit")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if n.kind.audience() == Audience::Admin {
        rows.push(("规则", n.rule.clone()));
        rows.push(("错误", n.message.clone()));
    } else {
        rows.push(("对象", subject_text(&n.subject)));
        rows.push(("说明", n.message.clone()));
    }
    let value = number("value");
    let target = number("target").or_else(|| number("threshold"));
    if let Some(v) = value {
        rows.push(("当前值", format!("{}{unit}", format_number(v))));
    }
    if let Some(t) = target {
        rows.push(("目标/阈值", format!("{}{unit}", format_number(t))));
    }
    let gap = number("gap").or(match (value, target) {
        (Some(v), Some(t)) => Some(v - t),
        _ => None,
    });
    if let Some(g) = gap {
        let sign = if g > 0.0 { "+" } else { "" };
        rows.push(("差距", format!("{sign}{}{unit}", format_number(g))));
    }
    let known = [
        "value",
        "target",
        "threshold",
        "gap",
        "unit",
        "file",
        "line",
        "col",
        // a year's verdict: the subject and the label already say it
        "final",
        "year",
    ];
    let others: Vec<String> = n
        .details
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            serde_json::Value::Number(x) => {
                format!("{k}={}", x.as_f64().map_or(x.to_string(), format_number))
            }
            other => format!("{k}={other}"),
        })
        .collect();
    if !others.is_empty() {
        rows.push(("其他", others.join("; ")));
    }
    if let (Some(file), line) = (
        n.details.get("file").and_then(|v| v.as_str()),
        number("line"),
    ) {
        let col = number("col");
        let at = match (line, col) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
            (Some(l), None) => format!("{file}:{l}"),
            _ => file.to_string(),
        };
        rows.push(("位置", at));
    }
    rows.push(("开始于", local_time(n.since, tz)));
    rows.push(("本次评估", local_time(n.at, tz)));
    if let Some(owner) = &n.owner {
        rows.push(("责任单位", owner.clone()));
    }
    let hash: String = n.content_hash.chars().take(12).collect();
    rows.push((
        "规则文件",
        format!("{} （{}，版本 {hash}）", n.file.display(), n.rule),
    ));
    rows
}

/// A mail listing `notices` (several rules and subjects may share one mail).
pub fn render(notices: &[&Notice], tz: Tz) -> Rendered {
    render_with_charts(notices, tz, &std::collections::HashMap::new())
}

/// [`render`], with an inline chart (`<img src="cid:…">`) under each item
/// whose notice id is in `charts` (notice id → Content-ID), between the
/// marks of [`super::chart::marks`]: the sender keeps it once it is drawn.
pub fn render_with_charts(
    notices: &[&Notice],
    tz: Tz,
    charts: &std::collections::HashMap<String, String>,
) -> Rendered {
    let mut sorted = notices.to_vec();
    sort_notices(&mut sorted);
    let subject = subject_line(&sorted);
    let summary = if sorted.len() == 1 {
        "rulewatch 有 1 项新通知：".to_string()
    } else {
        format!("rulewatch 有 {} 项新通知：", sorted.len())
    };

    let mut text_items = String::new();
    let mut html_items = String::new();
    for (i, n) in sorted.iter().enumerate() {
        // Severity is the rule's word for a breach; good news and notes to
        // admin about the rule itself go without it.
        let tag = if n.kind.is_recovery() || n.kind.audience() == Audience::Admin {
            kind_label(n.kind).to_string()
        } else {
            format!("{}·{}", n.severity.label_zh(), kind_label(n.kind))
        };
        let rows = rows(n, tz);
        text_items.push_str(&format!("{}. 【{tag}】{}\n", i + 1, n.title));
        for (name, value) in &rows {
            // Continuation lines of multi-line values stay indented.
            let value = value.replace('\n', "\n        ");
            text_items.push_str(&format!("   {name}：{value}\n"));
        }
        text_items.push('\n');

        let html_rows: String = rows
            .iter()
            .map(|(name, value)| {
                let value = escape_html(value).replace('\n', "<br>");
                fill(ROW_HTML, &[("name", &escape_html(name)), ("value", &value)])
            })
            .collect();
        let chart = charts
            .get(&n.id())
            .map(|cid| {
                let (open, close) = super::chart::marks(cid);
                let img = fill(
                    CHART_HTML,
                    &[
                        ("cid", &escape_html(cid)),
                        ("alt", &escape_html(&format!("{} 趋势图", n.title))),
                    ],
                );
                format!("{open}{img}{close}")
            })
            .unwrap_or_default();
        html_items.push_str(&fill(
            ITEM_HTML,
            &[
                ("color", color(n)),
                ("tag", &escape_html(&tag)),
                ("title", &escape_html(&n.title)),
                ("rows", &html_rows),
                ("chart", &chart),
            ],
        ));
    }
    Rendered {
        text: fill(
            MAIL_TEXT,
            &[("summary", &summary), ("items", text_items.trim_end())],
        ),
        html: fill(
            MAIL_HTML,
            &[
                ("subject", &escape_html(&subject)),
                ("summary", &escape_html(&summary)),
                ("items", &html_items),
            ],
        ),
        subject,
    }
}

/// A free-form note to `admin` (a rule file that does not load, mail that
/// cannot be delivered): `[rulewatch] title`, `text` as the body.
pub fn render_note(title: &str, text: &str) -> Rendered {
    let subject = format!("[rulewatch] {}", one_line(title));
    let html_body = format!(
        "<pre style=\"white-space: pre-wrap;\">{}</pre>",
        escape_html(text)
    );
    Rendered {
        text: fill(MAIL_TEXT, &[("summary", title), ("items", text)]),
        html: fill(
            MAIL_HTML,
            &[
                ("subject", &escape_html(&subject)),
                ("summary", &escape_html(title)),
                ("items", &html_body),
            ],
        ),
        subject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn notice(kind: NoticeKind, county: &str) -> Notice {
        let mut details = serde_json::Map::new();
        details.insert("value".into(), 5.1.into());
        details.insert("threshold".into(), 4.5.into());
        details.insert("unit".into(), "%".into());
        let at = parse_time("2021-03-01T09:00", SH).unwrap();
        Notice {
            kind,
            rule: "unemployment-rate".into(),
            title: "城镇登记失业率 ≤ 4.5%".into(),
            severity: Severity::Critical,
            owner: Some("人社局".into()),
            file: "rules/unemployment.rhai".into(),
            content_hash: "0123456789abcdef".into(),
            subject: [("county".to_string(), county.to_string())].into(),
            at,
            since: at,
            message: format!("{county}城镇登记失业率 5.1% 超过 4.5%"),
            details,
            recipients: vec!["renshe@example.cn".into()],
        }
    }

    /// words.md: a year's final verdict reads `2021年度结果：未完成`, never 已恢复.
    #[test]
    fn a_final_verdict_is_named_as_the_years_result() {
        let mut v = notice(NoticeKind::FinalVerdict, "南宫");
        v.details.insert("final".into(), true.into());
        v.details.insert("year".into(), 2021.into());
        let line = subject_line(&[&v]);
        assert_eq!(line, "[2021年度结果：未完成] 城镇登记失业率 ≤ 4.5%（南宫）");
        assert!(!line.contains("已恢复"));
        assert_eq!(kind_label(NoticeKind::FinalVerdict), "年度结果：未完成");
        let text = render(&[&v], SH).text;
        assert!(text.contains("年度结果：未完成"), "{text}");
        assert!(
            !text.contains("final=") && !text.contains("year="),
            "{text}"
        );
    }

    #[test]
    fn subject_carries_severity_title_and_count() {
        let a = notice(NoticeKind::Firing, "南宫");
        let b = notice(NoticeKind::Firing, "威县");
        assert_eq!(subject_line(&[&a]), "[严重] 城镇登记失业率 ≤ 4.5%（南宫）");
        assert_eq!(
            subject_line(&[&a, &b]),
            "[严重] 城镇登记失业率 ≤ 4.5%（南宫） 等 2 项"
        );
        let r = notice(NoticeKind::Resolved, "南宫");
        assert_eq!(
            subject_line(&[&r]),
            "[已恢复] 城镇登记失业率 ≤ 4.5%（南宫）"
        );
        assert!(
            subject_line(&[&r, &a]).starts_with("[严重] "),
            "bad news leads"
        );
        let m = notice(NoticeKind::Reminder, "南宫");
        assert!(subject_line(&[&m]).starts_with("[严重][提醒] "));
        let mut w = notice(NoticeKind::NoData, "南宫");
        w.severity = Severity::Warning;
        assert!(subject_line(&[&w]).starts_with("[警告][缺数据] "));
        let mut i = notice(NoticeKind::Firing, "南宫");
        i.severity = Severity::Info;
        assert!(subject_line(&[&i]).starts_with("[提示] "));
    }

    #[test]
    fn body_has_value_target_gap_time_and_file() {
        let a = notice(NoticeKind::Firing, "南宫");
        let r = render(&[&a], SH);
        for needle in [
            "当前值：5.1%",
            "目标/阈值：4.5%",
            "差距：+0.6%",
            "对象：county=南宫",
            "2021-03-01 09:00:00 +08:00",
            "rules/unemployment.rhai",
            "0123456789ab",
            "人社局",
        ] {
            assert!(r.text.contains(needle), "text lacks {needle}:\n{}", r.text);
            let value = needle.split('：').next_back().unwrap();
            assert!(r.html.contains(value), "html lacks {value}:\n{}", r.html);
        }
    }

    #[test]
    fn html_escapes_everything_the_rule_provides() {
        let mut a = notice(NoticeKind::Firing, "<b>南宫</b>");
        a.title = "a < b & \"c\" {{items}}".into();
        a.message = "<script>alert(1)</script>".into();
        a.details.insert("note".into(), "<img src=x>".into());
        let r = render(&[&a], SH);
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(!r.html.contains("<b>南宫"), "{}", r.html);
        assert!(!r.html.contains("<img"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(r.html.contains("a &lt; b &amp; &quot;c&quot; {{items}}"));
        assert!(
            r.text.contains("<script>alert(1)</script>"),
            "text stays as written"
        );
    }

    #[test]
    fn subject_lines_have_no_line_breaks() {
        let mut a = notice(NoticeKind::Firing, "南宫");
        a.title = "two\nlines\r\n".into();
        assert_eq!(subject_line(&[&a]), "[严重] two lines（南宫）");
    }
}
