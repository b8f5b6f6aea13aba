//! What the daemon's tasks share: config, store, evaluator, the rule set,
//! metrics, and the bookkeeping for a clean shutdown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::{mpsc, watch};

use super::alerting::Alerting;
use super::batch::Batches;
use super::ingest::Ingest;
use super::metrics::{Gauges, Metrics};
use super::schedule::Jobs;
use crate::config::Config;
use crate::readings::store::Store;
use crate::rules::{Evaluator, Rule, RuleFailure};
use crate::time::Millis;

/// Where an evaluation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Api,
}

/// The last evaluation of a rule, as `/api/v1/rules` shows it.
#[derive(Debug, Clone)]
pub struct LastEvaluation {
    /// The evaluation time (`now` the rule saw: the scheduled instant).
    pub at: Millis,
    /// When it finished, wall clock.
    pub finished: Millis,
    pub duration: Duration,
    pub error: Option<RuleFailure>,
    pub findings: usize,
    pub trigger: Trigger,
}

/// A rule file's current version that does not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// SHA-256 of the broken content: one notice per broken version.
    pub content_hash: String,
    /// Each problem as `PATH:LINE:COL: error: MESSAGE`.
    pub errors: Vec<String>,
    /// When this version was first seen.
    pub since: Millis,
}

/// A rule being evaluated.
pub struct RuleEntry {
    /// The version evaluating: the file's current one, or its last good one
    /// when `load_error` is set.
    pub rule: Arc<Rule>,
    pub load_error: Option<LoadError>,
    /// Held while the rule evaluates: a scheduled run that finds it taken is
    /// skipped (and counted); an API run waits for it.
    pub guard: Arc<tokio::sync::Mutex<()>>,
    pub last: Option<LastEvaluation>,
    /// Every scheduled instant up to here has been handled (run or skipped).
    pub cursor: Millis,
}

/// A rule file that does not load and has no last good version.
#[derive(Debug, Clone)]
pub struct BrokenFile {
    pub path: PathBuf,
    pub error: LoadError,
}

/// All rules known to the daemon.
#[derive(Default)]
pub struct RuleSet {
    pub rules: BTreeMap<String, RuleEntry>,
    pub broken: BTreeMap<PathBuf, BrokenFile>,
    /// (file, content hash) of every broken version already announced.
    pub announced: HashSet<(PathBuf, String)>,
}

impl RuleSet {
    /// Rule id → cron text, what the scheduler should run.
    pub fn wanted_jobs(&self) -> HashMap<String, String> {
        self.rules
            .iter()
            .map(|(id, e)| (id.clone(), e.rule.meta.schedule.cron_text.clone()))
            .collect()
    }

    pub fn broken_count(&self) -> usize {
        self.broken.len()
            + self
                .rules
                .values()
                .filter(|e| e.load_error.is_some())
                .count()
    }
}

/// What happened to a rule file on a (re)load. `Broken` is sent once per
/// broken version (per daemon run; the outbox dedups across restarts), and
/// `admin` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleLoadEvent {
    /// A version of `path` that does not load. `rule` is the id whose last
    /// good version keeps evaluating, if there is one.
    Broken {
        path: PathBuf,
        rule: Option<String>,
        error: LoadError,
    },
    /// `path` loads again after being broken.
    Fixed {
        path: PathBuf,
        rule: String,
    },
    Added {
        path: PathBuf,
        rule: String,
    },
    Updated {
        path: PathBuf,
        rule: String,
    },
    /// The rule's file is gone (or no longer defines it): it is no longer
    /// evaluated; its open alerts resolve quietly.
    Removed {
        path: PathBuf,
        rule: String,
    },
}

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

/// The API token, kept only as its SHA-256 so that comparison is constant
/// time and leaks not even the length.
pub struct ApiToken([u8; 32]);

impl ApiToken {
    pub fn new(token: &str) -> ApiToken {
        ApiToken(sha256(token.as_bytes()))
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.ct_eq(&sha256(presented)))
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(…)")
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

pub struct Daemon {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub evaluator: Arc<Evaluator>,
    pub rules: RwLock<RuleSet>,
    pub metrics: Metrics,
    pub inflight: Arc<InFlight>,
    /// One evaluation per core at a time.
    pub eval_slots: tokio::sync::Semaphore,
    /// Outcomes of one scheduled instant, recorded together.
    pub batches: Batches,
    pub token: Option<ApiToken>,
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
        let evaluator = Arc::new(Evaluator::new(&config, store.clone()));
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
            }));
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // A batch waits this long for news before recording what it has: a
        // rule's run is bounded by the rule time limit, plus queueing.
        let batch_idle = Duration::from_millis(config.limits.rule_timeout.max(0) as u64)
            + Duration::from_secs(5);
        Daemon {
            config: Arc::new(config),
            store,
            evaluator,
            rules: RwLock::new(RuleSet::default()),
            metrics,
            inflight: Arc::new(InFlight::default()),
            eval_slots: tokio::sync::Semaphore::new(cores),
            batches: Batches::new(batch_idle),
            token,
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

    /// Brings the scheduler's jobs in line with the rule set (after a reload),
    /// or re-creates them all (`recreate_all`: a UTC offset change).
    pub async fn sync_jobs(self: &Arc<Self>, recreate_all: bool) {
        let mut jobs = self.jobs.lock().await;
        let Some(jobs) = jobs.as_mut() else {
            return;
        };
        let wanted = self.rules.read().wanted_jobs();
        let created = jobs.sync(self, &wanted, recreate_all).await;
        if !created.is_empty() {
            tracing::debug!(rules = ?created, "jobs created");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_compare() {
        let t = ApiToken::new("s3cret-token");
        assert!(t.matches(b"s3cret-token"));
        assert!(!t.matches(b"s3cret-tokeN"));
        assert!(!t.matches(b""));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

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
