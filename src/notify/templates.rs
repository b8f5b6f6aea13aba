//! Mail text: subject, plain text and HTML, from embedded templates.
//!
//! Every string a rule or a reading provides (title, message, labels,
//! details, file names) is HTML-escaped before it reaches the HTML part.
//! Templates are filled in one pass, so a value that happens to contain
//! `{{items}}` is printed, not expanded.

use chrono_tz::Tz;

use crate::alerts::state::{Audience, Notice, NoticeKind, Severity};
use chrono::Datelike;

use crate::readings::Labels;
use crate::status::format::{escape_html, format_number};
use crate::status::Words;
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

impl Rendered {
    /// The mail with `致：NAME` as its first line (the reader's group), when known.
    pub fn greeting(mut self, name: Option<&str>) -> Rendered {
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            self.text = format!("致：{name}\n\n{}", self.text);
            let greet = format!("<p>致：{}</p>\n", escape_html(name));
            if let Some(at) = self.html.find("<p style=\"font-size: 1.1em;\">") {
                self.html.insert_str(at, &greet);
            }
        }
        self
    }
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
        NoticeKind::Reminder => "仍未改善（提醒）",
        NoticeKind::NoData => "缺数据",
        NoticeKind::NoDataReminder => "仍缺数据（提醒）",
        NoticeKind::Resolved => "已恢复",
        NoticeKind::DataReturned => "数据已到",
        NoticeKind::RuleError => "规则错误",
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

/// Label values for the subject line: `南宫` or `南宫、S1`; empty for the rule as a whole.
fn subject_values(subject: &Labels) -> String {
    Words::default().subject_values(subject)
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

/// `2021年6月16日 09:00`: local, to the minute, no zone (words.md).
pub fn when(t: Millis, tz: Tz) -> String {
    let l = to_local(t, tz);
    format!(
        "{}年{}月{}日 {}",
        l.year(),
        l.month(),
        l.day(),
        l.format("%H:%M")
    )
}

/// The label a notice is shown under: `2021年度结果：未完成` for a year's
/// verdict, else the kind's word.
pub fn notice_label(n: &Notice) -> String {
    match (n.kind, n.details.get("year").and_then(|y| y.as_i64())) {
        (NoticeKind::FinalVerdict, Some(year)) => format!("{year}年度结果：未完成"),
        (kind, _) => kind_label(kind).to_string(),
    }
}

/// A value with its unit as officials write it: `4.7%`, `98亿元`,
/// `第7名`, `52.9 µg/m³` (a unit starting with a Latin letter or µ gets a space).
pub fn with_unit(v: f64, unit: &str) -> String {
    let v = format_number(crate::status::format::round(v));
    match unit {
        "名" => format!("第{v}名"),
        u if u.starts_with(|c: char| c.is_ascii_alphabetic() || c == 'µ') => format!("{v} {u}"),
        u => format!("{v}{u}"),
    }
}

/// A difference as officials write it: percentages differ in 个百分点,
/// quantities keep their unit; ranks in places.
fn difference(d: f64, unit: &str) -> String {
    let v = format_number(crate::status::format::round(d.abs()));
    match unit {
        "%" => format!("{v}个百分点"),
        "名" => format!("{v}个名次"),
        u if u.starts_with(|c: char| c.is_ascii_alphabetic() || c == 'µ') => format!("{v} {u}"),
        u => format!("{v}{u}"),
    }
}

/// Whole calendar days from the deadline's date to `at`'s (local): 0 on the
/// deadline day, 1 the day after (words.md).
pub fn days_overdue(deadline: &str, at: Millis, tz: Tz) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(deadline.get(..10)?, "%Y-%m-%d").ok()?;
    Some((to_local(at, tz).date_naive() - day).num_days().max(0))
}

/// A rule file as readers are shown it: from its `rules/` folder on
/// (`rules/social/x.rhai`), not the machine's absolute path.
pub fn rule_file(path: &std::path::Path) -> String {
    let parts: Vec<_> = path.components().collect();
    match parts.iter().rposition(|c| c.as_os_str() == "rules") {
        Some(i) => parts[i..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        None => path.display().to_string(),
    }
}

/// `(name, value)` rows describing one notice, unescaped, every key through
/// its display name (no `key=value` reaches a reader). The one place a
/// notice becomes words: the mail (text and HTML) and the chat messages
/// read these rows.
pub fn rows(n: &Notice, tz: Tz) -> Vec<(String, String)> {
    rows_in(n, tz, &Words::default())
}

/// [`rows`] with the configured display names.
pub fn rows_in(n: &Notice, tz: Tz, words: &Words) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |name: &str, value: String| rows.push((name.to_string(), value));
    let number = |key: &str| n.details.get(key).and_then(|v| v.as_f64());
    let text = |key: &str| n.details.get(key).and_then(|v| v.as_str());
    let unit = text("unit").unwrap_or("").to_string();
    let admin = n.kind.audience() == Audience::Admin;
    if admin {
        row("规则", n.rule.clone());
        row("错误", n.message.clone());
    } else {
        for (k, v) in &n.subject {
            row(words.name(k).unwrap_or("对象"), words.value(k, v));
        }
    }
    let value = number("value");
    let target = number("target").or_else(|| number("threshold"));
    let milestone = text("deadline").filter(|_| !admin);
    match n.kind {
        // Good news says what is true now, not the old problem.
        NoticeKind::Resolved => {
            let now = match target {
                Some(t) => format!(
                    "{}评估已达到目标（{}）",
                    when(n.at, tz),
                    with_unit(t, &unit)
                ),
                None => format!("{}评估未发现问题", when(n.at, tz)),
            };
            let now = match milestone {
                Some(_) => format!("{}评估：已完成", when(n.at, tz)),
                None => now,
            };
            row("现状", now);
            if let Some(v) = value {
                row("此前", format!("{}（已消除）", with_unit(v, &unit)));
            }
        }
        NoticeKind::DataReturned => {
            row(
                "现状",
                format!("{}评估时应报数据已报送，按期考核", when(n.at, tz)),
            );
        }
        NoticeKind::RuleRecovered => row("现状", "规则已恢复正常求值".into()),
        _ if !admin => {
            row("说明", n.message.clone());
            if let Some(deadline) = milestone {
                let done = value.is_some_and(|v| v >= 1.0);
                row("完成情况", if done { "已完成" } else { "未完成" }.into());
                row("截止日期", deadline.to_string());
                if !done {
                    if let Some(days) = days_overdue(deadline, n.at, tz) {
                        row("逾期", format!("{days}天"));
                    }
                }
            } else {
                if let Some(v) = value {
                    row("当前值", with_unit(v, &unit));
                }
                if let Some(t) = target {
                    let t = match unit.as_str() {
                        "名" => format!("前{}名", format_number(t)),
                        _ => with_unit(t, &unit),
                    };
                    row("目标", t);
                }
                let gap = number("gap").or(match (value, target) {
                    (Some(v), Some(t)) => Some(v - t),
                    _ => None,
                });
                if let (Some(g), Some(_)) = (gap, target) {
                    row("差距", difference(g, &unit));
                }
            }
        }
        _ => {}
    }
    // Further details, each through its display name with its unit
    // (`concentration` + `concentration_unit` → 浓度：52.9 µg/m³); keys
    // without a display name are left out of the reader's text.
    let shown = [
        "value",
        "target",
        "threshold",
        "gap",
        "unit",
        "file",
        "line",
        "col",
        "final",
        "year",
        "deadline",
        "days_late",
    ];
    if !n.kind.is_recovery() {
        for (k, v) in &n.details {
            if shown.contains(&k.as_str()) || k.ends_with("_unit") {
                continue;
            }
            let Some(name) = words.name(k) else { continue };
            let unit = text(&format!("{k}_unit")).unwrap_or("");
            let value = match v {
                serde_json::Value::String(s) => format!("{s}{unit}"),
                serde_json::Value::Number(x) => match x.as_f64() {
                    Some(f) if unit.is_empty() => format_number(f),
                    Some(f) => with_unit(f, unit),
                    None => x.to_string(),
                },
                serde_json::Value::Bool(b) => if *b { "是" } else { "否" }.to_string(),
                _ => continue,
            };
            row(name, value);
        }
    }
    if admin {
        if let (Some(file), line) = (text("file"), number("line")) {
            let at = match (line, number("col")) {
                (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
                (Some(l), None) => format!("{file}:{l}"),
                _ => file.to_string(),
            };
            row("位置", at);
        }
    }
    if !n.kind.is_recovery() {
        row("开始于", when(n.since, tz));
    }
    row("本次评估", when(n.at, tz));
    if let Some(owner) = &n.owner {
        row("责任单位", owner.clone());
    }
    if admin {
        let hash: String = n.content_hash.chars().take(12).collect();
        row(
            "规则文件",
            format!("{} （{}，版本 {hash}）", n.file.display(), n.rule),
        );
    } else {
        row("依据", format!("{}（{}）", rule_file(&n.file), n.rule));
    }
    rows
}

/// A mail listing `notices` (several rules and subjects may share one mail).
pub fn render(notices: &[&Notice], tz: Tz) -> Rendered {
    render_with_charts(
        notices,
        tz,
        &std::collections::HashMap::new(),
        &Words::default(),
        None,
    )
}

/// What the chart's colours mean, in words (the picture itself holds only
/// dates and numbers). A rank finding (`unit: "名"`) is charted as places.
fn chart_legend(n: &Notice) -> String {
    let unit = n.details.get("unit").and_then(|u| u.as_str()).unwrap_or("");
    if unit == "名" {
        let of = n
            .details
            .get("counties")
            .and_then(|c| c.as_u64())
            .map(|c| format!("（共{c}个）"))
            .unwrap_or_default();
        return format!("蓝线：每月名次{of}，第1名在上，旁注“名次/总数”；橙色虚线：方阵线（前几名达标）；红点与浅红底：未达标的月份；顶部紫条：告警已持续的时段；红竖线：本次评估。");
    }
    let of_unit = if unit.is_empty() {
        String::new()
    } else {
        format!("（单位：{unit}）")
    };
    format!("蓝线：读数{of_unit}，旁注最新值；橙色虚线：目标线；红点与浅红底：未达标的读数；顶部紫条：告警已持续的时段；红竖线：本次评估。")
}

/// Most items a mail (or chat message) lists one by one; the rest are
/// counted per rule beneath them. A first evaluation of hundreds of rules
/// can notice tens of thousands of things at once: one mail of 47,940
/// items was 113 MB and took the daemon near 1 GB to render, and nobody
/// reads past the first screens of such a mail.
pub const MAX_LISTED: usize = 100;

/// What a message says of the items it does not list one by one: how
/// many, counted per rule and kind of notice, and where to read them. A
/// mail lists the first [`MAX_LISTED`]; a chat message as many as its
/// robot takes (see `chat::render`), which may also fold the last lines
/// into one ([`Unlisted::folded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlisted {
    /// `另有 N 项未逐条列出（…），按规则计：`
    pub heading: String,
    /// `【警告·告警】标题：130 项（县070、县071、县072等）`, in message order.
    pub lines: Vec<String>,
    /// The status page (`public_url`), when known.
    pub page: Option<String>,
    /// Items each line counts, and its rule (same order as `lines`).
    counts: Vec<(usize, String)>,
}

impl Unlisted {
    /// Where to read every item, as text.
    pub fn where_text(&self) -> String {
        match &self.page {
            Some(url) => format!("每一项的明细见状态页各规则的页面：{url}"),
            None => "每一项的明细见状态页各规则的页面（地址请问系统管理员）。".to_string(),
        }
    }

    /// The same, the address a markdown link (chat messages).
    pub fn where_markdown(&self) -> String {
        match &self.page {
            Some(url) => format!("每一项的明细见状态页各规则的页面：[{url}]({url})"),
            None => self.where_text(),
        }
    }

    /// The same, the address a link.
    fn where_html(&self) -> String {
        match &self.page {
            Some(url) => {
                let url = escape_html(url);
                format!("每一项的明细见状态页各规则的页面：<a href=\"{url}\">{url}</a>")
            }
            None => escape_html(&self.where_text()),
        }
    }

    /// Items the lines count, all together.
    pub fn counted(&self) -> usize {
        self.counts.iter().map(|(n, _)| n).sum()
    }

    /// The first `keep` lines as they are, the others as one line that
    /// counts them: `其余 12 条规则：45 项`, or with none kept `分属 12 条
    /// 规则，共 45 项` (the counts still add up).
    pub fn folded(&self, keep: usize) -> Unlisted {
        if keep >= self.lines.len() {
            return self.clone();
        }
        let rest = &self.counts[keep..];
        let items: usize = rest.iter().map(|(n, _)| n).sum();
        let mut rules: Vec<&str> = rest.iter().map(|(_, r)| r.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        let mut lines = self.lines[..keep].to_vec();
        lines.push(if keep == 0 {
            format!("分属 {} 条规则，共 {items} 项", rules.len())
        } else {
            format!("其余 {} 条规则：{items} 项", rules.len())
        });
        let mut counts = self.counts[..keep].to_vec();
        counts.push((items, String::new()));
        Unlisted {
            heading: self.heading.clone(),
            lines,
            page: self.page.clone(),
            counts,
        }
    }
}

/// How many subjects a line of [`Unlisted`] names before `等`.
const UNLISTED_EXAMPLES: usize = 3;

/// The tag an item is listed under: severity and kind for bad news of a
/// rule; the kind alone for good news, notes to admin and final verdicts.
pub fn item_tag(n: &Notice) -> String {
    if n.kind.is_recovery()
        || n.kind.audience() == Audience::Admin
        || n.kind == NoticeKind::FinalVerdict
    {
        notice_label(n)
    } else {
        format!("{}·{}", n.severity.label_zh(), kind_label(n.kind))
    }
}

/// What `sorted` holds past its first [`MAX_LISTED`] items (a mail's
/// list); `None` when every item is listed.
pub fn unlisted(sorted: &[&Notice], words: &Words, public_url: Option<&str>) -> Option<Unlisted> {
    unlisted_after(sorted, MAX_LISTED, words, public_url)
}

/// What `sorted` holds past its first `listed` items; `None` when every
/// item is listed. Fewer than [`MAX_LISTED`] listed is a chat message's
/// room running out, and the heading says so.
pub fn unlisted_after(
    sorted: &[&Notice],
    listed: usize,
    words: &Words,
    public_url: Option<&str>,
) -> Option<Unlisted> {
    let listed = listed.min(MAX_LISTED);
    let rest = sorted.get(listed..).filter(|r| !r.is_empty())?;
    // Runs of one rule and tag (the order keeps each run together).
    struct Run<'a> {
        first: &'a Notice,
        tag: String,
        count: usize,
        examples: Vec<String>,
    }
    let mut runs: Vec<Run> = Vec::new();
    for n in rest {
        let tag = item_tag(n);
        match runs.last_mut() {
            Some(run) if run.first.rule == n.rule && run.tag == tag => run.count += 1,
            _ => runs.push(Run {
                first: n,
                tag,
                count: 1,
                examples: Vec::new(),
            }),
        }
        let run = runs.last_mut().expect("just pushed or counted");
        if run.examples.len() < UNLISTED_EXAMPLES {
            let values = words.subject_values(&n.subject);
            if !values.is_empty() {
                run.examples.push(values);
            }
        }
    }
    let lines = runs
        .iter()
        .map(|run| {
            let which = match run.examples.len() {
                0 => String::new(),
                k if run.count > k => format!("（{}等）", run.examples.join("、")),
                _ => format!("（{}）", run.examples.join("、")),
            };
            format!(
                "【{}】{}：{} 项{which}",
                run.tag,
                one_line(&run.first.title),
                run.count
            )
        })
        .collect();
    let why = if listed == MAX_LISTED {
        format!("一条通知最多逐条列出 {MAX_LISTED} 项")
    } else {
        format!("群消息篇幅有限，逐条列出前 {listed} 项")
    };
    Some(Unlisted {
        heading: format!(
            "另有 {} 项未逐条列出（共 {} 项，{why}），按规则计：",
            rest.len(),
            sorted.len()
        ),
        lines,
        page: public_url.map(|base| format!("{base}/")),
        counts: runs
            .iter()
            .map(|run| (run.count, run.first.rule.clone()))
            .collect(),
    })
}

/// [`render`], with an inline chart (`<img src="cid:…">`) under each item
/// whose notice id is in `charts` (notice id → Content-ID), between the
/// marks of [`super::chart::marks`]: the sender keeps it once it is drawn.
pub fn render_with_charts(
    notices: &[&Notice],
    tz: Tz,
    charts: &std::collections::HashMap<String, String>,
    words: &Words,
    public_url: Option<&str>,
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
    for (i, n) in sorted.iter().enumerate().take(MAX_LISTED) {
        // Severity is the rule's word for a breach; good news and notes to
        // admin about the rule itself go without it.
        let tag = item_tag(n);
        let rows = rows_in(n, tz, words);
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
                        ("legend", &escape_html(&chart_legend(n))),
                        ("series", &super::chart::series_mark(cid)),
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
    if let Some(u) = unlisted(&sorted, words, public_url) {
        text_items.push_str(&u.heading);
        text_items.push('\n');
        for line in &u.lines {
            text_items.push_str(&format!("   - {line}\n"));
        }
        text_items.push_str(&u.where_text());
        text_items.push('\n');
        html_items.push_str(&format!(
            "<p>{}</p>\n<ul>\n{}</ul>\n<p>{}</p>\n",
            escape_html(&u.heading),
            u.lines
                .iter()
                .map(|l| format!("<li>{}</li>\n", escape_html(l)))
                .collect::<String>(),
            u.where_html()
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
            "目标：4.5%",
            "差距：0.6个百分点",
            "县（市、区）：南宫",
            "2021年3月1日 09:00",
            "rules/unemployment.rhai",
            "人社局",
        ] {
            assert!(r.text.contains(needle), "text lacks {needle}:\n{}", r.text);
            let value = needle.split('：').next_back().unwrap();
            assert!(r.html.contains(value), "html lacks {value}:\n{}", r.html);
        }
        assert!(!r.text.contains('='), "no key=value:\n{}", r.text);
    }

    /// A resolved mail says what is true now, not the old problem text.
    #[test]
    fn resolved_says_what_is_true_now() {
        let r = notice(NoticeKind::Resolved, "南宫");
        let text = render(&[&r], SH).text;
        assert!(
            text.contains("现状：2021年3月1日 09:00评估已达到目标（4.5%）"),
            "{text}"
        );
        assert!(!text.contains("超过"), "{text}");
    }

    /// words.md: 0 days overdue on the deadline day, 1 the day after.
    #[test]
    fn days_overdue_count_from_the_deadline_day() {
        let at = |t: &str| parse_time(t, SH).unwrap();
        assert_eq!(
            days_overdue("2022-01-01", at("2022-01-01T09:00"), SH),
            Some(0)
        );
        assert_eq!(
            days_overdue("2022-01-01", at("2022-01-02T00:00"), SH),
            Some(1)
        );
        assert_eq!(
            days_overdue("2022-01-01", at("2022-01-04T09:00"), SH),
            Some(3)
        );
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
