//! The alert state machine, pure over `now` (Prometheus style).
//!
//! Per (rule id, subject):
//!
//! ```text
//!               breach, for > 0            for elapsed
//!   inactive ─────────────────▶ pending ─────────────────▶ firing ──┐ reminder
//!      │  ▲   breach, for = 0                                │  ▲ ◀─┘ every `repeat`
//!      │  └──────────── absent: pending ends quietly          │  │
//!      │  └──────────── absent: resolved (mail) ◀─────────────┘  │
//!      │ no_data                                                 │ breach
//!      └──────────────▶ no_data ─────────────────────────────────┘
//!                        │  absent: data returned (mail); reminder every `repeat`
//! ```
//!
//! A **final verdict** (a finding with `details.final == true`: a year's
//! target judged when its figures are complete, see `verdict()` in the rule
//! API) enters `final` from any state, is mailed once (no reminders), and is
//! never resolved: not by the next year's data, not by the finding going
//! away. A rule with a `year` closes at the end of that year plus its grace
//! period (`AlertRule::closes_at`): from then on its alerts are frozen as they
//! are, nothing fires, reminds or resolves.
//!
//! A rule *error* is a rule-level state of its own (`admin` is told once per
//! distinct error message, and again when the rule evaluates cleanly). While
//! a rule errors its other alerts are frozen: an evaluation that failed says
//! nothing about its subjects, so nothing resolves and nothing fires (as
//! Prometheus keeps its active alerts when a query fails).
//!
//! Every transition happens in [`evaluate`]; the time is a parameter, the
//! clock is never read here.

use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::readings::Labels;
use crate::rules::finding::{Finding, FindingKind};
use crate::time::Millis;

pub use crate::rules::Severity;

/// What the alert machine needs to know about a rule. The daemon builds it
/// from the loaded rule and the config (recipient groups already resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub owner: Option<String>,
    /// The rule file, as it should appear in mails.
    pub file: PathBuf,
    /// Hash of the rule file's content, kept in the history ("which version said so").
    pub content_hash: String,
    /// Resolved mail addresses. Empty: notices go to `admin` so none is lost.
    pub recipients: Vec<String>,
    /// How long a breach must persist before it fires (0 = at once).
    pub for_: Millis,
    /// Reminder interval while firing or without data (0 = no reminders).
    pub repeat: Millis,
    /// A rule of one work-report year closes at the end of that year plus
    /// its grace period: from then on its alerts are frozen (`None`: never).
    pub closes_at: Option<Millis>,
}

impl AlertRule {
    /// The alert machine's view of a loaded rule (recipients already resolved).
    pub fn from_rule(rule: &crate::rules::Rule) -> AlertRule {
        AlertRule {
            id: rule.meta.id.clone(),
            title: rule.meta.title.clone(),
            severity: rule.meta.severity,
            owner: rule.meta.owner.clone(),
            file: rule.path.clone(),
            content_hash: rule.content_hash.clone(),
            recipients: rule.meta.recipients.clone(),
            for_: rule.meta.for_,
            repeat: rule.meta.repeat,
            closes_at: rule.meta.closes_at,
        }
    }
}

/// The state of one alert. `Inactive` is never stored: it is the absence of
/// an alert, and appears only as the `from` or `to` of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Inactive,
    Pending,
    Firing,
    NoData,
    Error,
    /// A year's final verdict: missed, mailed once, never resolved.
    Final,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
            State::NoData => "no_data",
            State::Error => "error",
            State::Final => "final",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        Some(match text {
            "inactive" => State::Inactive,
            "pending" => State::Pending,
            "firing" => State::Firing,
            "no_data" => State::NoData,
            "error" => State::Error,
            "final" => State::Final,
            _ => return None,
        })
    }
}

/// One active alert: a (rule, subject) that is not inactive. The rule-level
/// error state has `state == Error` and an empty subject; it never collides
/// with a breach of the rule as a whole (also an empty subject) because the
/// identity includes whether it is the error slot (see [`Alert::key`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub rule: String,
    pub subject: Labels,
    pub state: State,
    /// When this episode began (first breach seen, data first missing, error first seen).
    pub active_since: Millis,
    /// When the first notice of this episode was made (firing / no data / error).
    pub fired_at: Option<Millis>,
    /// When the last notice (first or reminder) was made.
    pub last_sent: Option<Millis>,
    /// The last evaluation that saw it.
    pub last_eval: Millis,
    pub message: String,
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Alert {
    /// The alert's identity within its rule: (is the rule-error slot, subject).
    pub fn key(&self) -> (bool, &Labels) {
        (self.state == State::Error, &self.subject)
    }

    /// `details.value`, when the rule gave a number.
    pub fn value(&self) -> Option<f64> {
        self.details.get("value").and_then(|v| v.as_f64())
    }

    /// The work-report year of a final verdict (`details.year`).
    pub fn verdict_year(&self) -> Option<i64> {
        if self.state != State::Final {
            return None;
        }
        self.details.get("year").and_then(|v| v.as_i64())
    }
}

/// Whether a finding is a year's final verdict (`details.final == true`).
pub fn is_final(finding: &Finding) -> bool {
    finding.kind == FindingKind::Breach
        && finding.details.get("final") == Some(&serde_json::Value::Bool(true))
}

/// A change of state, for the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub rule: String,
    pub subject: Labels,
    pub at: Millis,
    pub from: State,
    pub to: State,
    pub value: Option<f64>,
    pub message: String,
    pub content_hash: String,
}

/// What a notice tells its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A breach started firing.
    Firing,
    /// Still firing after `repeat`.
    Reminder,
    /// Data is missing.
    NoData,
    /// Still missing after `repeat`.
    NoDataReminder,
    /// A firing breach is gone.
    Resolved,
    /// Missing data arrived.
    DataReturned,
    /// The rule failed to evaluate (to `admin`).
    RuleError,
    /// The rule evaluates again (to `admin`).
    RuleRecovered,
    /// A year's target missed, judged on complete figures: sent once
    /// (`2021年度结果：未完成`).
    FinalVerdict,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Firing => "firing",
            NoticeKind::Reminder => "reminder",
            NoticeKind::NoData => "no_data",
            NoticeKind::NoDataReminder => "no_data_reminder",
            NoticeKind::Resolved => "resolved",
            NoticeKind::DataReturned => "data_returned",
            NoticeKind::RuleError => "rule_error",
            NoticeKind::RuleRecovered => "rule_recovered",
            NoticeKind::FinalVerdict => "final_verdict",
        }
    }

    pub fn parse(text: &str) -> Option<NoticeKind> {
        [
            NoticeKind::Firing,
            NoticeKind::Reminder,
            NoticeKind::NoData,
            NoticeKind::NoDataReminder,
            NoticeKind::Resolved,
            NoticeKind::DataReturned,
            NoticeKind::RuleError,
            NoticeKind::RuleRecovered,
            NoticeKind::FinalVerdict,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// Who reads it: the rule's recipients, or `admin`.
    pub fn audience(self) -> Audience {
        match self {
            NoticeKind::RuleError | NoticeKind::RuleRecovered => Audience::Admin,
            _ => Audience::Rule,
        }
    }

    /// Good news (resolved, data returned, rule recovered).
    pub fn is_recovery(self) -> bool {
        matches!(
            self,
            NoticeKind::Resolved | NoticeKind::DataReturned | NoticeKind::RuleRecovered
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Rule,
    Admin,
}

/// Something to tell people, made by one transition (or a reminder).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub owner: Option<String>,
    pub file: PathBuf,
    pub content_hash: String,
    pub subject: Labels,
    /// The evaluation that made this notice.
    pub at: Millis,
    /// When the episode began.
    pub since: Millis,
    pub message: String,
    pub details: serde_json::Map<String, serde_json::Value>,
    /// The rule's resolved recipients (unused for `admin` notices).
    pub recipients: Vec<String>,
}

impl Notice {
    /// A stable identity: the same notice always has the same id, so queuing
    /// it twice can be detected, and its mail's Message-ID is stable.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.rule.as_str(),
            &subject_key(&self.subject),
            self.kind.as_str(),
            &self.at.to_string(),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex::encode(h.finalize())
    }

    pub fn value(&self) -> Option<f64> {
        self.details.get("value").and_then(|v| v.as_f64())
    }
}

/// A subject as a canonical string (labels are sorted): `{"county":"南宫"}`.
pub fn subject_key(subject: &Labels) -> String {
    serde_json::to_string(subject).expect("string maps serialize")
}

/// What one evaluation of one rule changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Every alert of the rule that is active after this evaluation.
    pub alerts: Vec<Alert>,
    pub transitions: Vec<Transition>,
    pub notices: Vec<Notice>,
}

/// One step of the machine: the rule's active alerts before, the findings of
/// its evaluation at `now`, and what follows. `prev` holds the alerts of this
/// rule only; alerts of other rules are ignored.
///
/// - Several findings for one subject: a breach wins over `no_data`; among
///   equals the first wins.
/// - Any `Error` finding makes the evaluation a failed one: the rule's error
///   state is entered (or updated), everything else is left as it was.
pub fn evaluate(prev: &[Alert], rule: &AlertRule, now: Millis, findings: &[Finding]) -> Evaluation {
    let mut out = Evaluation::default();
    if rule.closes_at.is_some_and(|closes| now >= closes) {
        // The rule's year (and grace) is over: its results stand as they are.
        out.alerts = prev.iter().filter(|a| a.rule == rule.id).cloned().collect();
        sort_alerts(&mut out.alerts);
        return out;
    }
    let mut error_prev: Option<&Alert> = None;
    let mut subjects_prev: Vec<&Alert> = Vec::with_capacity(prev.len());
    for alert in prev.iter().filter(|a| a.rule == rule.id) {
        if alert.state == State::Error {
            error_prev = Some(alert);
        } else {
            subjects_prev.push(alert);
        }
    }
    // By subject, one alert each (the last, as a map would keep).
    let subjects_prev = by_subject(subjects_prev, |a| &a.subject, |_, later| later);

    let notice = |kind: NoticeKind, alert: &Alert| Notice {
        kind,
        rule: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity,
        owner: rule.owner.clone(),
        file: rule.file.clone(),
        content_hash: rule.content_hash.clone(),
        subject: alert.subject.clone(),
        at: now,
        since: alert.active_since,
        message: alert.message.clone(),
        details: alert.details.clone(),
        recipients: rule.recipients.clone(),
    };
    let transition = |from: State, alert: &Alert| Transition {
        rule: rule.id.clone(),
        subject: alert.subject.clone(),
        at: now,
        from,
        to: alert.state,
        value: alert.value(),
        message: alert.message.clone(),
        content_hash: rule.content_hash.clone(),
    };

    // The rule-level error state.
    let errors: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Error)
        .collect();
    if let Some(first) = errors.first() {
        let message = errors
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let mut alert = Alert {
            rule: rule.id.clone(),
            subject: Labels::new(),
            state: State::Error,
            active_since: now,
            fired_at: Some(now),
            last_sent: Some(now),
            last_eval: now,
            message,
            details: first.details.clone(),
        };
        match error_prev {
            Some(old) if old.message == alert.message => {
                // Same error again: admin already knows.
                alert.active_since = old.active_since;
                alert.fired_at = old.fired_at;
                alert.last_sent = old.last_sent;
            }
            Some(old) => {
                // A different error: a new thing for admin to know.
                alert.active_since = old.active_since;
                out.transitions.push(transition(State::Error, &alert));
                out.notices.push(notice(NoticeKind::RuleError, &alert));
            }
            None => {
                out.transitions.push(transition(State::Inactive, &alert));
                out.notices.push(notice(NoticeKind::RuleError, &alert));
            }
        }
        out.alerts.push(alert);
        // Everything else is frozen: a failed evaluation says nothing about subjects.
        out.alerts
            .extend(subjects_prev.iter().map(|a| (*a).clone()));
        sort_alerts(&mut out.alerts);
        return out;
    }
    if let Some(old) = error_prev {
        let mut gone = old.clone();
        gone.state = State::Inactive;
        gone.message = "规则恢复正常求值".into();
        out.transitions.push(transition(State::Error, &gone));
        let mut n = notice(NoticeKind::RuleRecovered, &gone);
        n.message = old.message.clone();
        out.notices.push(n);
    }

    // This evaluation's findings, one per subject: the first breach, else
    // the first finding.
    let current = by_subject(
        findings.iter().collect(),
        |f| &f.subject,
        |seen, f| {
            if seen.kind == FindingKind::NoData && f.kind == FindingKind::Breach {
                f
            } else {
                seen
            }
        },
    );
    // Both sorted by subject: one pass pairs each finding with the alert
    // of its subject, if any, and tells which alerts have no finding.
    let mut old_of_current: Vec<Option<&Alert>> = Vec::with_capacity(current.len());
    let mut prev_seen = vec![false; subjects_prev.len()];
    let mut i = 0;
    for f in &current {
        let mut old = None;
        while let Some(a) = subjects_prev.get(i) {
            match a.subject.cmp(&f.subject) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Equal => {
                    prev_seen[i] = true;
                    old = Some(*a);
                    i += 1;
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        old_of_current.push(old);
    }

    // Subjects that are gone. A final verdict stays: it is the year's result.
    out.alerts.reserve(current.len());
    let mut kept_finals = 0;
    for (old, seen) in subjects_prev.iter().zip(&prev_seen) {
        if old.state == State::Final {
            if !seen {
                out.alerts.push((*old).clone());
                kept_finals += 1;
            }
            continue;
        }
        if *seen {
            continue;
        }
        let mut gone = (*old).clone();
        gone.state = State::Inactive;
        gone.last_eval = now;
        out.transitions.push(transition(old.state, &gone));
        match old.state {
            State::Firing => out.notices.push(notice(NoticeKind::Resolved, &gone)),
            State::NoData => out.notices.push(notice(NoticeKind::DataReturned, &gone)),
            // A breach shorter than `for` ends quietly.
            _ => {}
        }
    }

    // Subjects seen now.
    for (finding, old) in current.into_iter().zip(old_of_current) {
        let subject = &finding.subject;
        let fresh = |state: State| Alert {
            rule: rule.id.clone(),
            subject: subject.clone(),
            state,
            active_since: now,
            fired_at: None,
            last_sent: None,
            last_eval: now,
            message: finding.message.clone(),
            details: finding.details.clone(),
        };
        // Field by field: `..old.clone()` would copy the old message and
        // details only to drop them (every continuing alert, every evaluation).
        let continued = |old: &Alert| Alert {
            rule: old.rule.clone(),
            subject: old.subject.clone(),
            state: old.state,
            active_since: old.active_since,
            fired_at: old.fired_at,
            last_sent: old.last_sent,
            last_eval: now,
            message: finding.message.clone(),
            details: finding.details.clone(),
        };
        let reminder_due = |old: &Alert| {
            rule.repeat > 0 && old.last_sent.is_none_or(|sent| now - sent >= rule.repeat)
        };
        let alert = match (finding.kind, old) {
            // A final verdict stands whatever comes after it (within its year).
            (_, Some(old)) if old.state == State::Final => Alert {
                last_eval: now,
                ..old.clone()
            },
            (FindingKind::Breach, _) if is_final(finding) => {
                let from = old.map_or(State::Inactive, |o| o.state);
                let mut alert = fresh(State::Final);
                alert.fired_at = Some(now);
                alert.last_sent = Some(now);
                out.transitions.push(transition(from, &alert));
                out.notices.push(notice(NoticeKind::FinalVerdict, &alert));
                alert
            }
            (FindingKind::Breach, None)
            | (
                FindingKind::Breach,
                Some(Alert {
                    state: State::NoData,
                    ..
                }),
            ) => {
                let from = old.map_or(State::Inactive, |o| o.state);
                if let (State::NoData, Some(old)) = (from, old) {
                    if rule.for_ > 0 {
                        // Data is back, not yet long enough in breach to fire.
                        out.notices.push(notice(NoticeKind::DataReturned, old));
                    }
                }
                let mut alert = fresh(State::Pending);
                if rule.for_ <= 0 {
                    fire(&mut alert, now);
                    out.notices.push(notice(NoticeKind::Firing, &alert));
                }
                out.transitions.push(transition(from, &alert));
                alert
            }
            (FindingKind::Breach, Some(old)) if old.state == State::Pending => {
                let mut alert = continued(old);
                if now - old.active_since >= rule.for_ {
                    fire(&mut alert, now);
                    out.transitions.push(transition(State::Pending, &alert));
                    out.notices.push(notice(NoticeKind::Firing, &alert));
                }
                alert
            }
            (FindingKind::Breach, Some(old)) => {
                let mut alert = continued(old);
                if reminder_due(old) {
                    alert.last_sent = Some(now);
                    out.notices.push(notice(NoticeKind::Reminder, &alert));
                }
                alert
            }
            (_, Some(old)) if old.state == State::NoData => {
                let mut alert = continued(old);
                if reminder_due(old) {
                    alert.last_sent = Some(now);
                    out.notices.push(notice(NoticeKind::NoDataReminder, &alert));
                }
                alert
            }
            (_, old) => {
                // No data: notified at once (`for` is about breaches), whatever came before.
                let from = old.map_or(State::Inactive, |o| o.state);
                let mut alert = fresh(State::NoData);
                alert.fired_at = Some(now);
                alert.last_sent = Some(now);
                out.transitions.push(transition(from, &alert));
                out.notices.push(notice(NoticeKind::NoData, &alert));
                alert
            }
        };
        out.alerts.push(alert);
    }
    if kept_finals > 0 {
        sort_alerts(&mut out.alerts);
    } // else they are `current`'s, in subject order already
    debug_assert!(out.alerts.is_sorted_by(|a, b| a.key() < b.key()));
    out
}

/// `items` sorted by subject, one per subject: of several with the same
/// subject, `pick(kept so far, next)` (in the order given) decides. Items
/// usually come sorted already (alerts as last stored, findings in a rule's
/// `group()` order): then this costs one comparison each, where a map
/// would cost a dozen (thousands of subjects, every evaluation).
fn by_subject<'a, T>(
    mut items: Vec<&'a T>,
    subject: impl Fn(&T) -> &Labels,
    pick: impl Fn(&'a T, &'a T) -> &'a T,
) -> Vec<&'a T> {
    if items.is_sorted_by(|a, b| subject(a) < subject(b)) {
        return items; // sorted, and no subject twice
    }
    items.sort_by(|a, b| subject(a).cmp(subject(b))); // stable: equal ones stay in order
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match out.last_mut() {
            Some(last) if subject(last) == subject(item) => *last = pick(*last, item),
            _ => out.push(item),
        }
    }
    out
}

fn fire(alert: &mut Alert, now: Millis) {
    alert.state = State::Firing;
    alert.fired_at = Some(now);
    alert.last_sent = Some(now);
}

fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| a.key().cmp(&b.key()));
}

/// The transitions that end every alert of a rule quietly (a deleted rule):
/// no notices, as the contract says.
pub fn forget(prev: &[Alert], rule_id: &str, content_hash: &str, now: Millis) -> Vec<Transition> {
    prev.iter()
        .filter(|a| a.rule == rule_id)
        .map(|a| Transition {
            rule: a.rule.clone(),
            subject: a.subject.clone(),
            at: now,
            from: a.state,
            to: State::Inactive,
            value: a.value(),
            message: "规则已删除".into(),
            content_hash: content_hash.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{HOUR, MINUTE};

    fn rule(for_: Millis, repeat: Millis) -> AlertRule {
        AlertRule {
            closes_at: None,
            id: "unemployment-rate".into(),
            title: "城镇登记失业率 ≤ 4.5%".into(),
            severity: Severity::Critical,
            owner: Some("人社局".into()),
            file: "rules/unemployment.rhai".into(),
            content_hash: "abc".into(),
            recipients: vec!["renshe@example.cn".into()],
            for_,
            repeat,
        }
    }

    fn labels(county: &str) -> Labels {
        [("county".to_string(), county.to_string())].into()
    }

    fn finding(kind: FindingKind, county: &str, value: f64) -> Finding {
        let mut details = serde_json::Map::new();
        details.insert("value".into(), value.into());
        details.insert("threshold".into(), 4.5.into());
        Finding {
            rule: "unemployment-rate".into(),
            kind,
            subject: labels(county),
            message: format!("失业率 {value}%"),
            details,
        }
    }

    fn breach(county: &str) -> Finding {
        finding(FindingKind::Breach, county, 5.0)
    }

    fn error(message: &str) -> Finding {
        Finding {
            rule: "unemployment-rate".into(),
            kind: FindingKind::Error,
            subject: Labels::new(),
            message: message.into(),
            details: Default::default(),
        }
    }

    /// Steps the machine on a fake clock, keeping the alerts between steps.
    struct Clock {
        rule: AlertRule,
        alerts: Vec<Alert>,
        now: Millis,
    }

    impl Clock {
        fn new(rule: AlertRule) -> Self {
            Clock {
                rule,
                alerts: Vec::new(),
                now: 0,
            }
        }
        fn at(&mut self, now: Millis, findings: &[Finding]) -> Vec<NoticeKind> {
            self.now = now;
            let e = evaluate(&self.alerts, &self.rule, now, findings);
            self.alerts = e.alerts;
            e.notices.iter().map(|n| n.kind).collect()
        }
        fn state(&self, county: &str) -> State {
            self.alerts
                .iter()
                .find(|a| a.subject == labels(county) && a.state != State::Error)
                .map_or(State::Inactive, |a| a.state)
        }
    }

    #[test]
    fn fires_at_once_without_for_and_resolves_when_absent() {
        let mut c = Clock::new(rule(0, 0));
        assert_eq!(c.at(0, &[breach("南宫")]), [NoticeKind::Firing]);
        assert_eq!(c.state("南宫"), State::Firing);
        assert_eq!(c.at(MINUTE, &[breach("南宫")]), []);
        assert_eq!(c.at(2 * MINUTE, &[]), [NoticeKind::Resolved]);
        assert_eq!(c.state("南宫"), State::Inactive);
        assert!(c.alerts.is_empty());
        assert_eq!(c.at(3 * MINUTE, &[]), []);
    }

    #[test]
    fn a_breach_shorter_than_for_sends_nothing() {
        let mut c = Clock::new(rule(HOUR, 0));
        assert_eq!(c.at(0, &[breach("南宫")]), []);
        assert_eq!(c.state("南宫"), State::Pending);
        assert_eq!(c.at(30 * MINUTE, &[breach("南宫")]), []);
        assert_eq!(c.at(59 * MINUTE, &[]), []);
        assert_eq!(c.state("南宫"), State::Inactive);
        // A new episode starts the `for` clock again.
        assert_eq!(c.at(HOUR, &[breach("南宫")]), []);
        assert_eq!(c.at(HOUR + 59 * MINUTE, &[breach("南宫")]), []);
        assert_eq!(c.at(2 * HOUR, &[breach("南宫")]), [NoticeKind::Firing]);
        let a = &c.alerts[0];
        assert_eq!((a.active_since, a.fired_at), (HOUR, Some(2 * HOUR)));
    }

    #[test]
    fn reminds_every_repeat_and_not_before() {
        let mut c = Clock::new(rule(0, 24 * HOUR));
        assert_eq!(c.at(0, &[breach("南宫")]), [NoticeKind::Firing]);
        assert_eq!(c.at(23 * HOUR, &[breach("南宫")]), []);
        assert_eq!(c.at(24 * HOUR - 1, &[breach("南宫")]), []);
        assert_eq!(c.at(24 * HOUR, &[breach("南宫")]), [NoticeKind::Reminder]);
        // The next one counts from the last reminder.
        assert_eq!(c.at(47 * HOUR, &[breach("南宫")]), []);
        assert_eq!(c.at(48 * HOUR, &[breach("南宫")]), [NoticeKind::Reminder]);
        assert_eq!(c.alerts[0].fired_at, Some(0));
        assert_eq!(c.alerts[0].last_sent, Some(48 * HOUR));
    }

    #[test]
    fn no_reminders_when_repeat_is_zero() {
        let mut c = Clock::new(rule(0, 0));
        c.at(0, &[breach("南宫")]);
        assert_eq!(c.at(1000 * HOUR, &[breach("南宫")]), []);
    }

    #[test]
    fn no_data_is_its_own_state() {
        let mut c = Clock::new(rule(HOUR, 24 * HOUR));
        let missing = || finding(FindingKind::NoData, "南宫", 0.0);
        assert_eq!(
            c.at(0, &[missing()]),
            [NoticeKind::NoData],
            "not delayed by `for`"
        );
        assert_eq!(c.state("南宫"), State::NoData);
        assert_eq!(c.at(HOUR, &[missing()]), []);
        assert_eq!(c.at(24 * HOUR, &[missing()]), [NoticeKind::NoDataReminder]);
        assert_eq!(c.at(25 * HOUR, &[]), [NoticeKind::DataReturned]);
        assert_eq!(c.state("南宫"), State::Inactive);
    }

    #[test]
    fn no_data_then_breach() {
        let missing = || finding(FindingKind::NoData, "南宫", 0.0);
        let mut c = Clock::new(rule(0, 0));
        c.at(0, &[missing()]);
        assert_eq!(c.at(HOUR, &[breach("南宫")]), [NoticeKind::Firing]);
        assert_eq!(c.at(2 * HOUR, &[missing()]), [NoticeKind::NoData]);

        let mut c = Clock::new(rule(HOUR, 0));
        c.at(0, &[missing()]);
        assert_eq!(c.at(HOUR, &[breach("南宫")]), [NoticeKind::DataReturned]);
        assert_eq!(c.state("南宫"), State::Pending);
        assert_eq!(c.at(2 * HOUR, &[breach("南宫")]), [NoticeKind::Firing]);
    }

    #[test]
    fn subjects_are_independent_and_breach_wins_over_no_data() {
        let mut c = Clock::new(rule(0, 0));
        let both = [
            finding(FindingKind::NoData, "南宫", 0.0),
            breach("南宫"),
            finding(FindingKind::NoData, "威县", 0.0),
        ];
        assert_eq!(c.at(0, &both), [NoticeKind::Firing, NoticeKind::NoData]);
        assert_eq!(c.state("南宫"), State::Firing);
        assert_eq!(c.state("威县"), State::NoData);
        assert_eq!(
            c.at(MINUTE, &[breach("威县")]),
            [NoticeKind::Resolved, NoticeKind::Firing]
        );
    }

    #[test]
    fn rule_error_tells_admin_once_per_distinct_error_and_freezes_alerts() {
        let mut c = Clock::new(rule(0, HOUR));
        c.at(0, &[breach("南宫")]);
        assert_eq!(
            c.at(MINUTE, &[error("line 3: boom")]),
            [NoticeKind::RuleError]
        );
        assert_eq!(c.state("南宫"), State::Firing, "frozen, not resolved");
        assert_eq!(
            c.at(2 * HOUR, &[error("line 3: boom")]),
            [],
            "same error, no reminder either"
        );
        assert_eq!(
            c.at(3 * HOUR, &[error("line 4: other")]),
            [NoticeKind::RuleError]
        );
        let e = c.alerts.iter().find(|a| a.state == State::Error).unwrap();
        assert_eq!(e.active_since, MINUTE);
        assert_eq!(
            c.at(4 * HOUR, &[breach("南宫")]),
            [NoticeKind::RuleRecovered, NoticeKind::Reminder]
        );
        assert!(c.alerts.iter().all(|a| a.state != State::Error));
        assert_eq!(
            c.at(5 * HOUR, &[error("line 3: boom")]),
            [NoticeKind::RuleError]
        );
    }

    #[test]
    fn error_slot_does_not_collide_with_whole_rule_subject() {
        let mut c = Clock::new(rule(0, 0));
        let whole = || Finding {
            subject: Labels::new(),
            ..breach("")
        };
        assert_eq!(c.at(0, &[whole()]), [NoticeKind::Firing]);
        assert_eq!(c.at(MINUTE, &[error("x")]), [NoticeKind::RuleError]);
        assert_eq!(c.alerts.len(), 2);
        assert_eq!(c.at(2 * MINUTE, &[whole()]), [NoticeKind::RuleRecovered]);
        assert_eq!(c.alerts.len(), 1);
        assert_eq!(c.alerts[0].state, State::Firing);
    }

    #[test]
    fn transitions_record_from_and_to() {
        let r = rule(HOUR, 0);
        let e1 = evaluate(&[], &r, 0, &[breach("南宫")]);
        assert_eq!(e1.transitions.len(), 1);
        assert_eq!(
            (e1.transitions[0].from, e1.transitions[0].to),
            (State::Inactive, State::Pending)
        );
        assert_eq!(e1.transitions[0].value, Some(5.0));
        assert_eq!(e1.transitions[0].content_hash, "abc");
        let e2 = evaluate(&e1.alerts, &r, HOUR, &[breach("南宫")]);
        assert_eq!(
            (e2.transitions[0].from, e2.transitions[0].to),
            (State::Pending, State::Firing)
        );
        let e3 = evaluate(&e2.alerts, &r, 2 * HOUR, &[]);
        assert_eq!(
            (e3.transitions[0].from, e3.transitions[0].to),
            (State::Firing, State::Inactive)
        );
    }

    #[test]
    fn notice_ids_are_stable_and_distinct() {
        let r = rule(0, HOUR);
        let a = evaluate(&[], &r, 0, &[breach("南宫")]);
        let b = evaluate(&[], &r, 0, &[breach("南宫")]);
        assert_eq!(a.notices[0].id(), b.notices[0].id());
        let c = evaluate(&[], &r, 1, &[breach("南宫")]);
        assert_ne!(a.notices[0].id(), c.notices[0].id());
        let d = evaluate(&[], &r, 0, &[breach("威县")]);
        assert_ne!(a.notices[0].id(), d.notices[0].id());
    }

    #[test]
    fn forget_ends_quietly() {
        let r = rule(0, 0);
        let e = evaluate(&[], &r, 0, &[breach("南宫"), breach("威县")]);
        let t = forget(&e.alerts, &r.id, "def", HOUR);
        assert_eq!(t.len(), 2);
        assert!(t
            .iter()
            .all(|t| t.to == State::Inactive && t.from == State::Firing));
    }

    fn verdict(county: &str) -> Finding {
        let mut f = finding(FindingKind::Breach, county, 67.5);
        f.details.insert("final".into(), true.into());
        f.details.insert("year".into(), 2021.into());
        f
    }

    /// A year's missed target: mailed once, never reminded, never resolved,
    /// whatever the following evaluations find.
    #[test]
    fn a_final_verdict_is_sent_once_and_stands() {
        let day = 24 * HOUR;
        let mut c = Clock::new(rule(0, 7 * day));
        // December's pace breach fires first, then the year's verdict.
        assert_eq!(c.at(0, &[breach("南宫")]), [NoticeKind::Firing]);
        let e = evaluate(&c.alerts, &c.rule, 30 * day, &[verdict("南宫")]);
        assert_eq!(e.transitions.len(), 1);
        assert_eq!(
            (e.transitions[0].from, e.transitions[0].to),
            (State::Firing, State::Final)
        );
        assert_eq!(
            e.notices.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [NoticeKind::FinalVerdict]
        );
        c.alerts = e.alerts;
        assert_eq!(c.alerts[0].verdict_year(), Some(2021));
        // The same verdict again, weeks later: no reminder.
        assert_eq!(c.at(60 * day, &[verdict("南宫")]), []);
        // Next year's figure: the rule finds nothing, the verdict stays.
        let e = evaluate(&c.alerts, &c.rule, 90 * day, &[]);
        assert!(e.transitions.is_empty() && e.notices.is_empty(), "{e:?}");
        assert_eq!(e.alerts.len(), 1);
        assert_eq!(e.alerts[0].state, State::Final);
        c.alerts = e.alerts;
        // Even a plain breach or no data later does not replace it.
        assert_eq!(c.at(100 * day, &[breach("南宫")]), []);
        assert_eq!(c.state("南宫"), State::Final);
        let mut nd = breach("南宫");
        nd.kind = FindingKind::NoData;
        assert_eq!(c.at(110 * day, &[nd]), []);
        assert_eq!(c.state("南宫"), State::Final);
        // A verdict straight from nothing.
        let mut c = Clock::new(rule(HOUR, 0));
        assert_eq!(c.at(0, &[verdict("威县")]), [NoticeKind::FinalVerdict]);
        assert_eq!(c.state("威县"), State::Final);
        assert_eq!(State::parse("final"), Some(State::Final));
        assert_eq!(
            NoticeKind::parse("final_verdict"),
            Some(NoticeKind::FinalVerdict)
        );
    }

    /// After its year and grace, a rule's alerts are frozen: no reminders,
    /// nothing new, nothing resolved.
    #[test]
    fn a_closed_rule_stops_reminding() {
        let day = 24 * HOUR;
        let mut r = rule(0, day);
        r.closes_at = Some(10 * day);
        let mut c = Clock::new(r);
        assert_eq!(c.at(0, &[breach("南宫")]), [NoticeKind::Firing]);
        assert_eq!(c.at(day, &[breach("南宫")]), [NoticeKind::Reminder]);
        assert_eq!(c.at(9 * day, &[breach("南宫")]), [NoticeKind::Reminder]);
        let before = c.alerts.clone();
        for t in [10 * day, 11 * day, 400 * day] {
            let e = evaluate(&c.alerts, &c.rule, t, &[breach("南宫"), breach("威县")]);
            assert!(e.notices.is_empty() && e.transitions.is_empty(), "{e:?}");
            assert_eq!(e.alerts, before);
            let e = evaluate(&c.alerts, &c.rule, t, &[]);
            assert!(e.notices.is_empty() && e.transitions.is_empty(), "{e:?}");
            assert_eq!(e.alerts, before);
        }
    }

    #[test]
    fn findings_and_alerts_in_any_order_pair_by_subject() {
        // The machine takes its inputs in any order (findings as a rule
        // reports them, alerts as read back) and answers in subject order.
        let mut c = Clock::new(rule(0, 0));
        let mut n1 = finding(FindingKind::Breach, "c1", 6.0);
        n1.message = "the second breach of c1 is not the one".into();
        let unsorted = [
            breach("c3"),
            finding(FindingKind::NoData, "c1", 0.0),
            breach("c2"),
            finding(FindingKind::Breach, "c1", 5.5),
            n1,
            finding(FindingKind::NoData, "c2", 0.0),
            breach("c0"),
        ];
        assert_eq!(c.at(0, &unsorted), [NoticeKind::Firing; 4]);
        let subjects: Vec<&str> = c
            .alerts
            .iter()
            .map(|a| a.subject["county"].as_str())
            .collect();
        assert_eq!(subjects, ["c0", "c1", "c2", "c3"]);
        assert_eq!(c.alerts[1].message, "失业率 5.5%", "the first breach of c1");
        // The same again with the alerts shuffled: nothing new.
        c.alerts.reverse();
        assert_eq!(c.at(MINUTE, &unsorted), []);
        assert!(c
            .alerts
            .iter()
            .all(|a| a.state == State::Firing && a.active_since == 0));
        // Two gone: resolved in subject order, the others continue.
        c.alerts.swap(0, 3);
        let e = evaluate(
            &c.alerts,
            &c.rule,
            2 * MINUTE,
            &[breach("c2"), breach("c0")],
        );
        let resolved: Vec<&str> = e
            .notices
            .iter()
            .map(|n| n.subject["county"].as_str())
            .collect();
        assert_eq!(resolved, ["c1", "c3"]);
        assert!(e.notices.iter().all(|n| n.kind == NoticeKind::Resolved));
        let left: Vec<(&str, Millis)> = e
            .alerts
            .iter()
            .map(|a| (a.subject["county"].as_str(), a.active_since))
            .collect();
        assert_eq!(left, [("c0", 0), ("c2", 0)]);
    }
}
