//! The readings store: an embedded SQLite file (the durable source of truth)
//! plus an in-memory, columnar copy of the series rules have asked for.
//!
//! Schema: `series` interns (metric, labels) to an id; `blocks` holds each
//! series' readings one UTC day per row, keyed by (series, day) in a WITHOUT
//! ROWID table, the day's (time, value) pairs packed in a BLOB. A series' time
//! range is then one contiguous B-tree scan of few rows, and a bulk load
//! writes one row per series-day instead of one per reading (row-per-reading
//! topped out near 0.6 M readings/s; see the README's benchmarks). Evaluations read the memory copy: a series is
//! loaded the first time a rule asks for it (from the earliest time asked so
//! far) and kept current by every later write, so repeated evaluations never
//! scan SQLite.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rusqlite::{params, Connection, OptionalExtension};

use super::model::{Batch, Labels, SeriesKey};
use crate::db::{self, DbError, Durability};
use crate::time::Millis;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store `{path}`: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Opening the file (its folder, its schema): the error names the file.
    #[error(transparent)]
    Open(#[from] DbError),
}

pub type SeriesId = i64;

/// One series in memory: its key and, once loaded, its readings from
/// `loaded_from` on, sorted by time (columnar: times and values apart, so
/// range lookups binary-search a dense `i64` array).
#[derive(Debug)]
pub struct Series {
    pub id: SeriesId,
    pub key: SeriesKey,
    /// `key.labels`, shared: rule results hand them out without copying.
    pub labels: Arc<Labels>,
    /// Readings before this instant are not in memory. `Millis::MAX`: nothing loaded yet.
    loaded_from: Millis,
    times: Vec<Millis>,
    values: Vec<f64>,
}

impl Series {
    /// The readings with `from <= time <= to`, as (times, values).
    pub fn range(&self, from: Millis, to: Millis) -> (&[Millis], &[f64]) {
        let a = first_at_or_after(&self.times, from);
        let b = first_after(&self.times, to);
        if a >= b {
            return (&[], &[]);
        }
        (&self.times[a..b], &self.values[a..b])
    }

    /// The last reading at or before `t`.
    pub fn last_at_or_before(&self, t: Millis) -> Option<(Millis, f64)> {
        let i = first_after(&self.times, t);
        (i > 0).then(|| (self.times[i - 1], self.values[i - 1]))
    }

    pub fn matches(&self, filter: &Labels) -> bool {
        filter
            .iter()
            .all(|(k, v)| self.key.labels.get(k) == Some(v))
    }

    /// Inserts or replaces one reading (identity is the time).
    fn upsert(&mut self, t: Millis, v: f64) {
        if t < self.loaded_from {
            return; // not in memory; loaded from SQLite when asked for
        }
        match self.times.last() {
            Some(&last) if last < t => {
                self.times.push(t);
                self.values.push(v);
            }
            None => {
                self.times.push(t);
                self.values.push(v);
            }
            _ => match self.times.binary_search(&t) {
                Ok(i) => self.values[i] = v,
                Err(i) => {
                    self.times.insert(i, t);
                    self.values.insert(i, v);
                }
            },
        }
    }
}

/// Index of the first time `> t`.
fn first_after(times: &[Millis], t: Millis) -> usize {
    search(times, t, |x| x <= t)
}

/// Index of the first time `>= t`.
fn first_at_or_after(times: &[Millis], t: Millis) -> usize {
    search(times, t, |x| x < t)
}

/// `times.partition_point(before)`, where `before` is `x < t` or `x <= t`.
///
/// Readings mostly come at a steady pace, so the search first guesses the
/// index from where `t` falls between the first and last time, then gallops
/// from the guess: two or three probes in a few cache lines, where a plain
/// binary search over a long series misses the cache at every step (it was
/// the largest cost of evaluating rules over thousands of series).
fn search(times: &[Millis], t: Millis, before: impl Fn(Millis) -> bool) -> usize {
    let n = times.len();
    if n == 0 || !before(times[0]) {
        return 0;
    }
    if before(times[n - 1]) {
        return n;
    }
    // Now times[0] is before and times[n - 1] is not: the answer is in 1..n.
    let (first, last) = (times[0], times[n - 1]);
    let span = (last - first).max(1) as f64;
    let guess = ((t.saturating_sub(first)) as f64 / span * (n - 1) as f64) as usize;
    let guess = guess.clamp(1, n - 1);
    if before(times[guess]) {
        // Gallop right from the guess.
        let mut lo = guess;
        let mut step = 1;
        loop {
            let probe = (lo + step).min(n - 1);
            if !before(times[probe]) {
                return lo + 1 + times[lo + 1..probe].partition_point(|&x| before(x));
            }
            lo = probe;
            step *= 2;
        }
    } else {
        // Gallop left from the guess.
        let mut hi = guess;
        let mut step = 1;
        loop {
            let probe = hi.saturating_sub(step);
            if before(times[probe]) {
                return probe + 1 + times[probe + 1..hi].partition_point(|&x| before(x));
            }
            hi = probe;
            step *= 2;
        }
    }
}

#[derive(Default)]
struct Memory {
    series: HashMap<SeriesId, Series>,
    by_metric: HashMap<String, Vec<SeriesId>>,
    by_key: HashMap<SeriesKey, SeriesId>,
}

pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    memory: RwLock<Memory>,
    /// The `store_meta` generation the memory copy reflects.
    generation: std::sync::atomic::AtomicI64,
}

/// Counts of what a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub readings: usize,
    pub new_series: usize,
}

/// One block per series and UTC day: hourly data makes 384-byte blocks,
/// minute data 23 KiB ones; both read and rewrite cheaply.
const BLOCK_SPAN: Millis = crate::time::DAY;

fn block_start(t: Millis) -> Millis {
    // Saturating: `latest()` asks from `Millis::MIN`.
    t.div_euclid(BLOCK_SPAN).saturating_mul(BLOCK_SPAN)
}

const POINT_BYTES: usize = 16;

fn encode_block(points: &[(Millis, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * POINT_BYTES);
    for (t, v) in points {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode_block(data: &[u8]) -> impl Iterator<Item = (Millis, f64)> + '_ {
    data.chunks_exact(POINT_BYTES).map(|c| {
        let t = Millis::from_le_bytes(c[..8].try_into().expect("8 bytes"));
        let v = f64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
        (t, v)
    })
}

fn labels_json(labels: &Labels) -> String {
    serde_json::to_string(labels).expect("string map serializes")
}

impl Store {
    /// Opens (creating if missing) the store file and its folder.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let writer = db::open(path, Durability::Normal)?;
        db::tune_for_bulk_writes(&writer).map_err(err)?;
        let reader = db::open(path, Durability::Normal)?;
        let store = Store {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            memory: RwLock::new(Memory::default()),
            generation: std::sync::atomic::AtomicI64::new(0),
        };
        let generation = store.stored_generation().map_err(err)?;
        store.load_series_index().map_err(err)?;
        store.generation.store(generation, Ordering::SeqCst);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_series_index(&self) -> rusqlite::Result<()> {
        let reader = self.reader.lock();
        let mut stmt = reader.prepare("SELECT id, metric, labels FROM series")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut memory = self.memory.write();
        for row in rows {
            let (id, metric, labels) = row?;
            if memory.series.contains_key(&id) {
                continue;
            }
            let labels: Labels = serde_json::from_str(&labels).unwrap_or_default();
            memory.add_series(id, SeriesKey { metric, labels }, Millis::MAX);
        }
        Ok(())
    }

    fn stored_generation(&self) -> rusqlite::Result<i64> {
        self.reader.lock().query_row(
            "SELECT value FROM store_meta WHERE key = 'generation'",
            [],
            |r| r.get(0),
        )
    }

    /// Another process wrote readings since our memory copy was made: forget
    /// what memory holds (it is reloaded on demand) and learn new series.
    fn follow_other_writers(&self) -> Result<(), StoreError> {
        let err = |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let stored = self.stored_generation().map_err(err)?;
        if stored == self.generation.load(Ordering::SeqCst) {
            return Ok(());
        }
        // Hold the writer so our own commits cannot interleave with the reset.
        let _writer = self.writer.lock();
        let stored = self.stored_generation().map_err(err)?;
        {
            let mut memory = self.memory.write();
            for s in memory.series.values_mut() {
                s.loaded_from = Millis::MAX;
                s.times = Vec::new();
                s.values = Vec::new();
            }
        }
        self.load_series_index().map_err(err)?;
        self.generation.store(stored, Ordering::SeqCst);
        tracing::debug!(store = %self.path.display(), "readings written by another process: memory copy reset");
        Ok(())
    }

    /// Stores a batch in one transaction: all of it or, on error, none.
    /// A reading with the identity (metric, labels, time) of a stored one replaces it.
    pub fn write(&self, batch: &Batch) -> Result<WriteSummary, StoreError> {
        let mut tx = self.begin()?;
        let ids = tx.add_inner(batch)?;
        // Only after the commit: the memory copy follows what is durable.
        let (new_series, readings) = tx.finish(|memory, created| {
            for (id, key) in created {
                // A new series has no older readings in SQLite: memory holds all of it.
                memory.add_series(*id, key.clone(), Millis::MIN);
            }
            for p in &batch.points {
                if let Some(s) = memory.series.get_mut(&ids[p.series as usize]) {
                    s.upsert(p.time, p.value);
                }
            }
        })?;
        Ok(WriteSummary {
            readings,
            new_series,
        })
    }

    /// Stores several batches in one transaction (a group commit: the HTTP
    /// ingest commits the requests that arrived together at once), all of
    /// them or none, keeping the memory copy current as [`Store::write`]
    /// does. `durable`: the commit is synced to disk (`synchronous=FULL`), so
    /// it survives a power cut and not only a crash of the process.
    pub fn write_many(
        &self,
        batches: &[&Batch],
        durable: bool,
    ) -> Result<Vec<WriteSummary>, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let restore = || {
            if durable {
                let _ = self
                    .writer
                    .lock()
                    .execute_batch("PRAGMA synchronous=NORMAL");
            }
        };
        let conn = self.writer.lock();
        if durable {
            // Set under the lock, before BEGIN; restored after the commit
            // (another writer slipping in between only gets a safer commit).
            conn.execute_batch("PRAGMA synchronous=FULL").map_err(err)?;
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            drop(conn);
            restore();
            return Err(err(e));
        }
        let mut tx = WriteTx {
            store: self,
            conn: Some(conn),
            created: Vec::new(),
            adopted: Vec::new(),
            pending: HashMap::new(),
            touched: std::collections::HashSet::new(),
            readings: 0,
        };
        // One batch of all: a (series, day) block that several requests
        // touch is read and rewritten once. Later requests win on equal
        // (series, time), as they would committed one after the other.
        let mut merged = Batch::new();
        let mut maps: Vec<Vec<u32>> = Vec::with_capacity(batches.len());
        for batch in batches {
            let map: Vec<u32> = batch
                .series
                .iter()
                .map(|k| merged.intern(k.clone()))
                .collect();
            merged
                .points
                .extend(batch.points.iter().map(|p| super::model::BatchPoint {
                    series: map[p.series as usize],
                    ..*p
                }));
            maps.push(map);
        }
        let ids = match tx.add_inner(&merged) {
            Ok(ids) => ids,
            Err(e) => {
                drop(tx); // rolls back and releases the writer
                restore();
                return Err(e);
            }
        };
        let mut new_series = vec![0usize; batches.len()];
        let committed = tx.finish(|memory, created| {
            let mut new_ids = std::collections::HashSet::with_capacity(created.len());
            for (id, key) in created {
                // A new series has no older readings in SQLite: memory holds all of it.
                memory.add_series(*id, key.clone(), Millis::MIN);
                new_ids.insert(*id);
            }
            for p in &merged.points {
                if let Some(s) = memory.series.get_mut(&ids[p.series as usize]) {
                    s.upsert(p.time, p.value);
                }
            }
            // Each new series counts for the first batch that used it.
            for (k, map) in maps.iter().enumerate() {
                new_series[k] = map
                    .iter()
                    .filter(|&&m| new_ids.remove(&ids[m as usize]))
                    .count();
            }
        });
        restore();
        committed?;
        Ok(batches
            .iter()
            .zip(new_series)
            .map(|(b, new_series)| WriteSummary {
                readings: b.points.len(),
                new_series,
            })
            .collect())
    }

    /// Starts a write that may span several batches (a large file read in
    /// chunks): committed together by [`WriteTx::commit`], rolled back if dropped.
    pub fn begin(&self) -> Result<WriteTx<'_>, StoreError> {
        let conn = self.writer.lock();
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|source| StoreError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        Ok(WriteTx {
            store: self,
            conn: Some(conn),
            created: Vec::new(),
            adopted: Vec::new(),
            pending: HashMap::new(),
            touched: std::collections::HashSet::new(),
            readings: 0,
        })
    }

    /// Runs `f` over the series of `metric` matching `filter`, each loaded
    /// into memory from at least `from` on.
    pub fn with_series<R>(
        &self,
        metric: &str,
        filter: &Labels,
        from: Millis,
        f: impl FnOnce(&mut dyn Iterator<Item = &Series>) -> R,
    ) -> Result<R, StoreError> {
        self.follow_other_writers()?;
        loop {
            self.ensure_loaded(metric, filter, from)?;
            let memory = self.memory.read();
            let matching = || {
                memory
                    .by_metric
                    .get(metric)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| memory.series.get(id))
                    .filter(|s| s.matches(filter))
            };
            // A write that reset a series (a file ingest) may have come in
            // between: then load again rather than answer from half the data.
            if matching().all(|s| s.loaded_from <= from) {
                return Ok(f(&mut matching()));
            }
        }
    }

    /// Loads from SQLite whatever part of the matching series before their
    /// `loaded_from` and at or after `from` is not yet in memory.
    fn ensure_loaded(&self, metric: &str, filter: &Labels, from: Millis) -> Result<(), StoreError> {
        let missing: Vec<(SeriesId, Millis)> = {
            let memory = self.memory.read();
            let Some(ids) = memory.by_metric.get(metric) else {
                return Ok(());
            };
            ids.iter()
                .filter_map(|id| memory.series.get(id))
                .filter(|s| s.loaded_from > from && s.matches(filter))
                .map(|s| (s.id, s.loaded_from))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let err = |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let reader = self.reader.lock();
        let mut stmt = reader
            .prepare_cached(
                "SELECT data FROM blocks WHERE series_id = ?1 AND start >= ?2 AND start < ?3 ORDER BY start",
            )
            .map_err(err)?;
        let mut loaded = Vec::with_capacity(missing.len());
        for (id, until) in missing {
            let mut times = Vec::new();
            let mut values = Vec::new();
            let mut rows = stmt
                .query(params![id, block_start(from), until])
                .map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let data = row
                    .get_ref(0)
                    .map_err(err)?
                    .as_blob()
                    .map_err(|e| err(e.into()))?;
                for (t, v) in decode_block(data) {
                    if t >= from && t < until {
                        times.push(t);
                        values.push(v);
                    }
                }
            }
            loaded.push((id, until, times, values));
        }
        drop(stmt);
        drop(reader);
        let mut memory = self.memory.write();
        for (id, until, mut times, mut values) in loaded {
            let Some(s) = memory.series.get_mut(&id) else {
                continue;
            };
            // Another caller may have loaded part of the range meanwhile
            // (memory then starts between `from` and `until`): keep only what
            // memory lacks. If memory was reset instead (it starts after
            // `until`), our piece would leave a gap: the caller loads again.
            if s.loaded_from > until || s.loaded_from <= from {
                continue;
            }
            let keep = times.partition_point(|&t| t < s.loaded_from);
            times.truncate(keep);
            values.truncate(keep);
            times.append(&mut s.times);
            values.append(&mut s.values);
            s.times = times;
            s.values = values;
            s.loaded_from = from;
        }
        Ok(())
    }

    /// Every metric name stored, sorted.
    pub fn metrics(&self) -> Vec<String> {
        let mut names: Vec<String> = self.memory.read().by_metric.keys().cloned().collect();
        names.sort();
        names
    }

    /// How many readings the file holds.
    pub fn count_readings(&self) -> Result<u64, StoreError> {
        let reader = self.reader.lock();
        reader
            .query_row("SELECT coalesce(sum(count), 0) FROM blocks", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|source| StoreError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }

    /// The latest reading time of a metric (any series), for status pages.
    pub fn last_time(&self, metric: &str) -> Result<Option<Millis>, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let reader = self.reader.lock();
        let mut stmt = reader
            .prepare_cached(
                "SELECT b.data FROM blocks b JOIN series s ON s.id = b.series_id
                 WHERE s.metric = ?1 ORDER BY b.start DESC LIMIT 1",
            )
            .map_err(err)?;
        let last = stmt
            .query_row([metric], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .map_err(err)?;
        Ok(last.and_then(|data| decode_block(&data).map(|(t, _)| t).last()))
    }
}

/// Stored points with fresh ones laid over them (same time: fresh wins).
fn merge(
    stored: impl Iterator<Item = (Millis, f64)>,
    fresh: &[(Millis, f64)],
) -> Vec<(Millis, f64)> {
    let mut out = Vec::with_capacity(fresh.len() + 32);
    let mut fresh = fresh.iter().copied().peekable();
    for (t, v) in stored {
        while let Some(&(ft, fv)) = fresh.peek() {
            if ft > t {
                break;
            }
            if ft < t {
                out.push((ft, fv));
            }
            fresh.next();
            if ft == t {
                out.push((ft, fv));
                break;
            }
        }
        if out.last().is_none_or(|&(lt, _)| lt < t) {
            out.push((t, v));
        }
    }
    out.extend(fresh);
    out
}

/// An open write transaction; see [`Store::begin`].
pub struct WriteTx<'a> {
    store: &'a Store,
    conn: Option<parking_lot::MutexGuard<'a, Connection>>,
    created: Vec<(SeriesId, SeriesKey)>,
    /// Series another process created that memory does not know yet.
    adopted: Vec<(SeriesId, SeriesKey)>,
    /// Series created or found in this transaction, not yet visible in memory.
    pending: HashMap<SeriesKey, SeriesId>,
    touched: std::collections::HashSet<SeriesId>,
    readings: usize,
}

impl WriteTx<'_> {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.store.path.clone(),
            source,
        }
    }

    /// Adds a batch to the transaction.
    pub fn add(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let ids = self.add_inner(batch)?;
        self.touched.extend(ids);
        Ok(())
    }

    /// Inserts the batch; returns the series id of each `batch.series` entry.
    fn add_inner(&mut self, batch: &Batch) -> Result<Vec<SeriesId>, StoreError> {
        let conn = self.conn.as_ref().expect("open until finished");
        let mut ids = Vec::with_capacity(batch.series.len());
        let mut new_ones = Vec::new();
        let mut adopted = Vec::new();
        {
            let known = self.store.memory.read();
            // Another process may have created the series: then it is found, not made.
            let mut find = conn
                .prepare_cached("SELECT id FROM series WHERE metric = ?1 AND labels = ?2")
                .map_err(|e| self.err(e))?;
            let mut insert = conn
                .prepare_cached("INSERT INTO series (metric, labels) VALUES (?1, ?2)")
                .map_err(|e| self.err(e))?;
            for key in &batch.series {
                if let Some(&id) = known.by_key.get(key).or_else(|| self.pending.get(key)) {
                    ids.push(id);
                    continue;
                }
                let labels = labels_json(&key.labels);
                let found: Option<SeriesId> = find
                    .query_row(params![key.metric, labels], |r| r.get(0))
                    .optional()
                    .map_err(|e| self.err(e))?;
                if let Some(id) = found {
                    adopted.push((id, key.clone()));
                    ids.push(id);
                    continue;
                }
                insert
                    .execute(params![key.metric, labels])
                    .map_err(|e| self.err(e))?;
                let id = conn.last_insert_rowid();
                new_ones.push((id, key.clone()));
                ids.push(id);
            }
        }
        for (id, key) in new_ones {
            self.pending.insert(key.clone(), id);
            self.created.push((id, key));
        }
        for (id, key) in adopted {
            self.pending.insert(key.clone(), id);
            self.adopted.push((id, key));
        }
        // Sorted by (series, time); for equal times the later reading wins.
        let mut order: Vec<u32> = (0..batch.points.len() as u32).collect();
        order.sort_unstable_by_key(|&i| {
            let p = &batch.points[i as usize];
            (ids[p.series as usize], p.time, i)
        });
        let mut read = conn
            .prepare_cached("SELECT data FROM blocks WHERE series_id = ?1 AND start = ?2")
            .map_err(|e| self.err(e))?;
        let mut write = conn
            .prepare_cached(
                "INSERT OR REPLACE INTO blocks (series_id, start, count, data) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(|e| self.err(e))?;
        let mut i = 0;
        let mut fresh: Vec<(Millis, f64)> = Vec::new();
        while i < order.len() {
            // One (series, day) block at a time.
            let first = &batch.points[order[i] as usize];
            let series = ids[first.series as usize];
            let start = block_start(first.time);
            fresh.clear();
            while i < order.len() {
                let p = &batch.points[order[i] as usize];
                if ids[p.series as usize] != series || block_start(p.time) != start {
                    break;
                }
                match fresh.last_mut() {
                    Some(last) if last.0 == p.time => last.1 = p.value,
                    _ => fresh.push((p.time, p.value)),
                }
                i += 1;
            }
            let stored: Option<Vec<u8>> = read
                .query_row(params![series, start], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            let points = match stored {
                None => std::mem::take(&mut fresh),
                Some(data) => merge(decode_block(&data), &fresh),
            };
            write
                .execute(params![
                    series,
                    start,
                    points.len() as i64,
                    encode_block(&points)
                ])
                .map_err(|e| self.err(e))?;
            if fresh.is_empty() {
                fresh = points; // reuse the allocation
            }
        }
        self.readings += batch.points.len();
        Ok(ids)
    }

    /// Commits, then brings the memory copy up to date with `update` (given
    /// the series this transaction created) *before* the writer is released:
    /// the next writer must find those series in memory, or it would try to
    /// create them again. Returns (series created, readings written).
    fn finish(
        mut self,
        update: impl FnOnce(&mut Memory, &[(SeriesId, SeriesKey)]),
    ) -> Result<(usize, usize), StoreError> {
        let conn = self.conn.take().expect("open until finished");
        let generation: i64 = match conn.query_row(
            "UPDATE store_meta SET value = value + 1 WHERE key = 'generation' RETURNING value",
            [],
            |r| r.get(0),
        ) {
            Ok(g) => g,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(self.err(e));
            }
        };
        if let Err(e) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(self.err(e));
        }
        let created = std::mem::take(&mut self.created);
        {
            let mut memory = self.store.memory.write();
            // Series another process created: known now, their readings
            // loaded from SQLite when asked for.
            for (id, key) in std::mem::take(&mut self.adopted) {
                if !memory.series.contains_key(&id) {
                    memory.add_series(id, key, Millis::MAX);
                }
            }
            update(&mut memory, &created);
        }
        // Our own write: the memory copy reflects it (unless another
        // process wrote in between, which the generation then shows).
        let _ = self.store.generation.compare_exchange(
            generation - 1,
            generation,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        drop(conn);
        Ok((created.len(), self.readings))
    }

    /// Commits everything added. Series this write touched are dropped from
    /// memory and reloaded when a rule next asks for them.
    pub fn commit(mut self) -> Result<WriteSummary, StoreError> {
        let touched = std::mem::take(&mut self.touched);
        let (new_series, readings) = self.finish(|memory, created| {
            for (id, key) in created {
                memory.add_series(*id, key.clone(), Millis::MAX);
            }
            for id in touched {
                if let Some(s) = memory.series.get_mut(&id) {
                    s.loaded_from = Millis::MAX;
                    s.times = Vec::new();
                    s.values = Vec::new();
                }
            }
        })?;
        Ok(WriteSummary {
            readings,
            new_series,
        })
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

impl Memory {
    fn add_series(&mut self, id: SeriesId, key: SeriesKey, loaded_from: Millis) {
        self.by_metric
            .entry(key.metric.clone())
            .or_default()
            .push(id);
        self.by_key.insert(key.clone(), id);
        self.series.insert(
            id,
            Series {
                id,
                labels: Arc::new(key.labels.clone()),
                key,
                loaded_from,
                times: Vec::new(),
                values: Vec::new(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(county: &str) -> Labels {
        [("county".to_string(), county.to_string())].into()
    }

    fn batch(points: &[(&str, &str, Millis, f64)]) -> Batch {
        let mut b = Batch::new();
        for &(metric, county, t, v) in points {
            b.push(metric, labels(county), t, v);
        }
        b
    }

    fn values(
        store: &Store,
        metric: &str,
        county: &str,
        from: Millis,
        to: Millis,
    ) -> Vec<(Millis, f64)> {
        store
            .with_series(metric, &labels(county), from, |it| {
                it.flat_map(|s| {
                    let (t, v) = s.range(from, to);
                    t.iter().copied().zip(v.iter().copied()).collect::<Vec<_>>()
                })
                .collect()
            })
            .unwrap()
    }

    #[test]
    fn write_read_and_upsert() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a/b.db")).unwrap();
        store
            .write(&batch(&[
                ("pm25", "南宫", 10, 1.0),
                ("pm25", "南宫", 5, 0.5),
                ("pm25", "清河", 5, 9.0),
            ]))
            .unwrap();
        store.write(&batch(&[("pm25", "南宫", 10, 2.0)])).unwrap();
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(5, 0.5), (10, 2.0)]
        );
        assert_eq!(store.count_readings().unwrap(), 3);
        drop(store);
        // Reopened: read back from SQLite, lazily.
        let store = Store::open(&dir.path().join("a/b.db")).unwrap();
        assert_eq!(values(&store, "pm25", "南宫", 6, 100), vec![(10, 2.0)]);
        assert_eq!(values(&store, "pm25", "南宫", Millis::MIN, 100).len(), 2);
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(5, 0.5), (10, 2.0)]
        );
        store.write(&batch(&[("pm25", "南宫", 7, 3.0)])).unwrap();
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(5, 0.5), (7, 3.0), (10, 2.0)]
        );
        assert_eq!(store.metrics(), vec!["pm25".to_string()]);
    }

    #[test]
    fn write_many_is_one_transaction_and_keeps_memory_current() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let a = batch(&[("pm25", "南宫", 10, 1.0), ("pm25", "清河", 10, 2.0)]);
        let b = batch(&[("pm25", "南宫", 20, 3.0), ("pm10", "南宫", 20, 4.0)]);
        let s = store.write_many(&[&a, &b], true).unwrap();
        let counts: Vec<_> = s.iter().map(|s| (s.readings, s.new_series)).collect();
        assert_eq!(counts, [(2, 2), (2, 1)]);
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(10, 1.0), (20, 3.0)]
        );
        assert_eq!(store.count_readings().unwrap(), 4);
        // A failure anywhere stores none of it.
        let late = 40 * crate::time::DAY;
        store
            .writer
            .lock()
            .execute_batch(&format!("CREATE TRIGGER no_late BEFORE INSERT ON blocks WHEN NEW.start >= {late} BEGIN SELECT RAISE(ABORT, 'too late'); END;"))
            .unwrap();
        let c = batch(&[("pm25", "南宫", 30, 5.0)]);
        let d = batch(&[("so2", "南宫", late, 500.0)]);
        assert!(store.write_many(&[&c, &d], true).is_err());
        assert_eq!(store.count_readings().unwrap(), 4);
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(10, 1.0), (20, 3.0)]
        );
        assert_eq!(
            store.metrics(),
            vec!["pm10".to_string(), "pm25".to_string()]
        );
        // Equal (series, time) in two batches: the later one wins.
        let e = batch(&[("pm25", "南宫", 20, 7.0)]);
        let f = batch(&[("pm25", "南宫", 20, 8.0)]);
        store.write_many(&[&e, &f], false).unwrap();
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(10, 1.0), (20, 8.0)]
        );
        // The connection is back to its usual setting.
        let sync: i64 = store
            .writer
            .lock()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }

    #[test]
    fn concurrent_writers_creating_the_same_series() {
        // Each round, four threads write to the same brand-new series: one
        // creates it, the others must find it (not create it again).
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        for round in 0..30 {
            let county = format!("c{round}");
            std::thread::scope(|scope| {
                for t in 0..4 {
                    let (store, county) = (&store, county.clone());
                    scope.spawn(move || {
                        store.write(&batch(&[("pm25", &county, t, 1.0)])).unwrap();
                    });
                }
            });
        }
        assert_eq!(store.count_readings().unwrap(), 120);
    }

    #[test]
    fn follows_readings_written_by_another_process() {
        // Two stores on one file stand for the daemon and `rulewatch ingest`.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let daemon = Store::open(&path).unwrap();
        let cli = Store::open(&path).unwrap();
        daemon.write(&batch(&[("pm25", "南宫", 1, 1.0)])).unwrap();
        assert_eq!(values(&daemon, "pm25", "南宫", 0, 100), vec![(1, 1.0)]);
        cli.write(&batch(&[
            ("pm25", "南宫", 2, 2.0),
            ("pm25", "清河", 2, 5.0),
        ]))
        .unwrap();
        // The daemon sees the new reading and the new series…
        assert_eq!(
            values(&daemon, "pm25", "南宫", 0, 100),
            vec![(1, 1.0), (2, 2.0)]
        );
        assert_eq!(values(&daemon, "pm25", "清河", 0, 100), vec![(2, 5.0)]);
        // …and can write to a series the other process created.
        let mut tx = daemon.begin().unwrap();
        tx.add(&batch(&[("pm10", "巨鹿", 3, 3.0)])).unwrap();
        tx.commit().unwrap();
        cli.write(&batch(&[("pm10", "巨鹿", 4, 4.0)])).unwrap();
        daemon.write(&batch(&[("pm10", "巨鹿", 5, 5.0)])).unwrap();
        assert_eq!(
            values(&daemon, "pm10", "巨鹿", 0, 100),
            vec![(3, 3.0), (4, 4.0), (5, 5.0)]
        );
        assert_eq!(
            values(&cli, "pm10", "巨鹿", 0, 100),
            vec![(3, 3.0), (4, 4.0), (5, 5.0)]
        );
    }

    #[test]
    fn concurrent_readers_of_different_windows_see_every_reading() {
        // One rule asks for 30 days while another asks for 1: whichever
        // loads first, both must see all their readings.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let store = Store::open(&path).unwrap();
            let mut b = Batch::new();
            for county in 0..200 {
                for h in 0..(30 * 24) {
                    b.push(
                        "pm25",
                        labels(&format!("c{county}")),
                        h * crate::time::HOUR,
                        1.0,
                    );
                }
            }
            store.write(&b).unwrap();
        }
        let end = 30 * 24 * crate::time::HOUR;
        let count = |store: &Store, from: Millis| {
            store
                .with_series("pm25", &Labels::new(), from, |it| {
                    it.map(|s| s.range(from, end).0.len()).sum::<usize>()
                })
                .unwrap()
        };
        for _ in 0..10 {
            let store = Store::open(&path).unwrap();
            let (long, short) = std::thread::scope(|scope| {
                let long = scope.spawn(|| count(&store, 0));
                let short = scope.spawn(|| count(&store, end - crate::time::DAY));
                (long.join().unwrap(), short.join().unwrap())
            });
            assert_eq!(long, 200 * 30 * 24);
            assert_eq!(short, 200 * 24);
        }
    }

    #[test]
    fn merge_lays_fresh_points_over_stored_ones() {
        let stored = [(1, 1.0), (3, 3.0), (5, 5.0)];
        let fresh = [(0, 0.5), (3, 30.0), (4, 4.0), (9, 9.0)];
        assert_eq!(
            merge(stored.iter().copied(), &fresh),
            vec![(0, 0.5), (1, 1.0), (3, 30.0), (4, 4.0), (5, 5.0), (9, 9.0)]
        );
        assert_eq!(merge(stored.iter().copied(), &[]), stored.to_vec());
    }

    #[test]
    fn readings_across_days_and_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let day = crate::time::DAY;
        let mut tx = store.begin().unwrap();
        tx.add(&batch(&[
            ("pm25", "南宫", day - 1, 1.0),
            ("pm25", "南宫", day, 2.0),
        ]))
        .unwrap();
        tx.add(&batch(&[
            ("pm25", "南宫", day + 5, 3.0),
            ("pm25", "南宫", day, 2.5),
        ]))
        .unwrap();
        tx.commit().unwrap();
        assert_eq!(store.count_readings().unwrap(), 3);
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 10 * day),
            vec![(day - 1, 1.0), (day, 2.5), (day + 5, 3.0)]
        );
        assert_eq!(store.last_time("pm25").unwrap(), Some(day + 5));
        // A dropped transaction stores nothing.
        let mut tx = store.begin().unwrap();
        tx.add(&batch(&[("pm25", "南宫", 3 * day, 9.0)])).unwrap();
        drop(tx);
        assert_eq!(store.count_readings().unwrap(), 3);
    }

    #[test]
    fn galloping_search_matches_partition_point() {
        let times: Vec<Millis> = (0..1000).map(|i| i * 3).collect();
        for t in -5..3010 {
            assert_eq!(
                first_after(&times, t),
                times.partition_point(|&x| x <= t),
                "{t}"
            );
            assert_eq!(
                first_at_or_after(&times, t),
                times.partition_point(|&x| x < t),
                "{t}"
            );
        }
        assert_eq!(first_after(&[], 5), 0);
        assert_eq!(first_after(&[7], 5), 0);
        assert_eq!(first_after(&[7], 7), 1);
    }

    #[test]
    fn a_failed_write_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        // Make the readings insert fail part-way through by a trigger.
        store
            .writer
            .lock()
            .execute_batch("CREATE TRIGGER no_big BEFORE INSERT ON blocks WHEN NEW.count > 1 BEGIN SELECT RAISE(ABORT, 'too big'); END;")
            .unwrap();
        let err = store.write(&batch(&[
            ("pm25", "南宫", 1, 1.0),
            ("pm25", "新", 2, 500.0),
            ("pm25", "新", 3, 500.0),
        ]));
        assert!(err.is_err());
        assert_eq!(store.count_readings().unwrap(), 0);
        assert!(
            store
                .with_series("pm25", &Labels::new(), 0, |it| it.count())
                .unwrap()
                == 0
        );
    }
}
