//! A rule's status as the page, the mails and the digest show it: its state,
//! the current value against the target and the gap, and its chart.

use chrono::Datelike;

use crate::alerts::{Alert, HistoryEntry, HistoryQuery, State};
use crate::rules::loader::ChartLine;
use crate::rules::Finding;
use crate::time::Millis;

use super::series::{chart_data, firing_periods, ChartData};
use super::{RuleEntry, StatusSource};

/// The state officials see, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateLabel {
    Error,
    Firing,
    /// A year's final verdict: the target was missed (`2021年度结果：未完成`).
    Missed,
    NoData,
    Pending,
    Ok,
    /// The year of a year's rule is over, evaluated since, and no verdict of
    /// missing it: the target was met (`2021年度结果：已完成`).
    Met,
    /// Not evaluated since the daemon started, and no alert on record.
    Unknown,
}

impl StateLabel {
    pub fn zh(self) -> &'static str {
        match self {
            StateLabel::Ok => "正常",
            StateLabel::Pending => "待定",
            StateLabel::Firing => "告警",
            StateLabel::Missed => "未完成",
            StateLabel::Met => "已完成",
            StateLabel::NoData => "缺数据",
            StateLabel::Error => "错误",
            StateLabel::Unknown => "未评估",
        }
    }

    /// CSS class (and colour) of the state.
    pub fn class(self) -> &'static str {
        match self {
            StateLabel::Ok => "ok",
            StateLabel::Pending => "pending",
            StateLabel::Firing => "firing",
            StateLabel::Missed => "missed",
            StateLabel::Met => "met",
            StateLabel::NoData => "nodata",
            StateLabel::Error => "error",
            StateLabel::Unknown => "unknown",
        }
    }

    /// What the state means, for the legend and `title` attributes.
    pub fn help(self) -> &'static str {
        match self {
            StateLabel::Ok => "最近一次评估未发现问题",
            StateLabel::Pending => "已越线, 持续时间未到告警门槛",
            StateLabel::Firing => "目标未达到, 已通知责任单位",
            StateLabel::Missed => "年度已结束, 该年度目标未完成（年度结果, 不会因次年数据而恢复）",
            StateLabel::Met => "年度已结束, 该年度目标已完成",
            StateLabel::NoData => "应报数据未报送, 无法判断",
            StateLabel::Error => "规则文件或规则运行出错, 已通知管理员",
            StateLabel::Unknown => "守护进程启动后尚未评估",
        }
    }

    /// Whether the state is a year's result (met or missed).
    pub fn is_verdict(self) -> bool {
        matches!(self, StateLabel::Missed | StateLabel::Met)
    }

    fn of_alert(state: State) -> StateLabel {
        match state {
            State::Error => StateLabel::Error,
            // (a year's final verdict: its own label comes with the page's year view)
            State::Firing => StateLabel::Firing,
            State::Final => StateLabel::Missed,
            State::NoData => StateLabel::NoData,
            State::Pending => StateLabel::Pending,
            State::Inactive => StateLabel::Ok,
        }
    }
}

/// Where a figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureSource {
    /// The details of the rule's own finding (what the alert says).
    Finding,
    /// The latest reading of the charted series, against the chart's line.
    Reading,
}

/// The current value against the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub value: f64,
    pub target: Option<f64>,
    /// Signed: `value − target`, or the rule's own `gap` (how far past the line).
    pub gap: Option<f64>,
    pub unit: String,
    /// When the value was measured (readings), if known.
    pub at: Option<Millis>,
    pub source: FigureSource,
    /// Whose figure it is when the rule watches several subjects.
    pub subject: String,
}

/// Everything shown about one rule.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    pub entry: RuleEntry,
    pub state: StateLabel,
    pub alerts: Vec<Alert>,
    pub figure: Option<Figure>,
    /// The last evaluation time (or the last one an alert records).
    pub last_eval: Option<Millis>,
    pub chart: Option<ChartData>,
}

impl RuleStatus {
    pub fn id(&self) -> &str {
        &self.entry.rule.meta.id
    }

    pub fn owner(&self) -> &str {
        self.entry
            .rule
            .meta
            .owner
            .as_deref()
            .unwrap_or("未指定责任单位")
    }

    /// The work-report year the rule judges, if any.
    pub fn year(&self) -> Option<i32> {
        self.entry.rule.meta.year
    }

    /// The state as read: `2021年度结果：未完成` for a year's result, else
    /// the state's word (`告警`).
    pub fn label(&self) -> String {
        match (self.state.is_verdict(), self.year()) {
            (true, Some(y)) => format!("{y}年度结果：{}", self.state.zh()),
            _ => self.state.zh().to_string(),
        }
    }

    /// The most telling alert (worst state first).
    pub fn worst_alert(&self) -> Option<&Alert> {
        self.alerts
            .iter()
            .min_by_key(|a| (StateLabel::of_alert(a.state), a.active_since))
    }
}

/// The figure an alert's details give (`value`, `threshold` or `target`, `gap`, `unit`).
pub fn figure_of_alert(a: &Alert, words: &super::Words) -> Option<Figure> {
    figure_of_details(&a.details, &a.subject, words)
}

/// The figure a finding's details give: as [`figure_of_alert`].
pub fn figure_of_finding(f: &Finding, words: &super::Words) -> Option<Figure> {
    figure_of_details(&f.details, &f.subject, words)
}

fn figure_of_details(
    details: &serde_json::Map<String, serde_json::Value>,
    subject: &crate::readings::Labels,
    words: &super::Words,
) -> Option<Figure> {
    let number = |key: &str| details.get(key).and_then(|v| v.as_f64());
    let value = number("value")?;
    let target = number("threshold").or_else(|| number("target"));
    Some(Figure {
        value,
        target,
        gap: number("gap").or(target.map(|t| value - t)),
        unit: details
            .get("unit")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        at: None,
        source: FigureSource::Finding,
        subject: words.subject(subject),
    })
}

/// The figure the chart gives: its latest reading against the line there.
pub fn figure_of_chart(chart: &ChartData) -> Option<Figure> {
    if chart.lines.len() != 1 {
        return None; // several subjects: no single "current value"
    }
    let (t, v) = chart.latest()?;
    let target = chart.target_at(t);
    Some(Figure {
        value: v,
        target,
        gap: target.map(|x| v - x),
        unit: chart.unit.clone(),
        at: Some(t),
        source: FigureSource::Reading,
        subject: String::new(),
    })
}

/// The state of a rule from its alerts and last evaluation.
pub fn state_of(entry: &RuleEntry, alerts: &[Alert]) -> StateLabel {
    state_in(entry, alerts, None)
}

/// [`state_of`], knowing the zone: a year's rule evaluated after its year
/// without any alert has met its target ([`StateLabel::Met`]) only if that
/// evaluation found nothing. A verdict found but not alerted on (the daemon
/// first judged the year after its reminders ended) is still missed.
pub fn state_in(entry: &RuleEntry, alerts: &[Alert], tz: Option<chrono_tz::Tz>) -> StateLabel {
    let worst = alerts.iter().map(|a| StateLabel::of_alert(a.state)).min();
    let errored =
        entry.load_error.is_some() || entry.last.as_ref().is_some_and(|l| l.error.is_some());
    let year_over = match (entry.rule.meta.year, entry.last.as_ref(), tz) {
        (Some(y), Some(last), Some(tz)) => crate::time::to_local(last.at, tz).year() > y,
        _ => false,
    };
    match worst {
        _ if errored => StateLabel::Error,
        Some(s) => s,
        None if year_over && entry.last.as_ref().is_some_and(|l| l.findings > 0) => {
            StateLabel::Missed
        }
        None if year_over => StateLabel::Met,
        None if entry.last.is_some() => StateLabel::Ok,
        None => StateLabel::Unknown,
    }
}

/// One rule's status, its chart up to `at` (the page: now; the digest: its
/// date). `history` is the rule's alert history (oldest first), used to
/// shade the periods it was firing.
pub fn rule_status(
    source: &dyn StatusSource,
    entry: RuleEntry,
    alerts: Vec<Alert>,
    history: &[HistoryEntry],
    at: Millis,
) -> RuleStatus {
    let tz = source.timezone();
    let last_eval = entry
        .last
        .as_ref()
        .map(|l| l.at)
        .or_else(|| alerts.iter().map(|a| a.last_eval).max());
    let chart = entry.rule.meta.chart.as_ref().map(|spec| {
        let mut data = chart_data(source.store(), spec, None, at, tz);
        data.firing = firing_periods(history, None, data.from, data.to);
        data
    });
    let state = state_in(&entry, &alerts, Some(tz));
    let from_alert = alerts
        .iter()
        .filter(|a| a.state != State::Error)
        .min_by_key(|a| StateLabel::of_alert(a.state))
        .and_then(|a| figure_of_alert(a, &source.words()));
    // A per-finding line is not on the page's chart: only the alert knows it.
    let from_chart = chart.as_ref().filter(|c| !c.is_empty()).and_then(|c| {
        let line = entry.rule.meta.chart.as_ref().map(|s| s.line);
        if line == Some(ChartLine::FromFinding) {
            None
        } else {
            figure_of_chart(c)
        }
    });
    // A year's result missed with no alert (judged after its reminders
    // ended): the figure of what was missed, not the chart's (a two-part
    // target's chart may show the part that was met).
    let from_verdict = (state == StateLabel::Missed)
        .then(|| entry.last.as_ref()?.breach.as_ref())
        .flatten()
        .and_then(|f| figure_of_finding(f, &source.words()));
    RuleStatus {
        state,
        figure: from_alert.or(from_verdict).or(from_chart),
        alerts,
        last_eval,
        chart,
        entry,
    }
}

/// Every rule's status, sorted by owner, then worst state first, then id.
pub fn all(source: &dyn StatusSource) -> Result<Vec<RuleStatus>, String> {
    let alerts = source.alerts(None)?;
    let mut out: Vec<RuleStatus> = source
        .rules()
        .into_iter()
        .map(|entry| {
            let id = entry.rule.meta.id.clone();
            let mine: Vec<Alert> = alerts.iter().filter(|a| a.rule == id).cloned().collect();
            let history = if entry.rule.meta.chart.is_some() {
                source
                    .history(&HistoryQuery {
                        rule: Some(id),
                        ..Default::default()
                    })
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            rule_status(source, entry, mine, &history, source.now())
        })
        .collect();
    out.sort_by(|a, b| (a.owner(), a.state, a.id()).cmp(&(b.owner(), b.state, b.id())));
    Ok(out)
}

#[cfg(test)]
mod year_state_tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::rules::engine::new_engine;
    use crate::rules::loader::parse_rule;
    use crate::status::LastRun;

    /// A rule of the 2021 work report, last evaluated in 2023 with `findings`.
    fn entry(findings: usize) -> RuleEntry {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        let config = Config::parse(
            &dir.path().join("c.ron"),
            r#"(timezone: "Asia/Shanghai", rules: "rules", store: "s.db",
                mail: (from: "a@example.cn", transport: File(dir: "o")))"#,
        )
        .unwrap();
        let source = "const RULE = #{ id: \"r\", title: \"T\", severity: \"warning\", notify: [\"x@example.cn\"], year: 2021 };\n";
        let (rule, _) = parse_rule(
            &new_engine(&config.limits),
            &config,
            &PathBuf::from("r.rhai"),
            source.into(),
        )
        .unwrap();
        RuleEntry {
            rule: Arc::new(rule),
            last: Some(LastRun {
                at: crate::time::parse_time("2023-03-01T09:00", chrono_tz::Asia::Shanghai).unwrap(),
                error: None,
                findings,
                breach: None,
            }),
            load_error: None,
        }
    }

    #[test]
    fn a_year_over_without_alert_is_met_only_if_nothing_was_found() {
        let tz = Some(chrono_tz::Asia::Shanghai);
        assert_eq!(state_in(&entry(0), &[], tz), StateLabel::Met);
        assert_eq!(state_in(&entry(1), &[], tz), StateLabel::Missed);
    }
}
