//! Cron jobs: one tokio-cron-scheduler job per rule, re-created at each UTC
//! offset change of the zone; what a tick stands for is worked out in
//! [`super::instants`] (the scheduler's own idea of time is never used).
//! - Nothing stops a slow rule overlapping its next tick: evaluation takes a
//!   per-rule try-lock (see `evaluate.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use chrono_tz::Tz;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use super::instants::{next_offset_change, offset_at, EARLY_GRACE};
use super::state::Daemon;
use crate::time::{DAY, HOUR, MINUTE, SECOND};

/// Where the scheduler's jobs are: rule id → (job id, cron text it runs).
pub struct Jobs {
    scheduler: JobScheduler,
    jobs: HashMap<String, (Uuid, String)>,
    tz: Tz,
}

impl Jobs {
    pub async fn new(tz: Tz) -> Result<Jobs, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        Ok(Jobs {
            scheduler,
            jobs: HashMap::new(),
            tz,
        })
    }

    pub async fn start(&self) -> Result<(), JobSchedulerError> {
        self.scheduler.start().await
    }

    /// Sets the jobs to exactly `wanted` (rule id → cron text): adds the
    /// missing ones, removes the gone ones, re-creates the changed ones; with
    /// `recreate_all`, every job (a UTC offset change). Returns the ids whose
    /// job was (re-)created.
    pub async fn sync(
        &mut self,
        daemon: &Arc<Daemon>,
        wanted: &HashMap<String, String>,
        recreate_all: bool,
    ) -> Vec<String> {
        let gone: Vec<String> = self
            .jobs
            .iter()
            .filter(|(id, (_, cron))| recreate_all || wanted.get(*id) != Some(cron))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some((uuid, _)) = self.jobs.remove(&id) {
                if let Err(e) = self.scheduler.remove(&uuid).await {
                    tracing::warn!(rule = %id, error = %e, "could not remove the rule's job");
                }
            }
        }
        let mut created = Vec::new();
        let mut ids: Vec<&String> = wanted.keys().collect();
        ids.sort();
        for id in ids {
            if self.jobs.contains_key(id) {
                continue;
            }
            let cron = &wanted[id];
            match self.add(daemon, id, cron).await {
                Ok(uuid) => {
                    self.jobs.insert(id.clone(), (uuid, cron.clone()));
                    created.push(id.clone());
                }
                Err(e) => {
                    tracing::error!(rule = %id, schedule = %cron, error = %e, "could not schedule the rule")
                }
            }
        }
        created
    }

    async fn add(
        &self,
        daemon: &Arc<Daemon>,
        id: &str,
        cron: &str,
    ) -> Result<Uuid, JobSchedulerError> {
        // The job holds the daemon weakly: a job outliving shutdown does nothing.
        let weak: Weak<Daemon> = Arc::downgrade(daemon);
        let rule_id = id.to_string();
        let job = Job::new_async_tz(cron, self.tz, move |_uuid, _lock| {
            let weak = weak.clone();
            let rule_id = rule_id.clone();
            Box::pin(async move {
                if let Some(daemon) = weak.upgrade() {
                    let fired = chrono::Utc::now().timestamp_millis();
                    super::evaluate::on_tick(&daemon, &rule_id, fired).await;
                }
            })
        })?;
        self.scheduler.add(job).await
    }

    /// Stops ticking. Only sets the scheduler's flag: a tick already taken
    /// still runs, and evaluation refuses to start once shutdown began.
    pub async fn shutdown(&mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "scheduler shutdown");
        }
    }
}

/// Re-creates every job at each UTC offset change of the configured zone.
/// Sleeps in slices of at most an hour so that a suspended machine or a
/// stepped clock is noticed.
pub async fn watch_offset_changes(daemon: Arc<Daemon>) {
    let tz = daemon.config.timezone;
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
        daemon.sync_jobs(true).await;
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
