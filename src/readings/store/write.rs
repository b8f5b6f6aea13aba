//! Writing readings: one batch, several batches in one group commit (HTTP
//! ingest), or a transaction spanning the chunks of a large file. Each is
//! all or nothing, and the memory copy follows what was committed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use rusqlite::{params, Connection, OptionalExtension};

use super::blocks::{block_start, decode_block, encode_block, merge};
use super::columns::{Memory, SeriesId};
use super::{ReadingStoreError, Store};
use crate::readings::model::{Batch, BatchPoint, KeyMap, Labels, SeriesKey};
use crate::time::Millis;

/// Counts of what a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub readings: usize,
    pub new_series: usize,
    /// Readings of a series and time not stored before.
    pub new: usize,
    /// Readings stored before with the same value (a file ingested again).
    pub unchanged: usize,
    /// Readings that replaced a stored one of another value (a correction).
    pub changed: usize,
}

/// What one written reading did to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    New,
    Unchanged,
    Changed,
}

/// Calls `f` with each fresh point's time and effect when laid over `old`
/// (both sorted by time, one point per time).
fn effects_over(old: &[(Millis, f64)], fresh: &[(Millis, f64)], mut f: impl FnMut(Millis, Effect)) {
    let mut o = 0;
    for &(t, v) in fresh {
        while o < old.len() && old[o].0 < t {
            o += 1;
        }
        match old.get(o) {
            Some(&(ot, ov)) if ot == t => f(t, effect_over(ov, v)),
            _ => f(t, Effect::New),
        }
    }
}

/// Counts of [`Effect`]s.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tally {
    new: usize,
    unchanged: usize,
    changed: usize,
}

impl Tally {
    pub(super) fn count(&mut self, effect: Effect) {
        match effect {
            Effect::New => self.new += 1,
            Effect::Unchanged => self.unchanged += 1,
            Effect::Changed => self.changed += 1,
        }
    }

    pub(super) fn summary(self, readings: usize, new_series: usize) -> WriteSummary {
        WriteSummary {
            readings,
            new_series,
            new: self.new,
            unchanged: self.unchanged,
            changed: self.changed,
        }
    }
}

/// A fresh value laid over an older one of the same series and time.
pub(super) fn effect_over(old: f64, fresh: f64) -> Effect {
    if old.to_bits() == fresh.to_bits() || old == fresh {
        Effect::Unchanged
    } else {
        Effect::Changed
    }
}

fn labels_json(labels: &Labels) -> String {
    serde_json::to_string(labels).expect("string map serializes")
}

impl Store {
    /// Stores a batch in one transaction: all of it or, on error, none.
    /// A reading with the identity (metric, labels, time) of a stored one replaces it.
    pub fn write(&self, batch: &Batch) -> Result<WriteSummary, ReadingStoreError> {
        let mut tx = self.begin()?;
        let ids = tx.add_inner(batch)?;
        // Only after the commit: the memory copy follows what is durable.
        let (new_series, readings, tally, _) = tx.finish(|memory, created| {
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
        Ok(tally.summary(readings, new_series))
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
    ) -> Result<Vec<WriteSummary>, ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
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
        let mut tx = WriteTx::new(self, conn);
        tx.effects = (batches.len() > 1).then(HashMap::new);
        // Readings staged before this write are older: they go first.
        if let Err(e) = tx.fold_staged(usize::MAX) {
            drop(tx);
            restore();
            return Err(e);
        }
        // One batch of all: a (series, day) block that several requests
        // touch is read and rewritten once. Later requests win on equal
        // (series, time), as they would committed one after the other.
        let mut merged = Batch::new();
        let mut maps: Vec<Vec<u32>> = Vec::with_capacity(batches.len());
        for batch in batches {
            let map: Vec<u32> = batch
                .series
                .iter()
                .map(|k| merged.intern_shared(k.clone(), None))
                .collect();
            merged
                .points
                .extend(batch.points.iter().map(|p| BatchPoint {
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
        let (_, _, tally, effects) = committed?;
        // One batch: the transaction's counts. Several: each reading's
        // effect, as recorded when its block was written (a reading two
        // requests of the group both sent counts as the last one did).
        let Some(effects) = effects else {
            return Ok(batches
                .iter()
                .zip(new_series)
                .map(|(b, new_series)| tally.summary(b.points.len(), new_series))
                .collect());
        };
        Ok(batches
            .iter()
            .zip(new_series)
            .zip(&maps)
            .map(|((b, new_series), map)| {
                let mut tally = Tally::default();
                for p in &b.points {
                    let id = ids[map[p.series as usize] as usize];
                    tally.count(effects.get(&(id, p.time)).copied().unwrap_or(Effect::New));
                }
                tally.summary(b.points.len(), new_series)
            })
            .collect())
    }

    /// Starts a write that may span several batches (a large file read in
    /// chunks): committed together by [`WriteTx::commit`], rolled back if dropped.
    pub fn begin(&self) -> Result<WriteTx<'_>, ReadingStoreError> {
        let conn = self.writer.lock();
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|source| ReadingStoreError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        let mut tx = WriteTx::new(self, conn);
        // Readings staged before this write are older: they go first.
        tx.fold_staged(usize::MAX)?;
        Ok(tx)
    }
}

/// An open write transaction; see [`Store::begin`].
pub struct WriteTx<'a> {
    pub(super) store: &'a Store,
    pub(super) conn: Option<parking_lot::MutexGuard<'a, Connection>>,
    pub(super) created: Vec<(SeriesId, SeriesKey)>,
    /// Series another process created that memory does not know yet.
    pub(super) adopted: Vec<(SeriesId, SeriesKey)>,
    /// Series created or found in this transaction, not yet visible in memory.
    pending: KeyMap<SeriesKey, SeriesId>,
    touched: std::collections::HashSet<SeriesId>,
    /// Series this transaction created: their blocks need no read.
    new_series: std::collections::HashSet<SeriesId>,
    /// Readings added but not yet written, one entry per (series, day).
    open: OpenBlocks,
    pub(super) readings: usize,
    /// What the readings written so far did.
    pub(super) tally: Tally,
    /// Each written reading's effect, kept only for a group commit of
    /// several requests, to count per request.
    pub(super) effects: Option<Effects>,
}

/// Each written reading's effect, by series and time.
pub(super) type Effects = HashMap<(SeriesId, Millis), Effect>;

/// Pending memory above which [`WriteTx`] writes open blocks before commit.
const OPEN_BLOCKS_CAP: usize = 64 << 20;

/// The (series, day) blocks a transaction has readings for but has not
/// written yet. A file arrives in chunks; with time-ordered data (every
/// series each hour) each chunk touches every series, so writing a chunk's
/// blocks right away would rewrite each day block many times (2.2 M block
/// writes for 690 k blocks at 10,000 series). Holding them until the series
/// has moved past the day, the memory cap is reached, or the commit writes
/// each block once.
struct OpenBlocks {
    /// Sorted, one reading per time (the later added wins).
    blocks: BTreeMap<(SeriesId, Millis), Vec<(Millis, f64)>>,
    /// The latest day start each series has readings for in this transaction.
    latest: HashMap<SeriesId, Millis>,
    /// Blocks of new series already written by a flush before the commit.
    flushed: std::collections::HashSet<(SeriesId, Millis)>,
    /// Approximate memory held by `blocks`.
    bytes: usize,
    cap: usize,
}

impl OpenBlocks {
    fn new() -> OpenBlocks {
        OpenBlocks {
            blocks: BTreeMap::new(),
            latest: HashMap::new(),
            flushed: std::collections::HashSet::new(),
            bytes: 0,
            cap: OPEN_BLOCKS_CAP,
        }
    }

    fn size(points: &[(Millis, f64)]) -> usize {
        // The points plus the map entry and Vec header, roughly.
        std::mem::size_of_val(points) + 64
    }

    /// Lays `fresh` (sorted, one per time) over the open block.
    /// Readings laid over ones added earlier in the transaction count in
    /// `tally` now; the rest count when the block is written.
    fn add(&mut self, series: SeriesId, start: Millis, fresh: &[(Millis, f64)], tally: &mut Tally) {
        let latest = self.latest.entry(series).or_insert(start);
        *latest = (*latest).max(start);
        let block = self.blocks.entry((series, start)).or_default();
        let before = if block.is_empty() {
            0
        } else {
            OpenBlocks::size(block)
        };
        match (block.last(), fresh.first()) {
            (None, _) => block.extend_from_slice(fresh),
            (Some(&(last, _)), Some(&(first, _))) if first > last => block.extend_from_slice(fresh),
            _ => {
                effects_over(block, fresh, |_, effect| {
                    if effect != Effect::New {
                        tally.count(effect);
                    }
                });
                *block = merge(block.iter().copied(), fresh);
            }
        }
        self.bytes = self.bytes - before + OpenBlocks::size(block);
    }
}

impl<'a> WriteTx<'a> {
    /// A transaction on `conn`, which has begun one (`BEGIN IMMEDIATE`).
    pub(super) fn new(
        store: &'a Store,
        conn: parking_lot::MutexGuard<'a, Connection>,
    ) -> WriteTx<'a> {
        WriteTx {
            store,
            conn: Some(conn),
            created: Vec::new(),
            adopted: Vec::new(),
            pending: KeyMap::default(),
            touched: std::collections::HashSet::new(),
            new_series: std::collections::HashSet::new(),
            open: OpenBlocks::new(),
            readings: 0,
            tally: Tally::default(),
            effects: None,
        }
    }

    pub(super) fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("open until finished")
    }

    fn err(&self, source: rusqlite::Error) -> ReadingStoreError {
        ReadingStoreError::Sqlite {
            path: self.store.path.clone(),
            source,
        }
    }

    /// Sets the memory cap on readings held back (tests force early writes).
    #[cfg(test)]
    pub(super) fn set_open_blocks_cap(&mut self, bytes: usize) {
        self.open.cap = bytes;
    }

    /// Adds a batch to the transaction.
    pub fn add(&mut self, batch: &Batch) -> Result<(), ReadingStoreError> {
        let ids = self.add_inner(batch)?;
        self.touched.extend(ids);
        Ok(())
    }

    /// Inserts the batch; returns the series id of each `batch.series` entry.
    fn add_inner(&mut self, batch: &Batch) -> Result<Vec<SeriesId>, ReadingStoreError> {
        let ids = self.resolve_series(batch)?;
        self.add_points(&batch.points, &ids)?;
        Ok(ids)
    }

    /// The series id of each `batch.series` entry: known in memory, found
    /// in the file (another process made it) or created now.
    pub(super) fn resolve_series(
        &mut self,
        batch: &Batch,
    ) -> Result<Vec<SeriesId>, ReadingStoreError> {
        let conn = self.conn.as_ref().expect("open until finished");
        let mut ids = Vec::with_capacity(batch.series.len());
        let mut new_ones = Vec::new();
        let mut adopted = Vec::new();
        {
            let known = self.store.memory.read();
            // Ids the parser found by the series' bytes in this store's
            // table of known series: in memory already, as `by_key` would say.
            let parsed_ids = known.known.as_ref().and_then(|k| batch.known_ids(k.tag()));
            // Another process may have created the series: then it is found, not made.
            let mut find = conn
                .prepare_cached("SELECT id FROM series WHERE metric = ?1 AND labels = ?2")
                .map_err(|e| self.err(e))?;
            let mut insert = conn
                .prepare_cached("INSERT INTO series (metric, labels) VALUES (?1, ?2)")
                .map_err(|e| self.err(e))?;
            for (i, key) in batch.series.iter().enumerate() {
                if let Some(id) = parsed_ids.and_then(|ids| ids[i]) {
                    ids.push(id);
                    continue;
                }
                let key: &SeriesKey = key;
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
            self.new_series.insert(id);
            self.pending.insert(key.clone(), id);
            self.created.push((id, key));
        }
        for (id, key) in adopted {
            self.pending.insert(key.clone(), id);
            self.adopted.push((id, key));
        }
        Ok(ids)
    }

    /// Adds points whose series are `ids[point.series]` to the open blocks.
    pub(super) fn add_points(
        &mut self,
        points: &[BatchPoint],
        ids: &[SeriesId],
    ) -> Result<(), ReadingStoreError> {
        // Grouped by series (a counting sort on the batch's series index:
        // linear, where a comparison sort of every reading cost a tenth of
        // file ingest), each series' readings by time; the order of input
        // is kept among equal times, so the later reading wins.
        let mut starts = vec![0u32; ids.len() + 1];
        for p in points {
            starts[p.series as usize + 1] += 1;
        }
        for s in 1..starts.len() {
            starts[s] += starts[s - 1];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; points.len()];
        for (i, p) in points.iter().enumerate() {
            let slot = &mut next[p.series as usize];
            order[*slot as usize] = i as u32;
            *slot += 1;
        }
        for s in 0..ids.len() {
            let group = &mut order[starts[s] as usize..starts[s + 1] as usize];
            // Time-ordered input (the usual file) is sorted already.
            if group
                .windows(2)
                .any(|w| points[w[0] as usize].time > points[w[1] as usize].time)
            {
                group.sort_by_key(|&i| points[i as usize].time); // stable
            }
        }
        let mut i = 0;
        let mut fresh: Vec<(Millis, f64)> = Vec::new();
        while i < order.len() {
            // One (series, day) block at a time.
            let first = &points[order[i] as usize];
            let series = ids[first.series as usize];
            let start = block_start(first.time);
            fresh.clear();
            while i < order.len() {
                let p = &points[order[i] as usize];
                if ids[p.series as usize] != series || block_start(p.time) != start {
                    break;
                }
                match fresh.last_mut() {
                    Some(last) if last.0 == p.time => {
                        // The later reading of one series and time wins.
                        self.tally.count(effect_over(last.1, p.value));
                        last.1 = p.value;
                    }
                    _ => fresh.push((p.time, p.value)),
                }
                i += 1;
            }
            self.open.add(series, start, &fresh, &mut self.tally);
        }
        if self.open.bytes > self.open.cap {
            // First the days each series has moved past (time-ordered input
            // will not touch them again), then, if still too much, all.
            self.flush(|open, series, start| open.latest[&series] > start)?;
            if self.open.bytes > self.open.cap / 2 {
                self.flush(|_, _, _| true)?;
            }
        }
        self.readings += points.len();
        Ok(())
    }

    /// Writes every open block.
    pub(super) fn flush_all(&mut self) -> Result<(), ReadingStoreError> {
        self.flush(|_, _, _| true)
    }

    /// Writes the open blocks `which` picks, in (series, day) order so the
    /// B-tree is walked once. A block stored before is read and merged
    /// under the fresh readings; a block of a series this transaction
    /// created is new unless an earlier flush of this transaction wrote it.
    fn flush(
        &mut self,
        which: impl Fn(&OpenBlocks, SeriesId, Millis) -> bool,
    ) -> Result<(), ReadingStoreError> {
        let conn = self.conn.as_ref().expect("open until finished");
        let err = |source| ReadingStoreError::Sqlite {
            path: self.store.path.clone(),
            source,
        };
        let mut read = conn
            .prepare_cached("SELECT data FROM blocks WHERE series_id = ?1 AND start = ?2")
            .map_err(err)?;
        let mut write = conn
            .prepare_cached(
                "INSERT OR REPLACE INTO blocks (series_id, start, count, data) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(err)?;
        let blocks = std::mem::take(&mut self.open.blocks);
        let mut kept = BTreeMap::new();
        for ((series, start), fresh) in blocks {
            if !which(&self.open, series, start) {
                kept.insert((series, start), fresh);
                continue;
            }
            self.open.bytes -= OpenBlocks::size(&fresh);
            let new_block =
                self.new_series.contains(&series) && !self.open.flushed.contains(&(series, start));
            let stored: Option<Vec<u8>> = if new_block {
                None
            } else {
                read.query_row(params![series, start], |r| r.get(0))
                    .optional()
                    .map_err(err)?
            };
            let tally = &mut self.tally;
            let effects = &mut self.effects;
            let mut count = |t: Millis, effect: Effect| {
                tally.count(effect);
                if let Some(map) = effects.as_mut() {
                    map.insert((series, t), effect);
                }
            };
            let points = match stored {
                None => {
                    fresh.iter().for_each(|&(t, _)| count(t, Effect::New));
                    fresh
                }
                Some(data) => {
                    let old: Vec<(Millis, f64)> = decode_block(&data).collect();
                    let mut all_unchanged = true;
                    effects_over(&old, &fresh, |t, effect| {
                        all_unchanged &= effect == Effect::Unchanged;
                        count(t, effect);
                    });
                    if all_unchanged {
                        // The same readings again (a file ingested twice):
                        // the stored block is already right.
                        continue;
                    }
                    merge(old.into_iter(), &fresh)
                }
            };
            write
                .execute(params![
                    series,
                    start,
                    points.len() as i64,
                    encode_block(&points)
                ])
                .map_err(err)?;
            if self.new_series.contains(&series) {
                self.open.flushed.insert((series, start));
            }
        }
        self.open.blocks = kept;
        Ok(())
    }

    /// Commits, then brings the memory copy up to date with `update` (given
    /// the series this transaction created) *before* the writer is released:
    /// the next writer must find those series in memory, or it would try to
    /// create them again. Returns (series created, readings written, what
    /// they did).
    pub(super) fn finish(
        mut self,
        update: impl FnOnce(&mut Memory, &[(SeriesId, SeriesKey)]),
    ) -> Result<(usize, usize, Tally, Option<Effects>), ReadingStoreError> {
        self.flush(|_, _, _| true)?;
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
        Ok((
            created.len(),
            self.readings,
            self.tally,
            self.effects.take(),
        ))
    }

    /// Commits everything added. Series this write touched are dropped from
    /// memory and reloaded when a rule next asks for them.
    pub fn commit(mut self) -> Result<WriteSummary, ReadingStoreError> {
        let touched = std::mem::take(&mut self.touched);
        let (new_series, readings, tally, _) = self.finish(|memory, created| {
            for (id, key) in created {
                memory.add_series(*id, key.clone(), Millis::MAX);
            }
            for id in touched {
                if let Some(s) = memory.series.get_mut(&id) {
                    s.unload();
                }
            }
        })?;
        Ok(tally.summary(readings, new_series))
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}
