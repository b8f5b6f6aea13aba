//! Writing readings: one batch, several batches in one group commit (HTTP
//! ingest), or a transaction spanning the chunks of a large file. Each is
//! all or nothing, and the memory copy follows what was committed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use rusqlite::{params, Connection, OptionalExtension};

use super::blocks::{block_start, decode_block, encode_block, merge};
use super::columns::{Memory, SeriesId};
use super::{ReadingStoreError, Store};
use crate::readings::model::{Batch, Labels, SeriesKey};
use crate::time::Millis;

/// Counts of what a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub readings: usize,
    pub new_series: usize,
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
            merged.points.extend(
                batch
                    .points
                    .iter()
                    .map(|p| crate::readings::model::BatchPoint {
                        series: map[p.series as usize],
                        ..*p
                    }),
            );
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
    pub fn begin(&self) -> Result<WriteTx<'_>, ReadingStoreError> {
        let conn = self.writer.lock();
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|source| ReadingStoreError::Sqlite {
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
    fn err(&self, source: rusqlite::Error) -> ReadingStoreError {
        ReadingStoreError::Sqlite {
            path: self.store.path.clone(),
            source,
        }
    }

    /// Adds a batch to the transaction.
    pub fn add(&mut self, batch: &Batch) -> Result<(), ReadingStoreError> {
        let ids = self.add_inner(batch)?;
        self.touched.extend(ids);
        Ok(())
    }

    /// Inserts the batch; returns the series id of each `batch.series` entry.
    fn add_inner(&mut self, batch: &Batch) -> Result<Vec<SeriesId>, ReadingStoreError> {
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
    ) -> Result<(usize, usize), ReadingStoreError> {
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
    pub fn commit(mut self) -> Result<WriteSummary, ReadingStoreError> {
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
