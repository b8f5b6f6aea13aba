//! HTTP ingest's writer: one thread that commits the batches of concurrent
//! requests together (group commit), each commit synced to disk.
//!
//! Why: readings arrive time by time (all series at 10:00, then 11:00), and
//! the store keys them series by series, so a batch of 1,000 readings
//! touches ~500 B-tree pages; committing each request alone writes (and
//! syncs) those pages every time. Committing what arrived meanwhile in one
//! transaction writes each page once for many requests: on the benchmark
//! data, 16 batches per commit cut the commit cost per reading ~10×.
//!
//! A group is staged (`readings::store::staging`): one row per request in
//! the `staged` table, one synced commit of a few pages, laid over the
//! memory copy at once. A second thread, the folder, moves staged readings
//! into the day blocks, many requests' at a time but in small transactions
//! of a few series each, so requests go on in between: once [`FOLD_AT`] readings
//! wait, or once ingest has been quiet for [`FOLD_WHEN_QUIET`]. A group the
//! memory copy cannot count (series or times not loaded) is written
//! straight into the blocks, as before staging existed.
//!
//! Each request still stands alone to its client: all of its readings or
//! none. If a group's commit fails, its batches are retried one by one so
//! that one bad batch fails alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::readings::store::{KnownSeries, Store, WriteSummary};
use crate::readings::Batch;

/// The most readings one commit takes: enough to amortize the pages, small
/// enough that the first request of a group does not wait long.
const MAX_GROUP_READINGS: usize = 50_000;
/// Staged readings that start a fold (about 24 MiB of staging; a fold of a
/// day's data rewrites each day block once).
const FOLD_AT: u64 = 500_000;
/// Quiet time after which whatever is staged is folded.
const FOLD_WHEN_QUIET: Duration = Duration::from_secs(1);
/// Requests waiting for the writer, at most (their clients wait beyond).
const QUEUE: usize = 256;
/// Bytes of request bodies being parsed or waiting to be written, at most:
/// bounds memory when many large batches arrive at once.
pub const BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// A request's batch; handed back with the answer, so that freeing it (a
/// few thousand small allocations) happens on the request's thread, not the
/// writer's.
struct Job {
    batch: Batch,
    reply: oneshot::Sender<(Result<WriteSummary, WriteFailed>, Batch)>,
}

/// Why a batch was not stored (none of it was).
#[derive(Debug, Clone)]
pub struct WriteFailed {
    pub message: String,
    /// No room: a full disk or the store's size cap (`507` to the client).
    pub disk_full: bool,
}

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl WriteFailed {
    fn from_store(e: &crate::readings::store::ReadingStoreError) -> WriteFailed {
        WriteFailed {
            message: e.to_string(),
            disk_full: e.is_disk_full(),
        }
    }

    fn stopped() -> WriteFailed {
        WriteFailed {
            message: "the ingest writer has stopped".into(),
            disk_full: false,
        }
    }
}

/// What the writer did, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Transactions committed (synced).
    pub commits: AtomicU64,
    /// Request batches they held.
    pub batches: AtomicU64,
    /// Readings staged (the rest of the batches went straight into blocks).
    pub staged: AtomicU64,
    /// Staged readings folded into day blocks by the folder.
    pub folded: AtomicU64,
    /// Folds done by the folder.
    pub folds: AtomicU64,
}

pub struct Ingest {
    tx: mpsc::Sender<Job>,
    /// The store's series by their raw key bytes: requests are parsed
    /// against them, so a known series is named by id (no key built, none
    /// looked up).
    pub known: Arc<KnownSeries>,
    pub stats: Arc<IngestStats>,
    /// Body bytes in flight (see [`BUDGET_BYTES`]).
    pub budget: Arc<Semaphore>,
}

impl Ingest {
    /// Starts the writer thread.
    pub fn start(store: Arc<Store>) -> Ingest {
        let (tx, rx) = mpsc::channel(QUEUE);
        let known = store.known_series();
        let stats = Arc::new(IngestStats::default());
        let s = stats.clone();
        let weak = Arc::downgrade(&store);
        let last_write = Arc::new(parking_lot::Mutex::new(Instant::now()));
        let l = last_write.clone();
        std::thread::Builder::new()
            .name("rulewatch-ingest".into())
            .spawn(move || writer(store, rx, &s, &l))
            .expect("start the ingest writer thread");
        let s = stats.clone();
        std::thread::Builder::new()
            .name("rulewatch-fold".into())
            .spawn(move || folder(weak, &s, &last_write))
            .expect("start the ingest folder thread");
        Ingest {
            tx,
            known,
            stats,
            budget: Arc::new(Semaphore::new(BUDGET_BYTES)),
        }
    }

    /// Commits `batch` (with whatever else is waiting) and answers once it is on disk.
    pub async fn write(&self, batch: Batch) -> Result<WriteSummary, WriteFailed> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { batch, reply })
            .await
            .map_err(|_| WriteFailed::stopped())?;
        let (result, batch) = answer.await.map_err(|_| WriteFailed::stopped())?;
        drop(batch);
        result
    }
}

/// Folds staged readings into the day blocks (see the top of this file)
/// until the store is dropped.
fn folder(store: Weak<Store>, stats: &IngestStats, last_write: &parking_lot::Mutex<Instant>) {
    let mut pause = Duration::from_millis(100);
    loop {
        std::thread::sleep(pause);
        pause = Duration::from_millis(100);
        let Some(store) = store.upgrade() else {
            return;
        };
        let staged = stats.staged.load(Ordering::Relaxed);
        let waiting = staged.saturating_sub(stats.folded.load(Ordering::Relaxed));
        if waiting == 0 || (waiting < FOLD_AT && last_write.lock().elapsed() < FOLD_WHEN_QUIET) {
            continue;
        }
        // In slices: requests stage theirs in between. Slices keep the
        // rows until the last one, so they need room for the blocks beside
        // them; with no room, one transaction that deletes the rows first.
        let folded = match store.fold_staged_in_slices(FOLD_AT as usize) {
            Err(e) if e.is_disk_full() => store.fold_staged(FOLD_AT as usize),
            other => other,
        };
        match folded {
            // Folded by another write (a file ingest folds first).
            Ok(0) => stats.folded.store(staged, Ordering::Relaxed),
            Ok(n) => {
                stats.folded.fetch_add(n as u64, Ordering::Relaxed);
                stats.folds.fetch_add(1, Ordering::Relaxed);
                store.checkpoint();
            }
            Err(e) => {
                tracing::warn!(error = %e, "folding staged readings into day blocks failed; retrying in a minute");
                pause = Duration::from_secs(60);
            }
        }
    }
}

fn writer(
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Job>,
    stats: &IngestStats,
    last_write: &parking_lot::Mutex<Instant>,
) {
    while let Some(first) = rx.blocking_recv() {
        *last_write.lock() = Instant::now();
        let mut readings = first.batch.len();
        let mut jobs = vec![first];
        while readings < MAX_GROUP_READINGS {
            match rx.try_recv() {
                Ok(job) => {
                    readings += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let batches: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
        let written = match store.stage_many(&batches) {
            Ok(Some(summaries)) => {
                stats.staged.fetch_add(readings as u64, Ordering::Relaxed);
                Ok(summaries)
            }
            // Memory lacks some series or time: straight into the blocks.
            Ok(None) => store.write_many(&batches, true),
            Err(e) => Err(e),
        };
        match written {
            Ok(summaries) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats
                    .batches
                    .fetch_add(summaries.len() as u64, Ordering::Relaxed);
                drop(batches);
                for (job, summary) in jobs.into_iter().zip(summaries) {
                    let _ = job.reply.send((Ok(summary), job.batch));
                }
            }
            Err(e) if jobs.len() > 1 => {
                tracing::warn!(batches = jobs.len(), error = %e, "group commit failed: committing its batches one by one");
                drop(batches);
                for job in jobs {
                    let r = store
                        .write_many(&[&job.batch], true)
                        .map(|mut s| s.pop().unwrap_or_default())
                        .map_err(|e| WriteFailed::from_store(&e));
                    let _ = job.reply.send((r, job.batch));
                }
            }
            Err(e) => {
                drop(batches);
                for job in jobs {
                    let _ = job
                        .reply
                        .send((Err(WriteFailed::from_store(&e)), job.batch));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::Labels;

    /// Time-major batches of 500 readings over 1,000 series, as sensors send them.
    fn batches() -> Vec<Batch> {
        let mut out = Vec::new();
        for t in 0..8i64 {
            for half in 0..2 {
                let mut b = Batch::new();
                for s in 0..500 {
                    let county = format!("c{:04}", half * 500 + s);
                    let labels: Labels = [("county".to_string(), county)].into();
                    b.push("pm25", labels, t * 3_600_000, (s + t as usize) as f64);
                }
                out.push(b);
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_are_committed_together_and_each_answered() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
            let ingest = Arc::new(Ingest::start(store.clone()));
            let mut tasks = Vec::new();
            for b in batches() {
                let ingest = ingest.clone();
                tasks.push(tokio::spawn(async move { ingest.write(b).await }));
            }
            let mut new_series = 0;
            for t in tasks {
                let s = t.await.unwrap().unwrap();
                assert_eq!(s.readings, 500);
                new_series += s.new_series;
            }
            assert_eq!(new_series, 1000);
            assert_eq!(store.count_readings().unwrap(), 8000);
            let n = store
                .with_series("pm25", &Labels::new(), 0, |it| {
                    it.map(|s| s.range(0, i64::MAX).0.len()).sum::<usize>()
                })
                .unwrap();
            assert_eq!(n, 8000, "the memory copy has every reading");
        }
    }
}
