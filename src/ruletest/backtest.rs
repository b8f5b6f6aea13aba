//! Backtest: replay one rule over stored history through the real alert
//! state machine and list every transition.
//!
//! The state machine is stepped in memory ([`crate::alerts::evaluate`], the
//! function the daemon's alert store steps too), so a backtest writes nothing
//! and a year of daily ticks takes milliseconds: the rule is compiled once,
//! the evaluator (and its engine) built once, and the store keeps the series
//! in memory after the first tick reads them.

use serde::Serialize;

use crate::alerts::AlertRule;
use crate::alerts::{self, Alert, State, Transition};
use crate::readings::Labels;
use crate::rules::{Evaluator, Rule};
use crate::time::Millis;

/// A state as a backtest names it: `inactive` only as a `from` (a new
/// alert), and every end of an episode as `resolved`.
pub fn state_name(state: State, is_to: bool) -> &'static str {
    match state {
        State::Inactive if is_to => "resolved",
        State::Inactive => "inactive",
        s => s.as_str(),
    }
}

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// RFC 3339 in the configured timezone.
    pub time: String,
    #[serde(skip)]
    pub at: Millis,
    pub rule: String,
    pub subject: Labels,
    pub from: &'static str,
    pub to: &'static str,
    pub value: Option<f64>,
    pub message: String,
}

/// What a replay found.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    pub rows: Vec<Row>,
    /// Evaluations run.
    pub evaluations: usize,
    /// Evaluations in which the rule failed.
    pub errors: usize,
    /// Alerts still active after the last tick.
    pub active: Vec<Alert>,
}

/// Evaluates `rule` at each of `times` (ascending) and steps the alert
/// state machine from nothing.
pub fn replay(evaluator: &Evaluator, rule: &Rule, times: &[Millis]) -> Replay {
    let machine_rule = AlertRule::from_rule(rule);
    let tz = evaluator.timezone();
    let mut prev: Vec<Alert> = Vec::new();
    let mut out = Replay::default();
    for &at in times {
        let outcome = evaluator.evaluate(rule, at);
        if outcome.error.is_some() {
            out.errors += 1;
        }
        let findings = outcome.all_findings();
        let step = alerts::evaluate(&prev, &machine_rule, at, &findings);
        out.rows.extend(step.transitions.iter().map(|t| row(t, tz)));
        prev = step.alerts;
        out.evaluations += 1;
    }
    out.active = prev;
    out
}

fn row(t: &Transition, tz: chrono_tz::Tz) -> Row {
    Row {
        time: crate::time::format_time(t.at, tz),
        at: t.at,
        rule: t.rule.clone(),
        subject: t.subject.clone(),
        from: state_name(t.from, false),
        to: state_name(t.to, true),
        value: t.value,
        message: t.message.clone(),
    }
}

/// The instants to evaluate at: the rule's schedule ticks in `[from, to]`,
/// or every `step` from `from`.
pub fn ticks(
    rule: &Rule,
    from: Millis,
    to: Millis,
    step: Option<Millis>,
    tz: chrono_tz::Tz,
) -> Vec<Millis> {
    match step {
        None => rule.meta.schedule.between(from, to, tz),
        Some(step) => {
            let mut out = Vec::new();
            let mut t = from;
            while t <= to {
                out.push(t);
                t += step.max(1);
            }
            out
        }
    }
}
