//! `rulewatch run --demo`: the daemon on a fast clock, so a newcomer sees
//! alerts within a minute of starting it.
//!
//! The shipped readings are for 2021, so the wall clock would find nothing to
//! judge. Instead of the cron jobs, a replay task moves a virtual clock from
//! 2021-01-01 at one day per second (by default) and, as it passes each
//! rule's scheduled instants, runs the same evaluation and alert recording the
//! scheduler would: mail goes through the real outbox and sender, the status
//! page and the API show the virtual times. Everything else (HTTP ingest,
//! reload, shutdown) is the ordinary daemon.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::evaluate::evaluate_now;
use super::state::Daemon;
use crate::readings::store::Store;
use crate::readings::Format;
use crate::time::{format_time, Millis};

/// How often the replay looks for newly due instants (real time).
const TICK: Duration = Duration::from_millis(200);

/// The replay's settings.
#[derive(Debug, Clone)]
pub struct Demo {
    /// Readings loaded into an empty store before the start (`*.csv`,
    /// `*.json`, `*.ndjson` in this folder).
    pub fixtures: PathBuf,
    pub start: Millis,
    pub end: Millis,
    /// Virtual milliseconds per real millisecond (86 400 = a day a second).
    pub speed: f64,
}

/// Ingests every readings file of `folder` when the store holds none yet.
/// Returns how many readings were stored.
pub fn load_fixtures_if_empty(
    store: &Store,
    folder: &Path,
    tz: chrono_tz::Tz,
) -> Result<u64, String> {
    if store.count_readings().map_err(|e| e.to_string())? > 0 {
        return Ok(0);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| format!("demo fixtures `{}`: {e}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| Format::from_path(p).is_some())
        .collect();
    files.sort();
    let mut stored = 0;
    for file in files {
        let format = Format::from_path(&file).expect("filtered above");
        let f = std::fs::File::open(&file).map_err(|e| format!("`{}`: {e}", file.display()))?;
        let summary =
            crate::readings::stream::ingest(store, std::io::BufReader::new(f), format, tz, |_| {})
                .map_err(|e| format!("`{}`: {e}", file.display()))?;
        stored += summary.readings as u64;
    }
    Ok(stored)
}

/// Every (instant, rule ids) due in `(after, until]`, in time order.
fn due(daemon: &Daemon, after: Millis, until: Millis) -> BTreeMap<Millis, Vec<String>> {
    let tz = daemon.config().timezone;
    let mut due: BTreeMap<Millis, Vec<String>> = BTreeMap::new();
    let rules = daemon.rules.read();
    for (id, entry) in &rules.rules {
        for t in entry.rule.meta.schedule.between(after + 1, until, tz) {
            due.entry(t).or_default().push(id.clone());
        }
    }
    due
}

/// Replays the virtual clock until `demo.end` or shutdown.
pub async fn replay(daemon: Arc<Daemon>, demo: Demo) {
    let tz = daemon.config().timezone;
    tracing::info!(
        from = %format_time(demo.start, tz),
        to = %format_time(demo.end, tz),
        days_per_second = demo.speed * 1000.0 / crate::time::DAY as f64,
        "demo: replaying the fixtures on a fast clock; alert mail goes to the outbox"
    );
    let started = Instant::now();
    let mut cursor = demo.start - 1;
    while !daemon.is_shutting_down() && cursor < demo.end {
        let elapsed = started.elapsed().as_millis() as f64;
        let now = (demo.start + (elapsed * demo.speed) as Millis).min(demo.end);
        daemon
            .demo_now
            .store(now, std::sync::atomic::Ordering::Relaxed);
        for (at, ids) in due(&daemon, cursor, now) {
            if daemon.is_shutting_down() {
                return;
            }
            match evaluate_now(&daemon, ids, at).await {
                Ok(outcomes) => {
                    let findings: usize = outcomes.iter().map(|(_, o)| o.findings.len()).sum();
                    tracing::info!(at = %format_time(at, tz), rules = outcomes.len(), findings, "demo: evaluated");
                }
                Err(e) => {
                    tracing::warn!(at = %format_time(at, tz), error = ?e, "demo: evaluation not run")
                }
            }
        }
        // The monthly digest, on the virtual clock too.
        for at in daemon.config().digest.schedule.between(cursor + 1, now, tz) {
            let d = daemon.clone();
            let _ = tokio::task::spawn_blocking(move || super::status::queue_digest(&d, at)).await;
        }
        cursor = now;
        tokio::time::sleep(TICK).await;
    }
    tracing::info!("demo: replay finished; the daemon keeps serving until stopped");
}
