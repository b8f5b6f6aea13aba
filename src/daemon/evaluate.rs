//! Running one evaluation of one rule: from a scheduler tick or the API.
//!
//! The Rhai evaluation is synchronous and CPU-bound, so it runs on the
//! blocking pool; the async side holds the rule's overlap guard and the
//! in-flight count until the outcome has been recorded.

use std::sync::Arc;

use super::schedule::{scheduled_instant, Tick};
use super::state::{Daemon, LastEvaluation, Trigger};
use crate::rules::{Rule, RuleOutcome};
use crate::time::{format_time, Millis};

/// Why an evaluation did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRun {
    UnknownRule(String),
    /// The previous run of a scheduled rule is still going.
    Overlap,
    ShuttingDown,
    /// The blocking task died (a panic outside the evaluator's own guard).
    Crashed(String),
}

/// A scheduler tick for `rule_id`, fired at wall-clock `fired`.
pub async fn on_tick(daemon: &Arc<Daemon>, rule_id: &str, fired: Millis) {
    let tz = daemon.config.timezone;
    // Work out which scheduled instant this tick stands for, and claim it.
    let at = {
        let mut rules = daemon.rules.write();
        let Some(entry) = rules.rules.get_mut(rule_id) else {
            return; // removed since the job was created
        };
        match scheduled_instant(&entry.rule.meta.schedule, tz, entry.cursor, fired) {
            Tick::Stray => {
                tracing::debug!(rule = %rule_id, fired = %format_time(fired, tz), "tick matches no scheduled instant: ignored");
                return;
            }
            Tick::Run { at, missed } => {
                if missed > 0 {
                    tracing::warn!(rule = %rule_id, missed, at = %format_time(at, tz), "scheduled runs missed; evaluating the latest");
                }
                entry.cursor = at;
                at
            }
        }
    };
    match evaluate(daemon, rule_id, at, Trigger::Schedule).await {
        Ok(_) => {}
        Err(NotRun::Overlap) => {
            daemon.metrics.skipped(rule_id);
            tracing::warn!(rule = %rule_id, at = %format_time(at, tz), "previous evaluation still running: this run skipped");
        }
        Err(NotRun::ShuttingDown) => {
            tracing::info!(rule = %rule_id, "shutting down: scheduled run not started");
        }
        Err(e) => tracing::error!(rule = %rule_id, error = ?e, "scheduled evaluation did not run"),
    }
}

/// Evaluates `rule_id` as of `at`. A scheduled run skips when the rule is
/// already running; an API run waits its turn.
pub async fn evaluate(daemon: &Arc<Daemon>, rule_id: &str, at: Millis, trigger: Trigger) -> Result<RuleOutcome, NotRun> {
    // Enter before looking at the flag: shutdown sets the flag, then waits
    // for the count to drop to zero, so no evaluation slips between the two.
    let _inflight = daemon.inflight.enter();
    if daemon.is_shutting_down() {
        return Err(NotRun::ShuttingDown);
    }
    let guard = {
        let rules = daemon.rules.read();
        let entry = rules.rules.get(rule_id).ok_or_else(|| NotRun::UnknownRule(rule_id.to_string()))?;
        entry.guard.clone()
    };
    let _running = match trigger {
        Trigger::Schedule => guard.try_lock_owned().map_err(|_| NotRun::Overlap)?,
        Trigger::Api => guard.lock_owned().await,
    };
    // The version to run is read under the guard: a reload meanwhile is picked up.
    let rule: Arc<Rule> = {
        let rules = daemon.rules.read();
        let entry = rules.rules.get(rule_id).ok_or_else(|| NotRun::UnknownRule(rule_id.to_string()))?;
        entry.rule.clone()
    };
    let d = daemon.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let outcome = d.evaluator.evaluate(&rule, at);
        // Recorded before the evaluation counts as done (and before the
        // guard is released): shutdown waits for this too.
        d.sink.record(&rule, &outcome);
        outcome
    })
    .await
    .map_err(|e| NotRun::Crashed(e.to_string()))?;

    daemon.metrics.evaluated(rule_id, outcome.error.is_some(), outcome.duration);
    if let Some(e) = &outcome.error {
        tracing::warn!(rule = %rule_id, error = %e, "rule failed");
    } else {
        tracing::info!(
            rule = %rule_id,
            at = %format_time(at, daemon.config.timezone),
            trigger = ?trigger,
            findings = outcome.findings.len(),
            took_ms = outcome.duration.as_secs_f64() * 1e3,
            "evaluated"
        );
    }
    if let Some(entry) = daemon.rules.write().rules.get_mut(rule_id) {
        entry.last = Some(LastEvaluation {
            at,
            finished: chrono::Utc::now().timestamp_millis(),
            duration: outcome.duration,
            error: outcome.error.clone(),
            findings: outcome.findings.len(),
            trigger,
        });
    }
    Ok(outcome)
}
