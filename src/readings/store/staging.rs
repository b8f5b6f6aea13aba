//! HTTP ingest's staging: a request's readings are made durable as one row
//! of the `staged` table (one synced commit of a few pages), laid over the
//! memory copy at once, and folded into the day blocks later, many requests
//! together.
//!
//! Why: readings arrive time by time (every series at 10:00, then 11:00)
//! and the blocks are kept series by series, so writing a request of 1,000
//! readings straight into its day blocks rewrites ~500 B-tree pages and
//! syncs them; with one client there is nothing to commit together. A
//! staged row is ~24 KiB, and folding a day's worth of requests at once
//! rewrites each day block once instead of once per request.
//!
//! The rules that keep it correct:
//! - **Staged rows are newer than the blocks.** Every other write of
//!   readings (a file ingest, a write from another process, retention)
//!   folds the staged rows first, in its own transaction
//!   ([`WriteTx::fold_staged`]), so a later write always lands on top.
//! - **Staged readings are in the memory copy of the process that staged
//!   them.** A request is staged only when memory holds every series it
//!   touches from the request's times on (and memory is current: no other
//!   process wrote since); otherwise the caller writes it straight into the
//!   blocks ([`Store::write_many`]). So effects (new, unchanged, changed)
//!   are counted from memory, exactly as a block write counts them.
//! - **Other processes fold before they read.** Opening a store folds what
//!   is staged (after a crash: the replay), and so does following another
//!   process's writes; a fold changes no reading, so it does not bump the
//!   generation and no memory copy is reset by it.
//! - A fold ([`Store::fold_staged`]) is one transaction that writes the
//!   blocks and deletes the rows it folded: a crash leaves either, never
//!   both or neither. The daemon's folder cuts it into transactions of a
//!   few series each ([`Store::fold_staged_in_slices`]), the last deleting
//!   the rows: a crash between leaves the rows and some of their readings
//!   in blocks, and folding the rows again writes the same readings.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use rusqlite::params;

use super::columns::SeriesId;
use super::write::{effect_over, Effect, Tally, WriteTx};
use super::{ReadingStoreError, Store, WriteSummary};
use crate::readings::model::{Batch, BatchPoint};
use crate::time::Millis;

/// How far back [`Store::load_for_staging`] loads series for a batch.
const LOAD_FOR_STAGING: Millis = 2 * crate::time::DAY;

/// Bytes of one staged reading: series id, time, value (all 8-byte LE).
const STAGED_BYTES: usize = 24;

fn encode(points: &[BatchPoint], ids: &[SeriesId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * STAGED_BYTES);
    for p in points {
        out.extend_from_slice(&ids[p.series as usize].to_le_bytes());
        out.extend_from_slice(&p.time.to_le_bytes());
        out.extend_from_slice(&p.value.to_le_bytes());
    }
    out
}

fn decode(data: &[u8]) -> impl Iterator<Item = (SeriesId, Millis, f64)> + '_ {
    data.chunks_exact(STAGED_BYTES).map(|c| {
        let le = |r: std::ops::Range<usize>| -> [u8; 8] { c[r].try_into().expect("8 bytes") };
        (
            SeriesId::from_le_bytes(le(0..8)),
            Millis::from_le_bytes(le(8..16)),
            f64::from_le_bytes(le(16..24)),
        )
    })
}

/// Staged rows read for a fold: their readings (`series` indexes `ids`),
/// in row order, and the first and last row.
struct StagedRows {
    points: Vec<BatchPoint>,
    ids: Vec<SeriesId>,
    first: i64,
    last: i64,
}

/// Reads the staged rows (oldest first, at least one, then up to about
/// `max_readings` readings); `None` if there are none.
fn read_staged(
    conn: &rusqlite::Connection,
    max_readings: usize,
) -> rusqlite::Result<Option<StagedRows>> {
    let mut stmt = conn.prepare_cached("SELECT id, count, data FROM staged ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut points: Vec<BatchPoint> = Vec::new();
    let mut ids: Vec<SeriesId> = Vec::new();
    let mut index: HashMap<SeriesId, u32> = HashMap::new();
    let mut span: Option<(i64, i64)> = None;
    while let Some(row) = rows.next()? {
        if span.is_some() && points.len() >= max_readings {
            break;
        }
        let id: i64 = row.get(0)?;
        span = Some((span.map_or(id, |(first, _)| first), id));
        let data = row.get_ref(2)?.as_blob()?;
        for (id, time, value) in decode(data) {
            let series = *index.entry(id).or_insert_with(|| {
                ids.push(id);
                ids.len() as u32 - 1
            });
            points.push(BatchPoint {
                series,
                time,
                value,
            });
        }
    }
    Ok(span.map(|(first, last)| StagedRows {
        points,
        ids,
        first,
        last,
    }))
}

/// Readings a sliced fold ([`Store::fold_staged_in_slices`]) writes in one
/// transaction, about: a few series' blocks, a millisecond or two of work,
/// so that an HTTP request waits for a slice at most, not for a whole fold
/// (a fold of 500,000 readings held the writer for 0.2–0.4 s, and a fifth
/// of one client's ingest time went to waiting for folds).
const FOLD_SLICE: usize = 4096;

impl WriteTx<'_> {
    /// Writes the staged rows (oldest first, at least one, then up to about
    /// `max_readings` readings) into their day blocks and deletes them, in
    /// this transaction. Their counts do not add to the transaction's.
    /// Returns the readings folded.
    pub(super) fn fold_staged(&mut self, max_readings: usize) -> Result<usize, ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
            path: self.store.path.clone(),
            source,
        };
        let Some(StagedRows {
            points, ids, last, ..
        }) = read_staged(self.conn(), max_readings).map_err(err)?
        else {
            return Ok(0);
        };
        let (readings, tally, effects) = (self.readings, self.tally, self.effects.take());
        let folded = self
            .add_points(&points, &ids)
            .and_then(|()| self.flush_all());
        (self.readings, self.tally, self.effects) = (readings, tally, effects);
        folded?;
        self.conn()
            .execute("DELETE FROM staged WHERE id <= ?1", [last])
            .map_err(err)?;
        Ok(points.len())
    }

    /// Commits a transaction that only folded: no reading changed, so
    /// neither the generation nor any memory copy does. The writer goes
    /// to whoever waits for it (an HTTP request), not back to the folder.
    fn commit_fold(mut self) -> Result<(), ReadingStoreError> {
        let conn = self.conn.take().expect("open until finished");
        let done = conn.execute_batch("COMMIT").map_err(|source| {
            let _ = conn.execute_batch("ROLLBACK");
            ReadingStoreError::Sqlite {
                path: self.store.path.clone(),
                source,
            }
        });
        parking_lot::MutexGuard::unlock_fair(conn);
        done
    }
}

impl Store {
    /// Folds up to about `max_readings` staged readings (oldest first) into
    /// the day blocks, in one transaction; returns how many. Call again
    /// until it returns 0 to fold everything.
    pub fn fold_staged(&self, max_readings: usize) -> Result<usize, ReadingStoreError> {
        let conn = self.writer.lock();
        let err = |source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let any: bool = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM staged)", [], |r| r.get(0))
            .map_err(err)?;
        if !any {
            return Ok(0);
        }
        conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        let mut tx = WriteTx::new(self, conn);
        let folded = tx.fold_staged(max_readings)?;
        tx.commit_fold()?;
        Ok(folded)
    }

    /// [`Store::fold_staged`] in many small transactions, so that writes
    /// (HTTP requests staging theirs) go on in between: the rows are read
    /// on a connection of their own, then a few series at a time
    /// ([`FOLD_SLICE`] readings or so) are written into their blocks, each
    /// block still once; the last slice deletes the rows. Returns the
    /// readings folded (0 if another write folded them meanwhile).
    ///
    /// Why it stays right: staged rows are only added or deleted, and
    /// deleted oldest first by a fold; every other write of readings folds
    /// them first ([`WriteTx::fold_staged`]). So while the first row read
    /// is still there, nothing was written over the blocks since (each
    /// slice checks, in its transaction); and a slice written before a
    /// crash or another write only wrote what folding the rows again
    /// writes.
    pub fn fold_staged_in_slices(&self, max_readings: usize) -> Result<usize, ReadingStoreError> {
        self.fold_in_slices(max_readings, FOLD_SLICE)
    }

    /// [`Store::fold_staged_in_slices`] in slices of about `slice` readings.
    fn fold_in_slices(
        &self,
        max_readings: usize,
        slice: usize,
    ) -> Result<usize, ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let rows = {
            let conn = crate::db::open(&self.path, crate::db::Durability::Normal)?;
            read_staged(&conn, max_readings).map_err(err)?
        };
        let Some(StagedRows {
            points,
            ids,
            first,
            last,
        }) = rows
        else {
            return Ok(0);
        };
        // The readings grouped by series (a counting sort: row order kept
        // within a series, so the later reading wins), cut into slices of
        // whole series.
        let mut starts = vec![0usize; ids.len() + 1];
        for p in &points {
            starts[p.series as usize + 1] += 1;
        }
        for s in 1..starts.len() {
            starts[s] += starts[s - 1];
        }
        let mut next = starts.clone();
        let mut grouped = vec![
            BatchPoint {
                series: 0,
                time: 0,
                value: 0.0
            };
            points.len()
        ];
        for p in &points {
            let slot = &mut next[p.series as usize];
            grouped[*slot] = *p;
            *slot += 1;
        }
        let mut cuts = vec![0];
        for &end in &starts[1..] {
            let from = *cuts.last().unwrap_or(&0);
            if end > from && (end - from >= slice || end == points.len()) {
                cuts.push(end);
            }
        }
        if cuts.len() == 1 {
            cuts.push(0); // rows without readings: one slice deletes them
        }
        for (k, range) in cuts.windows(2).enumerate() {
            let conn = self.writer.lock();
            // The store's own setting: a staging that just committed may
            // not have put it back yet, and a synced commit per slice (as
            // staging's) cost a disk sync each.
            conn.execute_batch("PRAGMA synchronous=NORMAL; BEGIN IMMEDIATE")
                .map_err(err)?;
            let mut tx = WriteTx::new(self, conn);
            let still: bool = tx
                .conn()
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM staged WHERE id = ?1)",
                    [first],
                    |r| r.get(0),
                )
                .map_err(err)?;
            if !still {
                return Ok(0); // folded by another write; `tx` rolls back
            }
            tx.add_points(&grouped[range[0]..range[1]], &ids)?;
            tx.flush_all()?;
            if k + 2 == cuts.len() {
                tx.conn()
                    .execute("DELETE FROM staged WHERE id <= ?1", [last])
                    .map_err(err)?;
            }
            tx.commit_fold()?;
        }
        Ok(points.len())
    }

    /// Folds everything staged (opening a store, following another
    /// process, stopping the daemon): a few transactions of up to a million
    /// readings each.
    pub fn fold_all_staged(&self) -> Result<usize, ReadingStoreError> {
        let mut total = 0;
        loop {
            match self.fold_staged(1_000_000)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// Stages several requests' batches in one synced transaction (each
    /// request all or nothing with the others), lays them over the memory
    /// copy, and returns each one's counts. `None`: memory does not hold
    /// every series and time the batches touch (or another process wrote
    /// meanwhile), nothing was written: write them with
    /// [`Store::write_many`] instead.
    pub fn stage_many(
        &self,
        batches: &[&Batch],
    ) -> Result<Option<Vec<WriteSummary>>, ReadingStoreError> {
        // Another process's write: reset memory now (cheap when none).
        self.follow_other_writers()?;
        match self.stage_once(batches)? {
            Some(done) => Ok(Some(done)),
            // Memory lacks some series: load recent ones and try once more.
            None if self.load_for_staging(batches)? => self.stage_once(batches),
            None => Ok(None),
        }
    }

    /// One attempt of [`Store::stage_many`].
    fn stage_once(
        &self,
        batches: &[&Batch],
    ) -> Result<Option<Vec<WriteSummary>>, ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let conn = self.writer.lock();
        conn.execute_batch("PRAGMA synchronous=FULL").map_err(err)?;
        let restore = |conn: &rusqlite::Connection| {
            let _ = conn.execute_batch("PRAGMA synchronous=NORMAL");
        };
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            restore(&conn);
            return Err(err(e));
        }
        let mut tx = WriteTx::new(self, conn);
        let result = self.stage_in(&mut tx, batches);
        let staged = match result {
            Ok(Some(staged)) => staged,
            other => {
                drop(tx); // rolls back and releases the writer
                restore(&self.writer.lock());
                return other.map(|_| None);
            }
        };
        let Staged { ids, mut summaries } = staged;
        let created: HashSet<SeriesId> = tx.created.iter().map(|(id, _)| *id).collect();
        let committed = tx.finish(|memory, created| {
            for (id, key) in created {
                // A new series has no older readings anywhere: memory holds all of it.
                memory.add_series(*id, key.clone(), Millis::MIN);
            }
            for (batch, ids) in batches.iter().zip(&ids) {
                for p in &batch.points {
                    if let Some(s) = memory.series.get_mut(&ids[p.series as usize]) {
                        s.upsert(p.time, p.value);
                    }
                }
            }
        });
        restore(&self.writer.lock());
        committed?;
        // Each new series counts for the first batch that used it.
        if !created.is_empty() {
            let mut counted: HashSet<SeriesId> = HashSet::new();
            for (summary, ids) in summaries.iter_mut().zip(&ids) {
                summary.new_series = ids
                    .iter()
                    .filter(|&&id| created.contains(&id) && counted.insert(id))
                    .count();
            }
        }
        Ok(Some(summaries))
    }

    /// Loads into memory the series of recent readings (the last
    /// [`LOAD_FOR_STAGING`], as a live feed sends) that memory does not hold
    /// that far back: after a start, or for a metric no rule reads, so that
    /// such batches are staged too. Older readings (a back-fill) are not
    /// worth holding in memory: their batches are written straight.
    /// Returns whether it loaded anything.
    fn load_for_staging(&self, batches: &[&Batch]) -> Result<bool, ReadingStoreError> {
        let recent = chrono::Utc::now().timestamp_millis() - LOAD_FOR_STAGING;
        let mut wanted: HashMap<&str, Millis> = HashMap::new();
        {
            let memory = self.memory.read();
            for batch in batches {
                let Some(from) = batch.points.iter().map(|p| p.time).min() else {
                    continue;
                };
                if from < recent {
                    continue;
                }
                for key in &batch.series {
                    let short = memory
                        .by_key
                        .get(&**key)
                        .and_then(|id| memory.series.get(id))
                        .is_some_and(|s| s.loaded_from > from);
                    if short {
                        let at = wanted.entry(key.metric.as_str()).or_insert(from);
                        *at = (*at).min(from);
                    }
                }
            }
        }
        let loaded = !wanted.is_empty();
        for (metric, from) in wanted {
            self.ensure_loaded(metric, &crate::readings::Labels::new(), from)?;
        }
        Ok(loaded)
    }

    /// Inside the staging transaction: checks memory can count the batches,
    /// counts them and inserts their rows.
    fn stage_in(
        &self,
        tx: &mut WriteTx<'_>,
        batches: &[&Batch],
    ) -> Result<Option<Staged>, ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        // Under the write lock: no other process can write until we commit.
        if self.stored_generation().map_err(err)? != self.generation.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let mut ids = Vec::with_capacity(batches.len());
        for batch in batches {
            ids.push(tx.resolve_series(batch)?);
        }
        if !tx.adopted.is_empty() {
            return Ok(None); // series another process made: not in memory
        }
        let created: HashSet<SeriesId> = tx.created.iter().map(|(id, _)| *id).collect();
        let Some(summaries) = self.count_over_memory(batches, &ids, &created) else {
            return Ok(None);
        };
        let mut insert = tx
            .conn()
            .prepare_cached("INSERT INTO staged (count, data) VALUES (?1, ?2)")
            .map_err(err)?;
        for (batch, ids) in batches.iter().zip(&ids) {
            insert
                .execute(params![
                    batch.points.len() as i64,
                    encode(&batch.points, ids)
                ])
                .map_err(err)?;
        }
        Ok(Some(Staged { ids, summaries }))
    }

    /// What each batch does laid over memory and over the batches before it
    /// (counted as [`Store::write_many`] counts a block write: a reading
    /// repeated within a batch counts against its predecessor, the last
    /// one against what was stored). `None` if memory lacks a series or
    /// time they touch.
    fn count_over_memory(
        &self,
        batches: &[&Batch],
        ids: &[Vec<SeriesId>],
        created: &HashSet<SeriesId>,
    ) -> Option<Vec<WriteSummary>> {
        let memory = self.memory.read();
        // Values of this group's earlier batches (only when several).
        let mut earlier: HashMap<(SeriesId, Millis), f64> = HashMap::new();
        let mut out = Vec::with_capacity(batches.len());
        for (k, (batch, ids)) in batches.iter().zip(ids).enumerate() {
            let mut order: Vec<u32> = (0..batch.points.len() as u32).collect();
            // Grouped by series and time; a parsed batch repeats neither
            // (each series' times grow), so its order groups them already.
            if !times_only_grow(batch) {
                order.sort_unstable_by_key(|&i| {
                    let p = &batch.points[i as usize];
                    (ids[p.series as usize], p.time, i)
                });
            }
            let mut tally = Tally::default();
            let mut i = 0;
            while i < order.len() {
                let first = &batch.points[order[i] as usize];
                let (id, t) = (ids[first.series as usize], first.time);
                let mut value = first.value;
                i += 1;
                while i < order.len() {
                    let p = &batch.points[order[i] as usize];
                    if ids[p.series as usize] != id || p.time != t {
                        break;
                    }
                    tally.count(effect_over(value, p.value));
                    value = p.value;
                    i += 1;
                }
                let before = match earlier.get(&(id, t)) {
                    Some(&v) => Some(v),
                    None if created.contains(&id) => None,
                    None => {
                        let s = memory.series.get(&id)?;
                        if s.loaded_from > t {
                            return None;
                        }
                        s.last_at_or_before(t)
                            .and_then(|(st, sv)| (st == t).then_some(sv))
                    }
                };
                tally.count(before.map_or(Effect::New, |old| effect_over(old, value)));
                if batches.len() > 1 && k + 1 < batches.len() {
                    earlier.insert((id, t), value);
                }
            }
            out.push(tally.summary(batch.points.len(), 0));
        }
        Some(out)
    }
}

/// Whether every series' readings in `batch` come in strictly increasing
/// time: then no series and time is there twice.
fn times_only_grow(batch: &Batch) -> bool {
    let mut last = vec![Millis::MIN; batch.series.len()];
    batch.points.iter().all(|p| {
        let l = &mut last[p.series as usize];
        let grows = p.time > *l;
        *l = p.time;
        grows
    })
}

/// A staged group, before its commit.
struct Staged {
    /// Each batch's series ids.
    ids: Vec<Vec<SeriesId>>,
    summaries: Vec<WriteSummary>,
}

impl Store {
    /// [`Store::fold_all_staged`], a failure logged (a full disk): the
    /// rows stay staged and the next fold takes them.
    pub(super) fn fold_staged_or_warn(&self) {
        match self.fold_all_staged() {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(store = %self.path.display(), readings = n, "staged readings folded into day blocks")
            }
            Err(e) => {
                tracing::warn!(store = %self.path.display(), error = %e, "folding staged readings failed; they stay staged")
            }
        }
    }
}

impl Store {
    /// Copies the write-ahead log into the file (a passive checkpoint, on a
    /// connection of its own so that neither writes nor reads wait): after
    /// a fold, so that the log restarts small instead of a staging commit
    /// paying for an automatic checkpoint of tens of megabytes.
    pub fn checkpoint(&self) {
        let done = crate::db::open(&self.path, crate::db::Durability::Normal)
            .map_err(|e| e.to_string())
            .and_then(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = done {
            tracing::warn!(store = %self.path.display(), error = %e, "checkpoint after a fold failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::Labels;

    fn batch(points: &[(&str, Millis, f64)]) -> Batch {
        let mut b = Batch::new();
        for &(county, t, v) in points {
            let labels: Labels = [("county".to_string(), county.to_string())].into();
            b.push("pm25", labels, t, v);
        }
        b
    }

    fn values(store: &Store, county: &str) -> Vec<(Millis, f64)> {
        let filter: Labels = [("county".to_string(), county.to_string())].into();
        store
            .with_series("pm25", &filter, Millis::MIN, |it| {
                it.flat_map(|s| {
                    let (t, v) = s.range(Millis::MIN, Millis::MAX);
                    t.iter().copied().zip(v.iter().copied()).collect::<Vec<_>>()
                })
                .collect()
            })
            .unwrap()
    }

    fn staged_rows(path: &std::path::Path) -> i64 {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("SELECT count(*) FROM staged", [], |r| r.get(0))
            .unwrap()
    }

    fn effects(s: &WriteSummary) -> (usize, usize, usize, usize, usize) {
        (s.readings, s.new_series, s.new, s.unchanged, s.changed)
    }

    #[test]
    fn staged_readings_are_counted_like_block_writes_and_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        let a = batch(&[("南宫", 10, 1.0), ("南宫", 20, 2.0), ("清河", 10, 3.0)]);
        let s = store
            .stage_many(&[&a])
            .unwrap()
            .expect("new series: staged");
        assert_eq!(effects(&s[0]), (3, 2, 3, 0, 0));
        assert_eq!(staged_rows(&path), 1);
        assert_eq!(values(&store, "南宫"), vec![(10, 1.0), (20, 2.0)]);
        // Again, with a correction and a reading repeated within the batch.
        let b = batch(&[
            ("南宫", 10, 1.0),
            ("南宫", 20, 2.5),
            ("清河", 30, 4.0),
            ("清河", 30, 4.0),
        ]);
        let s = store.stage_many(&[&b]).unwrap().unwrap();
        assert_eq!(effects(&s[0]), (4, 0, 1, 2, 1));
        // The same counts as a block write of the same batches.
        let other = Store::open(&dir.path().join("t.db")).unwrap();
        let direct = other.write_many(&[&a], true).unwrap();
        assert_eq!(effects(&direct[0]), (3, 2, 3, 0, 0));
        let direct = other.write_many(&[&b], true).unwrap();
        assert_eq!(effects(&direct[0]), (4, 0, 1, 2, 1));
        // A group: each request counted over the ones before it.
        let c = batch(&[("南宫", 40, 5.0)]);
        let d = batch(&[("南宫", 40, 6.0), ("巨鹿", 40, 1.0)]);
        let s = store.stage_many(&[&c, &d]).unwrap().unwrap();
        let got: Vec<_> = s.iter().map(effects).collect();
        assert_eq!(got, [(1, 0, 1, 0, 0), (2, 1, 1, 0, 1)]);
        assert_eq!(
            values(&store, "南宫"),
            vec![(10, 1.0), (20, 2.5), (40, 6.0)]
        );
        // Folded: the blocks hold the same, the rows are gone, nothing changed
        // in memory.
        assert_eq!(store.fold_staged(usize::MAX).unwrap(), 10);
        assert_eq!(staged_rows(&path), 0);
        assert_eq!(store.count_readings().unwrap(), 6);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(
            values(&store, "南宫"),
            vec![(10, 1.0), (20, 2.5), (40, 6.0)]
        );
        assert_eq!(values(&store, "清河"), vec![(10, 3.0), (30, 4.0)]);
    }

    #[test]
    fn a_series_memory_does_not_hold_is_not_staged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        Store::open(&path)
            .unwrap()
            .write(&batch(&[("南宫", 10, 1.0)]))
            .unwrap();
        let store = Store::open(&path).unwrap();
        // Known but not loaded: memory cannot say whether 10 is new.
        assert!(store
            .stage_many(&[&batch(&[("南宫", 10, 1.0)])])
            .unwrap()
            .is_none());
        assert_eq!(staged_rows(&path), 0);
        // Recent readings: the series is loaded for them, and they are staged.
        let now = chrono::Utc::now().timestamp_millis();
        Store::open(&path)
            .unwrap()
            .write(&batch(&[("南宫", now - 3_600_000, 7.0)]))
            .unwrap();
        let fresh = Store::open(&path).unwrap();
        let s = fresh
            .stage_many(&[&batch(&[
                ("南宫", now - 3_600_000, 7.0),
                ("南宫", now, 8.0),
            ])])
            .unwrap()
            .expect("recent: loaded and staged");
        assert_eq!(effects(&s[0]), (2, 0, 1, 1, 0));
        // Loaded by a rule: staged, old times too.
        assert_eq!(values(&store, "南宫").len(), 3, "followed the other store");
        let s = store
            .stage_many(&[&batch(&[("南宫", 10, 1.0), ("南宫", 5, 0.5)])])
            .unwrap()
            .expect("loaded: staged");
        assert_eq!(effects(&s[0]), (2, 0, 1, 1, 0));
    }

    #[test]
    fn other_processes_see_staged_readings_and_write_over_them() {
        // Two stores on one file stand for the daemon and `rulewatch ingest`.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let daemon = Store::open(&path).unwrap();
        daemon
            .stage_many(&[&batch(&[("南宫", 10, 1.0), ("南宫", 20, 2.0)])])
            .unwrap()
            .unwrap();
        // Another process opening the store folds what is staged and sees it.
        let cli = Store::open(&path).unwrap();
        assert_eq!(staged_rows(&path), 0);
        assert_eq!(values(&cli, "南宫"), vec![(10, 1.0), (20, 2.0)]);
        // Staged again; the other process corrects one of those readings:
        // its write folds the staged rows first, so the correction wins.
        daemon
            .stage_many(&[&batch(&[("南宫", 30, 3.0)])])
            .unwrap()
            .unwrap();
        let s = cli.write(&batch(&[("南宫", 30, 3.5)])).unwrap();
        assert_eq!((s.new, s.changed), (0, 1), "the staged reading was seen");
        assert_eq!(staged_rows(&path), 0);
        assert_eq!(
            values(&daemon, "南宫"),
            vec![(10, 1.0), (20, 2.0), (30, 3.5)]
        );
        // The daemon (which reloaded above) stages on top again.
        let s = daemon
            .stage_many(&[&batch(&[("南宫", 30, 3.5), ("南宫", 40, 4.0)])])
            .unwrap()
            .expect("loaded again: staged");
        assert_eq!((s[0].new, s[0].unchanged), (1, 1));
        // Another write from outside: the daemon's memory is reset, so the
        // next batch is not staged (HTTP ingest then writes it straight).
        cli.write(&batch(&[("南宫", 50, 5.0)])).unwrap();
        let b = batch(&[("南宫", 50, 5.0), ("南宫", 60, 6.0)]);
        assert!(daemon.stage_many(&[&b]).unwrap().is_none());
        let s = daemon.write_many(&[&b], true).unwrap();
        assert_eq!((s[0].new, s[0].unchanged), (1, 1));
        let cli = Store::open(&path).unwrap();
        assert_eq!(
            values(&cli, "南宫"),
            vec![
                (10, 1.0),
                (20, 2.0),
                (30, 3.5),
                (40, 4.0),
                (50, 5.0),
                (60, 6.0)
            ]
        );
    }

    #[test]
    fn a_fold_cut_short_leaves_the_rest_staged_and_folding_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        for n in 0..5 {
            let b = batch(&[("南宫", n * 10, n as f64), ("清河", n * 10, 1.0)]);
            store.stage_many(&[&b]).unwrap().unwrap();
        }
        // At least one row, then whole rows up to the limit.
        assert_eq!(store.fold_staged(1).unwrap(), 2);
        assert_eq!(staged_rows(&path), 4);
        assert_eq!(store.fold_staged(3).unwrap(), 4);
        assert_eq!(staged_rows(&path), 2);
        // A row folded again (a replay) lays the same readings over themselves.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO staged (count, data) SELECT count, data FROM staged WHERE id = (SELECT min(id) FROM staged)",
        )
        .unwrap();
        assert_eq!(store.fold_staged(usize::MAX).unwrap(), 6);
        assert_eq!(store.count_readings().unwrap(), 10);
        let blocks: Vec<Vec<u8>> = {
            let mut stmt = conn.prepare("SELECT data FROM blocks").unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for data in blocks {
            let times: Vec<Millis> = super::super::blocks::decode_block(&data)
                .map(|(t, _)| t)
                .collect();
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        }
    }

    #[test]
    fn a_fold_in_slices_writes_what_one_fold_writes() {
        // 40 series, readings across three days, some sent twice with
        // another value (the later row wins): more than one slice.
        let dir = tempfile::tempdir().unwrap();
        let hour = crate::time::HOUR;
        let rows: Vec<Batch> = (0..72)
            .map(|h: i64| {
                let mut b = Batch::new();
                for c in 0..40 {
                    let labels: Labels = [("county".to_string(), format!("c{c}"))].into();
                    b.push(
                        "pm25",
                        labels.clone(),
                        h * hour,
                        (c * 100) as f64 + h as f64,
                    );
                    if h > 0 && c % 7 == 0 {
                        b.push("pm25", labels, (h - 1) * hour, -1.0 - h as f64);
                    }
                }
                b
            })
            .collect();
        let blocks = |path: &std::path::Path| -> Vec<(i64, i64, i64, Vec<u8>)> {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut stmt = conn
                .prepare("SELECT series_id, start, count, data FROM blocks ORDER BY 1, 2")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let mut folded = Vec::new();
        for sliced in [false, true] {
            let path = dir.path().join(format!("{sliced}.db"));
            let store = Store::open(&path).unwrap();
            for b in &rows {
                store.stage_many(&[b]).unwrap().expect("staged");
            }
            let n = if sliced {
                store.fold_in_slices(usize::MAX, 500).unwrap()
            } else {
                store.fold_staged(usize::MAX).unwrap()
            };
            assert_eq!(n, 72 * 40 + 71 * 6);
            assert_eq!(staged_rows(&path), 0);
            assert_eq!(store.fold_staged_in_slices(usize::MAX).unwrap(), 0);
            assert_eq!(values(&store, "c7")[5], (5 * hour, -7.0));
            folded.push(blocks(&path));
        }
        assert_eq!(folded[0].len(), 40 * 3);
        assert_eq!(folded[0], folded[1]);
    }

    #[test]
    fn a_full_store_refuses_a_staged_batch_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let size = {
            let store = Store::open(&path).unwrap();
            store.write(&batch(&[("南宫", 0, 0.0)])).unwrap();
            std::fs::metadata(&path).unwrap().len()
                + std::fs::metadata(dir.path().join("s.db-wal")).map_or(0, |m| m.len())
        };
        crate::db::set_size_limit(&path, Some(size.max(64 * 4096)));
        let store = Store::open(&path).unwrap();
        values(&store, "南宫");
        let mut big = Batch::new();
        for t in 1..40_000 {
            let labels: Labels = [("county".to_string(), "南宫".to_string())].into();
            big.push("pm25", labels, t, t as f64);
        }
        let err = store.stage_many(&[&big]).unwrap_err();
        assert!(err.is_disk_full(), "{err}");
        assert_eq!(staged_rows(&path), 0);
        assert_eq!(values(&store, "南宫"), vec![(0, 0.0)], "memory unchanged");
    }
}
