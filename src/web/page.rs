//! The HTML of the status pages, written out with `format!` around one
//! embedded stylesheet. Every value from a rule, a reading, an alert or the
//! config is passed through [`escape`]; only this file's own markup is not.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono_tz::Tz;

use super::escape;
use super::svg;
use crate::alerts::{HistoryEvent, HistoryQuery};
use crate::rules::loader::{Breach, ChartLine, ChartRange};
use crate::status::format::{format_number, round};
use crate::status::series::ChartData;
use crate::status::{self, Figure, FigureSource, RuleStatus, StateLabel, StatusSource};
use crate::time::{format_duration, to_local, Millis};

const STYLE: &str = include_str!("style.css");

/// How many history rows the rule page lists (newest first).
const HISTORY_ROWS: usize = 200;

fn local(t: Millis, tz: Tz) -> String {
    to_local(t, tz).format("%Y-%m-%d %H:%M").to_string()
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n",
        escape(title)
    )
}

/// A state badge; a year's result reads `2021年度结果：未完成`.
fn status_badge(s: &RuleStatus) -> String {
    format!(
        "<span class=\"badge {}\" title=\"{}\">{}</span>",
        s.state.class(),
        escape(s.state.help()),
        escape(&s.label())
    )
}

fn badge(state: StateLabel) -> String {
    format!(
        "<span class=\"badge {}\" title=\"{}\">{}</span>",
        state.class(),
        escape(state.help()),
        state.zh()
    )
}

fn value(v: f64, unit: &str) -> String {
    match unit {
        "名" => escape(&format!("第{}名", format_number(round(v)))), // a place
        _ => escape(&format!("{}{unit}", format_number(round(v)))),
    }
}

/// The value / target / gap rows of a figure, as `<dt>/<dd>` pairs.
fn figure_rows(f: &Figure, status: &RuleStatus, tz: Tz) -> String {
    let mut out = String::new();
    let subject = if f.subject.is_empty() || f.subject == "—" {
        String::new()
    } else {
        format!("（{}）", escape(&f.subject))
    };
    let when =
        f.at.map(|t| {
            format!(
                "<span class=\"muted\">，{}</span>",
                to_local(t, tz).format("%Y-%m-%d")
            )
        })
        .unwrap_or_default();
    let _ = write!(
        out,
        "<dt>当前值</dt><dd><b>{}</b>{subject}{when}</dd>",
        value(f.value, &f.unit)
    );
    if let Some(t) = f.target {
        let spec = status.entry.rule.meta.chart.as_ref();
        let (label, extra) = match spec.map(|s| s.line) {
            Some(ChartLine::Pace(total)) if f.source == FigureSource::Reading => (
                "序时目标",
                format!(
                    "<span class=\"muted\">（全年 {}）</span>",
                    value(total, &f.unit)
                ),
            ),
            _ if spec.is_some_and(|s| s.year_end) => ("年底目标", String::new()),
            _ => ("目标", String::new()),
        };
        let rank = f.unit == "名";
        let side = match spec.and_then(|s| s.breach) {
            _ if rank => "",
            Some(Breach::Above) => "（上限）",
            Some(Breach::Below) if !matches!(spec.map(|s| s.line), Some(ChartLine::Pace(_))) => {
                "（下限）"
            }
            _ => "",
        };
        let _ = write!(
            out,
            "<dt>{label}</dt><dd>{}{side}{extra}</dd>",
            if rank {
                escape(&format!("前{}名", format_number(round(t))))
            } else {
                value(t, &f.unit)
            }
        );
    }
    if let Some(g) = f.gap {
        let text = match f.source {
            // A gap in places is a count of places, not a place (`第2名`).
            FigureSource::Finding if f.unit == "名" => {
                format!("{} 个名次", format_number(round(g.abs())))
            }
            FigureSource::Finding => value(g.abs(), &f.unit),
            FigureSource::Reading if f.unit == "名" && g > 0.0 => {
                format!("落后 {} 个名次", format_number(round(g)))
            }
            FigureSource::Reading if f.unit == "名" => "在方阵内".to_string(),
            FigureSource::Reading if g.abs() < 1e-9 => "正好在目标线上".to_string(),
            FigureSource::Reading if g > 0.0 => format!("高于目标 {}", value(g, &f.unit)),
            FigureSource::Reading => format!("低于目标 {}", value(-g, &f.unit)),
        };
        let _ = write!(out, "<dt>差距</dt><dd>{text}</dd>");
    }
    out
}

fn chart_alt(status: &RuleStatus, chart: &ChartData) -> String {
    let mut alt = format!("{} 趋势图", status.entry.rule.meta.title);
    if !chart.label.is_empty() {
        alt.push_str(&format!("：{}", chart.label));
    }
    alt
}

fn card(s: &RuleStatus, tz: Tz) -> String {
    let meta = &s.entry.rule.meta;
    let mut out = String::new();
    let _ = write!(
        out,
        "<article class=\"card {}\" id=\"rule-{}\">\n<h3>{} <a href=\"/rules/{}\">{}</a></h3>\n<dl>",
        s.state.class(),
        escape(&meta.id),
        status_badge(s),
        escape(&meta.id),
        escape(&meta.title),
    );
    match &s.figure {
        Some(f) => out.push_str(&figure_rows(f, s, tz)),
        None => out.push_str("<dt>当前值</dt><dd class=\"muted\">—</dd>"),
    }
    let _ = writeln!(
        out,
        "<dt>最近评估</dt><dd>{}</dd></dl>",
        s.last_eval
            .map(|t| escape(&local(t, tz)))
            .unwrap_or_else(|| "<span class=\"muted\">尚未评估</span>".into())
    );
    if let Some(a) = s.worst_alert() {
        let _ = writeln!(out, "<p class=\"msg\">{}</p>", escape(&a.message));
    }
    if let Some(chart) = &s.chart {
        out.push_str(&svg::render(chart, svg::SMALL, tz, &chart_alt(s, chart)));
        if !chart.label.is_empty() {
            let _ = write!(out, "<p class=\"caption\">{}</p>", escape(&chart.label));
        }
    } else {
        out.push_str(
            "<p class=\"caption muted\">此类目标(节点、按期报送、综合指数排名)无趋势图</p>",
        );
    }
    out.push_str("\n</article>\n");
    out
}

/// `GET /`: every rule, grouped by owner.
pub fn index(source: &dyn StatusSource) -> String {
    let tz = source.timezone();
    let statuses = match status::all(source) {
        Ok(s) => s,
        Err(e) => return error_page("无法读取告警状态", &e),
    };
    let mut by_owner: BTreeMap<&str, Vec<&RuleStatus>> = BTreeMap::new();
    let mut counts: BTreeMap<StateLabel, usize> = BTreeMap::new();
    // A year's results (its year over, met or missed) are grouped by year,
    // above the bureaus' current targets.
    let mut by_year: BTreeMap<std::cmp::Reverse<i32>, Vec<&RuleStatus>> = BTreeMap::new();
    for s in &statuses {
        match s.year().filter(|_| s.state.is_verdict()) {
            Some(y) => by_year.entry(std::cmp::Reverse(y)).or_default().push(s),
            None => by_owner.entry(s.owner()).or_default().push(s),
        }
        *counts.entry(s.state).or_default() += 1;
    }
    // Bureaus with something wrong first (worst first), then the rest by name.
    let mut groups: Vec<(&str, Vec<&RuleStatus>)> = by_owner.into_iter().collect();
    groups.sort_by_key(|(owner, list)| {
        (
            list.iter()
                .map(|s| s.state)
                .min()
                .unwrap_or(StateLabel::Unknown),
            *owner,
        )
    });
    let mut out = head("目标监测 · rulewatch");
    let _ = write!(
        out,
        "<body>\n<header>\n<h1>政府工作报告目标监测</h1>\n<p class=\"muted\">共 {} 项目标，按责任单位分组；页面生成于 {}（{}）。点击标题查看规则详情与历史。</p>\n<p class=\"summary\">",
        statuses.len(),
        escape(&local(source.now(), tz)),
        escape(tz.name()),
    );
    for (state, n) in &counts {
        let _ = write!(out, "{} {n} 项　", badge(*state));
    }
    out.push_str("</p>\n<nav>");
    for (i, (owner, _)) in groups.iter().enumerate() {
        let _ = write!(out, "<a href=\"#owner-{i}\">{}</a> ", escape(owner));
    }
    out.push_str(
        "</nav>\n<p><a href=\"/upload\">上传报表（各部门报送数据）</a></p>\n</header>\n<main>\n",
    );
    if let Some((file, problems)) = source.config_error() {
        let _ = writeln!(
            out,
            "<section class=\"broken\" id=\"config-error\"><h2>配置文件重新加载失败</h2><p>改动未生效，系统继续按上一个可用的配置和规则运行。请改正后重新加载（systemctl reload rulewatch）。</p><ul><li>{} <span class=\"badge error\">错误</span><pre>{}</pre></li></ul></section>",
            escape(&file),
            escape(&problems.join("\n"))
        );
    }
    let broken = source.broken_files();
    if !broken.is_empty() {
        out.push_str("<section class=\"broken\"><h2>无法加载的规则文件</h2><ul>");
        for (file, problems) in &broken {
            let _ = write!(
                out,
                "<li>{} <span class=\"badge error\">错误</span><pre>{}</pre></li>",
                escape(file),
                escape(&problems.join("\n"))
            );
        }
        out.push_str("</ul></section>\n");
    }
    for (std::cmp::Reverse(year), list) in &by_year {
        let missed = list
            .iter()
            .filter(|s| s.state == StateLabel::Missed)
            .count();
        let _ = write!(
            out,
            "<section id=\"year-{year}\">\n<h2>{year}年度结果 <small>{} 项，已完成 {} 项，未完成 {missed} 项</small></h2>\n<div class=\"cards\">\n",
            list.len(),
            list.len() - missed,
        );
        for s in list {
            out.push_str(&card(s, tz));
        }
        out.push_str("</div>\n</section>\n");
    }
    for (i, (owner, list)) in groups.iter().enumerate() {
        let bad = list.iter().filter(|s| s.state < StateLabel::Ok).count();
        let _ = write!(
            out,
            "<section id=\"owner-{i}\">\n<h2>{} <small>{} 项{}</small></h2>\n<div class=\"cards\">\n",
            escape(owner),
            list.len(),
            if bad > 0 {
                format!("，{bad} 项需关注")
            } else {
                String::new()
            }
        );
        for s in list {
            out.push_str(&card(s, tz));
        }
        out.push_str("</div>\n</section>\n");
    }
    out.push_str(&legend());
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn legend() -> String {
    let mut out = String::from("<footer><h2>图例</h2><ul class=\"legend\">");
    for s in [
        StateLabel::Ok,
        StateLabel::Pending,
        StateLabel::Firing,
        StateLabel::Missed,
        StateLabel::Met,
        StateLabel::NoData,
        StateLabel::Error,
        StateLabel::Unknown,
    ] {
        let _ = write!(out, "<li>{} {}</li>", badge(s), escape(s.help()));
    }
    let _ = writeln!(
        out,
        "<li><span class=\"swatch line\"></span> 虚线：目标线（序时进度或限值）</li><li><span class=\"swatch band\"></span> 浅红底：规则处于告警的时段</li><li><span class=\"swatch dot\"></span> 红点：越过目标线的读数</li></ul><p class=\"muted\">数据来自 rulewatch 读数库；“当前值”取自告警的规则结论，无告警时取图中最新读数。</p></footer>"
    );
    out
}

/// `GET /rules/{id}`; `None` when there is no such rule.
pub fn rule(source: &dyn StatusSource, id: &str) -> Option<String> {
    let tz = source.timezone();
    let entry = source.rules().into_iter().find(|e| e.rule.meta.id == id)?;
    let alerts = source.alerts(Some(id)).unwrap_or_default();
    let history = source
        .history(&HistoryQuery {
            rule: Some(id.to_string()),
            ..Default::default()
        })
        .unwrap_or_default();
    let s = status::rule_status(source, entry, alerts, &history, source.now());
    let meta = &s.entry.rule.meta;
    let words = source.words();
    let mut out = head(&format!("{} · rulewatch", meta.title));
    let _ = write!(
        out,
        "<body>\n<header>\n<p><a href=\"/\">← 返回全部目标</a></p>\n<h1>{} {}</h1>\n<p class=\"muted\">{} · 规则 <code>{}</code></p>\n</header>\n<main>\n<section>\n<dl class=\"wide\">",
        status_badge(&s),
        escape(&meta.title),
        escape(s.owner()),
        escape(&meta.id),
    );
    match &s.figure {
        Some(f) => out.push_str(&figure_rows(f, &s, tz)),
        None => out.push_str("<dt>当前值</dt><dd class=\"muted\">—</dd>"),
    }
    let _ = writeln!(
        out,
        "<dt>最近评估</dt><dd>{}</dd></dl>",
        s.last_eval
            .map(|t| escape(&local(t, tz)))
            .unwrap_or_else(|| "尚未评估".into())
    );
    if let Some(errors) = &s.entry.load_error {
        let _ = write!(
            out,
            "<div class=\"problem\"><b>规则文件当前版本无法加载</b>（仍按上一个可用版本评估）：<pre>{}</pre></div>",
            escape(&errors.join("\n"))
        );
    }
    if let Some(e) = s.entry.last.as_ref().and_then(|l| l.error.as_ref()) {
        let _ = write!(
            out,
            "<div class=\"problem\"><b>最近一次评估出错：</b><pre>{}</pre></div>",
            escape(&e.to_string())
        );
    }
    if let Some(chart) = &s.chart {
        out.push_str("<h2>趋势</h2>");
        out.push_str(&svg::render(chart, svg::LARGE, tz, &chart_alt(&s, chart)));
        let _ = write!(
            out,
            "<p class=\"caption\">{}{}</p>",
            escape(&chart_caption(&s, chart)),
            if chart.omitted > 0 {
                format!("（另有 {} 条序列未画出）", chart.omitted)
            } else {
                String::new()
            }
        );
    }
    out.push_str("</section>\n");

    // Active alerts.
    out.push_str("<section>\n<h2>当前告警</h2>\n");
    if s.alerts.is_empty() {
        out.push_str("<p class=\"muted\">无</p>\n");
    } else {
        out.push_str("<div class=\"scroll\"><table><thead><tr><th>状态</th><th>对象</th><th>说明</th><th>开始于</th><th>最近通知</th></tr></thead><tbody>");
        for a in &s.alerts {
            let state = match a.state {
                crate::alerts::State::Error => StateLabel::Error,
                // (a year's final verdict: its own label comes with the page's year view)
                crate::alerts::State::Firing => StateLabel::Firing,
                crate::alerts::State::Final => StateLabel::Missed,
                crate::alerts::State::NoData => StateLabel::NoData,
                _ => StateLabel::Pending,
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                badge(state),
                escape(&source.words().subject(&a.subject)),
                escape(&a.message),
                escape(&local(a.active_since, tz)),
                a.last_sent
                    .map(|t| escape(&local(t, tz)))
                    .unwrap_or_else(|| "—".into())
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    out.push_str("</section>\n");

    // History, newest first.
    let _ = write!(
        out,
        "<section>\n<h2>告警历史 <small>共 {} 条{}</small></h2>\n",
        history.len(),
        if history.len() > HISTORY_ROWS {
            format!("，显示最近 {HISTORY_ROWS} 条")
        } else {
            String::new()
        }
    );
    if history.is_empty() {
        out.push_str("<p class=\"muted\">无记录</p>\n");
    } else {
        out.push_str("<div class=\"scroll\"><table><thead><tr><th>时间</th><th>事件</th><th>对象</th><th>值</th><th>说明</th></tr></thead><tbody>");
        for h in history.iter().rev().take(HISTORY_ROWS) {
            // A row of a message to a chat group says so, and names the robot.
            let robot = h
                .recipient
                .as_deref()
                .and_then(|r| crate::notify::chat::target_zh(r, &words));
            let medium = if robot.is_some() {
                "群消息"
            } else {
                "邮件"
            };
            let event = match h.event {
                HistoryEvent::Transition => format!("{} → {}", state_zh(h.from), state_zh(h.to)),
                HistoryEvent::Queued => format!("{medium}排队{}", notice_zh(h.notice.as_deref())),
                HistoryEvent::Sent => format!("{medium}已发送{}", notice_zh(h.notice.as_deref())),
                HistoryEvent::Delayed => format!("{medium}延迟"),
                HistoryEvent::Failed => format!("{medium}发送失败"),
            };
            // An ended alert's rows (its transition, its good-news mail)
            // carry its last message: say it is what was.
            let ended_from = match (h.event, h.notice.as_deref()) {
                (HistoryEvent::Transition, _) if h.to == Some(crate::alerts::State::Inactive) => h
                    .from
                    .filter(|f| *f != crate::alerts::State::Inactive)
                    .map(|f| f.as_str()),
                (_, Some("resolved")) => Some("firing"),
                (_, Some("data_returned")) => Some("no_data"),
                (_, Some("rule_recovered")) => Some("error"),
                _ => None,
            };
            let ended = ended_from.is_some();
            let mut note = match ended_from {
                Some(from) => crate::status::words::ended_note(from, &h.message),
                None => h.message.clone(),
            };
            if let Some(r) = &h.recipient {
                note = match &robot {
                    Some(name) => format!("{note}（发往{name}）"),
                    None => format!("{note}（收件人 {r}）"),
                };
            }
            if let Some(e) = &h.error {
                note = format!("{note}；原因：{e}");
            }
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&local(h.time, tz)),
                escape(&event),
                escape(&source.words().subject(&h.subject)),
                h.value
                    .filter(|_| !ended)
                    .map(|v| escape(&format_number(round(v))))
                    .unwrap_or_else(|| "—".into()),
                escape(&note)
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    out.push_str("</section>\n");

    // Tests.
    out.push_str("<section>\n<h2>规则测试</h2>\n");
    match source.test_status(id) {
        None => out.push_str(
            "<p class=\"muted\">无测试结果（运行 <code>rulewatch test</code> 查看）</p>\n",
        ),
        Some(t) => {
            let ok = t.failed == 0;
            let _ = write!(
                out,
                "<p>{} 通过 {} 项，失败 {} 项</p>",
                badge(if ok {
                    StateLabel::Ok
                } else {
                    StateLabel::Error
                }),
                t.passed,
                t.failed
            );
            if !t.failures.is_empty() {
                let _ = write!(out, "<pre>{}</pre>", escape(&t.failures.join("\n")));
            }
        }
    }
    out.push_str("</section>\n");

    // Metadata.
    out.push_str("<section>\n<h2>规则信息</h2>\n<dl class=\"wide\">");
    let mut row = |name: &str, v: &str| {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(v));
    };
    row("规则编号", &meta.id);
    row("标题", &meta.title);
    row("责任单位", s.owner());
    row("严重程度", meta.severity.label_zh());
    row("评估时间", &meta.schedule.in_words());
    let notified: Vec<String> = meta.notify.iter().map(|g| words.group(g)).collect();
    row("通知", &notified.join("、"));
    row(
        "持续多久才告警",
        &crate::time::schedule::duration_in_words(meta.for_),
    );
    row(
        "提醒间隔",
        &crate::time::schedule::every_in_words(meta.repeat),
    );
    if let Some(d) = &meta.description {
        row("说明", d);
    }
    // From `rules/` on: no machine path (and none in the docs' screenshots).
    row(
        "规则文件",
        &crate::notify::templates::rule_file(&s.entry.rule.path),
    );
    row(
        "文件版本",
        &s.entry
            .rule
            .content_hash
            .chars()
            .take(12)
            .collect::<String>(),
    );
    if let Some(spec) = &meta.chart {
        let range = match spec.range {
            ChartRange::Year(y) => format!("{y}年"),
            ChartRange::Window(w) => window_zh(w),
        };
        row(
            "趋势图",
            &format!(
                "指标 {}{}，范围 {range}{}",
                spec.metric,
                if spec.filter.is_empty() {
                    String::new()
                } else {
                    format!(
                        "（{}）",
                        crate::status::Words::default().subject(&spec.filter)
                    )
                },
                if spec.monthly { "，按月平均" } else { "" }
            ),
        );
    }
    out.push_str("</dl>\n</section>\n");

    let _ = write!(
        out,
        "<section>\n<h2>规则源码 <small>只读</small></h2>\n<pre class=\"source\"><code>{}</code></pre>\n</section>\n</main>\n</body>\n</html>\n",
        escape(&s.entry.rule.source)
    );
    Some(out)
}

fn window_zh(w: crate::time::Window) -> String {
    use crate::time::Window;
    match w {
        Window::Last(d) if d % crate::time::DAY == 0 => format!("最近 {} 天", d / crate::time::DAY),
        Window::Last(d) => format!("最近 {}", format_duration(d)),
        Window::Today => "今天".into(),
        Window::Yesterday => "昨天".into(),
        Window::Month => "本月".into(),
        Window::LastMonth => "上月".into(),
        Window::Quarter => "本季度".into(),
        Window::LastQuarter => "上季度".into(),
        Window::Year => "本年".into(),
        Window::LastYear => "上年".into(),
        Window::CalendarYear(y) => format!("{y}年"),
        Window::All => "全部".into(),
    }
}

fn notice_zh(notice: Option<&str>) -> String {
    notice
        .and_then(crate::alerts::NoticeKind::parse)
        .map(|k| format!("：{}", crate::notify::templates::kind_label(k)))
        .unwrap_or_default()
}

fn state_zh(s: Option<crate::alerts::State>) -> &'static str {
    use crate::alerts::State;
    match s {
        None | Some(State::Inactive) => "正常",
        Some(State::Pending) => "待定",
        Some(State::Firing) => "告警",
        Some(State::NoData) => "无数据",
        Some(State::Error) => "错误",
        Some(State::Final) => "年度结果：未完成",
    }
}

fn chart_caption(s: &RuleStatus, chart: &ChartData) -> String {
    let spec = s.entry.rule.meta.chart.as_ref();
    let mut parts = Vec::new();
    if !chart.label.is_empty() {
        parts.push(chart.label.clone());
    }
    match spec.map(|s| s.line) {
        Some(ChartLine::Pace(total)) => parts.push(format!(
            "虚线为序时进度：全年目标 {}{} 按月均摊",
            format_number(total),
            chart.unit
        )),
        Some(ChartLine::Flat(x)) => parts.push(format!(
            "虚线为{} {}{}",
            match spec.and_then(|s| s.breach) {
                Some(Breach::Above) => "上限",
                _ => "下限",
            },
            format_number(x),
            chart.unit
        )),
        Some(ChartLine::FromFinding) => parts.push("各对象目标不同，目标值见告警说明".to_string()),
        _ => {}
    }
    if !chart.firing.is_empty() {
        parts.push("浅红底为告警时段".into());
    }
    parts.join("；")
}

/// A small page saying what went wrong.
pub fn error_page(title: &str, detail: &str) -> String {
    let mut out = head(title);
    let _ = writeln!(
        out,
        "<body><header><p><a href=\"/\">← 返回全部目标</a></p><h1>{}</h1></header><main><p>{}</p></main></body></html>",
        escape(title),
        escape(detail)
    );
    out
}
