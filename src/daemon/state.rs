//! What the daemon's tasks share: config, store, evaluator, the rule set,
//! metrics, and the bookkeeping for a clean shutdown.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::{mpsc, watch};

pub use super::ruleset::{
    BrokenFile, LastEvaluation, LoadError, RuleEntry, RuleLoadEvent, RuleSet, Trigger,
};

use super::access::ApiToken;
use super::alerting::Alerting;
use super::batch::Batches;
use super::ingest::Ingest;
use super::jobs::Jobs;
use super::metrics::{Gauges, Metrics};
use crate::config::Config;
use crate::readings::store::Store;
use crate::rules::Evaluator;

/// Counts evaluations in flight, so shutdown can wait for them (the
/// scheduler's own shutdown only stops new ticks).
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    changed: tokio::sync::Notify,
}

/// Leaves the in-flight count when dropped.
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

impl InFlight {
    pub fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until nothing is in flight.
    pub async fn idle(&self) {
        loop {
            let notified = self.changed.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A value a config reload replaces whole: readers take the current `Arc`
/// ([`Live::get`]) and keep it for as long as they work with it, so an
/// evaluation or a request that started before a reload finishes with the
/// config it started with.
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(RwLock::new(Arc::new(value)))
    }

    pub fn get(&self) -> Arc<T> {
        self.0.read().clone()
    }

    pub fn set(&self, value: T) {
        *self.0.write() = Arc::new(value);
    }
}

pub struct Daemon {
    /// The config in force: [`Daemon::config`]. SIGHUP swaps in a new one
    /// (see `reconfigure.rs`); settings that need a restart keep their
    /// start-up values in it.
    config: Live<Config>,
    pub store: Arc<Store>,
    /// Built from the config's limits: swapped with the config.
    evaluator: Live<Evaluator>,
    /// The last config reload that failed (the file's errors), until one succeeds.
    pub config_error: RwLock<Option<super::ruleset::ConfigReloadError>>,
    pub rules: RwLock<RuleSet>,
    pub metrics: Metrics,
    pub inflight: Arc<InFlight>,
    /// One evaluation per core at a time.
    pub eval_slots: tokio::sync::Semaphore,
    /// Outcomes of one scheduled instant, recorded together.
    pub batches: Batches,
    pub token: Option<ApiToken>,
    /// Bureau tokens, page sessions, read access, uploads awaiting confirmation.
    pub access: super::access::Access,
    pub alerting: Arc<Alerting>,
    /// HTTP ingest's group-commit writer.
    pub ingest: Ingest,
    pub load_events: mpsc::UnboundedSender<RuleLoadEvent>,
    pub jobs: tokio::sync::Mutex<Option<Jobs>>,
    /// One reload at a time (file events and SIGHUP may race).
    pub reloading: tokio::sync::Mutex<()>,
    /// Under `run --demo`, the virtual clock (ms; `i64::MIN` otherwise): the
    /// status page shows that time instead of the wall clock.
    pub demo_now: std::sync::atomic::AtomicI64,
    shutting_down: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
}

impl Daemon {
    pub fn new(
        config: Config,
        store: Arc<Store>,
        alerting: Arc<Alerting>,
        load_events: mpsc::UnboundedSender<RuleLoadEvent>,
    ) -> Daemon {
        let token = config.api_token().map(|t| ApiToken::new(&t));
        let access = super::access::Access::new(&config);
        let evaluator = Live::new(Evaluator::new(&config, store.clone()));
        let ingest = Ingest::start(store.clone());
        let metrics = Metrics::new();
        {
            let stats = ingest.stats.clone();
            metrics.add_extra(Box::new(move |out| {
                use std::fmt::Write as _;
                let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                let _ = writeln!(out, "# HELP rulewatch_ingest_commits_total Synced transactions of HTTP ingest (group commits).");
                let _ = writeln!(out, "# TYPE rulewatch_ingest_commits_total counter");
                let _ = writeln!(out, "rulewatch_ingest_commits_total {}", load(&stats.commits));
                let _ = writeln!(out, "# HELP rulewatch_ingest_committed_batches_total Request batches those transactions held.");
                let _ = writeln!(out, "# TYPE rulewatch_ingest_committed_batches_total counter");
                let _ = writeln!(out, "rulewatch_ingest_committed_batches_total {}", load(&stats.batches));
                let _ = writeln!(out, "# HELP rulewatch_ingest_staged_readings_total Readings staged by HTTP ingest (the rest went straight into day blocks).");
                let _ = writeln!(out, "# TYPE rulewatch_ingest_staged_readings_total counter");
                let _ = writeln!(out, "rulewatch_ingest_staged_readings_total {}", load(&stats.staged));
                let _ = writeln!(out, "# HELP rulewatch_ingest_folded_readings_total Staged readings folded into day blocks.");
                let _ = writeln!(out, "# TYPE rulewatch_ingest_folded_readings_total counter");
                let _ = writeln!(out, "rulewatch_ingest_folded_readings_total {}", load(&stats.folded));
            }));
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // A batch waits this long for news before recording what it has: a
        // rule's run is bounded by the rule time limit, plus queueing.
        let batch_idle = Duration::from_millis(config.limits.rule_timeout.max(0) as u64)
            + Duration::from_secs(5);
        Daemon {
            config: Live::new(config),
            store,
            evaluator,
            config_error: RwLock::new(None),
            rules: RwLock::new(RuleSet::default()),
            metrics,
            inflight: Arc::new(InFlight::default()),
            eval_slots: tokio::sync::Semaphore::new(cores),
            batches: Batches::new(batch_idle),
            token,
            access,
            alerting,
            ingest,
            load_events,
            jobs: tokio::sync::Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            demo_now: std::sync::atomic::AtomicI64::new(i64::MIN),
            shutting_down: AtomicBool::new(false),
            shutdown_tx: watch::channel(false).0,
        }
    }

    /// The config in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.get()
    }

    /// The evaluator in force now (its engine has the config's limits).
    pub fn evaluator(&self) -> Arc<Evaluator> {
        self.evaluator.get()
    }

    /// Puts a reloaded config and the evaluator built from it in force.
    pub fn set_config(&self, config: Config, evaluator: Evaluator) {
        self.evaluator.set(evaluator);
        self.config.set(config);
    }

    pub fn enter_in_flight(&self) -> InFlightGuard {
        self.inflight.enter()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// From now on no evaluation starts; waiters on [`Daemon::shutdown_signal`] wake.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown_tx.send_replace(true);
    }

    /// Resolves once shutdown has begun.
    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown_tx.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }

    pub fn gauges(&self) -> Gauges {
        let rules = self.rules.read();
        Gauges {
            rules_loaded: rules.rules.len(),
            rule_files_broken: rules.broken_count(),
            evaluations_in_flight: self.inflight.count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_flight_waits() {
        let f = Arc::new(InFlight::default());
        let g = f.enter();
        let f2 = f.clone();
        let waiter = tokio::spawn(async move { f2.idle().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(g);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
