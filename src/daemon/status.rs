//! The daemon as the source of the status page and the digest:
//! [`StatusSource`] for [`Daemon`], the charts its mails carry (drawn by
//! the sender from the daemon's current rules), and the monthly digest job.

use std::sync::{Arc, Weak};

use chrono_tz::Tz;

use super::state::Daemon;
use crate::alerts::{Alert, HistoryEntry, HistoryQuery};
use crate::notify::chart::{ChartSource, StoreCharts};
use crate::readings::store::Store;
use crate::ruletest::runner::test_status_of;
use crate::status::{LastRun, RuleEntry, StatusSource, TestStatus};
use crate::time::Millis;

impl StatusSource for Daemon {
    fn words(&self) -> crate::status::Words {
        crate::status::Words::for_config(&self.config())
    }
    fn rules(&self) -> Vec<RuleEntry> {
        self.rules
            .read()
            .rules
            .values()
            .map(|e| RuleEntry {
                rule: e.rule.clone(),
                last: e.last.as_ref().map(|l| LastRun {
                    at: l.at,
                    error: l.error.clone(),
                    findings: l.findings,
                    breach: l.breach.clone(),
                }),
                load_error: e.load_error.as_ref().map(|l| l.errors.clone()),
            })
            .collect()
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn alerts(&self, rule: Option<&str>) -> Result<Vec<Alert>, String> {
        self.alerting.alerts(rule).map_err(|e| e.to_string())
    }

    fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, String> {
        self.alerting.history(query).map_err(|e| e.to_string())
    }

    fn timezone(&self) -> Tz {
        self.config().timezone
    }

    /// The wall clock, or under `run --demo` the replay's virtual clock.
    fn now(&self) -> Millis {
        match self.demo_now.load(std::sync::atomic::Ordering::Relaxed) {
            i64::MIN => chrono::Utc::now().timestamp_millis(),
            t => t,
        }
    }

    fn broken_files(&self) -> Vec<(String, Vec<String>)> {
        self.rules
            .read()
            .broken
            .values()
            .map(|b| (b.path.display().to_string(), b.error.errors.clone()))
            .collect()
    }

    fn config_error(&self) -> Option<(String, Vec<String>)> {
        self.config_error
            .read()
            .as_ref()
            .map(|e| (e.path.display().to_string(), e.errors.clone()))
    }

    /// Runs the rule's own test file (`NAME.test.ron` beside `NAME.rhai`), if any.
    fn test_status(&self, rule: &str) -> Option<TestStatus> {
        let path = self.rules.read().rules.get(rule)?.rule.path.clone();
        test_status_of(&self.config(), &path)
    }
}

/// The charts of the daemon's mails: each firing or reminder item drawn by
/// its rule's current `chart` metadata, when the sender sends it.
pub fn mail_charts(daemon: &Arc<Daemon>) -> Arc<dyn ChartSource> {
    // Weak: the sender must not keep the daemon alive.
    let weak: Weak<Daemon> = Arc::downgrade(daemon);
    let for_words = weak.clone();
    let charts = StoreCharts::new(
        daemon.store.clone(),
        daemon.config().timezone,
        move |id: &str| {
            let daemon = weak.upgrade()?;
            let rules = daemon.rules.read();
            rules.rules.get(id).and_then(|e| e.rule.meta.chart.clone())
        },
    )
    // The names of the config in force when the mail is sent (SIGHUP may
    // have changed `labels:` since the daemon started).
    .with_current_words(move || {
        for_words
            .upgrade()
            .map(|d| crate::status::Words::for_config(&d.config()))
            .unwrap_or_default()
    });
    Arc::new(charts)
}

/// Queues the monthly digest at `at` (the scheduled instant). Blocking.
pub fn queue_digest(daemon: &Daemon, at: Millis) {
    match daemon.alerting.queue_digest(daemon, &daemon.config(), at) {
        Ok(ids) if ids.is_empty() => tracing::info!("digest already queued for this month"),
        Ok(ids) => tracing::info!(mails = ids.len(), "monthly digest queued"),
        Err(e) => tracing::error!(error = %e, "monthly digest not queued"),
    }
}

/// How far back a digest the daemon was down for is still sent late.
pub const DIGEST_CATCH_UP: Millis = 7 * crate::time::DAY;

/// Sends the monthly digest on `digest.schedule`, until shutdown. Sleeps in
/// slices of at most an hour (a stepped clock or a suspended machine is
/// noticed); the next instant is computed in the configured zone each time,
/// so daylight-saving changes need no special care. A digest missed while
/// the daemon was down (its instant in the last [`DIGEST_CATCH_UP`]) is
/// queued late at start, after one evaluation of every rule, once: the outbox keys a digest by its month, so a
/// digest already queued is not queued again.
pub async fn digest_loop(daemon: Arc<Daemon>) {
    use crate::time::HOUR;
    let tz = daemon.config().timezone;
    let now = chrono::Utc::now().timestamp_millis();
    let missed = daemon
        .config()
        .digest
        .schedule
        .between(now - DIGEST_CATCH_UP, now, tz)
        .last()
        .copied();
    if let Some(at) = missed {
        // A digest lists only what this run has judged (a rule's last
        // evaluation lives in memory), so the late one follows one
        // evaluation of every rule, as `POST /api/v1/evaluate` would run.
        let ids: Vec<String> = daemon.rules.read().rules.keys().cloned().collect();
        let now = chrono::Utc::now().timestamp_millis();
        if let Err(e) = super::evaluate::evaluate_now(&daemon, ids, now).await {
            tracing::warn!(error = %e, "evaluation before the late digest did not run in full");
        }
        let d = daemon.clone();
        let _ = tokio::task::spawn_blocking(move || queue_digest(&d, at)).await;
    }
    let mut next = daemon
        .config()
        .digest
        .schedule
        .next_after(chrono::Utc::now().timestamp_millis(), tz);
    while let Some(at) = next {
        loop {
            if daemon.is_shutting_down() {
                return;
            }
            let now = chrono::Utc::now().timestamp_millis();
            if now >= at {
                break;
            }
            let slice = (at - now).min(HOUR);
            tokio::time::sleep(std::time::Duration::from_millis(slice as u64)).await;
        }
        let d = daemon.clone();
        let _ = tokio::task::spawn_blocking(move || queue_digest(&d, at)).await;
        next = daemon.config().digest.schedule.next_after(at, tz);
    }
}
