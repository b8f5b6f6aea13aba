//! Running evaluations: from a scheduler tick or the API.
//!
//! The Rhai evaluation is synchronous and CPU-bound: it runs on the blocking
//! pool, at most one per core at a time (so that thirty rules due at 09:00
//! do not share two cores thirty ways and run into their wall-clock limits).
//! Each evaluation holds its rule's overlap guard and the in-flight count
//! until its outcome has been recorded by the alert machine.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::OwnedMutexGuard;

use super::batch::{BatchOwner, Outcomes};
use super::instants::{next_after, scheduled_instant, Tick};
use super::state::{Daemon, InFlightGuard, LastEvaluation, Trigger};
use crate::rules::{Rule, RuleOutcome};
use crate::time::{format_time, Millis, SECOND};

/// Why an evaluation did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRun {
    #[error("no rule with id `{0}`")]
    UnknownRule(String),
    /// The previous run of a scheduled rule is still going.
    #[error("the previous evaluation is still running")]
    Overlap,
    #[error("shutting down")]
    ShuttingDown,
    /// The blocking task died (a panic outside the evaluator's own guard).
    #[error("evaluation task failed: {0}")]
    Crashed(String),
}

/// An evaluated rule whose outcome is not recorded yet. Holds the rule's
/// overlap guard and the in-flight count until dropped.
pub struct Evaluated {
    pub rule: Arc<Rule>,
    pub outcome: RuleOutcome,
    _running: OwnedMutexGuard<()>,
    _in_flight: InFlightGuard,
}

/// A scheduler tick for `rule_id`, fired at wall-clock `fired`.
pub async fn on_tick(daemon: &Arc<Daemon>, rule_id: &str, fired: Millis) {
    let tz = daemon.config().timezone;
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
    match run(daemon, rule_id, at, Trigger::Schedule).await {
        Ok(e) => {
            let Evaluated {
                rule,
                outcome,
                _running,
                _in_flight,
            } = e;
            daemon.batches.submit(daemon, at, rule, outcome).await;
        }
        Err(not_run) => {
            match &not_run {
                NotRun::Overlap => {
                    daemon.metrics.skipped(rule_id);
                    tracing::warn!(rule = %rule_id, at = %format_time(at, tz), "previous evaluation still running: this run skipped");
                }
                NotRun::ShuttingDown => {
                    tracing::info!(rule = %rule_id, "shutting down: scheduled run not started")
                }
                e => {
                    tracing::error!(rule = %rule_id, error = %e, "scheduled evaluation did not run")
                }
            }
            daemon.batches.withdraw(daemon, at, rule_id).await;
        }
    }
}

/// Evaluates `rule_id` as of `at`, without recording the outcome. A
/// scheduled run skips when the rule is already running; an API run waits
/// its turn.
pub async fn run(
    daemon: &Arc<Daemon>,
    rule_id: &str,
    at: Millis,
    trigger: Trigger,
) -> Result<Evaluated, NotRun> {
    // Enter before looking at the flag: shutdown sets the flag, then waits
    // for the count to drop to zero, so no evaluation slips between the two.
    let in_flight = daemon.enter_in_flight();
    if daemon.is_shutting_down() {
        return Err(NotRun::ShuttingDown);
    }
    let guard = {
        let rules = daemon.rules.read();
        let entry = rules
            .rules
            .get(rule_id)
            .ok_or_else(|| NotRun::UnknownRule(rule_id.to_string()))?;
        entry.guard.clone()
    };
    let running = match trigger {
        Trigger::Schedule => guard.try_lock_owned().map_err(|_| NotRun::Overlap)?,
        Trigger::Api => guard.lock_owned().await,
    };
    let _slot = daemon
        .eval_slots
        .acquire()
        .await
        .map_err(|_| NotRun::ShuttingDown)?;
    if daemon.is_shutting_down() {
        return Err(NotRun::ShuttingDown); // queued behind others when the signal came
    }
    // The version to run is read under the guard: a reload meanwhile is picked up.
    let rule: Arc<Rule> = {
        let rules = daemon.rules.read();
        let entry = rules
            .rules
            .get(rule_id)
            .ok_or_else(|| NotRun::UnknownRule(rule_id.to_string()))?;
        entry.rule.clone()
    };
    let d = daemon.clone();
    let r = rule.clone();
    let outcome = tokio::task::spawn_blocking(move || d.evaluator().evaluate(&r, at))
        .await
        .map_err(|e| NotRun::Crashed(e.to_string()))?;

    daemon
        .metrics
        .evaluated(rule_id, outcome.error.is_some(), outcome.duration);
    if let Some(e) = &outcome.error {
        tracing::warn!(rule = %rule_id, error = %e, "rule failed");
    } else {
        tracing::info!(
            rule = %rule_id,
            at = %format_time(at, daemon.config().timezone),
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
            breach: outcome.first_breach().cloned(),
            trigger,
        });
    }
    Ok(Evaluated {
        rule,
        outcome,
        _running: running,
        _in_flight: in_flight,
    })
}

/// The daemon's side of batching: its rule set says which rules an instant
/// expects, and [`record`] records a batch.
impl BatchOwner for Daemon {
    fn rules_due_at(&self, at: Millis) -> BTreeSet<String> {
        let tz = self.config().timezone;
        self.rules
            .read()
            .rules
            .iter()
            .filter(|(_, e)| next_after(&e.rule.meta.schedule, at - SECOND, tz) == Some(at))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn format_instant(&self, at: Millis) -> String {
        format_time(at, self.config().timezone)
    }

    fn is_shutting_down(&self) -> bool {
        Daemon::is_shutting_down(self)
    }

    fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        Daemon::shutdown_signal(self)
    }

    fn record(
        owner: &Arc<Self>,
        at: Millis,
        items: Outcomes,
    ) -> impl std::future::Future<Output = ()> + Send {
        record(owner, at, items)
    }
}

/// Records the outcomes of one instant through the alert machine (one
/// transaction; mail queued with it). A failure is logged: the next
/// evaluation of the rules steps the machine again from the stored state.
/// Shared, not copied: an evaluation's outcomes can hold thousands of findings.
pub async fn record(daemon: &Arc<Daemon>, at: Millis, items: Outcomes) {
    let d = daemon.clone();
    let n = items.len();
    let result = tokio::task::spawn_blocking(move || d.alerting.record(at, &items)).await;
    match result {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.is_disk_full() => tracing::error!(
            rules = n, error = %e,
            "存储空间已满，本次评估的告警变化未能记录，空间恢复后的下一次评估会补记：请清理磁盘，或缩短 rulewatch.ron 中 retention 的保留期限 / \
             store full: this evaluation's alert changes were not recorded (the next evaluation after space returns records them); \
             free disk space or shorten `retention`"
        ),
        Ok(Err(e)) => {
            tracing::error!(rules = n, error = %e, "could not record the evaluation's alerts")
        }
        Err(e) => {
            tracing::error!(rules = n, error = %e, "recording the evaluation's alerts crashed")
        }
    }
}

/// Evaluates rules as of `at` for the API, all at once, and records them as
/// one evaluation. Rules removed meanwhile are left out.
pub async fn evaluate_now(
    daemon: &Arc<Daemon>,
    ids: Vec<String>,
    at: Millis,
) -> Result<Vec<(Arc<Rule>, RuleOutcome)>, NotRun> {
    let mut set = tokio::task::JoinSet::new();
    for id in ids {
        let d = daemon.clone();
        set.spawn(async move { run(&d, &id, at, Trigger::Api).await });
    }
    let mut done: Vec<Evaluated> = Vec::new();
    let mut failure = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(e)) => done.push(e),
            Ok(Err(NotRun::UnknownRule(_))) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(NotRun::Crashed(e.to_string())),
        }
    }
    if let Some(e) = failure {
        // Record what did run, so the alert state follows every evaluation.
        record_evaluated(daemon, at, done).await;
        return Err(e);
    }
    Ok(record_evaluated(daemon, at, done).await)
}

async fn record_evaluated(
    daemon: &Arc<Daemon>,
    at: Millis,
    mut done: Vec<Evaluated>,
) -> Vec<(Arc<Rule>, RuleOutcome)> {
    done.sort_by(|a, b| a.rule.meta.id.cmp(&b.rule.meta.id));
    // The outcomes are shared with the record, not copied; the guards stay
    // until it is done.
    let mut guards = Vec::with_capacity(done.len());
    let mut items = Vec::with_capacity(done.len());
    for e in done {
        let Evaluated {
            rule,
            outcome,
            _running,
            _in_flight,
        } = e;
        guards.push((_running, _in_flight));
        items.push((rule, outcome));
    }
    let items = Arc::new(items);
    if !items.is_empty() {
        record(daemon, at, items.clone()).await;
    }
    drop(guards); // releases the guards after the record
    Arc::try_unwrap(items).unwrap_or_else(|shared| shared.as_ref().clone())
}
