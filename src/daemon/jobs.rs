//! The cron jobs: one tokio-cron-scheduler job per rule, each calling
//! [`OnTick`] with the rule id and the wall-clock time it fired. What a tick
//! stands for is worked out by the caller ([`super::instants`]); the
//! scheduler's own idea of time is never used.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono_tz::Tz;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use crate::time::Millis;

/// What a job does when it fires: `(rule id, fired at)`.
pub type OnTick =
    Arc<dyn Fn(String, Millis) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

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
        on_tick: &OnTick,
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
            match self.add(on_tick, id, cron).await {
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

    async fn add(&self, on_tick: &OnTick, id: &str, cron: &str) -> Result<Uuid, JobSchedulerError> {
        let on_tick = on_tick.clone();
        let rule_id = id.to_string();
        let job = Job::new_async_tz(cron, self.tz, move |_uuid, _lock| {
            let on_tick = on_tick.clone();
            let rule_id = rule_id.clone();
            Box::pin(async move {
                let fired = chrono::Utc::now().timestamp_millis();
                on_tick(rule_id, fired).await;
            })
        })?;
        self.scheduler.add(job).await
    }

    /// A job that calls `beat` every `every` (whole seconds), beside the
    /// rules' jobs: the systemd watchdog ping comes from the scheduler's own
    /// loop, so it stops when the scheduler hangs.
    pub async fn add_heartbeat(
        &self,
        every: std::time::Duration,
        beat: impl Fn() + Send + Sync + 'static,
    ) -> Result<Uuid, JobSchedulerError> {
        let beat = Arc::new(beat);
        let job = Job::new_repeated_async(every, move |_uuid, _lock| {
            let beat = beat.clone();
            Box::pin(async move { beat() })
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
