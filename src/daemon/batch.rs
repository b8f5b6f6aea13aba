//! Groups the outcomes of rules scheduled at the same instant, so that they
//! are recorded in one transaction and each recipient gets one mail for
//! that instant (most shipped rules run at 09:00 on the 16th: one mail to
//! the 目标考核办, not thirty).
//!
//! Each rule has its own job; the jobs of one instant fire within the same
//! scheduler pass. The batch for an instant expects every rule whose
//! schedule contains it; it is recorded when all of them have reported (an
//! outcome, or "not run": skipped as overlapping, shut down), or when none
//! has reported for [`Batches::idle`] (a rule that never ticked). Each
//! evaluation waits for its batch to be recorded while still holding its
//! overlap guard, so one rule's records are always in order.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::rules::{Rule, RuleOutcome};
use crate::time::Millis;

/// One instant's outcomes, as they are recorded.
pub type Outcomes = Arc<Vec<(Arc<Rule>, RuleOutcome)>>;

/// What batching needs of the daemon: which rules an instant expects, when
/// to stop waiting, and how to record. A trait, so that this module does not
/// reach into the daemon's state (the daemon owns its `Batches`).
pub trait BatchOwner: Send + Sync + 'static {
    /// The ids of the rules whose schedule contains `at`.
    fn rules_due_at(&self, at: Millis) -> BTreeSet<String>;
    /// How instants are written in the log.
    fn format_instant(&self, at: Millis) -> String;
    fn is_shutting_down(&self) -> bool;
    /// Resolves when shutdown begins.
    fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static;
    /// Records one instant's outcomes (one transaction).
    fn record(owner: &Arc<Self>, at: Millis, items: Outcomes) -> impl Future<Output = ()> + Send;
}

struct Pending {
    expected: BTreeSet<String>,
    items: Vec<(Arc<Rule>, RuleOutcome)>,
    last_activity: Instant,
    /// Set to true once the batch has been recorded.
    done: watch::Sender<bool>,
}

#[derive(Default)]
struct Inner {
    pending: HashMap<Millis, Pending>,
    /// Instants recorded lately: a straggler for one of them is recorded alone, at once.
    flushed: VecDeque<Millis>,
}

/// Recorded instants remembered, for stragglers.
const FLUSHED_KEPT: usize = 256;

pub struct Batches {
    inner: Mutex<Inner>,
    idle: Duration,
}

impl Batches {
    /// `idle`: how long a batch waits without news before it is recorded
    /// with what it has.
    pub fn new(idle: Duration) -> Batches {
        Batches {
            inner: Mutex::new(Inner::default()),
            idle,
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    fn entry<'a>(inner: &'a mut Inner, owner: &impl BatchOwner, at: Millis) -> &'a mut Pending {
        let straggler = inner.flushed.contains(&at);
        inner.pending.entry(at).or_insert_with(|| {
            let expected = if straggler {
                BTreeSet::new()
            } else {
                owner.rules_due_at(at)
            };
            Pending {
                expected,
                items: Vec::new(),
                last_activity: Instant::now(),
                done: watch::channel(false).0,
            }
        })
    }

    /// Adds a rule's outcome for instant `at` and waits until the batch has
    /// been recorded.
    pub async fn submit<O: BatchOwner>(
        &self,
        owner: &Arc<O>,
        at: Millis,
        rule: Arc<Rule>,
        outcome: RuleOutcome,
    ) {
        let id = rule.meta.id.clone();
        let (rx, complete) = {
            let mut inner = self.inner.lock();
            let p = Self::entry(&mut inner, owner.as_ref(), at);
            p.expected.remove(&id);
            p.items.push((rule, outcome));
            p.last_activity = Instant::now();
            (p.done.subscribe(), p.expected.is_empty())
        };
        if complete || owner.is_shutting_down() {
            self.flush(owner, at).await;
        }
        self.wait(owner, at, rx).await;
    }

    /// A rule expected at `at` will not report (its run was skipped).
    pub async fn withdraw<O: BatchOwner>(&self, owner: &Arc<O>, at: Millis, rule_id: &str) {
        let flush = {
            let mut inner = self.inner.lock();
            let p = Self::entry(&mut inner, owner.as_ref(), at);
            p.expected.remove(rule_id);
            if p.expected.is_empty() && p.items.is_empty() {
                inner.pending.remove(&at);
                false
            } else {
                p.expected.is_empty()
            }
        };
        if flush {
            self.flush(owner, at).await;
        }
    }

    /// Waits until the batch is recorded; records it if it falls idle.
    async fn wait<O: BatchOwner>(&self, owner: &Arc<O>, at: Millis, mut rx: watch::Receiver<bool>) {
        loop {
            if *rx.borrow() {
                return;
            }
            let idle_for = {
                let inner = self.inner.lock();
                inner.pending.get(&at).map(|p| p.last_activity.elapsed())
            };
            let Some(idle_for) = idle_for else {
                // Taken by another waiter, which is recording it now.
                let _ = rx.wait_for(|done| *done).await;
                return;
            };
            if idle_for >= self.idle || owner.is_shutting_down() {
                self.flush(owner, at).await;
                continue;
            }
            let shutdown = owner.shutdown_signal();
            tokio::select! {
                _ = rx.wait_for(|done| *done) => return,
                _ = tokio::time::sleep(self.idle - idle_for) => {}
                _ = shutdown => {}
            }
        }
    }

    /// Takes the batch out and records it (if no one else took it first).
    async fn flush<O: BatchOwner>(&self, owner: &Arc<O>, at: Millis) {
        let p = {
            let mut inner = self.inner.lock();
            let Some(p) = inner.pending.remove(&at) else {
                return;
            };
            inner.flushed.push_back(at);
            if inner.flushed.len() > FLUSHED_KEPT {
                inner.flushed.pop_front();
            }
            p
        };
        if !p.expected.is_empty() {
            tracing::warn!(
                at = %owner.format_instant(at),
                missing = ?p.expected,
                "recording the scheduled evaluations without the rules that did not run"
            );
        }
        if !p.items.is_empty() {
            O::record(owner, at, Arc::new(p.items)).await;
        }
        p.done.send_replace(true);
        // Forget batches no one will complete (a rule that never ticked).
        let idle = self.idle;
        self.inner
            .lock()
            .pending
            .retain(|_, p| !(p.items.is_empty() && p.last_activity.elapsed() > idle * 2));
    }
}
