//! The daemon's cron jobs ([`super::jobs`]): kept in step with the rule set
//! ([`sync_jobs`]), each tick handed to evaluation, and every job re-created
//! at each UTC offset change of the zone; what a tick stands for is worked
//! out in [`super::instants`] (the scheduler's own idea of time is never used).
//! - Nothing stops a slow rule overlapping its next tick: evaluation takes a
//!   per-rule try-lock (see `evaluate.rs`).

use std::sync::{Arc, Weak};

use super::instants::{next_offset_change, offset_at, EARLY_GRACE};
use super::jobs::OnTick;
use super::state::Daemon;
use crate::time::{DAY, HOUR, MINUTE, SECOND};

/// Evaluation of the rule a job fired for. Holds the daemon weakly: a job
/// outliving shutdown does nothing.
pub fn on_tick(daemon: &Arc<Daemon>) -> OnTick {
    let weak: Weak<Daemon> = Arc::downgrade(daemon);
    Arc::new(move |rule_id: String, fired| {
        let weak = weak.clone();
        Box::pin(async move {
            if let Some(daemon) = weak.upgrade() {
                super::evaluate::on_tick(&daemon, &rule_id, fired).await;
            }
        })
    })
}

/// Sets the jobs to the rules loaded now (with `recreate_all`, every job is
/// re-created: a UTC offset change).
pub async fn sync_jobs(daemon: &Arc<Daemon>, recreate_all: bool) {
    let mut jobs = daemon.jobs.lock().await;
    let Some(jobs) = jobs.as_mut() else {
        return;
    };
    let wanted = daemon.rules.read().wanted_jobs();
    let created = jobs.sync(&on_tick(daemon), &wanted, recreate_all).await;
    if !created.is_empty() {
        tracing::debug!(rules = ?created, "jobs created");
    }
}

/// Re-creates every job at each UTC offset change of the configured zone.
/// Sleeps in slices of at most an hour so that a suspended machine or a
/// stepped clock is noticed.
pub async fn watch_offset_changes(daemon: Arc<Daemon>) {
    let tz = daemon.config().timezone;
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let Some(change) = next_offset_change(tz, now) else {
            tokio::time::sleep(std::time::Duration::from_millis(DAY as u64)).await;
            continue;
        };
        let offset_before = offset_at(tz, now);
        // Wake a moment after the change, so jobs are created in the new offset.
        let wake = change + SECOND;
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            if now >= wake {
                break;
            }
            let slice = (wake - now).min(HOUR);
            tokio::time::sleep(std::time::Duration::from_millis(slice as u64)).await;
        }
        if daemon.is_shutting_down() {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        tracing::info!(
            timezone = %tz,
            from = offset_before,
            to = offset_at(tz, now),
            "UTC offset changed: re-creating the rule jobs"
        );
        daemon
            .metrics
            .dst_reschedules
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        sync_jobs(&daemon, true).await;
        // An instant at the change itself (03:00 on a spring-forward night)
        // belonged to the old jobs; if they did not fire it before they were
        // replaced, run it now. The cursor keeps this from running twice.
        let fired = chrono::Utc::now().timestamp_millis() - EARLY_GRACE;
        let ids: Vec<String> = daemon.rules.read().rules.keys().cloned().collect();
        for id in ids {
            let d = daemon.clone();
            tokio::spawn(async move { super::evaluate::on_tick(&d, &id, fired).await });
        }
        // Guard against a zone database that reports a change we cannot see.
        tokio::time::sleep(std::time::Duration::from_millis(MINUTE as u64)).await;
    }
}
